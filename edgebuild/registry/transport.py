"""Two ways to send a registry request behind one interface, and the one place that picks between them.

`FastTransport` (rawhttp.py, a lean HTTP/1.1 client) serves the hot path; `HttpxTransport` serves
what the fast one does not do: redirects, proxies, and bodies of unknown length. `Transports.send`
decides, per request, in this order:

1. switched off (`--no-fast-http`, or EDGEBUILD_FAST_HTTP=0): httpx;
2. a proxy applies to the URL (HTTP(S)_PROXY / ALL_PROXY, minus NO_PROXY, as httpx reads them): httpx;
3. a streamed body without a known length: httpx;
4. otherwise fast, and a redirect it answers (3xx) is sent again through httpx, which follows it
   (a streamed body cannot be sent again: the caller's blob retry reopens the source).

Auth challenges are no reason to switch: the client answers a 401 the same way on either transport.
Both transports fail with `TransportFailure`, both answer with a `Response`.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import urllib.request
from collections.abc import Iterable, Iterator

import httpx

from .rawhttp import ERROR_BODY_LIMIT, BodyTooLarge, FastHttpError, RawHttp, RawResponse

log = logging.getLogger(__name__)
FAST_HTTP_ENV = "EDGEBUILD_FAST_HTTP"
CHUNK_SIZE = 1024 * 1024


TLS_KINDS = frozenset({"plain-http", "tls-cert", "tls"})


class TransportFailure(Exception):
    """No answer: connection trouble, a timeout, or an answer that breaks HTTP; `kind` says which
    (see `failure_kind`)."""

    def __init__(self, message: str, *, kind: str = "other") -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def tls(self) -> bool:
        return self.kind in TLS_KINDS


class AnswerTooLarge(TransportFailure):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is over {limit} bytes")
        self.limit = limit


class Response:
    """Status, lower-cased headers, and the body read whole (`read`) or streamed (`iter_bytes`)."""

    __slots__ = ("status", "headers", "_raw", "_httpx", "content")

    def __init__(self, status: int, headers: dict[str, str], *, raw: RawResponse | None = None,
                 httpx_response: httpx.Response | None = None, content: bytes | None = None) -> None:
        self.status = status
        self.headers = headers
        self._raw = raw
        self._httpx = httpx_response
        self.content = content

    def read(self, limit: int | None = None, truncate: bool = False) -> bytes:
        """The body (once); over `limit` bytes AnswerTooLarge, or the first bytes with `truncate`."""
        if self.content is not None:
            return self.content
        try:
            if self._raw is not None:
                self.content = self._raw.read(limit, truncate)
            elif self._httpx is not None:
                self.content = _read_httpx(self._httpx, limit, truncate)
            else:
                self.content = b""
        except BodyTooLarge as exc:
            raise AnswerTooLarge(exc.limit) from None
        except (FastHttpError, httpx.HTTPError) as exc:
            raise TransportFailure(f"reading the answer failed: {type(exc).__name__}: {exc}") from None
        return self.content

    def drain(self) -> bytes:
        """Read a small body to its end (keeping the connection), its first 64 KiB returned."""
        try:
            return self.read(ERROR_BODY_LIMIT, truncate=True)
        except TransportFailure:
            return b""

    def iter_bytes(self) -> Iterator[bytes]:
        """The body in pieces (views into a reused buffer on the fast transport: copy to keep one)."""
        if self._raw is not None:
            yield from self._raw.iter_chunks()  # type: ignore[misc]  # memoryviews are bytes-like
        elif self._httpx is not None:
            yield from self._httpx.iter_raw(CHUNK_SIZE)
        elif self.content:
            yield self.content

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
        if self._httpx is not None:
            self._httpx.close()

    def json(self) -> object:
        import json
        return json.loads(self.read())


def _read_httpx(response: httpx.Response, limit: int | None, truncate: bool) -> bytes:
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if limit is not None and len(data) > limit:
            response.close()
            if truncate:
                return bytes(data[:limit])
            raise BodyTooLarge(limit)
    return bytes(data)


def fast_http_enabled(env: dict[str, str] | os._Environ[str] | None = None) -> bool:
    value = (env if env is not None else os.environ).get(FAST_HTTP_ENV, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def _proxied(scheme: str, host: str, proxies: dict[str, str]) -> bool:
    if scheme not in proxies and "all" not in proxies:
        return False
    return not urllib.request.proxy_bypass_environment(host, proxies)  # type: ignore[attr-defined]


def proxy_applies(url: str, proxies: dict[str, str] | None = None) -> bool:
    """Whether the environment sends `url` through a proxy (HTTP(S)_PROXY / ALL_PROXY minus NO_PROXY)."""
    scheme, _, rest = url.partition("://")
    return _proxied(scheme, rest.split("/", 1)[0], urllib.request.getproxies_environment()
                    if proxies is None else proxies)


def failure_kind(exc: BaseException) -> str:
    """Why a request got no answer, from the exception and its causes: "dns" (the name does not
    resolve), "refused", "timeout", "plain-http" (TLS spoken to a plain-HTTP server), "tls-cert" (an
    untrusted or mismatched certificate), "tls", "reset" or "other"."""
    seen: BaseException | None = exc
    chain: list[BaseException] = []
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for item in chain:
        text = str(item)
        if isinstance(item, socket.gaierror) or "Name or service not known" in text \
                or "Temporary failure in name resolution" in text or "No address associated" in text:
            return "dns"
        if isinstance(item, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
            return "tls-cert"
        if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text or "http request" in text.lower():
            return "plain-http"
        if isinstance(item, ssl.SSLError) or "[SSL" in text:
            return "tls"
        if isinstance(item, ConnectionRefusedError) or "Connection refused" in text:
            return "refused"
        if isinstance(item, (TimeoutError, socket.timeout, httpx.TimeoutException)) or "timed out" in text:
            return "timeout"
        if isinstance(item, (ConnectionResetError, BrokenPipeError)):
            return "reset"
    return "other"


class Transports:
    """The fast transport (when on) and httpx for one registry client; `send` picks per request."""

    def __init__(self, ssl_context: ssl.SSLContext | None, verify: ssl.SSLContext | bool, timeout: float,
                 max_connections: int, fast: bool = True) -> None:
        self.fast = RawHttp(ssl_context, timeout) if fast and fast_http_enabled() else None
        # read once: the environment does not change during a run, and reading it costs more than a request
        self._proxies = urllib.request.getproxies_environment()
        self._proxied: dict[tuple[str, str], bool] = {}
        self._httpx_options = {"verify": verify, "timeout": httpx.Timeout(timeout, connect=min(15.0, timeout)),
                               "limits": httpx.Limits(max_connections=max_connections,
                                                      max_keepalive_connections=max_connections),
                               "follow_redirects": True}
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """The httpx client, made on first use (it costs tens of milliseconds, and a run whose requests
        all take the fast path never needs it)."""
        with self._http_lock:
            if self._http is None:
                self._http = httpx.Client(**self._httpx_options)  # type: ignore[arg-type]  # checked above
            return self._http

    def close(self) -> None:
        with self._http_lock:
            if self._http is not None:
                self._http.close()
        if self.fast is not None:
            self.fast.close()

    def send(self, method: str, url: str, headers: dict[str, str],
             body: bytes | Iterable[bytes] | None = None) -> Response:
        """Send on the transport that fits (see the module docstring); the answer's head is read."""
        streamed = body is not None and not isinstance(body, bytes)
        sized = not streamed or any(k.lower() == "content-length" for k in headers)
        if self.fast is not None and sized and not self._via_proxy(url):
            try:
                raw = self.fast.request(method, url, headers, body)
            except FastHttpError as exc:
                raise TransportFailure(f"{type(exc).__name__}: {exc}", kind=failure_kind(exc)) from None
            if log.isEnabledFor(logging.DEBUG):  # as httpx logs its requests (-vv); headers are never logged
                log.debug('HTTP Request: %s %s "HTTP/1.1 %s"', method, url.split("?", 1)[0], raw.status)
            if not 300 <= raw.status < 400 or streamed:
                return Response(raw.status, raw.headers, raw=raw)
            raw.close()  # a redirect: httpx follows it
        return self._send_httpx(method, url, headers, body)

    def _via_proxy(self, url: str) -> bool:
        scheme, _, rest = url.partition("://")
        key = (scheme, rest.split("/", 1)[0])
        known = self._proxied.get(key)
        if known is None:
            known = self._proxied[key] = _proxied(key[0], key[1], self._proxies)
        return known

    def _send_httpx(self, method: str, url: str, headers: dict[str, str],
                    body: bytes | Iterable[bytes] | None) -> Response:
        try:
            if body is not None and not isinstance(body, bytes):
                body = (bytes(chunk) if not isinstance(chunk, bytes) else chunk for chunk in body)
            request = self.http.build_request(method, url, headers=headers, content=body)
            response = self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise TransportFailure(f"{type(exc).__name__}: {exc}", kind=failure_kind(exc)) from None
        answer = {k.lower(): v for k, v in response.headers.items()}
        return Response(response.status_code, answer, httpx_response=response)
