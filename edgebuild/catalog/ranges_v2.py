"""Version ranges as oc-mirror v2 reads them: Masterminds/semver v3 constraints.

oc-mirror v2 turns `minVersion: X` / `maxVersion: Y` into the constraint string `">=X"`, `" <=Y"`
or `">=X <=Y"` and hands it to catalog-filter, which checks bundle versions with Masterminds
`Constraints.Check`. The grammar and the quirks below are reproduced on purpose, because they
decide which bundles are mirrored:

* atoms `=`, `!=`, `>`, `<`, `>=` (`=>`), `<=` (`=<`), `~` (`~>`), `^`, or no operator (`=`);
  x-ranges `1.2.x`, `1.*`, `*`, and partial versions `1.2`, `v1` (a missing part acts as `x`);
  hyphen ranges `1.2 - 1.4.5` (rewritten to `>= 1.2, <= 1.4.5`); atoms joined by spaces or a comma
  form an AND group; `||` separates OR groups.
* Partial versions are not plain comparisons: `<=1.2` admits every 1.2.z, `>1.2` needs 1.3 or more,
  `=1.2` is `~1.2`.
* Prereleases: a version with a prerelease (`1.51.0-1` is one) is rejected by an AND group unless
  one atom of that same group carries a prerelease itself (`>=1.47.1-5`). The prerelease in the
  constraint opens the whole group to every prerelease, of any X.Y.Z, compared in SemVer order
  (Masterminds v3.4.0 and later; up to v3.3 each atom had to carry its own prerelease). It does not
  carry across `||`.
* Build metadata (`+x`) is ignored when comparing; versions are otherwise compared in SemVer 2.0
  precedence, which `edgebuild.semver.Version` implements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..semver import Version, VersionError

_SEGMENT = r"[0-9xX*]+"
_IDENTS = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
# The version part of a constraint atom: optional 'v', one to three segments (digits or x/X/*),
# optional prerelease and build metadata.
_CONSTRAINT_VERSION = (rf"v?(?P<major>{_SEGMENT})(?:\.(?P<minor>{_SEGMENT}))?(?:\.(?P<patch>{_SEGMENT}))?"
                       rf"(?:-(?P<pre>{_IDENTS}))?(?:\+(?P<build>{_IDENTS}))?")
# Longest operators first, so `>=` is never read as `>` followed by `=1.2`.
_ATOM_RE = re.compile(rf"[ \t\n\f\r]*(?P<op>!=|>=|=>|<=|=<|~>|>|<|=|~|\^)?[ \t\n\f\r]*"
                      rf"(?P<version>{_CONSTRAINT_VERSION})")
_PLAIN_VERSION = r"v?[0-9xX*]+(?:\.[0-9xX*]+){0,2}(?:-" + _IDENTS + r")?(?:\+" + _IDENTS + r")?"
_HYPHEN_RE = re.compile(rf"[ \t\n\f\r]*({_PLAIN_VERSION})[ \t\n\f\r]+-[ \t\n\f\r]+({_PLAIN_VERSION})[ \t\n\f\r]*")
_WS = " \t\n\f\r"
_CANONICAL_OP = {"": "=", "=": "=", "=>": ">=", "=<": "<=", "~>": "~"}


class RangeError(ValueError):
    """A version range Masterminds/semver would refuse to parse."""


def _is_x(part: str | None) -> bool:
    return part is None or part in ("x", "X", "*")


@dataclass(frozen=True, slots=True)
class _Atom:
    """One comparison, e.g. `>=1.2` (base 1.2.0, patch part unspecified)."""

    op: str  # as written: "", "=", ">=", "=>", ...
    text: str  # the version as written, for messages (`>=v1.2` keeps `v1.2`)
    base: Version  # the version with unspecified / x parts set to 0
    any_major: bool  # `*`, `x`: the major part is unspecified
    any_minor: bool  # `1`, `1.x`: the minor part is unspecified
    any_patch: bool  # `1.2`, `1.2.x`: the patch part is unspecified

    @property
    def partial(self) -> bool:
        return self.any_major or self.any_minor or self.any_patch

    def __str__(self) -> str:
        return f"{self.op}{self.text}"

    def admits(self, v: Version, allow_prerelease: bool) -> bool:
        """Whether `v` satisfies this atom, with Masterminds' reading of partial versions."""
        if v.prerelease and not allow_prerelease:
            return False
        op = _CANONICAL_OP.get(self.op, self.op)
        c = self.base
        if op == "=":
            return self._tilde(v) if self.partial else v == c
        if op == "~":
            return self._tilde(v)
        if op == "^":
            return self._caret(v)
        if op == "<":
            return v < c
        if op == ">=":
            return v >= c
        if op == ">":
            return self._greater(v)
        if op == "<=":
            return self._less_or_equal(v)
        if op == "!=":
            return self._not_equal(v)
        raise AssertionError(f"unknown operator {self.op!r}")

    def _tilde(self, v: Version) -> bool:
        if v < self.base:
            return False
        c = self.base
        if (c.major, c.minor, c.patch) == (0, 0, 0) and not self.any_minor and not self.any_patch:
            return True  # `~0.0.0` and `*` accept anything at or above 0.0.0
        if v.major != c.major:
            return False
        return self.any_minor or v.minor == c.minor

    def _caret(self, v: Version) -> bool:
        c = self.base
        if v < c:
            return False
        if c.major > 0 or self.any_minor:
            return v.major == c.major
        if v.major > 0:
            return False
        if c.minor > 0 or self.any_patch:
            return v.minor == c.minor
        if v.minor > 0:
            return False
        return v.patch == c.patch

    def _greater(self, v: Version) -> bool:
        c = self.base
        if not self.partial:
            return v > c
        if v.major != c.major:
            return v.major > c.major
        if self.any_minor:
            return False  # `>1` needs 2.0.0 or more
        if self.any_patch:
            return v.minor > c.minor  # `>1.2` needs 1.3.0 or more
        return v > c

    def _less_or_equal(self, v: Version) -> bool:
        c = self.base
        if not self.partial:
            return v <= c
        if v.major > c.major:
            return False
        return not (v.major == c.major and v.minor > c.minor and not self.any_minor)

    def _not_equal(self, v: Version) -> bool:
        c = self.base
        if self.partial:
            if c.major != v.major:
                return True
            if c.minor != v.minor and not self.any_minor:
                return True
            if self.any_minor:
                return False
            if c.patch != v.patch and not self.any_patch:
                return True
            if self.any_patch:
                return (bool(v.prerelease) or bool(c.prerelease)) and v.prerelease != c.prerelease
        return v != c


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A parsed Masterminds constraint: OR groups of AND-ed atoms."""

    text: str  # exactly as given (oc-mirror quotes it verbatim in errors)
    groups: tuple[tuple[_Atom, ...], ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        rewritten = _HYPHEN_RE.sub(lambda m: f">= {m.group(1)}, <= {m.group(2)} ", text)
        groups = tuple(_parse_group(g) for g in rewritten.split("||"))
        return cls(text, groups)

    def contains(self, version: Version) -> bool:
        """Masterminds `Check`: some OR group whose every atom admits the version."""
        for group in self.groups:
            allow_pre = any(atom.base.prerelease for atom in group)
            if all(atom.admits(version, allow_pre) for atom in group):
                return True
        return False

    def __str__(self) -> str:
        """The normalized form Masterminds prints (`>=1.0.0 <=1.9.9`), used in its warnings."""
        return " || ".join(" ".join(str(a) for a in group) for group in self.groups)


def _parse_group(group: str) -> tuple[_Atom, ...]:
    """Atoms of one AND group, separated by whitespace or one comma; anything else is refused."""
    atoms: list[_Atom] = []
    pos, end = 0, len(group)
    while True:
        m = _ATOM_RE.match(group, pos)
        if m is None or not _ends_atom(group, m.end()):
            raise RangeError(f"improper constraint: {go_quote(group)}")
        atoms.append(_atom(m))
        pos = m.end()
        rest = pos
        while rest < end and group[rest] in _WS:
            rest += 1
        if rest == end:
            return tuple(atoms)
        if group[rest] == ",":
            pos = rest + 1
        elif rest == pos:
            raise RangeError(f"improper constraint: {go_quote(group)}")


def _ends_atom(text: str, pos: int) -> bool:
    return pos == len(text) or text[pos] in _WS or text[pos] == ","


def _atom(m: re.Match[str]) -> _Atom:
    major, minor, patch, pre = m.group("major"), m.group("minor"), m.group("patch"), m.group("pre")
    any_major = _is_x(major)
    any_minor = not any_major and _is_x(minor)
    any_patch = not any_major and not any_minor and _is_x(patch)
    suffix = f"-{pre}" if pre else ""
    if any_major:
        base_text = "0.0.0" + suffix
    elif any_minor:
        base_text = f"{major}.0.0{suffix}"
    elif any_patch:
        base_text = f"{major}.{minor}.0{suffix}"
    else:
        base_text = m.group("version")
    try:
        base = Version.parse_lenient(base_text)
    except VersionError:
        raise RangeError(f"improper constraint: {go_quote(m.group(0).strip())}") from None
    return _Atom(m.group("op") or "", m.group("version"), base, any_major, any_minor, any_patch)


def go_quote(text: str) -> str:
    """Go's %q for the plain strings catalog-filter quotes (names, versions, ranges)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def range_from_min_max(min_version: str | None, max_version: str | None) -> str:
    """The constraint oc-mirror builds from minVersion/maxVersion (`filterPackage`), byte for byte."""
    text = f">={min_version}" if min_version else ""
    if max_version:
        text += f" <={max_version}"
    return text


def pinned_version(range_text: str) -> str | None:
    """The version of a `>=X <=X` range (catalog-filter v0.0.5 selects exactly that bundle).

    The comparison is textual, as catalog-filter's: `>=1.2 <=1.2.0` is not a pin.
    """
    parts = range_text.split()
    if len(parts) != 2:
        return None
    low = parts[0].removeprefix(">=")
    high = parts[1].removeprefix("<=")
    return low if low == high else None
