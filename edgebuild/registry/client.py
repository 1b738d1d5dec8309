"""A client for the OCI distribution API (registry v2): one implementation of each operation.

One `RegistryClient` per registry host, shared by all copy threads. Every operation (manifest
GET/HEAD/PUT, blob HEAD/GET, upload start/finish, tags) is written once over `request`, which adds
auth, answers challenges, applies the retry policy (retry.py) and the per-registry request limit,
and sends through transport.py (the fast HTTP/1.1 transport, or httpx where that one does not
fit). It speaks the API as distribution 2.8 implements it (no single-request upload, `n` ignored on
tags/list, 404 for OCI manifests without an OCI Accept header).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx

from ..errors import RegistryError
from .auth import Challenge, Credentials, auth_file_candidates, find_credentials, parse_challenge
from .manifest import MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, Manifest, parse_manifest, sha256_digest
from .retry import RETRYABLE_STATUS, RetryPolicy, StatusError, TransientError, TransientStatusError, parse_retry_after
from .settings import settings
from .transport import AnswerTooLarge, Response, TransportFailure, Transports, failure_kind

log = logging.getLogger(__name__)

_LINK_NEXT_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_MANIFEST_CAP_TEXT = f"over the {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB limit registries accept"
_MANIFEST_CAP_HINT = "such a manifest cannot be pushed to a distribution registry; exclude the image"
_STATUS_HINTS = {403: "the account lacks permission for this repository; ask the registry admin for push/pull rights",
                 404: "check the repository and reference exist in the registry"}


def tls_context(registry: str, cert_dir: str | os.PathLike[str] | None) -> ssl.SSLContext:
    """System CAs plus, as containers/image does, `*.crt` CAs and a `*.cert`/`*.key` client pair
    from the cert dir (default: /etc/containers/certs.d/HOST and /etc/docker/certs.d/HOST)."""
    ctx = ssl.create_default_context()
    dirs = [Path(cert_dir)] if cert_dir else [Path("/etc/containers/certs.d") / registry,
                                              Path("/etc/docker/certs.d") / registry]
    if cert_dir and not Path(cert_dir).is_dir():
        raise RegistryError(f"cert dir {cert_dir} does not exist", hint="pass a directory holding the CA as *.crt")
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix == ".crt":
                ctx.load_verify_locations(cafile=str(path))
            elif path.suffix == ".cert" and path.with_suffix(".key").is_file():
                ctx.load_cert_chain(str(path), str(path.with_suffix(".key")))
    return ctx


def error_codes(body: bytes) -> tuple[str, ...]:
    """The `errors[].code` values of a registry error body."""
    try:
        errors = json.loads(body).get("errors") or []
        return tuple(str(e.get("code", "?")) for e in errors if isinstance(e, dict))
    except Exception:  # noqa: BLE001 - an undecodable body has no codes
        return ()


def error_text(body: bytes, fallback: str = "") -> str:
    """`CODE: message` from a registry error body, or the start of the body."""
    try:
        errors = json.loads(body).get("errors") or []
        if errors:
            return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors[:3])
    except Exception:  # noqa: BLE001 - any undecodable body is reported as text
        pass
    return body[:200].decode("utf-8", "replace").strip().replace("\n", " ") or fallback


class ConnectionFailed(TransientError):
    """No answer from the registry; `kind` says why (see transport.failure_kind)."""

    def __init__(self, message: str, hint: str | None = None, *, kind: str = "other") -> None:
        super().__init__(message, hint)
        self.kind = kind


class TlsFailure(RegistryError):
    """The TLS handshake failed (plain HTTP where HTTPS was expected, or an untrusted certificate)."""

    def __init__(self, message: str, hint: str | None = None, *, kind: str = "tls") -> None:
        super().__init__(message, hint)
        self.kind = kind


class RegistryClient:
    """Distribution API calls with auth, TLS options and retries for one registry host."""

    def __init__(self, registry: str, *, tls_verify: bool = True, cert_dir: str | os.PathLike[str] | None = None,
                 authfile: str | os.PathLike[str] | None = None, credentials: Credentials | None = None,
                 retry: RetryPolicy | None = None, max_connections: int = 32, timeout: float = 120.0,
                 fast_http: bool | None = None, max_per_registry: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        defaults = settings()
        self.registry = registry
        self.tls_verify = tls_verify
        self.retry = retry or defaults.retry
        self._clock = clock
        self._authfile = authfile
        self._fixed_credentials = credentials
        self._credentials: dict[str, Credentials | None] = {}
        verify: ssl.SSLContext | bool = tls_context(registry, cert_dir) if tls_verify else False
        raw_ssl = verify if isinstance(verify, ssl.SSLContext) else ssl._create_unverified_context()
        self._transports = Transports(raw_ssl, verify, timeout, max_connections,
                                      fast=defaults.fast_http if fast_http is None else fast_http)
        limit = max_per_registry or defaults.max_per_registry
        self._slots: threading.BoundedSemaphore | None = threading.BoundedSemaphore(limit) if limit else None
        self._lock = threading.Lock()
        self._base: str | None = None
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._token_locks: dict[tuple[str, ...], threading.Lock] = {}  # one token request per scope at a time

    # -------------------------------------------------------------------------------- plumbing

    def close(self) -> None:
        self._transports.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        if self._base is None:
            self.ping()
        assert self._base is not None
        return self._base

    def ping(self) -> None:
        """Find the scheme (https; plain http only when TLS verification is off, as skopeo does)
        and the auth challenge, with `GET /v2/`."""
        with self._lock:
            if self._base is not None:
                return
            self.credentials(None)  # a broken auth file fails here, before any network use, as in skopeo
            schemes = ["https"] if self.tls_verify else ["https", "http"]
            first: ConnectionFailed | TlsFailure | None = None
            for scheme in schemes:
                base = f"{scheme}://{self.registry}"
                try:
                    response = self.retry.run(functools.partial(self._ping_once, base))
                except (ConnectionFailed, TlsFailure) as exc:
                    first = first or exc
                    if isinstance(exc, TlsFailure) or not _has_port(self.registry):
                        continue  # plain HTTP may answer where TLS did not, or on port 80 when 443 is shut
                    break
                except TransientStatusError as exc:
                    raise RegistryError(f"registry {self.registry}: GET /v2/ answered HTTP {exc.status} "
                                        f"(still after {self.retry.effective_attempts} attempt(s))",
                                        hint="rerun later if the registry is overloaded") from None
                status = response.status
                body = response.drain()
                response.close()
                if status == 401:
                    self._challenge = parse_challenge(response.headers.get("www-authenticate", ""))
                elif status != 200:
                    raise RegistryError(f"registry {self.registry}: GET /v2/ answered HTTP "
                                        f"{status}: {error_text(body, 'no reason given')}",
                                        hint="check that the address is an OCI registry")
                self._base = base
                return
            assert first is not None
            raise type(first)(f"cannot reach registry {self.registry}: {first.message.split(': ', 2)[-1]}", first.hint,
                              kind=first.kind) from None

    def _ping_once(self, base: str, _attempt: int = 0) -> Response:
        response = self._send(base + "/v2/", "GET", {}, None, "GET /v2/")
        if response.status in RETRYABLE_STATUS:
            response.drain()
            response.close()
            raise TransientStatusError(f"registry {self.registry}: GET /v2/ answered HTTP {response.status}",
                                       status=response.status,
                                       retry_after=parse_retry_after(response.headers.get("retry-after")))
        return response

    def _absolute(self, path_or_url: str) -> str:
        """An absolute URL as a plain string (httpx.URL parsing of long upload `_state` queries costs
        a measurable share of CPU when hundreds of small images are copied)."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return urljoin(self.base_url + "/", path_or_url)

    def credentials(self, repository: str | None) -> Credentials | None:
        if self._fixed_credentials is not None:
            return self._fixed_credentials
        key = repository or ""
        if key not in self._credentials:
            self._credentials[key] = find_credentials(self.registry, repository, authfile=self._authfile)
        return self._credentials[key]

    def _no_credentials(self, what: str) -> RegistryError:
        files = ", ".join(str(p) for p in auth_file_candidates(self._authfile))
        return RegistryError(f"registry {self.registry} requires authentication for {what}, "
                             f"and no credentials for it were found (looked in {files})",
                             hint=f"run `podman login {self.registry}` or pass --authfile with its credentials")

    def _auth_failed(self, what: str, creds: Credentials | None) -> RegistryError:
        if creds is None:
            return self._no_credentials(what)
        if creds.is_identity_token:
            return RegistryError(f"registry {self.registry} rejected {creds.who} for {what}",
                                 hint=f"the token may be expired or revoked: log in again with "
                                      f"`podman login {self.registry}` (or `docker login`)")
        return RegistryError(f"registry {self.registry} rejected {creds.who} for {what}",
                             hint=f"check the password: `podman login {self.registry}` updates the auth file")

    def _scope_denied(self, what: str, creds: Credentials | None, scopes: tuple[str, ...]) -> RegistryError:
        """A token was issued but the registry still wants more access: the account lacks the rights."""
        who = creds.who if creds else "anonymous access"
        return RegistryError(f"registry {self.registry}: {what}: the token service did not grant {who} "
                             f"the access it needs ({' '.join(scopes) or 'registry access'})",
                             hint="the account lacks permission for this repository; ask the registry admin "
                                  "for pull/push rights")

    def _authorization(self, repository: str | None, scopes: tuple[str, ...], what: str) -> str | None:
        challenge = self._challenge
        if challenge is None:
            return None
        creds = self.credentials(repository)
        if challenge.scheme == "basic":
            if creds is None:
                raise self._no_credentials(what)
            if creds.is_identity_token:
                # A refresh token is only good at a token service; sending it as a password would fail
                # with a misleading "wrong password", and would hand the secret to the wrong party.
                raise RegistryError(f"registry {self.registry} asks for Basic authentication, but {creds.who} "
                                    f"is an identity token, which only works with bearer-token registries",
                                    hint=f"log in with a username and password: `podman login {self.registry}` "
                                         f"(updates {creds.origin or 'the auth file'})")
            raw = f"{creds.username}:{creds.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if challenge.scheme == "bearer":
            if not scopes:
                return None  # a token without scope grants nothing; the registry's 401 names the scope
            return "Bearer " + self._token(scopes, creds, what)
        raise RegistryError(f"registry {self.registry} asks for unsupported auth scheme {challenge.scheme!r}",
                            hint="edgebuild supports Basic and Bearer token authentication")

    def _token(self, scopes: tuple[str, ...], creds: Credentials | None, what: str) -> str:
        """A bearer token for `scopes`, from the cache while it is valid, else from the realm.

        One request per scope at a time: the copy threads that need the same scope wait for the first
        one's token instead of each asking the token service."""
        cached = self._tokens.get(scopes)
        if cached and cached[1] > self._clock():
            return cached[0]
        with self._lock:
            lock = self._token_locks.setdefault(scopes, threading.Lock())
        with lock:
            cached = self._tokens.get(scopes)
            if cached and cached[1] > self._clock():
                return cached[0]
            token, valid_until = self._fetch_token(scopes, creds, what)
            self._tokens[scopes] = (token, valid_until)
            return token

    def _fetch_token(self, scopes: tuple[str, ...], creds: Credentials | None, what: str) -> tuple[str, float]:
        """Ask the realm: the docker token protocol (GET, Basic credentials) for a password, OAuth2
        (POST grant_type=refresh_token) for an identity token, as docker and containers/image do."""
        challenge = self._challenge
        assert challenge is not None
        realm = challenge.params.get("realm")
        if not realm:
            raise RegistryError(f"registry {self.registry}: bearer challenge without a realm")
        service = challenge.params.get("service")
        started = self._clock()
        if creds is not None and creds.is_identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": "edgebuild"}
            if service:
                form["service"] = service
            if scopes:
                form["scope"] = " ".join(scopes)  # one space-separated list, as the OAuth2 spec has it
            response = self._token_call(realm, lambda: self._transports.http.post(realm, data=form))
        else:
            params: list[tuple[str, str | int | float | bool | None]] = [("service", service)] if service else []
            params += [("scope", s) for s in scopes]
            auth = (creds.username, creds.password) if creds else None
            response = self._token_call(realm, lambda: self._transports.http.get(realm, params=params, auth=auth))
        status = response.status_code
        if status in (401, 403) or (status == 400 and creds is not None and creds.is_identity_token
                                    and "invalid_grant" in response.text):
            raise self._auth_failed(what, creds)
        if status in (404, 405) and creds is not None and creds.is_identity_token:
            raise RegistryError(f"registry {self.registry}: token service {realm} does not take OAuth2 token "
                                f"requests (POST answered HTTP {status}), which {creds.who} needs",
                                hint=f"log in with a username and password: `podman login {self.registry}`")
        if status != 200:
            raise RegistryError(f"registry {self.registry}: token service {realm} answered HTTP "
                                f"{status}: {error_text(response.content, response.reason_phrase)}")
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or 60)  # the token spec's default
        except (ValueError, AttributeError, TypeError):
            token, lifetime = None, 0.0
        if not token or not isinstance(token, str):
            raise RegistryError(f"registry {self.registry}: token service {realm} returned no token")
        # Counted from before the request, so never later than the issuer's own clock says; renewed a
        # little early (a tenth, at most 10 s) so a token does not die between check and use.
        return token, started + lifetime - min(10.0, lifetime / 10)

    def _token_call(self, realm: str, call: Callable[[], httpx.Response]) -> httpx.Response:
        """One token-service call under the retry policy (connection trouble, retryable statuses)."""
        def once(_attempt: int) -> httpx.Response:
            try:
                response = call()
            except httpx.TransportError as exc:
                raise ConnectionFailed(f"registry {self.registry}: token service {realm} unreachable: {exc}",
                                       kind=failure_kind(exc)) from None
            if response.status_code in RETRYABLE_STATUS:
                raise TransientStatusError(f"registry {self.registry}: token service {realm} answered HTTP "
                                           f"{response.status_code}", status=response.status_code,
                                           retry_after=parse_retry_after(response.headers.get("Retry-After")))
            return response
        return self.retry.run(once)

    # -------------------------------------------------------------------------------- requests

    def _slot(self) -> AbstractContextManager[Any]:
        return self._slots if self._slots is not None else nullcontext()

    def _send(self, url: str, method: str, headers: dict[str, str], content: bytes | Iterable[bytes] | None,
              what: str) -> Response:
        """One request on the transport that fits, inside the registry's request limit; the answer's
        head is read. No answer is a ConnectionFailed (retried) or a TlsFailure (not)."""
        try:
            with self._slot():
                return self._transports.send(method, url, headers, content)
        except TransportFailure as exc:
            if exc.tls:
                raise TlsFailure(f"registry {self.registry}: {what}: TLS handshake failed: {exc}",
                                 hint=TLS_HINT, kind=exc.kind) from None
            raise ConnectionFailed(f"registry {self.registry}: {what}: connection failed: {exc}",
                                   hint="check that the registry is up; rerun to resume, finished blobs are kept",
                                   kind=exc.kind) from None

    def request(self, method: str, path: str, *, repository: str | None, what: str, push: bool = False,
                mount_from: str | None = None, headers: dict[str, str] | None = None,
                content: bytes | Iterable[bytes] | None = None) -> Response:
        """Send one request with auth; retry what can change (retry.py). Returns any answer but a 401
        or a retryable status; the caller checks the status and closes or reads the answer.

        A streamed (iterable) body cannot be replayed, so such a request is sent once; the copy
        engine retries the whole blob by reopening the source."""
        scopes: tuple[str, ...] = ()
        if repository:
            scopes = (f"repository:{repository}:{'pull,push' if push else 'pull'}",)
            if mount_from:
                scopes += (f"repository:{mount_from}:pull",)
        url = self._absolute(path)
        if content is None or isinstance(content, bytes):
            return self.retry.run(lambda _attempt: self._authorized(method, url, scopes, repository, what,
                                                                      headers, content, True))
        return self._authorized(method, url, scopes, repository, what, headers, content, False)

    def _authorized(self, method: str, url: str, scopes: tuple[str, ...], repository: str | None, what: str,
                    headers: dict[str, str] | None, content: bytes | Iterable[bytes] | None,
                    replayable: bool) -> Response:
        """One attempt, answering at most one auth challenge on the way (that is no retry)."""
        challenged = False
        while True:
            send_headers = dict(headers or {})
            authorization = self._authorization(repository, scopes, what)
            if authorization:
                send_headers["Authorization"] = authorization
            response = self._send(url, method, send_headers, content, what)
            status = response.status
            if status == 401:
                challenge = parse_challenge(response.headers.get("www-authenticate", ""))
                response.drain()
                response.close()
                if replayable and not challenged and challenge is not None:
                    self._learn_challenge(challenge, scopes)
                    # The registry names the scope it wants (e.g. registry:catalog:* for /v2/_catalog,
                    # which no repository implies): ask the token service for that too.
                    wanted = challenge.params.get("scope", "").split() if challenge.scheme == "bearer" else []
                    scopes = tuple(dict.fromkeys([*scopes, *wanted]))
                    challenged = True
                    continue
                raise self._unauthorized(challenge, replayable, repository, scopes, what)
            if status in RETRYABLE_STATUS:
                body = response.drain()
                response.close()
                log.debug("%s %s: HTTP %s", method, urlsplit(url).path, status)
                raise TransientStatusError(
                    f"registry {self.registry}: {what}: HTTP {status} {error_text(body)}".rstrip(),
                    hint="rerun later if the registry is overloaded", status=status, codes=error_codes(body),
                    retry_after=parse_retry_after(response.headers.get("retry-after")))
            return response

    def _learn_challenge(self, challenge: Challenge, scopes: tuple[str, ...]) -> None:
        with self._lock:
            self._challenge = Challenge(challenge.scheme, {k: v for k, v in challenge.params.items()
                                                           if k not in ("scope", "error")})
            self._tokens.pop(scopes, None)

    def _unauthorized(self, challenge: Challenge | None, replayable: bool, repository: str | None,
                      scopes: tuple[str, ...], what: str) -> RegistryError:
        if (challenge is not None and challenge.scheme == "bearer"
                and challenge.params.get("error") == "insufficient_scope"):
            return self._scope_denied(what, self.credentials(repository), scopes)
        if not replayable and self._challenge is not None and self._challenge.scheme == "bearer":
            # A streamed upload's token died on the way (expired early, or the issuer's clock is off).
            # Forget the tokens; the engine retries the blob with a new one.
            with self._lock:
                self._tokens.clear()
            return TransientError(f"registry {self.registry}: {what}: the registry refused the bearer "
                                  "token (HTTP 401)", hint="rerun; if it persists check the token service "
                                  "and the clocks of registry and token service")
        return self._auth_failed(what, self.credentials(repository))

    def status_error(self, response: Response, what: str, hint: str | None = None) -> StatusError:
        """The error for an unexpected answer, naming the registry, the call and the registry's reason."""
        body = response.drain()
        response.close()
        status = response.status
        codes = error_codes(body)
        if hint is None:
            hint = _STATUS_HINTS.get(status, "rerun later if the registry is overloaded" if status >= 500 else None)
        return StatusError(f"registry {self.registry}: {what}: HTTP {status} {error_text(body)}".rstrip(),
                           hint=hint, status=status, codes=codes)

    def _expect(self, response: Response, ok: tuple[int, ...], what: str, hint: str | None = None) -> Response:
        if response.status not in ok:
            raise self.status_error(response, what, hint)
        return response

    # -------------------------------------------------------------------------------- manifests

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest by tag or digest (Accept: OCI and Docker types), refusing bodies over the cap
        before reading them whole, and checking the bytes against a digest reference."""
        sep = "@" if reference.startswith("sha256:") else ":"
        what = f"get manifest {repository}{sep}{reference}"
        origin = f"{self.registry}/{repository}{sep}{reference}"
        response = self._expect(self.request("GET", f"/v2/{repository}/manifests/{reference}",
                                             repository=repository, what=what,
                                             headers={"Accept": MANIFEST_ACCEPT}), (200,), what)
        declared = response.headers.get("content-length", "")
        try:
            if declared.isascii() and declared.isdigit() and int(declared) > MAX_MANIFEST_BYTES:
                raise AnswerTooLarge(MAX_MANIFEST_BYTES)
            data = response.read(MAX_MANIFEST_BYTES)
        except AnswerTooLarge:
            response.close()
            size = f" is {declared} bytes," if declared.isdigit() else " is"
            raise RegistryError(f"{origin}: manifest{size} {_MANIFEST_CAP_TEXT}", hint=_MANIFEST_CAP_HINT) from None
        except TransportFailure as exc:
            raise ConnectionFailed(f"registry {self.registry}: {what}: {exc}", kind=exc.kind) from None
        manifest = parse_manifest(data, response.headers.get("content-type"), origin)
        if reference.startswith("sha256:") and manifest.digest != reference:
            raise RegistryError(f"{origin}: the registry served a manifest whose digest is {manifest.digest}",
                                hint="the source registry's storage is corrupt or a proxy altered the answer")
        return manifest

    def head_manifest(self, repository: str, reference: str) -> str | None:
        """The digest of a manifest by tag or digest, or None when it does not exist."""
        what = f"check manifest {repository}:{reference}"
        response = self.request("HEAD", f"/v2/{repository}/manifests/{reference}", repository=repository,
                                what=what, headers={"Accept": MANIFEST_ACCEPT})
        if response.status == 404:
            response.close()
            return None
        self._expect(response, (200,), what).drain()
        return response.headers.get("docker-content-digest") or self.get_manifest(repository, reference).digest

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or its digest; returns its digest (sha256 of the bytes sent)."""
        what = f"push manifest {repository}:{reference}"
        response = self._expect(self.request("PUT", f"/v2/{repository}/manifests/{reference}",
                                             repository=repository, push=True, what=what,
                                             headers={"Content-Type": media_type}, content=data), (200, 201), what)
        response.drain()
        served = response.headers.get("docker-content-digest")
        digest = sha256_digest(data)
        if served and served != digest:
            raise RegistryError(f"registry {self.registry}: {what}: stored digest {served}, expected {digest}")
        return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        what = f"delete manifest {repository}@{digest}"
        response = self.request("DELETE", f"/v2/{repository}/manifests/{digest}", repository=repository,
                                push=True, what=what)
        self._expect(response, (200, 202, 404), what).drain()

    def repository_tags(self, repository: str) -> set[str] | None:
        """The tags of `repository`, or None when the registry says the repository does not exist."""
        tags = self._tag_pages(repository)
        return None if tags is None else set(tags)

    def list_tags(self, repository: str) -> list[str]:
        """All tags, following `Link: <…>; rel="next"` pagination when the registry paginates."""
        return self._tag_pages(repository) or []

    def _tag_pages(self, repository: str) -> list[str] | None:
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list"
        what = f"list tags of {repository}"
        while path:
            response = self.request("GET", path, repository=repository, what=what)
            if response.status == 404:
                response.close()
                return None if not tags else tags
            self._expect(response, (200,), what)
            try:
                page = json.loads(response.read(MAX_MANIFEST_BYTES))
            except (ValueError, TransportFailure) as exc:
                raise RegistryError(f"registry {self.registry}: {what}: unreadable answer ({exc})") from None
            tags += (page.get("tags") if isinstance(page, dict) else None) or []
            match = _LINK_NEXT_RE.search(response.headers.get("link", ""))
            path = self._absolute(urljoin(self.base_url + "/", match.group(1))) if match else None
        return tags

    # -------------------------------------------------------------------------------- blobs

    def head_blob(self, repository: str, digest: str) -> int | None:
        """The size of a blob in `repository`, or None when it is not there."""
        what = f"check blob {digest} in {repository}"
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", repository=repository, what=what)
        if response.status == 404:
            response.close()
            return None
        self._expect(response, (200,), what).drain()
        length = response.headers.get("content-length", "0")
        return int(length) if length.isascii() and length.isdigit() else 0

    @contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[tuple[Iterator[bytes], int | None]]:
        """Stream a blob: yields (chunks, size). The bytes are verified by the caller (stream.py)."""
        what = f"get blob {digest} from {repository}"
        response = self._expect(self.request("GET", f"/v2/{repository}/blobs/{digest}", repository=repository,
                                             what=what), (200,), what)
        try:
            length = response.headers.get("content-length", "")
            yield response.iter_bytes(), int(length) if length.isascii() and length.isdigit() else None
        finally:
            response.close()

    def start_upload(self, repository: str, *, mount: str | None = None, mount_from: str | None = None) -> str | None:
        """POST an upload session; with `mount`+`mount_from`, try a cross-repository mount first.

        Returns the upload Location, or None when the blob was mounted (201)."""
        path = f"/v2/{repository}/blobs/uploads/"
        if mount and mount_from:
            path += f"?mount={mount}&from={mount_from}"
        what = f"start blob upload to {repository}"
        response = self.request("POST", path, repository=repository, push=True, mount_from=mount_from, what=what)
        if response.status == 201 and mount:
            response.drain()
            return None
        self._expect(response, (202,), what).drain()
        location = response.headers.get("location")
        if not location:
            raise RegistryError(f"registry {self.registry}: {what}: 202 without a Location header")
        return self._absolute(location)

    def finish_upload(self, location: str, repository: str, digest: str, chunks: Iterable[bytes] | bytes,
                      size: int | None) -> None:
        """PUT the whole body to an upload session (monolithic upload), streamed when `chunks` is an iterator."""
        # keep the session's _state query
        url = f"{location}{'&' if '?' in location else '?'}digest={quote(digest, safe='')}"
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        what = f"upload blob {digest} to {repository}"
        response = self.request("PUT", url, repository=repository, push=True, what=what, headers=headers,
                                content=chunks)
        if response.status not in (201, 204):
            error = self.status_error(response, what)
            if "DIGEST_INVALID" in error.codes:
                error.hint = "the bytes sent did not match the digest"
            raise error
        response.drain()

    def upload_chunked(self, repository: str, digest: str, chunks: Iterable[bytes]) -> None:
        """Chunked upload: one PATCH per chunk with Content-Range, then PUT ?digest= with no body."""
        location = self.start_upload(repository)
        assert location is not None
        offset = 0
        what = f"upload blob {digest} to {repository} (chunked)"
        for chunk in chunks:
            if not chunk:
                continue
            end = offset + len(chunk) - 1
            response = self.request("PATCH", location, repository=repository, push=True, what=what,
                                    headers={"Content-Type": "application/octet-stream",
                                             "Content-Range": f"{offset}-{end}"}, content=bytes(chunk))
            self._expect(response, (202,), what).drain()
            location = self._absolute(urljoin(location, response.headers.get("location") or location))
            offset = end + 1
        self.finish_upload(location, repository, digest, b"", 0)

    def cancel_upload(self, location: str, repository: str) -> None:
        try:
            self.request("DELETE", location, repository=repository, push=True, what="cancel upload").close()
        except RegistryError:
            pass

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; True when the registry linked the blob (201)."""
        location = self.start_upload(repository, mount=digest, mount_from=from_repository)
        if location is None:
            return True
        self.cancel_upload(location, repository)
        return False


TLS_HINT = ("if the registry uses plain HTTP or a self-signed certificate, turn TLS verification off for it "
            "(--src-tls-verify=false / --dest-tls-verify=false) or give its CA with --cert-dir")


def _has_port(registry: str) -> bool:
    return urlsplit(f"//{registry}").port is not None

