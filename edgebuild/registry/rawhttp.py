"""A lean, strict HTTP/1.1 client: the fast transport of the registry client (transport.py).

Why it exists: moving 1.1 GB through httpx costs the copying process about 3 CPU-seconds on top of
hashing, on a 2-core machine where both registries need the same cores; `readinto` into a reused
buffer and `sendall` of memoryviews do the same work for about a third of that, and parsing a
small answer here costs a fraction of http.client's e-mail parser. One request at a time per
keep-alive connection, connections kept per thread.

It is as strict as h11 where a lenient parser would be unsafe: header names must be tokens and
values free of CR, LF and NUL (a value with CR/LF would otherwise go out as two headers); the
status line is `HTTP/1.x NNN`; `Name : value` (space before the colon) and folded lines are
refused; Content-Length is ASCII digits, repeated only with the same value, never beside
Transfer-Encoding; Transfer-Encoding is parsed as a token list and only `chunked` is accepted;
chunk sizes are 1-16 hex digits (no `0x`, no sign); the CRLF after each chunk is checked; bodies
read whole are bounded. Every failure, connection or framing, is a `FastHttpError`.

It does not do redirects, proxies or auth: transport.py decides when httpx serves a request.
"""

from __future__ import annotations

import io
import re
import socket
import ssl
import threading
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import cast
from urllib.parse import urlsplit

BUFFER_SIZE = 1024 * 1024
CONNECT_TIMEOUT = 15.0
ERROR_BODY_LIMIT = 64 * 1024  # what is kept of a body that is only read to report an error
_MAX_LINE = 64 * 1024
_MAX_HEADERS = 200

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_STR = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_BAD_TARGET = re.compile(r"[ \r\n\t\x00]")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?\r\n")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r\n")
_DIGITS = re.compile(r"[0-9]{1,19}")


class FastHttpError(Exception):
    """The request failed on the fast transport: connection trouble or an answer that breaks HTTP/1.1."""


class ProtocolError(FastHttpError):
    """A request that cannot be sent as valid HTTP/1.1, or an answer that is not."""


class BodyTooLarge(ProtocolError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is over {limit} bytes")
        self.limit = limit


def check_header(name: str, value: str) -> None:
    """Refuse what would split or corrupt the request head (as h11 does)."""
    if not _TOKEN_STR.fullmatch(name):
        raise ProtocolError(f"invalid header name {name!r}")
    if _BAD_VALUE.search(value):
        raise ProtocolError(f"invalid value for header {name}: CR, LF and NUL are not allowed")


def content_length(headers: dict[str, str]) -> int | None:
    """The Content-Length of an answer (None when absent); refuses anything but ASCII digits."""
    text = headers.get("content-length")
    if text is None:
        return None
    values = {v.strip() for v in text.split(",")}
    value = values.pop() if len(values) == 1 else ""
    if not _DIGITS.fullmatch(value):
        raise ProtocolError(f"bad Content-Length {text[:40]!r}")
    return int(value)


def is_chunked(headers: dict[str, str]) -> bool:
    """Transfer-Encoding as a token list: absent, or exactly `chunked`."""
    text = headers.get("transfer-encoding")
    if text is None:
        return False
    codings = [t.strip().lower() for t in text.split(",")]
    if codings != ["chunked"]:
        raise ProtocolError(f"unsupported Transfer-Encoding {text[:40]!r}")
    if "content-length" in headers:
        raise ProtocolError("both Transfer-Encoding and Content-Length in one answer")
    return True


class _Connection:
    """One keep-alive connection; `reusable` turns False once an answer was not read to its end."""

    def __init__(self, scheme: str, netloc: str, context: ssl.SSLContext | None, timeout: float) -> None:
        parts = urlsplit(f"//{netloc}")
        host = parts.hostname or netloc
        port = parts.port or (443 if scheme == "https" else 80)
        sock = socket.create_connection((host, port), timeout=min(timeout, CONNECT_TIMEOUT))
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            sock = (context or ssl.create_default_context()).wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.reader = cast(io.BufferedReader, sock.makefile("rb", buffering=64 * 1024))
        self.host = netloc
        self.reusable = True
        self.used = False
        self._scratch = memoryview(bytearray(64 * 1024))  # reused by every small answer on this connection

    def close(self) -> None:
        self.reusable = False
        try:
            self.reader.close()
        finally:
            self.sock.close()

    def send_head(self, method: str, target: str, headers: dict[str, str]) -> None:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}"]
        for name, value in headers.items():
            check_header(name, value)
            lines.append(f"{name}: {value}")
        self.used = True
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def _line(self) -> bytes:
        line = self.reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise ProtocolError("oversized line in the answer")
        return line

    def _fields(self) -> dict[str, str]:
        """Header (or trailer) fields up to the empty line: names lower-cased, repeats joined with ", "."""
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            line = self._line()
            if line == b"\r\n":
                return headers
            if not line.endswith(b"\r\n"):
                raise ProtocolError("answer ended inside its headers" if not line or line[-1:] != b"\n"
                                    else f"header line not ended by CRLF: {line[:80]!r}")
            name, sep, value = line[:-2].partition(b":")
            if not sep or not _TOKEN.fullmatch(name) or b"\r" in value or b"\x00" in value:
                raise ProtocolError(f"malformed header line {line[:80]!r}")
            text = value.strip(b" \t").decode("latin-1")
            key = name.decode("ascii").lower()
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        raise ProtocolError("too many header lines in the answer")

    def read_head(self) -> tuple[int, dict[str, str]]:
        """Status and headers, skipping 1xx answers."""
        while True:
            line = self._line()
            if not line:
                raise FastHttpError("connection closed before an answer")
            match = _STATUS_LINE.fullmatch(line)
            if not match:
                raise ProtocolError(f"bad status line {line[:80]!r}")
            status = int(match.group(1))
            headers = self._fields()
            if status >= 200:
                if "close" in (t.strip().lower() for t in headers.get("connection", "").split(",")):
                    self.reusable = False
                return status, headers

    def body_chunks(self, method: str, status: int, headers: dict[str, str],
                    buffer: memoryview) -> Generator[memoryview, None, None]:
        """The body as views into `buffer` (each valid until the next one is asked for)."""
        if method == "HEAD" or status in (204, 304):
            return
        if is_chunked(headers):
            yield from self._chunked(buffer)
            return
        length = content_length(headers)
        if length is None:  # delimited by the end of the connection
            self.reusable = False
            while n := self.reader.readinto(buffer):
                yield buffer[:n]
            return
        yield from self._exactly(length, buffer)

    def _exactly(self, left: int, buffer: memoryview) -> Iterator[memoryview]:
        """`left` bytes of the body, as views into `buffer`; a connection that ends early is an error."""
        while left:
            n = self.reader.readinto(buffer[:min(left, len(buffer))])
            if not n:
                self.reusable = False
                raise FastHttpError(f"connection closed with {left} bytes of the body missing")
            left -= n
            yield buffer[:n]

    def _chunked(self, buffer: memoryview) -> Iterator[memoryview]:
        while True:
            line = self._line()
            match = _CHUNK_LINE.fullmatch(line)
            if not match:
                self.reusable = False
                raise ProtocolError(f"bad chunk size line {line[:40]!r}")
            left = int(match.group(1), 16)
            if left == 0:
                self._fields()  # trailers, checked like headers and dropped
                return
            yield from self._exactly(left, buffer)
            if self.reader.read(2) != b"\r\n":
                self.reusable = False
                raise ProtocolError("chunk not followed by CRLF")

    def read_body(self, method: str, status: int, headers: dict[str, str], limit: int | None,
                  truncate: bool = False) -> bytes:
        """The whole body. Past `limit` bytes: BodyTooLarge, or with `truncate` the first bytes; either
        way the connection is given up."""
        out = bytearray()
        chunks = self.body_chunks(method, status, headers, self._scratch)
        for chunk in chunks:
            out += chunk
            if limit is not None and len(out) > limit:
                chunks.close()
                self.reusable = False
                if not truncate:
                    raise BodyTooLarge(limit)
                return bytes(out[:limit])
        return bytes(out)


class RawResponse:
    """An answer whose head is read; the body is read with `read` or streamed with `iter_chunks`."""

    def __init__(self, owner: RawHttp, conn: _Connection, method: str, status: int, headers: dict[str, str]) -> None:
        self._owner = owner
        self._conn = conn
        self._method = method
        self.status = status
        self.headers = headers
        self._done = False

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A failure while reading the body gives the connection up; OSError becomes FastHttpError."""
        try:
            yield
        except OSError as exc:
            self._owner.discard(self._conn)
            raise FastHttpError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            self._owner.discard(self._conn)
            raise
        self._done = True

    def read(self, limit: int | None = None, truncate: bool = False) -> bytes:
        with self._reading():
            return self._conn.read_body(self._method, self.status, self.headers, limit, truncate)

    def iter_chunks(self) -> Iterator[memoryview]:
        """The body as views into one buffer of BUFFER_SIZE (each valid until the next is taken)."""
        buffer = memoryview(bytearray(BUFFER_SIZE))
        with self._reading():
            yield from self._conn.body_chunks(self._method, self.status, self.headers, buffer)

    def close(self) -> None:
        if not self._done:  # an unfinished body leaves the connection unusable for the next request
            self._owner.discard(self._conn)
            self._done = True


class RawHttp:
    def __init__(self, ssl_context: ssl.SSLContext | None, timeout: float) -> None:
        self._ssl = ssl_context
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[_Connection] = []

    def _connection(self, scheme: str, netloc: str, fresh: bool) -> _Connection:
        conns: dict[tuple[str, str], _Connection] = self._local.__dict__.setdefault("conns", {})
        key = (scheme, netloc)
        conn = conns.get(key)
        if conn is not None and (fresh or not conn.reusable):
            self.discard(conn)
            conn = None
        if conn is None:
            conn = _Connection(scheme, netloc, self._ssl, self._timeout)
            conns[key] = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def discard(self, conn: _Connection) -> None:
        """Close `conn`; the thread that owns it opens a new one on its next request."""
        conn.close()
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    def request(self, method: str, url: str, headers: dict[str, str],
                body: bytes | Iterable[bytes] | None = None) -> RawResponse:
        """Send a request and read the answer's head. A bytes body gets its Content-Length; an iterable
        body is streamed and needs a Content-Length header from the caller.

        A request with a replayable body (none, or bytes) is sent again once on a fresh connection
        when a kept-alive one turns out to be closed."""
        if not _TOKEN_STR.fullmatch(method):
            raise ProtocolError(f"invalid method {method!r}")
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if not target.startswith("/") or _BAD_TARGET.search(target):
            raise ProtocolError(f"invalid request target {target[:80]!r}")
        data: bytes | None = None
        stream: Iterable[bytes] | None = None
        if isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body) if not isinstance(body, bytes) else body
        elif body is not None:
            stream = body
        replayable = stream is None
        if replayable and (data or method in ("POST", "PUT", "PATCH")):
            headers = {**headers, "Content-Length": str(len(data or b""))}
        elif not replayable and not any(k.lower() == "content-length" for k in headers):
            raise ProtocolError("a streamed body needs a Content-Length")
        for attempt in (0, 1):
            conn: _Connection | None = None
            try:
                conn = self._connection(parts.scheme, parts.netloc, fresh=attempt > 0)
                reused = conn.used
                conn.send_head(method, target, headers)
                if data:
                    conn.sock.sendall(data)
                elif stream is not None:
                    for chunk in stream:
                        conn.sock.sendall(chunk)
                status, answer = conn.read_head()
                return RawResponse(self, conn, method, status, answer)
            except ProtocolError:
                if conn is not None:
                    self.discard(conn)
                raise
            except (OSError, FastHttpError) as exc:
                if conn is not None:
                    self.discard(conn)
                if attempt or not replayable or conn is None or not reused:
                    if isinstance(exc, FastHttpError):
                        raise
                    raise FastHttpError(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:
                if conn is not None:
                    self.discard(conn)  # a half-sent body must never be reused or completed
                raise
        raise AssertionError("unreachable")

    def simple(self, method: str, url: str, headers: dict[str, str], body: bytes | None = None,
               max_body: int | None = None) -> tuple[int, bytes, dict[str, str]]:
        """A small request with the whole answer read: (status, body, lower-cased headers)."""
        response = self.request(method, url, headers, body)
        return response.status, response.read(max_body), response.headers

    def close(self) -> None:
        """Close every connection any thread opened (worker threads may be gone by now)."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
