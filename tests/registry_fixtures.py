"""pytest plugin: real docker-registry (CNCF distribution 2.8) servers for registry and mirror tests.

Each server listens on 127.0.0.1 on a free port with filesystem storage under the test's tmp dir,
and is stopped by PID when the test ends. Variants: htpasswd basic auth (bcrypt), a self-signed TLS
certificate, both, and bearer-token auth against tests/token_server.py (`token=`, the
`token_registry` fixture). `RegistryServer.kill()` / `.restart()` keep the port and the storage, for
"registry died mid-copy" tests. `FaultProxy` is the one fake: a forwarding proxy in front of a real
registry that injects faults a real registry cannot produce on demand (5xx, 429, resets).
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.token_server import SigningKey, TokenServer

REGISTRY_BIN = "/usr/bin/docker-registry"
USER, PASSWORD = "testuser", "testpass"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class TlsFiles:
    cert: Path
    key: Path
    cert_dir: Path  # holds ca.crt, the form containers/image and edgebuild's --cert-dir want


@dataclass(frozen=True)
class TokenAuth:
    """The registry side of bearer-token auth: where clients get tokens, and what the registry checks
    in them (`aud` = service, `iss` = issuer, signature chained to the rootcertbundle)."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


@dataclass
class RegistryServer:
    """One docker-registry process; `host` is 127.0.0.1:PORT."""

    root: Path
    port: int = field(default_factory=free_port)
    htpasswd: Path | None = None
    tls: TlsFiles | None = None
    proc: subprocess.Popen | None = None
    token: TokenAuth | None = None  # bearer-token auth instead of htpasswd
    delete_enabled: bool = True  # False: DELETE answers 405, as distribution does by default

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def storage(self) -> Path:
        return self.root / "data"

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def write_config(self) -> Path:
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {"cache": {"blobdescriptor": "inmemory"},
                        "filesystem": {"rootdirectory": str(self.storage)},
                        "delete": {"enabled": self.delete_enabled}},
            "http": {"addr": self.host, "secret": "edgebuild-test-secret"},
            "health": {"storagedriver": {"enabled": False}},
        }
        if self.tls:
            config["http"]["tls"] = {"certificate": str(self.tls.cert), "key": str(self.tls.key)}
        if self.htpasswd and self.token:
            raise ValueError("a registry has one auth method: htpasswd or token, not both")
        if self.htpasswd:
            config["auth"] = {"htpasswd": {"realm": "basic-realm", "path": str(self.htpasswd)}}
        if self.token:
            config["auth"] = {"token": {"realm": self.token.realm, "service": self.token.service,
                                        "issuer": self.token.issuer,
                                        "rootcertbundle": str(self.token.rootcertbundle)}}
        path = self.root / "config.yml"
        self.root.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def start(self) -> RegistryServer:
        config = self.write_config()
        log = open(self.root / "registry.log", "ab")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.root / 'registry.log').read_text()[-2000:]}")
            try:
                conn = (http.client.HTTPSConnection(self.host, timeout=1, context=ssl._create_unverified_context())
                        if self.tls else http.client.HTTPConnection(self.host, timeout=1))
                conn.request("GET", "/v2/")
                conn.getresponse().read()
                conn.close()
                return self
            except OSError:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"docker-registry on {self.host} did not answer within 15 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the registry dies as in a crash, with uploads in flight."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> RegistryServer:
        self.kill()
        return self.start()

    def blob_data_path(self, digest: str) -> Path:
        hexpart = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost, and a cert dir with it as ca.crt."""
    root = tmp_path_factory.mktemp("tls")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    cert_dir = root / "certd"
    cert_dir.mkdir()
    (cert_dir / "ca.crt").write_bytes(cert.read_bytes())
    return TlsFiles(cert, key, cert_dir)


@pytest.fixture(scope="session")
def htpasswd_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """testuser/testpass, bcrypt (the only format distribution accepts)."""
    path = tmp_path_factory.mktemp("htpasswd") / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(path), USER, PASSWORD], check=True, capture_output=True)
    return path


RegistryFactory = Callable[..., RegistryServer]


@pytest.fixture
def registry_factory(tmp_path: Path, tls_files: TlsFiles, htpasswd_file: Path) -> Iterator[RegistryFactory]:
    """make(name, auth=False, tls=False, token=None, delete=True) -> a started RegistryServer; all are
    stopped at teardown. `token` (a TokenAuth) selects bearer-token auth instead of htpasswd;
    delete=False makes the registry refuse manifest deletes (405), its default outside these tests."""
    started: list[RegistryServer] = []

    def make(name: str = "reg", *, auth: bool = False, tls: bool = False,
             token: TokenAuth | None = None, delete: bool = True) -> RegistryServer:
        server = RegistryServer(tmp_path / f"registry-{name}", htpasswd=htpasswd_file if auth else None,
                                tls=tls_files if tls else None, token=token, delete_enabled=delete)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def registry(registry_factory: RegistryFactory) -> RegistryServer:
    return registry_factory("src")


@pytest.fixture
def registry2(registry_factory: RegistryFactory) -> RegistryServer:
    return registry_factory("dst")


@pytest.fixture(scope="session")
def token_signing_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    """The token issuer's RSA key and self-signed certificate (made with openssl)."""
    require_tool("openssl")
    return SigningKey.create(tmp_path_factory.mktemp("token-issuer"))


@pytest.fixture
def token_issuer(token_signing_key: SigningKey) -> Iterator[TokenServer]:
    """A started token issuer (tests/token_server.py) knowing testuser/testpass; stopped at teardown."""
    issuer = TokenServer(token_signing_key, {USER: PASSWORD}).start()
    try:
        yield issuer
    finally:
        issuer.stop()


def token_auth_for(issuer: TokenServer) -> TokenAuth:
    return TokenAuth(issuer.realm, issuer.service, issuer.issuer, issuer.signing.cert)


@pytest.fixture
def token_registry(registry_factory: RegistryFactory, token_issuer: TokenServer) -> RegistryServer:
    """A real docker-registry with bearer-token auth whose realm is `token_issuer`."""
    require_tool("docker-registry")
    return registry_factory("token", token=token_auth_for(token_issuer))


def write_authfile(path: Path, entries: dict[str, tuple[str, str]]) -> Path:
    """A containers-auth.json with `host: (user, password)` entries."""
    auths = {host: {"auth": base64.b64encode(f"{u}:{p}".encode()).decode()} for host, (u, p) in entries.items()}
    path.write_text(json.dumps({"auths": auths}))
    return path


@pytest.fixture
def isolated_auth_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and XDG dirs inside tmp_path, no REGISTRY_AUTH_FILE: the user's own logins never leak in."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    return home


# ------------------------------------------------------------------------------------ fault proxy

@dataclass
class FaultRule:
    """Matches requests by method and a path regex; acts on the first `times` matches.

    action: "status" (answer `status` with `headers`, no forwarding), "reset" (forward, then close
    the socket after `after_bytes` of the response body), "corrupt" (forward, flip one byte).
    """

    method: str
    path: str
    action: str
    times: int = 1
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    after_bytes: int = 0
    body: bytes | None = None  # for "status": the body to answer with (default: a registry error JSON)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.method == method and re.search(self.path, path) is not None and self.hits < self.times


class FaultProxy:
    """A forwarding HTTP proxy to a real registry that injects faults (the only fake server used)."""

    def __init__(self, upstream: RegistryServer) -> None:
        self.upstream = upstream
        self.rules: list[FaultRule] = []
        self.log: list[tuple[str, str, int, float]] = []  # method, path, status, monotonic time
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                rule = next((r for r in proxy.rules if r.matches(self.command, self.path)), None)
                if rule:
                    rule.hits += 1
                body = self._read_body()
                if rule and rule.action == "status":
                    proxy.log.append((self.command, self.path, rule.status, time.monotonic()))
                    payload = rule.body if rule.body is not None else json.dumps(
                        {"errors": [{"code": "INJECTED", "message": "injected fault"}]}).encode()
                    self.send_response(rule.status)
                    for k, v in rule.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.host, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "transfer-encoding")}
                headers["Host"] = self.headers.get("Host", proxy.upstream.host)
                if body is not None:
                    headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                upstream = conn.getresponse()
                data = upstream.read()
                conn.close()
                proxy.log.append((self.command, self.path, upstream.status, time.monotonic()))
                if rule and rule.action == "corrupt" and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                self.send_response(upstream.status)
                for k, v in upstream.getheaders():
                    if k.lower() in ("transfer-encoding", "connection", "content-length"):
                        continue
                    if k.lower() == "location":
                        v = v.replace(proxy.upstream.host, proxy.host)
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if rule and rule.action == "reset":
                    self.wfile.write(data[:rule.after_bytes])
                    self.wfile.flush()
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    self.connection.close()
                    return
                self.wfile.write(data)

            def _read_body(self) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                length = self.headers.get("Content-Length")
                return self.rfile.read(int(length)) if length else None

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients that give up mid-answer (resets are what these tests inject) are expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fault_proxy_factory() -> Iterator[Callable[[RegistryServer], FaultProxy]]:
    proxies: list[FaultProxy] = []

    def make(upstream: RegistryServer) -> FaultProxy:
        proxy = FaultProxy(upstream).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()


__all__ = ["RegistryServer", "FaultProxy", "FaultRule", "TlsFiles", "TokenAuth", "USER", "PASSWORD", "free_port",
           "write_authfile", "tls_files", "htpasswd_file", "registry_factory", "registry", "registry2",
           "isolated_auth_env", "fault_proxy_factory", "token_signing_key", "token_issuer", "token_auth_for",
           "token_registry"]


@pytest.fixture(scope="module")
def mirror_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """One real docker-registry on 127.0.0.1 for a whole module (tests/registry_fixtures.RegistryServer),
    stopped by PID at the end; module scope because every test reads the same pushed images."""
    require_tool("skopeo")
    require_tool("docker-registry")
    server = RegistryServer(tmp_path_factory.mktemp("render-mirror")).start()
    try:
        yield server
    finally:
        server.stop()
