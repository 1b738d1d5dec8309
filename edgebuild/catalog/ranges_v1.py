"""Version ranges as oc-mirror v1 and operator-registry read them (blang/semver v4 `ParseRange`).

oc-mirror v1 turns `minVersion`/`maxVersion` into the range strings `>=X <=Y`, `<=Y`, and bundles
declare `olm.package.required` with a `versionRange`; both are parsed by blang/semver. Its grammar
differs from Masterminds (oc-mirror v2), so it lives here on its own:

* comparators `=`/`==`/none, `!=`/`!`, `>`, `>=`, `<`, `<=`, followed by a strict `X.Y.Z[-pre][+build]`;
* space-separated comparators are ANDed, ` || ` (with spaces) separates OR groups;
* a space after an operator is tolerated (`>= 1.0.0`);
* wildcards with a lowercase `x` only: `1.x`, `1.2.x`, `>1.2.x`, `!=1.x`, expanded the way blang does
  (including its quirk that `1.x.x` behaves as a patch wildcard `1.0.x`);
* comparison is SemVer precedence (build metadata ignored); prereleases are ordinary versions, so
  `>=1.0.0` matches `1.1.0-rc.1` (unlike Masterminds).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

from ..semver import Version, VersionError

_COMPARATORS: dict[str, Callable[[Version, Version], bool]] = {
    "": operator.eq, "=": operator.eq, "==": operator.eq,
    "!": operator.ne, "!=": operator.ne,
    ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le,
}


class RangeError(ValueError):
    """A string blang/semver's ParseRange would reject."""


@dataclass(frozen=True, slots=True)
class Comparator:
    op: str
    version: Version

    def __call__(self, v: Version) -> bool:
        return _COMPARATORS[self.op](v, self.version)

    def __str__(self) -> str:
        return f"{self.op}{self.version}"


@dataclass(frozen=True, slots=True)
class VersionRange:
    """An OR of AND-groups of comparators; call it with a Version."""

    text: str
    groups: tuple[tuple[Comparator, ...], ...]

    def __call__(self, v: Version) -> bool:
        return any(all(c(v) for c in group) for group in self.groups)

    def matches(self, version: str | Version | None) -> bool:
        """True if `version` (a string is parsed strictly) is in the range; unparsable never matches."""
        if version is None:
            return False
        if not isinstance(version, Version):
            parsed = Version.try_parse(version)
            if parsed is None:
                return False
            version = parsed
        return self(version)

    def __str__(self) -> str:
        return self.text


def _split_and_trim(text: str) -> list[str]:
    """blang splitAndTrim: split on spaces, except a space right after '>', '<' or '='."""
    result: list[str] = []
    last = 0
    last_char = ""
    for i, ch in enumerate(text):
        if ch == " " and last_char not in (">", "<", "="):
            if last < i - 1:
                result.append(text[last:i])
            last = i + 1
        elif ch != " ":
            last_char = ch
    if last < len(text) - 1:
        result.append(text[last:])
    return [part.replace(" ", "") for part in result]


def _split_or(parts: list[str]) -> list[list[str]]:
    groups: list[list[str]] = []
    last = 0
    for i, part in enumerate(parts):
        if part == "||":
            if i == 0:
                raise RangeError("First element in range is '||'")
            groups.append(parts[last:i])
            last = i + 1
    if last == len(parts):
        raise RangeError("Last element in range is '||'")
    groups.append(parts[last:])
    return groups


def _split_comparator(part: str) -> tuple[str, str]:
    for i, ch in enumerate(part):
        if ch.isdigit():
            return part[:i].strip(), part[i:]
    raise RangeError(f"Could not get version from string: {part!r}")


def _wildcard_base(text: str) -> tuple[str, str | None]:
    """(flat version, 'minor'|'patch'|None): blang's createVersionFromWildcard/getWildcardType."""
    pieces = text.split(".")
    kind = {2: "minor", 3: "patch"}.get(len(pieces)) if pieces[-1] == "x" else None
    flat = text.replace(".x.x", ".x", 1).replace(".x", ".0", 1)
    if len(flat.split(".")) == 2:
        flat += ".0"
    return flat, kind


def _bump(flat: str, kind: str | None) -> str:
    try:
        v = Version.parse(flat)
    except VersionError:
        return ""
    if kind == "patch":
        return f"{v.major}.{v.minor + 1}.0"
    if kind == "minor":
        return f"{v.major + 1}.0.0"
    return ""


def _expand_wildcards(group: list[str]) -> list[str]:
    out: list[str] = []
    for part in group:
        if "x" in part:
            op, vtext = _split_comparator(part)
            flat, kind = _wildcard_base(vtext)
            if op == ">":
                part = ">=" + _bump(flat, kind)
            elif op == ">=":
                part = ">=" + flat
            elif op == "<":
                part = "<" + flat
            elif op == "<=":
                part = "<" + _bump(flat, kind)
            elif op in ("", "=", "=="):
                out.append(">=" + flat)
                part = "<" + _bump(flat, kind)
            elif op in ("!=", "!"):
                out.append("<" + flat)
                part = ">=" + _bump(flat, kind)
        out.append(part)
    return out


def parse_range(text: str) -> VersionRange:
    """Parse a blang/semver range; raises RangeError with blang's wording plus what to write instead."""
    groups: list[tuple[Comparator, ...]] = []
    for group in _split_or(_split_and_trim(text)):
        comparators = []
        for part in _expand_wildcards(group):
            op, vtext = _split_comparator(part)
            if op not in _COMPARATORS:
                raise RangeError(f"Could not parse Range {part!r}: Could not parse comparator {op!r} in {part!r}")
            try:
                version = Version.parse(vtext)
            except VersionError as exc:
                raise RangeError(f"Could not parse Range {part!r}: Could not parse version {vtext!r} in "
                                 f"{part!r}: {exc}") from None
            comparators.append(Comparator(op, version))
        if not comparators:
            raise RangeError(f"empty version range {text!r} (e.g. '>=1.0.0 <2.0.0')")
        groups.append(tuple(comparators))
    return VersionRange(text, tuple(groups))


def any_version() -> VersionRange:
    """The range a requirement without `versionRange` means: every version."""
    return VersionRange("", ((),))
