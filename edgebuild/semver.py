"""Semantic versions as the two oc-mirror generations read them.

oc-mirror v1 (and operator-registry) parse with blang/semver: strictly `X.Y.Z[-pre][+build]`.
oc-mirror v2 (catalog-filter) parses with Masterminds/semver v3: a leading `v` and missing minor or
patch parts are accepted (`v1.2` == `1.2.0`). Both order versions by SemVer 2.0 precedence and
ignore build metadata when comparing. Range grammars differ too and live with each semantics
(`catalog/ranges_v1.py`, `catalog/ranges_v2.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_STRICT_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")
_LENIENT_RE = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")


class VersionError(ValueError):
    """A string that is not a semantic version under the rules asked for."""


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        """Strict SemVer 2.0 (blang/semver Parse): exactly three numeric parts, no 'v' prefix."""
        m = _STRICT_RE.match(str(text).strip())
        if not m:
            raise VersionError(f"{text!r} is not a semantic version (expected X.Y.Z, e.g. 1.2.3 or 1.2.3-beta.1)")
        pre = tuple(m.group(4).split(".")) if m.group(4) else ()
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, m.group(5) or "")

    @classmethod
    def parse_lenient(cls, text: str) -> Version:
        """Masterminds/semver v3 NewVersion: optional 'v', minor and patch may be omitted."""
        m = _LENIENT_RE.match(str(text).strip())
        if not m:
            raise VersionError(f"{text!r} is not a semantic version (e.g. 1.2.3, v1.2 or 1.2.3-rc.1)")
        pre = tuple(m.group(4).split(".")) if m.group(4) else ()
        return cls(int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), pre, m.group(5) or "")

    @classmethod
    def try_parse(cls, text: str | None, lenient: bool = False) -> Version | None:
        if not text:
            return None
        try:
            return cls.parse_lenient(text) if lenient else cls.parse(text)
        except VersionError:
            return None

    def _key(self) -> tuple:
        # A release sorts after any prerelease of the same X.Y.Z; numeric identifiers sort before
        # alphanumeric ones and compare as numbers (SemVer 2.0 §11).
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    @property
    def release(self) -> Version:
        """The same version without prerelease and build (OCPBUGS-588 matching strips '-suffix')."""
        return Version(self.major, self.minor, self.patch)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text
