"""Limits on what unpacking one catalog image may write, checked while its layers stream.

A catalog image is untrusted: a 1.5 KB layer can hold a sparse 10 GiB member, and a 10 MB gzip
can expand to 10 GiB of zeros. The defaults are far above real catalogs (measured in
bench/RESULTS.md: the community-operators v4.17 catalog unpacks to 12 MB in 58 entries of depth 2,
gzip ratio 12 overall and 49 for its most compressible file; the redhat-operator-index is a few
GB at most), and every limit can be raised: `--catalog-limit NAME=VALUE` (repeatable) or the
environment variable EDGEBUILD_CATALOG_LIMITS="NAME=VALUE,NAME=VALUE".
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import BinaryIO

from ..errors import CatalogError, UsageError

ENV_VAR = "EDGEBUILD_CATALOG_LIMITS"
OPTION = "--catalog-limit"
_GIB = 1 << 30
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": _GIB, "t": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
# the ratio is judged only once this much was decompressed: small layers may compress very well
RATIO_FLOOR = 64 << 20


@dataclass(frozen=True, slots=True)
class ExtractBudget:
    """What one catalog image may unpack to. Names are the option's NAME (underscores as dashes)."""

    total_bytes: int = 8 * _GIB  # every file written, all layers together
    file_bytes: int = 2 * _GIB  # one file
    entries: int = 1_000_000  # tar entries read, all layers together
    depth: int = 64  # path components of an entry under the catalog directory's root
    ratio: int = 500  # decompressed bytes per compressed byte of a layer

    @classmethod
    def names(cls) -> list[str]:
        return [f.name.replace("_", "-") for f in fields(cls)]

    def with_settings(self, settings: list[str], origin: str) -> ExtractBudget:
        """This budget with `NAME=VALUE` settings applied; a bad one is a usage error naming `origin`."""
        changes: dict[str, int] = {}
        for setting in settings:
            name, sep, value = setting.partition("=")
            key = name.strip().lower()
            if not sep or key not in self.names():
                raise UsageError(f"{origin}: {setting!r} is not NAME=VALUE with NAME one of {', '.join(self.names())}",
                                 f"e.g. {OPTION} total-bytes=20G")
            match = _SIZE_RE.match(value)
            if not match or int(match.group(1)) <= 0:
                raise UsageError(f"{origin}: {key}={value!r} is not a positive number (sizes may end in K, M, G, T)")
            changes[key.replace("-", "_")] = int(match.group(1)) * _UNITS[match.group(2).lower()]
        return replace(self, **changes)


_configured: ExtractBudget | None = None


def configure_budget(settings: list[str]) -> ExtractBudget:
    """Set the budget every later extraction uses: defaults, then the environment, then `settings`."""
    global _configured
    _configured = _from_environment().with_settings(settings, OPTION)
    return _configured


def default_budget() -> ExtractBudget:
    return _configured or _from_environment()


def _from_environment() -> ExtractBudget:
    text = os.environ.get(ENV_VAR, "")
    return ExtractBudget().with_settings([s for s in text.split(",") if s.strip()], ENV_VAR)


def _size(n: int) -> str:
    for unit, factor in (("GiB", _GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"


class BudgetTally:
    """Counts one extraction against its budget; every refusal names the limit and how to raise it."""

    def __init__(self, budget: ExtractBudget) -> None:
        self.budget = budget
        self.total = 0
        self.entries = 0

    def refuse(self, layer: str, what: str, name: str, limit: str) -> CatalogError:
        return CatalogError(f"layer {layer}: {what}, over the {name} limit of {limit}; refusing to unpack this catalog",
                            f"if the catalog is genuine, raise it with {OPTION} {name}=VALUE "
                            f"(or {ENV_VAR}={name}=VALUE)")

    def entry(self, layer: str, member: str) -> None:
        self.entries += 1
        if self.entries > self.budget.entries:
            raise self.refuse(layer, f"more than {self.budget.entries} entries (at {member[:200]!r})", "entries",
                              str(self.budget.entries))

    def depth(self, layer: str, member: str, depth: int) -> None:
        if depth > self.budget.depth:
            raise self.refuse(layer, f"entry {member[:200]!r}… is {depth} directories deep", "depth",
                              str(self.budget.depth))

    def file(self, layer: str, member: str, size: int) -> None:
        """Before writing a file of `size` bytes (a tar member's own claim; sparse members included)."""
        if size > self.budget.file_bytes:
            raise self.refuse(layer, f"file {member[:200]!r} is {_size(size)}", "file-bytes",
                              _size(self.budget.file_bytes))
        if self.total + size > self.budget.total_bytes:
            raise self.refuse(layer, f"file {member[:200]!r} ({_size(size)}) brings the catalog past "
                              f"{_size(self.budget.total_bytes)}", "total-bytes", _size(self.budget.total_bytes))

    def wrote(self, layer: str, member: str, n: int) -> None:
        """While writing: the bytes really written (a member may hold more than it claimed)."""
        self.total += n
        if self.total > self.budget.total_bytes:
            raise self.refuse(layer, f"writing {member[:200]!r} passes {_size(self.budget.total_bytes)}",
                              "total-bytes", _size(self.budget.total_bytes))

    def expansion_reader(self, stream: BinaryIO, compressed: Callable[[], int], layer: str) -> BinaryIO:
        """`stream` (a layer's decompressed bytes) counted against the ratio to `compressed()` bytes read."""
        return io.BufferedReader(_RatioReader(stream, compressed, self, layer), buffer_size=1 << 20)


class ObservedReader(io.RawIOBase):
    """A raw reader over `raw` that shows each piece read to `observe` (which may raise to stop)."""

    def __init__(self, raw: BinaryIO, observe: Callable[[bytes], None]) -> None:
        self._raw = raw
        self._observe = observe

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._observe(data)
        return n


class _RatioReader(ObservedReader):
    def __init__(self, raw: BinaryIO, compressed: Callable[[], int], tally: BudgetTally, layer: str) -> None:
        super().__init__(raw, self._check)
        self._compressed = compressed
        self._tally = tally
        self._layer = layer
        self.size = 0

    def _check(self, data: bytes) -> None:
        self.size += len(data)
        ratio = self._tally.budget.ratio
        if self.size > RATIO_FLOOR and self.size > ratio * max(1, self._compressed()):
            raise self._tally.refuse(self._layer, f"{_size(self.size)} decompressed from "
                                     f"{_size(self._compressed())}", "ratio", f"{ratio}:1")
