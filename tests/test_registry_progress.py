"""Progress output (live line, plain lines, quiet) and bearer-token auth with scope caching.

The bearer test uses a fake registry: the docker-registry here has no token server, and the
point is the client's side of the token flow (challenge, token request with the scope, cache).
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import threading
import time
from collections.abc import Iterator

import pytest

from edgebuild.errors import RegistryError
from edgebuild.registry.client import RegistryClient
from edgebuild.registry.progress import Progress
from tests.registry_fixtures import write_authfile


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    with Progress(2, stream=out, verbose=1) as progress:
        progress.add_bytes(2_500_000)
        progress.image_finished("src/a:1", "dst/a:1", "copied")
        progress.image_finished("src/b:1", "dst/b:1", "present")
    lines = out.getvalue().splitlines()
    assert lines == ["copied: src/a:1 -> dst/a:1", "skipped (already present): src/b:1 -> dst/b:1"]
    assert "images 2/2 (1 already present)  2.5 MB" in progress.status_line()


def test_live_line_redraws_on_a_terminal() -> None:
    out = io.StringIO()
    with Progress(3, stream=out, live=True) as progress:
        progress.add_bytes(1_000_000)
        progress.image_finished("a", "b", "copied")
        time.sleep(0.45)
    text = out.getvalue()
    assert text.count("\r") >= 2 and "images 1/3" in text and "MB/s" in text
    assert "copied: a" not in text  # no per-image lines in live mode without -v


def test_default_output_is_a_line_per_tenth_and_every_failure() -> None:
    out = io.StringIO()
    with Progress(20, stream=out) as progress:
        for i in range(20):
            progress.image_finished(f"src/{i}", f"dst/{i}", "failed" if i == 3 else "copied", "boom")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("images 2/20 (0 already present)")
    assert "FAILED: src/3 -> dst/3: boom" in lines
    assert sum(line.startswith("images ") for line in lines) == 10
    assert lines[-1].startswith("images 20/20 (0 already present, 1 failed)")


def test_live_line_shows_eta_and_the_images_in_flight() -> None:
    progress = Progress(4, stream=io.StringIO(), live=False)
    progress.image_started("quay.io/team/first@sha256:" + "a" * 64)
    progress.image_started("quay.io/team/second:1")
    progress.image_finished("quay.io/team/second:1", "dst", "copied")
    line = progress.status_line()
    assert "images 1/4" in line and "ETA " in line
    assert line.endswith("in flight 1: quay.io/team/first")


def test_verbose_prints_each_image_above_the_live_line() -> None:
    out = io.StringIO()
    with Progress(1, stream=out, live=True, verbose=1) as progress:
        progress.image_finished("src/a:1", "dst/a:1", "copied")
    assert "\r\x1b[Kcopied: src/a:1 -> dst/a:1\n" in out.getvalue()


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    with Progress(1, stream=out, quiet=True) as progress:
        progress.image_finished("a", "b", "failed", "boom")
        progress.message("hello")
    assert out.getvalue() == ""


class FakeTokenRegistry:
    """Answers /v2/ with a Bearer challenge, issues tokens at /token, checks them on manifests."""

    def __init__(self) -> None:
        self.token_requests: list[dict[str, list[str]]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlsplit
                url = urlsplit(self.path)
                if url.path == "/token":
                    auth = self.headers.get("Authorization", "")
                    if auth != "Basic " + base64.b64encode(b"bob:s3cret").decode():
                        self._send(401, b'{"details":"bad credentials"}')
                        return
                    query = parse_qs(url.query)
                    outer.token_requests.append(query)
                    self._send(200, json.dumps({"token": "tok-" + ",".join(query.get("scope", [])),
                                                "expires_in": 300}).encode())
                    return
                challenge = (f'Bearer realm="http://{outer.host}/token",service="fake",'
                             'scope="repository:team/app:pull"')
                if self.headers.get("Authorization") != "Bearer tok-repository:team/app:pull":
                    self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
                    return
                self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}')

            do_HEAD = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def token_registry() -> Iterator[FakeTokenRegistry]:
    fake = FakeTokenRegistry()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_bearer_token_flow_with_scope_cache(token_registry, tmp_path, isolated_auth_env) -> None:
    authfile = write_authfile(tmp_path / "auth.json", {token_registry.host: ("bob", "s3cret")})
    with RegistryClient(token_registry.host, tls_verify=False, authfile=authfile) as client:
        assert client.head_manifest("team/app", "v1") is None
        assert client.head_manifest("team/app", "v2") is None
    assert len(token_registry.token_requests) == 1  # the token for the scope was reused
    request = token_registry.token_requests[0]
    assert request["service"] == ["fake"] and request["scope"] == ["repository:team/app:pull"]


def test_bearer_token_refused_names_the_registry(token_registry, tmp_path, isolated_auth_env) -> None:
    authfile = write_authfile(tmp_path / "auth.json", {token_registry.host: ("bob", "wrong")})
    with RegistryClient(token_registry.host, tls_verify=False, authfile=authfile) as client:
        with pytest.raises(RegistryError, match=f"registry {token_registry.host} rejected the credentials") as info:
            client.head_manifest("team/app", "v1")
    assert "wrong" not in str(info.value)
