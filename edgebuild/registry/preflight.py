"""Preflight: every registry a run needs is asked once, at the same time, before anything is copied.

Without it an unreachable registry is found image by image, each through the whole retry budget
(a wrong destination port took 585 s to fail, unresolvable sources 263 s). Here each registry gets
one `GET /v2/` with no retry and a short timeout, all concurrently, and the run stops at once with
one line per registry that failed and the advice for its cause: a name that does not resolve (an
offline machine: mirror to disk on a connected one), a refused connection (the port), plain HTTP
or an untrusted certificate (the TLS flag of that side).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import RegistryError
from .client import ConnectionFailed, RegistryClient, TlsFailure
from .retry import RetryPolicy
from .transport import proxy_applies

PING_TIMEOUT = 5.0  # seconds for one connection and answer
GRACE = 1.0  # beyond PING_TIMEOUT, for name lookups, which no socket timeout bounds (a lookup whose first
# query was lost answers after the resolver's 5 s retry)
MAX_AT_ONCE = 64


@dataclass(frozen=True, slots=True)
class Target:
    """A registry to ask, the role it has in the run (for the message) and its TLS options."""

    registry: str
    role: str  # "destination", "catalog source", "image source", "storageConfig registry"
    tls_verify: bool = True
    cert_dir: str | None = None
    images: int = 0  # how many images of the run it serves (0: not counted)

    @property
    def side(self) -> str:
        return "dest" if self.role == "destination" else "src"


class PreflightError(RegistryError):
    """Registries the run needs that cannot be reached; `failures` maps each to its one line."""

    def __init__(self, failures: dict[str, str]) -> None:
        count = len(failures)
        lines = [f"{count} registr{'y' if count == 1 else 'ies'} the run needs cannot be reached; nothing was "
                 "copied or written:"] + [f"  {line}" for line in failures.values()]
        super().__init__("\n".join(lines))
        self.failures = failures


def _host_port(registry: str) -> tuple[str, str]:
    parts = urlsplit(f"//{registry}")
    return parts.hostname or registry, str(parts.port) if parts.port else "443/80"


def advice(target: Target, exc: RegistryError, timeout: float = PING_TIMEOUT) -> str:
    """One line naming the registry, its role, the cause and what to do."""
    host, port = _host_port(target.registry)
    what = f"{target.registry} ({target.role}" + (f" of {target.images} image(s)" if target.images else "") + ")"
    tls_flag = ("skipTLS: true under storageConfig.registry" if target.role == "storageConfig registry"
                else f"--{target.side}-tls-verify=false")
    kind = getattr(exc, "kind", "other")
    if kind == "dns":
        why = "does not resolve" if "lookup did not finish" not in exc.message else "found no answer in DNS in time"
        if target.role == "destination":
            return f"{what}: the name {host} {why}; hint: check the host name of the destination"
        return (f"{what}: the name {host} {why}; hint: this machine may be offline: mirror to disk "
                "on a connected machine (`edgebuild mirror -c ISC --to file://DIR`), carry DIR here and run "
                "`edgebuild mirror -c ISC --from file://DIR --to docker://MIRROR`; else check the name")
    if kind == "refused":
        return (f"{what}: connection refused: nothing listens on port {port} of {host}; hint: check the port "
                "and that the registry is running")
    if kind == "timeout":
        return (f"{what}: no answer within {timeout:g} s; hint: check the address and firewalls; behind a "
                "proxy set HTTPS_PROXY (and NO_PROXY for local registries)")
    if kind == "plain-http":
        return f"{what}: it answers plain HTTP, not HTTPS; hint: pass {tls_flag} for a plain-HTTP registry"
    if kind in ("tls-cert", "tls"):
        return (f"{what}: its TLS certificate is not trusted ({_cause(exc)}); hint: give its CA with "
                f"--{target.side}-cert-dir DIR (or --cert-dir), or pass {tls_flag}")
    return f"{what}: {_cause(exc)}" + (f"; hint: {exc.hint}" if exc.hint else "")


def _cause(exc: RegistryError) -> str:
    return exc.message.removeprefix("cannot reach registry ").split("\n")[0][:300]


def _resolves(registry: str) -> RegistryError | None:
    """Look the name up first: a client (TLS contexts, connection pools) costs tens of milliseconds of
    CPU, too much to spend on each of a hundred names that do not resolve. Behind a proxy the proxy
    resolves, so nothing is looked up here."""
    if proxy_applies(f"https://{registry}/"):
        return None
    parts = urlsplit(f"//{registry}")
    try:
        socket.getaddrinfo(parts.hostname or registry, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return ConnectionFailed(f"cannot reach registry {registry}: {exc}", kind="dns")
    return None


def _ping(target: Target, authfile: str | None, timeout: float,
          resolved: Callable[[], None] = lambda: None) -> RegistryError | None:
    unresolved = _resolves(target.registry)
    if unresolved is not None:
        return unresolved
    resolved()
    try:
        with RegistryClient(target.registry, tls_verify=target.tls_verify, cert_dir=target.cert_dir,
                            authfile=authfile, retry=RetryPolicy(attempts=1), timeout=timeout,
                            max_connections=2) as client:
            client.ping()
    except (ConnectionFailed, TlsFailure, RegistryError) as exc:
        return exc
    return None


def merge(targets: Iterable[Target]) -> list[Target]:
    """One target per (registry, TLS options), its image counts added up, the first role kept."""
    merged: dict[tuple[str, bool, str | None], Target] = {}
    for target in targets:
        key = (target.registry, target.tls_verify, target.cert_dir)
        if key in merged:
            old = merged[key]
            role = old.role if old.role == "destination" or target.role != "destination" else target.role
            merged[key] = Target(old.registry, role, old.tls_verify, old.cert_dir, old.images + target.images)
        else:
            merged[key] = target
    return list(merged.values())


def check_registries(targets: Iterable[Target], *, authfile: str | None = None,
                     timeout: float = PING_TIMEOUT) -> set[str]:
    """Ping every target once, concurrently; raise PreflightError listing each failed one.

    Returns the registries checked. The pings run on daemon threads and the wait is bounded, so a
    name lookup that hangs (an offline resolver) fails the run at the deadline instead of later."""
    todo = merge(targets)
    if not todo:
        return set()
    results: dict[Target, RegistryError | None] = {}
    lock = threading.Lock()
    pending = list(todo)
    named: set[Target] = set()  # the targets whose name was looked up

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                target = pending.pop(0)
            def resolved(target: Target = target) -> None:
                with lock:
                    named.add(target)
            outcome = _ping(target, authfile, timeout, resolved)
            with lock:
                results[target] = outcome

    threads = [threading.Thread(target=worker, name="preflight", daemon=True)
               for _ in range(min(MAX_AT_ONCE, len(todo)))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + GRACE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    failures: dict[str, str] = {}
    for target in todo:
        with lock:
            done = target in results
            outcome = results.get(target)
        if not done:
            waited = ConnectionFailed(f"no answer within {timeout + GRACE:g} s", kind="timeout")
            if target not in named:  # still looking up the name: no DNS answer, as on an offline machine
                waited = ConnectionFailed(f"the name lookup did not finish within {timeout + GRACE:g} s", kind="dns")
            failures[target.registry] = advice(target, waited, timeout + GRACE)
        elif outcome is not None:
            failures[target.registry] = advice(target, outcome, timeout)
    if failures:
        raise PreflightError(failures)
    return {target.registry for target in todo}


def _registry_of(reference: str) -> str | None:
    """The registry host of an image reference; None for oci://, directories and unparsable text."""
    from ..reference import ImageReference
    if "://" in reference and not reference.startswith("docker://"):
        return None
    try:
        return ImageReference.parse(reference.removeprefix("docker://")).registry
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Sides:
    """The TLS options of the two sides of a run (the --src-* and --dest-* flags)."""

    src_tls_verify: bool = True
    dest_tls_verify: bool = True
    src_cert_dir: str | None = None
    dest_cert_dir: str | None = None

    def source(self, registry: str, role: str, images: int = 0) -> Target:
        return Target(registry, role, self.src_tls_verify, self.src_cert_dir, images)


def config_targets(config: object, sides: Sides, *, destination: str | None, overrides: Iterable[str] = (),
                   local_catalogs: Iterable[str] = ()) -> list[Target]:
    """What the configuration names before any catalog is read: catalog and additional-image sources,
    the destination, and the storageConfig registry."""
    skip = set(overrides) | set(local_catalogs)
    targets: list[Target] = []
    for spec in getattr(config, "operators", []):
        registry = None if spec.catalog in skip else _registry_of(spec.catalog)
        if registry:
            targets.append(sides.source(registry, "catalog source", 1))
    for image in getattr(config, "additional_images", []):
        registry = _registry_of(image.name)
        if registry:
            targets.append(sides.source(registry, "image source", 1))
    storage = getattr(config, "storage", None)
    if storage is not None and storage.registry_image:
        registry = _registry_of(storage.registry_image)
        if registry:
            targets.append(Target(registry, "storageConfig registry", not storage.registry_skip_tls))
    if destination:
        targets.append(Target(destination, "destination", sides.dest_tls_verify, sides.dest_cert_dir))
    return targets


def plan_targets(plan: object, sides: Sides, checked: set[str]) -> list[Target]:
    """The image sources the plan added (bundles, related images) that were not checked yet."""
    counts: dict[str, int] = {}
    for image in getattr(plan, "images", []):
        registry = _registry_of(image.source)
        if registry and registry not in checked:
            counts[registry] = counts.get(registry, 0) + 1
    return [sides.source(registry, "image source", count) for registry, count in counts.items()]
