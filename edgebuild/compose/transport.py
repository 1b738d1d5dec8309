"""HTTP plumbing shared by the Weldr and Cloud API clients.

Composer listens on unix sockets (Weldr always, Cloud API locally) or behind HTTPS with a bearer
token (a composer with remote workers). This module turns those into an httpx client, explains an
unreachable socket in terms of the systemd unit that owns it, streams downloads to disk atomically
and keeps the token out of every message and log line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import logging
import os
import re
import ssl
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from ..errors import UsageError
from ..retry import RetryPolicy
from .errors import ComposerDroppedError, ComposerError, ComposerUnavailableError

log = logging.getLogger("edgebuild.compose")

WELDR_SOCKET = "/run/weldr/api.socket"
CLOUD_SOCKET = "/run/cloudapi/api.socket"
SOCKET_UNIT = "osbuild-composer.socket"


class Token:
    """A bearer token that never shows itself: repr, str and every redacted text print `***`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            raise UsageError("the Cloud API token is empty or contains whitespace",
                             hint="the token file must hold just the token on one line")
        self._value = value

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Token:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read the token file {path}: {exc.strerror}",
                             hint="pass --token-file with a readable file that holds the token") from None
        return cls(text)

    def authorization(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._value}"}

    def redact(self, text: str) -> str:
        return text.replace(self._value, "***")

    def __repr__(self) -> str:
        return "Token(***)"

    __str__ = __repr__


def redact(text: str, token: Token | None) -> str:
    return token.redact(text) if token else text


@dataclass(frozen=True)
class Endpoint:
    """Where an API lives: a unix socket, or a base URL (http(s)://HOST[:PORT][/prefix])."""

    base_url: str
    socket: str | None = None

    @property
    def where(self) -> str:
        return f"unix socket {self.socket}" if self.socket else self.base_url


def socket_endpoint(path: str) -> Endpoint:
    return Endpoint(base_url="http://localhost", socket=path)


def parse_endpoint(text: str) -> Endpoint:
    """`unix:///run/cloudapi/api.socket`, a bare absolute socket path, or `https://HOST[:PORT][/PATH]`."""
    if text.startswith("unix://"):
        path = text[len("unix://"):]
        if not path.startswith("/"):
            raise UsageError(f"{text!r} is not a unix socket URL", hint="write unix:///ABSOLUTE/PATH")
        return socket_endpoint(path)
    if text.startswith("/"):
        return socket_endpoint(text)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{text!r} is not a Cloud API address",
                         hint="use https://HOST[:PORT], or unix:///run/cloudapi/api.socket for a local composer")
    if parts.username or parts.password or parts.query:
        raise UsageError("the Cloud API address must not carry credentials or a query",
                         hint="put the token in a file and pass --token-file")
    return Endpoint(base_url=text.rstrip("/"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token_transport(endpoint: Endpoint, token: Token | None) -> None:
    """Refuse to send a token in clear text over a network: plain http is fine only on loopback."""
    if token is None or endpoint.socket:
        return
    parts = urlsplit(endpoint.base_url)
    if parts.scheme == "http" and not is_loopback(parts.hostname or ""):
        raise UsageError(f"refusing to send the Cloud API token over plain HTTP to {parts.hostname}",
                         hint="use an https:// address")


def check_socket(path: str, api: str) -> None:
    """Fail with the fix when the socket is missing, not a socket, or not accessible to this user."""
    start = (f"start it with: sudo systemctl start {SOCKET_UNIT} (package osbuild-composer; "
             f"'systemctl enable --now {SOCKET_UNIT}' keeps it across reboots)")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ComposerUnavailableError(
            f"osbuild-composer {api} socket {path} does not exist: osbuild-composer is not running here",
            hint=f"{start}; or point edgebuild at another socket with --socket/--cloud-api") from None
    except PermissionError:
        raise ComposerUnavailableError(
            f"osbuild-composer {api} socket {path} cannot be reached: permission denied on its directory",
            hint="run as root or as a member of the 'weldr' group (sudo usermod -aG weldr $USER)") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise ComposerUnavailableError(f"{path} exists but is not a unix socket, so it is not the {api} socket",
                                       hint=start)
    if not os.access(path, os.R_OK | os.W_OK):
        raise ComposerUnavailableError(
            f"osbuild-composer {api} socket {path}: permission denied",
            hint="run as root or as a member of the 'weldr' group (sudo usermod -aG weldr $USER), "
                 "then log in again")


def open_client(endpoint: Endpoint, *, api: str, token: Token | None = None,
                verify: bool | str = True, timeout: float = 60.0) -> httpx.Client:
    """An httpx client for `endpoint`; checks the socket first so a missing composer is explained."""
    check_token_transport(endpoint, token)
    if endpoint.socket:
        check_socket(endpoint.socket, api)
        transport = httpx.HTTPTransport(uds=endpoint.socket)
        return httpx.Client(base_url=endpoint.base_url, transport=transport,
                            headers=token.authorization() if token else None, timeout=timeout)
    tls: bool | ssl.SSLContext
    if isinstance(verify, str):
        try:
            tls = ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load the CA certificate file {verify}: {exc}",
                             hint="pass a PEM file with the CA that signed the composer's certificate") from None
    else:
        tls = verify
    return httpx.Client(base_url=endpoint.base_url, verify=tls,
                        headers=token.authorization() if token else None, timeout=timeout)


def transport_error(exc: httpx.TransportError, endpoint: Endpoint, api: str, request: str,
                    token: Token | None) -> ComposerError:
    """Explain a connection-level failure; for a socket, that means the service behind it is down."""
    detail = redact(str(exc) or type(exc).__name__, token)
    if endpoint.socket:
        return ComposerDroppedError(
            f"osbuild-composer {api} at {endpoint.where} did not answer {request}: {detail}",
            hint=f"check the service: sudo systemctl status {SOCKET_UNIT} osbuild-composer.service")
    return ComposerDroppedError(f"osbuild-composer {api} at {endpoint.where} did not answer {request}: {detail}",
                                hint="check the address, the network and the server's TLS certificate "
                                     "(a private CA needs the CA file)")


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]")


def attachment_name(response: httpx.Response, compose_id: str, default: str) -> str:
    """A safe file name for a compose artifact: the server's Content-Disposition name, else `default`,
    prefixed with the compose id when it lacks it (so two composes never overwrite each other)."""
    name = default
    header = response.headers.get("content-disposition", "")
    match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', header)
    if match:
        candidate = _SAFE_NAME.sub("_", os.path.basename(match.group(1).strip()))
        if candidate and not candidate.startswith("."):
            name = candidate
    return name if compose_id in name else f"{compose_id}-{name}"


@dataclass(frozen=True)
class Download:
    path: Path
    size: int
    sha256: str


def save_stream(response: httpx.Response, dest_dir: Path, name: str,
                on_bytes: Callable[[int], None] | None = None) -> Download:
    """Stream a response body to `dest_dir/name` through a temporary file, so a file is whole or absent."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=dest_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in response.iter_bytes(chunk_size=1 << 20):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if on_bytes:
                    on_bytes(size)
            out.flush()
            os.fsync(out.fileno())
        final = dest_dir / name
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Download(path=final, size=size, sha256=digest.hexdigest())


# A compose runs for tens of minutes; a status poll that gets no answer, or a 5xx from a proxy in front
# of composer, is asked again nine times, 1, 2, 4, 8, 16 and then 30 s apart at most (each wait jittered
# between half and all of that): 75-150 s before the wait gives up. The compose keeps running in
# composer either way.
POLL_RETRY = RetryPolicy(attempts=10, base_delay=1.0, max_delay=30.0)

T = TypeVar("T")


class Waiter:
    """Paces status polls, retries a poll that failed transiently, and enforces the caller's timeout.

    Clock and sleep are injectable for tests; the retry policy sleeps through the same `sleep`.
    """

    def __init__(self, interval: float, timeout: float | None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 retry: RetryPolicy = POLL_RETRY) -> None:
        self.interval = interval
        self.timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self.retry = dataclasses.replace(retry, sleep_fn=sleep)
        self.started = clock()
        self.polls = 0
        self.retries = 0

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started

    def expired(self) -> bool:
        return self.timeout is not None and self.elapsed >= self.timeout

    def pause(self) -> None:
        self.polls += 1
        self._sleep(self.interval)

    def ask(self, call: Callable[[], T], on_retry: Callable[[BaseException], None] | None = None) -> T:
        """`call()` (a GET: safe to repeat) under the retry policy; `on_retry` hears each failure retried."""
        def before_retry(exc: BaseException) -> None:
            self.retries += 1
            log.warning("%s; asking again", str(exc).splitlines()[0])
            if on_retry:
                on_retry(exc)
        return self.retry.run(lambda _attempt: call(), before_retry)
