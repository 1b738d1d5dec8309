"""The lean HTTP/1.1 client of the copy hot path, on answer shapes a registry does not produce on demand.

The registry tests exercise it against docker-registry (Content-Length framing, keep-alive, TLS).
Chunked bodies, bodies delimited by the end of the connection, interim 100 answers, a server that
drops a kept-alive connection, and malformed or hostile answers (smuggling-shaped framing, bad chunk
sizes, header tricks) are legal or possible HTTP that no local registry can be made to send, so a
scripted socket server plays them here (the only reason it exists).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from edgebuild.registry.rawhttp import BodyTooLarge, FastHttpError, ProtocolError, RawHttp

Script = Callable[[socket.socket, bytes], bool]  # (connection, request head) -> keep the connection open?


class ScriptedServer:
    """Accepts connections on 127.0.0.1 and answers each request with the next scripted reply."""

    def __init__(self, replies: list[bytes | Script]) -> None:
        self.replies = list(replies)
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.replies:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            reader = conn.makefile("rb")
            try:
                while self.replies:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    body = reader.read(length) if length else b""
                    self.requests.append(head + body)
                    reply = self.replies.pop(0)
                    if callable(reply):
                        if not reply(conn, head):
                            break
                    else:
                        conn.sendall(reply)
            except OSError:
                pass  # the client hung up mid-answer (on purpose in some tests): serve the next connection
            finally:
                reader.close()
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[list[bytes | Script]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(replies: list[bytes | Script]) -> ScriptedServer:
        servers.append(ScriptedServer(replies))
        return servers[-1]
    yield make
    for server in servers:
        server.close()


def test_content_length_keep_alive_and_lower_cased_headers(serve) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDocker-Content-Digest: sha256:x\r\n\r\nhello",
                    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nLocation: /v2/a\r\n\r\n"])
    http_ = RawHttp(None, 5)
    assert http_.simple("GET", f"{server.url}/v2/x", {}) == (200, b"hello", {
        "content-length": "5", "docker-content-digest": "sha256:x"})
    status, body, headers = http_.simple("PUT", f"{server.url}/v2/y", {"Content-Type": "a/b"}, b"data")
    assert (status, body, headers["location"]) == (201, b"", "/v2/a")
    assert server.connections == 1  # the second request reused the connection
    assert b"Content-Length: 4" in server.requests[1] and server.requests[1].endswith(b"data")
    http_.close()


def test_chunked_body_with_trailers(serve) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n",
                    b"HTTP/1.1 204 No Content\r\n\r\n"])
    http_ = RawHttp(None, 5)
    assert http_.simple("GET", f"{server.url}/a", {})[:2] == (200, b"wikipedia")
    assert http_.simple("DELETE", f"{server.url}/b", {})[:2] == (204, b"")
    assert server.connections == 1


def test_streamed_get_of_a_chunked_body(serve) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"])
    response = RawHttp(None, 5).request("GET", f"{server.url}/blob", {})
    assert "content-length" not in response.headers
    assert b"".join(bytes(c) for c in response.iter_chunks()) == b"abcde"
    response.close()


def test_body_delimited_by_connection_close_and_interim_100(serve) -> None:
    def close_delimited(conn: socket.socket, _: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        return False
    server = serve([close_delimited, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    http_ = RawHttp(None, 5)
    assert http_.simple("GET", f"{server.url}/a", {})[:2] == (200, b"all of it")
    assert http_.simple("GET", f"{server.url}/b", {})[:2] == (200, b"ok")
    assert server.connections == 2  # the closed connection was not reused


def test_a_kept_alive_connection_the_server_dropped_is_replaced_once(serve) -> None:
    def drop(conn: socket.socket, _: bytes) -> bool:
        return False  # read the request, close without answering
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", drop,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"])
    http_ = RawHttp(None, 5)
    assert http_.simple("GET", f"{server.url}/1", {})[1] == b"a"
    assert http_.simple("GET", f"{server.url}/2", {})[1] == b"b"
    assert server.connections == 2


def test_any_status_is_an_answer_with_its_body(serve) -> None:
    server = serve([b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=x\r\nContent-Length: 0\r\n\r\n",
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nRetry-After: 3\r\n\r\nnot found"])
    http_ = RawHttp(None, 5)
    assert http_.simple("GET", f"{server.url}/blob", {})[0] == 401
    status, body, headers = http_.simple("GET", f"{server.url}/blob", {})
    assert (status, body, headers["retry-after"]) == (404, b"not found", "3")
    assert server.connections == 1


def test_truncated_and_malformed_answers_raise_one_error_family(serve) -> None:
    def short(conn: socket.socket, _: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        return False
    server = serve([short, b"garbage\r\n\r\n", b"garbage\r\n\r\n"])
    http_ = RawHttp(None, 5)
    response = http_.request("GET", f"{server.url}/blob", {})
    assert response.headers["content-length"] == "10"
    with pytest.raises(FastHttpError, match="7 bytes of the body missing"):
        b"".join(bytes(c) for c in response.iter_chunks())
    response.close()
    with pytest.raises(ProtocolError, match="bad status line"):
        http_.simple("GET", f"{server.url}/x", {})


def test_body_over_the_limit_is_refused_and_the_connection_given_up(serve) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny"])
    http_ = RawHttp(None, 5)
    with pytest.raises(BodyTooLarge):
        http_.simple("GET", f"{server.url}/big", {}, max_body=1000)
    response = http_.request("GET", f"{server.url}/big", {})
    assert response.read(1000, truncate=True) == b"x" * 1000  # an error body: the start is kept
    assert http_.simple("GET", f"{server.url}/next", {})[1] == b"y"
    assert server.connections == 3


# ------------------------------------------------------------------ strictness (each an h11 rule)

@pytest.mark.parametrize("answer, error", [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", "not followed by CRLF"),
    (b"HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: \xd9\xa3\r\n\r\nabc", "bad Content-Length"),  # Arabic-Indic 3
    (b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\nabc", "unsupported Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "unsupported Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", "both"),
    (b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "bad status line"),
    (b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", "bad status line"),
    (b"HTTP/1.1 \xd9\xa2\xd9\xa0\xd9\xa0 OK\r\nContent-Length: 0\r\n\r\n", "bad status line"),
])
def test_answers_h11_refuses_are_refused(serve, answer: bytes, error: str) -> None:
    server = serve([answer])
    with pytest.raises(ProtocolError, match=error):
        RawHttp(None, 5).simple("GET", f"{server.url}/x", {})


def test_chunked_transfer_encoding_is_a_token_not_a_substring(serve) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked \r\n\r\n3\r\nabc\r\n0\r\n\r\n"])
    assert RawHttp(None, 5).simple("GET", f"{server.url}/x", {})[1] == b"abc"


@pytest.mark.parametrize("headers", [{"X-A": "v\r\nInjected: yes"}, {"X-A": "v\nx"}, {"X A": "v"},
                                     {"X-A:": "v"}, {"X-A": "nul\x00"}])
def test_headers_that_would_split_the_request_are_refused_before_sending(serve, headers: dict[str, str]) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    with pytest.raises(ProtocolError, match="invalid (header name|value for header)"):
        RawHttp(None, 5).simple("GET", f"{server.url}/x", headers)
    assert not server.requests


def test_a_request_target_with_spaces_or_newlines_is_refused(serve) -> None:
    server = serve([])
    with pytest.raises(ProtocolError, match="invalid request target"):
        RawHttp(None, 5).simple("GET", f"{server.url}/a b\r\nX: y", {})


def test_refused_connection_is_a_fast_http_error() -> None:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(FastHttpError, match="ConnectionRefusedError"):
        RawHttp(None, 5).simple("GET", f"http://127.0.0.1:{port}/v2/", {})


def test_a_redirect_from_the_fast_transport_is_followed_through_httpx(serve) -> None:
    """Registries on object storage redirect blob GETs; the fast transport hands those to httpx."""
    from edgebuild.registry.transport import Transports
    moved = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"
    server = serve([moved, moved, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthere"])
    transports = Transports(None, False, 5, 2)
    try:
        response = transports.send("GET", f"{server.url}/v2/r/blobs/sha256:x", {})
        assert (response.status, response.read()) == (200, b"there")
        assert server.requests[-1].startswith(b"GET /elsewhere ")
    finally:
        transports.close()


@pytest.mark.parametrize("cause, kind", [
    (socket.gaierror(-2, "Name or service not known"), "dns"),
    (ConnectionRefusedError(111, "Connection refused"), "refused"),
    (TimeoutError("timed out"), "timeout"),
    (ConnectionResetError(104, "reset"), "reset"),
    (OSError("[SSL: WRONG_VERSION_NUMBER] wrong version number"), "plain-http"),
    (OSError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "tls-cert"),
    (OSError("[SSL: TLSV1_ALERT_PROTOCOL_VERSION] alert"), "tls"),
    (OSError("something else"), "other"),
])
def test_failure_kinds_are_read_from_the_cause_chain(cause: BaseException, kind: str) -> None:
    from edgebuild.registry.transport import failure_kind
    try:
        try:
            raise cause
        except BaseException as inner:
            raise FastHttpError("wrapped") from inner
    except FastHttpError as outer:
        assert failure_kind(outer) == kind
