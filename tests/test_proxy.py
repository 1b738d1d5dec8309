"""Mirroring through a real HTTP proxy (Debian's tinyproxy), and the switch that turns the fast path off.

With HTTP(S)_PROXY set, every request for a proxied registry goes through httpx, which speaks to
the proxy; NO_PROXY exempts a registry, which then gets the fast transport again. The proxy's own
log is the witness of what went through it; skopeo checks the copies.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgebuild.cli import main
from edgebuild.registry.transport import fast_http_enabled, proxy_applies
from tests.conftest import require_tool
from tests.registry_images import Layout, push, simple_image, verify_pull

pytestmark = pytest.mark.usefixtures("isolated_auth_env")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "no_proxy")


@dataclass
class Tinyproxy:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[str]:
        """The request lines the proxy forwarded ("GET http://127.0.0.1:PORT/v2/ HTTP/1.1", …)."""
        return [line.split("): ", 1)[1] for line in self.log.read_text(errors="replace").splitlines()
                if "Request (file descriptor" in line]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    binary = require_tool("tinyproxy")
    port = _free_port()
    log = tmp_path / "tinyproxy.log"
    conf = tmp_path / "tinyproxy.conf"
    conf.write_text(f"Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nLogFile \"{log}\"\nLogLevel Info\n"
                    "MaxClients 100\nTimeout 60\nDisableViaHeader Yes\n")
    proc = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"tinyproxy did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.05)
    yield Tinyproxy(port, log)
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


@pytest.fixture
def no_proxy_env(monkeypatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def two_images(registry, tmp_path: Path) -> list[str]:
    layout = Layout(tmp_path / "layout")
    refs = []
    for name in ("one", "two"):
        simple_image(layout, name, (150_000, 2_000))
        push(layout, name, f"{registry.host}/px/{name}:v1")
        refs.append(f"{registry.host}/px/{name}:v1")
    return refs


def _mirror(config_images: list[str], destination: str, tmp_path: Path, *extra: str) -> int:
    config = tmp_path / "isc.yaml"
    config.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                      "  additionalImages:\n" + "".join(f"  - name: {ref}\n" for ref in config_images))
    return main(["mirror", "-c", str(config), "--to", f"docker://{destination}/m", "--src-tls-verify=false",
                 "--dest-tls-verify=false", "-q", *extra])


def test_mirror_through_a_real_proxy(two_images, registry, registry2, tinyproxy, no_proxy_env, monkeypatch,
                                     tmp_path: Path) -> None:
    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url)
    monkeypatch.setenv("HTTPS_PROXY", tinyproxy.url)
    assert _mirror(two_images, registry2.host, tmp_path) == 0
    monkeypatch.delenv("HTTP_PROXY")
    monkeypatch.delenv("HTTPS_PROXY")
    seen = tinyproxy.requests()
    # every request to either registry went through the proxy: reads from the source, uploads to the mirror
    assert any(line.startswith(f"GET http://{registry.host}/v2/px/one/blobs/") for line in seen)
    assert any(line.startswith(f"PUT http://{registry2.host}/v2/m/px/one/blobs/uploads/") for line in seen)
    assert any(line.startswith(f"PUT http://{registry2.host}/v2/m/px/two/manifests/") for line in seen)
    for ref in two_images:
        verify_pull(ref.replace(registry.host, f"{registry2.host}/m"), tmp_path / "verify")


def test_no_proxy_exempts_a_registry(two_images, registry, registry2, tinyproxy, no_proxy_env, monkeypatch,
                                     tmp_path: Path) -> None:
    monkeypatch.setenv("http_proxy", tinyproxy.url)
    monkeypatch.setenv("no_proxy", f"example.com,{registry2.host}")
    assert _mirror(two_images, registry2.host, tmp_path) == 0
    monkeypatch.delenv("http_proxy")
    seen = tinyproxy.requests()
    assert any(registry.host in line for line in seen)
    assert not any(registry2.host in line for line in seen)
    verify_pull(f"{registry2.host}/m/px/two:v1", tmp_path / "verify")


def test_proxy_rules_follow_the_environment(no_proxy_env, monkeypatch) -> None:
    assert not proxy_applies("https://quay.io/v2/")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", ".internal,10.0.0.5:5000")
    assert proxy_applies("https://quay.io/v2/")
    assert not proxy_applies("http://quay.io/v2/")  # only HTTPS is proxied
    assert not proxy_applies("https://reg.internal/v2/")
    assert not proxy_applies("https://10.0.0.5:5000/v2/")


def test_fast_http_off_switch(two_images, registry, registry2, monkeypatch, tmp_path: Path) -> None:
    assert fast_http_enabled({}) and not fast_http_enabled({"EDGEBUILD_FAST_HTTP": "0"})
    assert _mirror(two_images[:1], registry2.host, tmp_path, "--no-fast-http") == 0
    monkeypatch.setenv("EDGEBUILD_FAST_HTTP", "0")
    assert _mirror(two_images, registry2.host, tmp_path) == 0
    for ref in two_images:
        verify_pull(ref.replace(registry.host, f"{registry2.host}/m"), tmp_path / "verify")
    from edgebuild.registry.client import RegistryClient
    with RegistryClient(registry.host, tls_verify=False) as client:
        assert client._transports.fast is None  # every request of that client goes through httpx
    monkeypatch.delenv("EDGEBUILD_FAST_HTTP")
    with RegistryClient(registry.host, tls_verify=False) as client:
        assert client._transports.fast is not None
