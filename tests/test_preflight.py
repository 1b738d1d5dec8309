"""Preflight: every registry of a run is asked once before anything is copied, and an unreachable one
fails the run at once with one line per registry and the advice for its cause.

Real registries (docker-registry, plain HTTP and TLS) and real failures (a closed port, names under
the reserved `.invalid` domain, which never resolve); no fake server.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from edgebuild.cli import main
from edgebuild.registry.preflight import PreflightError, Target, check_registries

pytestmark = pytest.mark.usefixtures("isolated_auth_env")


def closed_port() -> int:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def isc(tmp_path: Path, images: list[str]) -> Path:
    path = tmp_path / "isc.yaml"
    path.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                    "  additionalImages:\n" + "".join(f"  - name: {ref}\n" for ref in images))
    return path


@pytest.fixture
def one_image(registry, tmp_path: Path) -> str:
    from tests.registry_images import Layout, push, simple_image
    layout = Layout(tmp_path / "layout")
    simple_image(layout, "one", (20_000,))
    push(layout, "one", f"{registry.host}/p/one:v1")
    return f"{registry.host}/p/one:v1"


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def test_wrong_destination_port_fails_at_once_naming_the_port(one_image, tmp_path: Path, capsys) -> None:
    port = closed_port()
    code, err = run(["mirror", "-c", str(isc(tmp_path, [one_image])), "--to", f"docker://127.0.0.1:{port}/m",
                     "--src-tls-verify=false", "--dest-tls-verify=false", "-q"], capsys)
    assert code == 1
    assert f"127.0.0.1:{port} (destination): connection refused: nothing listens on port {port} of 127.0.0.1" in err
    assert "check the port" in err
    assert err.count(f"127.0.0.1:{port}") == 1  # one message, printed once


def test_unresolvable_sources_one_line_each_with_the_offline_advice(registry2, tmp_path: Path, capsys) -> None:
    images = [f"host{n}.edgebuild.invalid/ns/app{m}:v1" for n in range(3) for m in range(2)]
    code, err = run(["mirror", "-c", str(isc(tmp_path, images)), "--to", f"docker://{registry2.host}/m",
                     "--dest-tls-verify=false"], capsys)
    assert code == 1
    assert "3 registries the run needs cannot be reached; nothing was copied or written" in err
    for n in range(3):
        line = next(line for line in err.splitlines() if f"host{n}.edgebuild.invalid" in line)
        # this machine's resolver sometimes drops concurrent queries: then the lookup is cut off at the deadline
        assert re.search(rf"host{n}\.edgebuild\.invalid \(image source of 2 image\(s\)\): the name "
                         rf"host{n}\.edgebuild\.invalid (does not resolve|found no answer in DNS in time)", line)
        assert "this machine may be offline: mirror to disk on a connected machine" in line
    assert "Traceback" not in err


def test_plain_http_destination_with_tls_verification_names_the_flag(one_image, registry2, tmp_path: Path,
                                                                      capsys) -> None:
    code, err = run(["mirror", "-c", str(isc(tmp_path, [one_image])), "--to", f"docker://{registry2.host}/m",
                     "--src-tls-verify=false"], capsys)
    assert code == 1
    assert f"{registry2.host} (destination): it answers plain HTTP, not HTTPS; hint: pass " \
           "--dest-tls-verify=false" in err


def test_untrusted_certificate_of_a_source_names_the_cert_dir(registry_factory, registry2, tls_files, tmp_path: Path,
                                                              capsys) -> None:
    secure = registry_factory("tls-src", tls=True)
    code, err = run(["mirror", "-c", str(isc(tmp_path, [f"{secure.host}/p/one:v1"])), "--to",
                     f"docker://{registry2.host}/m", "--dest-tls-verify=false"], capsys)
    assert code == 1
    assert f"{secure.host} (image source of 1 image(s)): its TLS certificate is not trusted" in err
    assert "--src-cert-dir DIR" in err and "--src-tls-verify=false" in err


def test_catalog_source_refused_before_the_catalog_is_read(registry2, tmp_path: Path, capsys) -> None:
    port = closed_port()
    config = tmp_path / "isc.yaml"
    config.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                      f"  operators:\n  - catalog: 127.0.0.1:{port}/redhat/index:v4.17\n")
    code, err = run(["mirror", "-c", str(config), "--to", f"docker://{registry2.host}/m", "--src-tls-verify=false",
                     "--dest-tls-verify=false"], capsys)
    assert code == 1
    assert f"127.0.0.1:{port} (catalog source of 1 image(s)): connection refused" in err


def test_dry_run_does_not_need_the_destination(one_image, tmp_path: Path, capsys) -> None:
    code = main(["mirror", "-c", str(isc(tmp_path, [one_image])), "--to", f"docker://127.0.0.1:{closed_port()}/m",
                 "--src-tls-verify=false", "--dry-run"])
    assert code == 0


def test_reachable_registries_pass_and_are_returned(registry, registry2) -> None:
    checked = check_registries([Target(registry.host, "image source", tls_verify=False),
                                Target(registry2.host, "destination", tls_verify=False)])
    assert checked == {registry.host, registry2.host}


def test_storage_config_registry_advice_names_skip_tls(registry2) -> None:
    with pytest.raises(PreflightError) as info:
        check_registries([Target(registry2.host, "storageConfig registry", tls_verify=True)])
    assert "skipTLS: true under storageConfig.registry" in str(info.value)


def test_a_registry_that_never_answers_is_cut_off_at_the_timeout() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections (backlog), never answers
    host = f"127.0.0.1:{silent.getsockname()[1]}"
    try:
        with pytest.raises(PreflightError) as info:
            check_registries([Target(host, "destination", tls_verify=False)], timeout=0.5)
    finally:
        silent.close()
    assert f"{host} (destination): no answer within 0.5 s" in str(info.value)


def test_advice_for_each_cause() -> None:
    from edgebuild.errors import RegistryError
    from edgebuild.registry.client import ConnectionFailed
    from edgebuild.registry.preflight import advice
    dest = Target("mirror.example.invalid:5000", "destination")
    assert advice(dest, ConnectionFailed("x", kind="dns")).endswith("hint: check the host name of the destination")
    assert "no answer within" in advice(dest, ConnectionFailed("x", kind="timeout"))
    other = advice(dest, RegistryError("cannot reach registry x: GET /v2/ answered HTTP 404", hint="check it"))
    assert other == "mirror.example.invalid:5000 (destination): x: GET /v2/ answered HTTP 404; hint: check it"


def test_targets_of_a_configuration_and_a_plan() -> None:
    from types import SimpleNamespace

    from edgebuild.registry.preflight import Sides, config_targets, merge, plan_targets
    config = SimpleNamespace(
        operators=[SimpleNamespace(catalog="registry.example.com/redhat/index:v4.17"),
                   SimpleNamespace(catalog="oci:///tmp/layout"), SimpleNamespace(catalog="overridden.io/cat:v1")],
        additional_images=[SimpleNamespace(name="quay.io/a/b:v1"), SimpleNamespace(name="not a reference")],
        storage=SimpleNamespace(registry_image="state.example.com:5000/meta:latest", registry_skip_tls=True))
    sides = Sides(src_tls_verify=False, dest_tls_verify=True, dest_cert_dir="/certs")
    targets = config_targets(config, sides, destination="mirror:5000", overrides=["overridden.io/cat:v1"])
    assert [(t.registry, t.role, t.tls_verify) for t in targets] == [
        ("registry.example.com", "catalog source", False), ("quay.io", "image source", False),
        ("state.example.com:5000", "storageConfig registry", False), ("mirror:5000", "destination", True)]
    assert targets[-1].cert_dir == "/certs"
    plan = SimpleNamespace(images=[SimpleNamespace(source=s) for s in
                                   ("quay.io/a/b:v1", "reg.io/x:1", "reg.io/y:1", "oci:///tmp/l")])
    assert [(t.registry, t.images) for t in plan_targets(plan, sides, {"quay.io"})] == [("reg.io", 2)]
    merged = merge([Target("r", "image source", images=2), Target("r", "destination"), Target("r", "image source",
                                                                                              images=1)])
    assert [(t.role, t.images) for t in merged] == [("destination", 3)]
