"""A small bearer-token issuer (the "realm") for tests against a REAL docker-registry with token auth.

The registry (distribution 2.8, `auth: {token: …}`) never talks to the issuer: it only checks the JWTs
clients bring, against `rootcertbundle`. So this issuer must mint tokens that registry accepts: RS256
JWTs whose header carries the signing certificate as `x5c`, signed by a key and self-signed certificate
made with the `openssl` command (no crypto library is added to the test extras: the signature is
`openssl dgst -sha256 -sign`, PKCS#1 v1.5, which is exactly RS256).

Protocols served on one path, `/token`:
- docker token protocol: `GET ?service=…&scope=…` with Basic credentials;
- OAuth2 (what identity tokens use): `POST` form with `grant_type=password` (username, password;
  `access_type=offline` also returns a refresh token, as `docker login` asks for) or
  `grant_type=refresh_token` (refresh_token).

Every request is recorded (`requests`) so tests can assert caching. Test hooks: `expires_in` (short-lived
tokens), `stale_tokens` (the next N tokens die for the registry `stale_after` seconds after issue, already
dead by default, while `expires_in` still claims 300 s: what a client sees when a token dies early),
`pull_only` users (granted no push).
It listens on 127.0.0.1 only; `stop()` shuts it down.
"""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

LEEWAY = 60  # distribution accepts a token until exp + 60 s (clock-skew leeway)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    """An RSA key and the self-signed certificate the registry trusts (its rootcertbundle)."""

    key: Path
    cert: Path

    @classmethod
    def create(cls, directory: Path) -> SigningKey:
        directory.mkdir(parents=True, exist_ok=True)
        key, cert = directory / "issuer-key.pem", directory / "issuer-cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "2", "-subj", "/CN=edgebuild-test-token-issuer"],
                       check=True, capture_output=True)
        return cls(key, cert)

    def x5c(self) -> str:
        """The certificate as base64 DER (the body of the PEM is exactly that)."""
        lines = self.cert.read_text().strip().splitlines()
        return "".join(line for line in lines if not line.startswith("-----"))

    def sign(self, data: bytes) -> bytes:
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=data,
                              check=True, capture_output=True).stdout


@dataclass
class TokenRequest:
    """One request the issuer answered (or refused), for assertions."""

    method: str  # GET (docker token protocol) or POST (OAuth2)
    grant: str  # "basic", "password", "refresh_token", or "" when refused before that was known
    user: str | None  # who the issuer authenticated; None when refused
    scopes: tuple[str, ...]
    service: str
    client_id: str
    status: int


@dataclass
class TokenServer:
    """The issuer; `realm` is its token URL, `service`/`issuer` the names the registry is configured with."""

    signing: SigningKey
    users: dict[str, str]
    service: str = "edgebuild-test-registry"
    issuer: str = "edgebuild-test-issuer"
    expires_in: int = 300
    stale_tokens: int = 0
    stale_after: int = -2
    pull_only: set[str] = field(default_factory=set)
    requests: list[TokenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._refresh: dict[str, str] = {}  # refresh token -> user
        self._lock = threading.Lock()
        self._x5c = self.signing.x5c()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def start(self) -> TokenServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------------------ issuing

    def refresh_token_for(self, user: str) -> str:
        """A refresh (identity) token for `user`, as an offline password grant would return."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[token] = user
        return token

    def issued(self, *, method: str | None = None, grant: str | None = None) -> list[TokenRequest]:
        """The successful requests, optionally of one method / grant."""
        return [r for r in self.requests if r.status == 200 and (method is None or r.method == method)
                and (grant is None or r.grant == grant)]

    def _access(self, user: str, scopes: tuple[str, ...]) -> list[dict]:
        access: list[dict] = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if not kind or not name:
                continue
            granted = [a for a in actions.split(",") if a and (a == "pull" or user not in self.pull_only)]
            access.append({"type": kind, "name": name, "actions": granted})
        return access

    def _mint(self, user: str, scopes: tuple[str, ...]) -> tuple[str, int]:
        now = int(time.time())
        with self._lock:
            stale = self.stale_tokens > 0
            self.stale_tokens -= 1 if stale else 0
        expires_in = 300 if stale else self.expires_in
        # the registry accepts a token until exp + LEEWAY: a stale one dies `stale_after` s from now
        exp = now - LEEWAY + self.stale_after if stale else now + expires_in
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {"iss": self.issuer, "sub": user, "aud": self.service, "exp": exp, "nbf": now - 1, "iat": now,
                  "jti": secrets.token_hex(12), "access": self._access(user, scopes)}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        return f"{signing_input}.{b64url(self.signing.sign(signing_input.encode()))}", expires_in

    # ------------------------------------------------------------------------------ HTTP

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict, record: TokenRequest) -> None:
                record.status = status
                issuer.requests.append(record)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _issue(self, record: TokenRequest, offline: bool = False) -> None:
                if record.service != issuer.service:
                    self._answer(400, {"error": "invalid_request", "error_description": "unknown service"}, record)
                    return
                assert record.user is not None
                token, expires_in = issuer._mint(record.user, record.scopes)
                body = {"token": token, "access_token": token, "expires_in": expires_in,
                        "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                if offline:
                    body["refresh_token"] = issuer.refresh_token_for(record.user)
                self._answer(200, body, record)

            @staticmethod
            def _scopes(values: list[str]) -> tuple[str, ...]:
                # repeated scope parameters (containers/image) or one space-separated list (OAuth2, docker)
                return tuple(s for v in values for s in v.split() if s)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                record = TokenRequest("GET", "", None, self._scopes(query.get("scope", [])),
                                      (query.get("service") or [""])[0], (query.get("client_id") or [""])[0], 0)
                if url.path != "/token":
                    self._answer(404, {"error": "not found"}, record)
                    return
                user = self._basic_user()
                if user is None:
                    self._answer(401, {"details": "authentication required or invalid credentials"}, record)
                    return
                record.grant, record.user = "basic", user
                self._issue(record)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)

                def one(name: str) -> str:
                    return (form.get(name) or [""])[0]
                record = TokenRequest("POST", one("grant_type"), None, self._scopes(form.get("scope", [])),
                                      one("service"), one("client_id"), 0)
                if urlsplit(self.path).path != "/token":
                    self._answer(404, {"error": "not found"}, record)
                    return
                if not record.client_id:
                    self._answer(400, {"error": "invalid_request", "error_description": "client_id missing"}, record)
                    return
                if record.grant == "password":
                    user = one("username")
                    if user not in issuer.users or issuer.users[user] != one("password"):
                        self._answer(401, {"error": "invalid_grant"}, record)
                        return
                    record.user = user
                    self._issue(record, offline=one("access_type") == "offline")
                elif record.grant == "refresh_token":
                    with issuer._lock:
                        user = issuer._refresh.get(one("refresh_token"))
                    if user is None:
                        self._answer(400, {"error": "invalid_grant"}, record)
                        return
                    record.user = user
                    self._issue(record)
                else:
                    self._answer(400, {"error": "unsupported_grant_type"}, record)

            def _basic_user(self) -> str | None:
                scheme, _, value = self.headers.get("Authorization", "").partition(" ")
                if scheme.lower() != "basic":
                    return None
                try:
                    user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
                except ValueError:
                    return None
                return user if user in issuer.users and issuer.users[user] == password else None

        return Handler
