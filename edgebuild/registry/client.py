"""A client for the OCI distribution API (registry v2) on httpx, with a lean byte path.

One `RegistryClient` per registry host, shared by all copy threads (httpx.Client is thread-safe
and pools keep-alive connections). Blob bytes and the small hot requests go through rawhttp.py
(http.client) and fall back to httpx for auth challenges, redirects and retries. It speaks the API as distribution 2.8 implements it: see
reference/registry-tooling.md for what that server does and does not do (no single-request
upload, `n` ignored on tags/list, 404 for OCI manifests without an OCI Accept header).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urljoin

import httpx

from ..errors import RegistryError
from .auth import Challenge, Credentials, auth_file_candidates, find_credentials, parse_challenge
from .manifest import MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, Manifest, parse_manifest, sha256_digest
from .rawhttp import HttpStatus, NotHandled, RawHttp
from .retry import RETRYABLE_STATUS, RetryPolicy, parse_retry_after

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
_LINK_NEXT_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_TLS_HINT = ("if the registry uses plain HTTP or a self-signed certificate, turn TLS verification off for it "
             "(--src-tls-verify=false / --dest-tls-verify=false) or give its CA with --cert-dir")


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


def registry_error_text(response: httpx.Response) -> str:
    """`CODE: message` from a registry error body, or the start of the body."""
    try:
        body = response.json()
        errors = body.get("errors") or []
        if errors:
            return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors[:3])
    except Exception:  # noqa: BLE001 - any undecodable body is reported as text
        pass
    text = response.text.strip().replace("\n", " ") if response.content else ""
    return text[:200] or response.reason_phrase


def _error_text(body: bytes, fallback: str) -> str:
    try:
        errors = json.loads(body).get("errors") or []
        if errors:
            return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors[:3])
    except Exception:  # noqa: BLE001 - any undecodable body is reported as text
        pass
    return body[:200].decode("utf-8", "replace").strip() or fallback


class RegistryClient:
    """Distribution API calls with auth, TLS options and retries for one registry host."""

    def __init__(self, registry: str, *, tls_verify: bool = True, cert_dir: str | os.PathLike[str] | None = None,
                 authfile: str | os.PathLike[str] | None = None, credentials: Credentials | None = None,
                 retry: RetryPolicy | None = None, max_connections: int = 32, timeout: float = 120.0,
                 fast_blobs: bool = True) -> None:
        self.registry = registry
        self.tls_verify = tls_verify
        self.retry = retry or RetryPolicy()
        self._authfile = authfile
        self._fixed_credentials = credentials
        self._credentials: dict[str, Credentials | None] = {}
        verify: ssl.SSLContext | bool = tls_context(registry, cert_dir) if tls_verify else False
        raw_ssl = verify if isinstance(verify, ssl.SSLContext) else ssl._create_unverified_context()
        self._raw: RawHttp | None = RawHttp(raw_ssl, timeout) if fast_blobs else None
        self._http = httpx.Client(verify=verify, timeout=httpx.Timeout(timeout, connect=15.0),
                                  limits=httpx.Limits(max_connections=max_connections,
                                                      max_keepalive_connections=max_connections),
                                  follow_redirects=True)
        self._lock = threading.Lock()
        self._base: str | None = None
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], tuple[str, float]] = {}
        self._token_locks: dict[tuple[str, ...], threading.Lock] = {}  # one token request per scope at a time

    # -------------------------------------------------------------------------------- plumbing

    def close(self) -> None:
        self._http.close()
        if self._raw is not None:
            self._raw.close()

    def __enter__(self) -> "RegistryClient":
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
            first_error: Exception | None = None
            for scheme in schemes:
                base = f"{scheme}://{self.registry}"
                for attempt in range(self.retry.attempts):
                    try:
                        response = self._http.get(f"{base}/v2/")
                    except httpx.TransportError as exc:
                        if isinstance(exc, httpx.ConnectError) and ("SSL" in str(exc) or "ssl" in str(exc)):
                            first_error = first_error or exc
                            break
                        first_error = first_error or exc
                        if attempt + 1 < self.retry.attempts:
                            self.retry.sleep(attempt)
                            continue
                        break
                    if response.status_code in RETRYABLE_STATUS and attempt + 1 < self.retry.attempts:
                        self.retry.sleep(attempt, parse_retry_after(response.headers.get("Retry-After")))
                        continue
                    if response.status_code == 401:
                        self._challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
                    elif response.status_code != 200:
                        raise RegistryError(f"registry {self.registry}: GET /v2/ answered HTTP "
                                            f"{response.status_code}: {registry_error_text(response)}",
                                            hint="check that the address is an OCI registry")
                    self._base = base
                    return
            raise RegistryError(f"cannot reach registry {self.registry}: {first_error}",
                                hint=_TLS_HINT if "SSL" in str(first_error) else
                                "check that the registry is running and the host and port are right")

    def _absolute(self, path_or_url: str) -> str:
        """An absolute URL as a plain string: httpx.URL parsing of long upload `_state` queries
        costs a measurable share of CPU when hundreds of small images are copied."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return urljoin(self.base_url + "/", path_or_url)

    def _url(self, path_or_url: str) -> httpx.URL:
        if path_or_url.startswith(("http://", "https://")):
            return httpx.URL(path_or_url)
        return httpx.URL(self.base_url).join(path_or_url)

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
        if cached and cached[1] > time.monotonic():
            return cached[0]
        with self._lock:
            lock = self._token_locks.setdefault(scopes, threading.Lock())
        with lock:
            cached = self._tokens.get(scopes)
            if cached and cached[1] > time.monotonic():
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
        started = time.monotonic()
        if creds is not None and creds.is_identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "client_id": "edgebuild"}
            if service:
                form["service"] = service
            if scopes:
                form["scope"] = " ".join(scopes)  # one space-separated list, as the OAuth2 spec has it
            response = self._token_call(realm, lambda: self._http.post(realm, data=form))
        else:
            params: list[tuple[str, str]] = [("service", service)] if service else []
            params += [("scope", s) for s in scopes]
            auth = (creds.username, creds.password) if creds else None
            response = self._token_call(realm, lambda: self._http.get(realm, params=params, auth=auth))
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
                                f"{status}: {registry_error_text(response)}")
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
        """One token-service call, retried on connection trouble and retryable statuses."""
        for attempt in range(self.retry.attempts):
            try:
                response = call()
            except httpx.TransportError as exc:
                if attempt + 1 < self.retry.attempts:
                    self.retry.sleep(attempt)
                    continue
                raise RegistryError(f"registry {self.registry}: token service {realm} unreachable: {exc}") from None
            if response.status_code in RETRYABLE_STATUS and attempt + 1 < self.retry.attempts:
                self.retry.sleep(attempt, parse_retry_after(response.headers.get("Retry-After")))
                continue
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def request(self, method: str, path: str, *, repository: str | None, what: str, push: bool = False,
                mount_from: str | None = None, headers: dict[str, str] | None = None,
                content: bytes | Iterable[bytes] | None = None, stream: bool = False) -> httpx.Response:
        """Send one request with auth, retrying what can change. The caller checks the status.

        A streamed (iterable) body cannot be replayed, so such requests are sent once; the copy
        engine retries them by reopening the source.
        """
        scopes: tuple[str, ...] = ()
        if repository:
            scopes = (f"repository:{repository}:{'pull,push' if push else 'pull'}",)
            if mount_from:
                scopes += (f"repository:{mount_from}:pull",)
        replayable = content is None or isinstance(content, bytes)
        url = self._url(path)
        attempt = 0
        auth_retried = False
        while True:
            send_headers = dict(headers or {})
            authorization = self._authorization(repository, scopes, what)
            if authorization:
                send_headers["Authorization"] = authorization
            try:
                request = self._http.build_request(method, url, headers=send_headers, content=content)
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if replayable and attempt + 1 < self.retry.attempts:
                    log.debug("%s %s: %s; retrying", method, url.path, exc)
                    self.retry.sleep(attempt)
                    attempt += 1
                    continue
                error = RegistryError(f"registry {self.registry}: {what}: connection failed after "
                                      f"{attempt + 1} attempt(s): {type(exc).__name__}: {exc}",
                                      hint="check that the registry is up; rerun to resume, finished blobs are kept")
                error.transient = True  # type: ignore[attr-defined]
                raise error from None
            if response.status_code == 401 and replayable and not auth_retried:
                challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
                response.close()
                if challenge is None:
                    raise self._auth_failed(what, self.credentials(repository))
                with self._lock:
                    self._challenge = Challenge(challenge.scheme,
                                                {k: v for k, v in challenge.params.items() if k not in
                                                 ("scope", "error")})
                    self._tokens.pop(scopes, None)
                # The registry names the scope it wants (e.g. registry:catalog:* for /v2/_catalog, which
                # no repository implies): ask the token service for that too.
                wanted = challenge.params.get("scope", "").split() if challenge.scheme == "bearer" else []
                scopes = tuple(dict.fromkeys([*scopes, *wanted]))
                auth_retried = True
                continue
            if response.status_code == 401:
                challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
                response.close()
                if (challenge is not None and challenge.scheme == "bearer"
                        and challenge.params.get("error") == "insufficient_scope"):
                    raise self._scope_denied(what, self.credentials(repository), scopes)
                raise self._auth_failed(what, self.credentials(repository))
            if response.status_code in RETRYABLE_STATUS and replayable and attempt + 1 < self.retry.attempts:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
                log.debug("%s %s: HTTP %s; retrying", method, url.path, response.status_code)
                self.retry.sleep(attempt, retry_after)
                attempt += 1
                continue
            return response

    def fail(self, response: httpx.Response, what: str, hint: str | None = None) -> RegistryError:
        """A RegistryError for an unexpected answer, naming the registry, the call and the registry's reason."""
        if not response.is_closed:
            try:
                response.read()
            except httpx.HTTPError:
                pass
        status = response.status_code
        if hint is None:
            hint = {403: "the account lacks permission for this repository; ask the registry admin for push/pull rights",
                    404: "check the repository and reference exist in the registry"}.get(
                status, "rerun later if the registry is overloaded" if status >= 500 else None)
        error = RegistryError(f"registry {self.registry}: {what}: HTTP {status} {registry_error_text(response)}",
                              hint=hint)
        error.transient = status in RETRYABLE_STATUS  # type: ignore[attr-defined]
        return error

    def _auth_headers(self, repository: str, push: bool, what: str) -> dict[str, str]:
        self.base_url  # noqa: B018 - make sure the scheme and the challenge are known
        scopes = (f"repository:{repository}:{'pull,push' if push else 'pull'}",)
        authorization = self._authorization(repository, scopes, what)
        return {"Authorization": authorization} if authorization else {}

    def _fast(self, method: str, path: str, repository: str, push: bool, what: str,
              headers: dict[str, str] | None = None, body: bytes | None = None,
              mount_from: str | None = None, max_body: int | None = None) -> tuple[int, bytes, dict[str, str]] | None:
        """A small request on the http.client path; None when httpx must take it (challenge, redirect,
        retryable status or connection trouble: the httpx path owns auth and retries)."""
        if self._raw is None:
            return None
        scopes: tuple[str, ...] = (f"repository:{repository}:{'pull,push' if push else 'pull'}",)
        if mount_from:
            scopes += (f"repository:{mount_from}:pull",)
        self.base_url  # noqa: B018
        authorization = self._authorization(repository, scopes, what)
        send = dict(headers or {})
        if authorization:
            send["Authorization"] = authorization
        try:
            status, data, answer = self._raw.simple(method, self._absolute(path), send, body, max_body)
        except (OSError, http.client.HTTPException):
            return None
        if status == 401 or 300 <= status < 400 or status in RETRYABLE_STATUS:
            return None
        return status, data, answer

    def _status_error(self, status: int, body: bytes, what: str, hint: str | None = None) -> RegistryError:
        if status == 401:
            if self._challenge is not None and self._challenge.scheme == "bearer":
                # Only a streamed upload gets here: its token died on the way (expired early, or the
                # issuer's clock is off). Forget the tokens; the engine retries the blob with a new one.
                self._tokens.clear()
                error = RegistryError(f"registry {self.registry}: {what}: the registry refused the bearer "
                                      "token (HTTP 401)", hint="rerun; if it persists check the token service "
                                      "and the clocks of registry and token service")
                error.transient = True  # type: ignore[attr-defined]
                return error
            return self._auth_failed(what, self.credentials(None))
        if hint is None:
            hint = {403: "the account lacks permission for this repository; ask the registry admin for push/pull rights",
                    404: "check the repository and reference exist in the registry"}.get(
                status, "rerun later if the registry is overloaded" if status >= 500 else None)
        error = RegistryError(f"registry {self.registry}: {what}: HTTP {status} {_error_text(body, '')}", hint=hint)
        error.transient = status in RETRYABLE_STATUS  # type: ignore[attr-defined]
        return error

    # -------------------------------------------------------------------------------- manifests

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """GET a manifest by tag or digest (Accept: OCI and Docker types), refusing bodies over 4 MiB
        before reading them whole, and checking the bytes against a digest reference."""
        what = f"get manifest {repository}:{reference}" if ":" not in reference else \
            f"get manifest {repository}@{reference}"
        origin = f"{self.registry}/{repository}{'@' if reference.startswith('sha256:') else ':'}{reference}"
        fast = self._fast("GET", f"/v2/{repository}/manifests/{reference}", repository, False, what,
                          headers={"Accept": MANIFEST_ACCEPT}, max_body=MAX_MANIFEST_BYTES)
        if fast is not None:
            if fast[0] != 200:
                raise self._status_error(fast[0], fast[1], what)
            if len(fast[1]) > MAX_MANIFEST_BYTES:
                raise RegistryError(f"{origin}: manifest is over the 4 MiB limit registries accept",
                                    hint="such a manifest cannot be pushed to a distribution registry; exclude the image")
            return self._checked_manifest(fast[1], fast[2].get("content-type"), origin, reference)
        response = self.request("GET", f"/v2/{repository}/manifests/{reference}", repository=repository,
                                what=what, headers={"Accept": MANIFEST_ACCEPT}, stream=True)
        try:
            if response.status_code != 200:
                raise self.fail(response, what)
            declared = response.headers.get("Content-Length")
            origin = f"{self.registry}/{repository}{'@' if reference.startswith('sha256:') else ':'}{reference}"
            if declared and declared.isdigit() and int(declared) > MAX_MANIFEST_BYTES:
                raise RegistryError(f"{origin}: manifest is {declared} bytes, over the 4 MiB limit registries accept",
                                    hint="such a manifest cannot be pushed to a distribution registry; exclude the image")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_MANIFEST_BYTES:
                    raise RegistryError(f"{origin}: manifest is over the 4 MiB limit registries accept",
                                        hint="such a manifest cannot be pushed to a distribution registry; "
                                             "exclude the image")
        finally:
            response.close()
        return self._checked_manifest(bytes(data), response.headers.get("Content-Type"), origin, reference)

    @staticmethod
    def _checked_manifest(data: bytes, content_type: str | None, origin: str, reference: str) -> Manifest:
        manifest = parse_manifest(data, content_type, origin)
        if reference.startswith("sha256:") and manifest.digest != reference:
            raise RegistryError(f"{origin}: the registry served a manifest whose digest is {manifest.digest}",
                                hint="the source registry's storage is corrupt or a proxy altered the answer")
        return manifest

    def head_manifest(self, repository: str, reference: str) -> str | None:
        """The digest of a manifest by tag or digest, or None when it does not exist."""
        what = f"check manifest {repository}:{reference}"
        fast = self._fast("HEAD", f"/v2/{repository}/manifests/{reference}", repository, False, what,
                          headers={"Accept": MANIFEST_ACCEPT})
        if fast is not None:
            if fast[0] == 404:
                return None
            if fast[0] != 200:
                raise self._status_error(fast[0], fast[1], what)
            if fast[2].get("docker-content-digest"):
                return fast[2]["docker-content-digest"]
            return self.get_manifest(repository, reference).digest
        response = self.request("HEAD", f"/v2/{repository}/manifests/{reference}", repository=repository,
                                what=what, headers={"Accept": MANIFEST_ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(response, what)
        digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        return self.get_manifest(repository, reference).digest

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or its digest; returns its digest (sha256 of the bytes sent)."""
        what = f"push manifest {repository}:{reference}"
        fast = self._fast("PUT", f"/v2/{repository}/manifests/{reference}", repository, True, what,
                          headers={"Content-Type": media_type}, body=data)
        if fast is not None:
            if fast[0] not in (200, 201):
                raise self._status_error(fast[0], fast[1], what)
            served = fast[2].get("docker-content-digest")
        else:
            response = self.request("PUT", f"/v2/{repository}/manifests/{reference}", repository=repository,
                                    push=True, what=what, headers={"Content-Type": media_type}, content=data)
            if response.status_code not in (200, 201):
                raise self.fail(response, what)
            served = response.headers.get("Docker-Content-Digest")
        digest = sha256_digest(data)
        if served and served != digest:
            raise RegistryError(f"registry {self.registry}: {what}: stored digest {served}, expected {digest}")
        return digest

    def delete_manifest(self, repository: str, digest: str) -> None:
        what = f"delete manifest {repository}@{digest}"
        response = self.request("DELETE", f"/v2/{repository}/manifests/{digest}", repository=repository,
                                push=True, what=what)
        if response.status_code not in (200, 202, 404):
            raise self.fail(response, what)

    def repository_tags(self, repository: str) -> set[str] | None:
        """The tags of `repository`, or None when the registry says the repository does not exist."""
        what = f"list tags of {repository}"
        fast = self._fast("GET", f"/v2/{repository}/tags/list", repository, False, what)
        if fast is not None and fast[0] == 404:
            return None
        if fast is not None and fast[0] == 200 and "link" not in fast[2]:
            return set(json.loads(fast[1]).get("tags") or [])
        response = self.request("GET", f"/v2/{repository}/tags/list", repository=repository, what=what)
        if response.status_code == 404:
            return None
        return set(self.list_tags(repository))

    def list_tags(self, repository: str) -> list[str]:
        """All tags, following `Link: <…>; rel="next"` pagination when the registry paginates."""
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list"
        what = f"list tags of {repository}"
        while path:
            response = self.request("GET", path, repository=repository, what=what)
            if response.status_code == 404:
                return tags
            if response.status_code != 200:
                raise self.fail(response, what)
            tags += response.json().get("tags") or []
            match = _LINK_NEXT_RE.search(response.headers.get("Link", ""))
            path = str(self._url(match.group(1))) if match else None
        return tags

    # -------------------------------------------------------------------------------- blobs

    def head_blob(self, repository: str, digest: str) -> int | None:
        """The size of a blob in `repository`, or None when it is not there."""
        what = f"check blob {digest} in {repository}"
        fast = self._fast("HEAD", f"/v2/{repository}/blobs/{digest}", repository, False, what)
        if fast is not None:
            if fast[0] == 404:
                return None
            if fast[0] != 200:
                raise self._status_error(fast[0], fast[1], what)
            return int(fast[2].get("content-length", "0"))
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", repository=repository, what=what)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(response, what)
        return int(response.headers.get("Content-Length", "0"))

    @contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[tuple[Iterator[bytes], int | None]]:
        """Stream a blob: yields (chunks, size). The bytes are not verified here; see digest.py."""
        what = f"get blob {digest} from {repository}"
        path = f"/v2/{repository}/blobs/{digest}"
        if self._raw is not None:
            try:
                chunks, length, close = self._raw.get_stream(self._absolute(path),
                                                              self._auth_headers(repository, False, what))
            except HttpStatus as exc:
                if exc.status not in RETRYABLE_STATUS:
                    raise self._status_error(exc.status, exc.body, what) from None
                retry_after = next((v for k, v in exc.headers.items() if k.lower() == "retry-after"), None)
                self.retry.sleep(0, parse_retry_after(retry_after))  # then the httpx path retries further
            except (NotHandled, OSError, http.client.HTTPException):
                pass  # the httpx path below handles challenges, redirects and retries
            else:
                try:
                    yield chunks, length
                finally:
                    close()
                return
        response = self.request("GET", path, repository=repository, what=what, stream=True)
        try:
            if response.status_code != 200:
                raise self.fail(response, what)
            length = response.headers.get("Content-Length")
            yield response.iter_raw(CHUNK_SIZE), int(length) if length and length.isdigit() else None
        finally:
            response.close()

    def start_upload(self, repository: str, *, mount: str | None = None, mount_from: str | None = None) -> str | None:
        """POST an upload session; with `mount`+`mount_from`, try a cross-repository mount first.

        Returns the upload Location, or None when the blob was mounted (201)."""
        path = f"/v2/{repository}/blobs/uploads/"
        if mount and mount_from:
            path += f"?mount={mount}&from={mount_from}"
        what = f"start blob upload to {repository}"
        fast = self._fast("POST", path, repository, True, what, mount_from=mount_from)
        if fast is not None:
            status, location = fast[0], fast[2].get("location")
            if status == 201 and mount:
                return None
            if status != 202:
                raise self._status_error(status, fast[1], what)
        else:
            response = self.request("POST", path, repository=repository, push=True, mount_from=mount_from, what=what)
            if response.status_code == 201 and mount:
                return None
            if response.status_code != 202:
                raise self.fail(response, what)
            location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"registry {self.registry}: {what}: 202 without a Location header")
        return self._absolute(location)

    def finish_upload(self, location: str, repository: str, digest: str, chunks: Iterable[bytes] | bytes,
                      size: int | None) -> None:
        """PUT the whole body to an upload session (monolithic upload), streamed when `chunks` is an iterator."""
        # keep the session's _state query (httpx's params= would replace it)
        url = f"{location}{'&' if '?' in location else '?'}digest={quote(digest, safe='')}"
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        what = f"upload blob {digest} to {repository}"
        if self._raw is not None and size is not None:
            headers.update(self._auth_headers(repository, True, what))
            try:
                status, body, _ = self._raw.put_stream(str(url), headers, chunks)
            except (OSError, http.client.HTTPException) as exc:
                error = RegistryError(f"registry {self.registry}: {what}: connection failed: {type(exc).__name__}: "
                                      f"{exc}", hint="check that the registry is up; rerun to resume")
                error.transient = True  # type: ignore[attr-defined]
                raise error from None
            if status not in (201, 204):
                text = _error_text(body, "")
                raise self._status_error(status, body, what, hint="the bytes sent did not match the digest"
                                         if "DIGEST_INVALID" in text else None)
            return
        response = self.request("PUT", str(url), repository=repository, push=True, what=what, headers=headers,
                                content=chunks)
        if response.status_code not in (201, 204):
            raise self.fail(response, what, hint="the bytes sent did not match the digest"
                            if "DIGEST_INVALID" in registry_error_text(response) else None)

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
            if response.status_code != 202:
                raise self.fail(response, what)
            location = str(self._url(response.headers.get("Location") or location))
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
