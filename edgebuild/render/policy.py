"""The rules osbuild-composer applies to a blueprint, checked before anything is written.

Facts from osbuild/blueprint, osbuild/images and osbuild-composer (see
reference/osbuild-microshift.md §1): Weldr's name pattern, semver versions, fsnode path and mode
rules, the ostree path policies (files only under /etc, /root, /usr/local/bin, /usr/local/sbin and
never /etc/fstab, passwd, shadow, group; directories only under /etc), no duplicate paths and no
file that is the parent of another node. Every problem names the entry and the rule; all of them
are reported at once.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from ..reference import ImageReference, ReferenceError

NAME_RE = re.compile(r"^[a-zA-Z0-9._-]+$")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
DISTRO_RE = re.compile(r"^[a-z][a-z0-9]*-[0-9][0-9.]*$")
# Distributions osbuild/images knows that have edge-commit, edge-container and edge-installer, from
# osbuild/images 1146ec23c data/distrodefs/rhel.yaml (the `match` patterns of rhel-8, rhel-9 and their
# rebuilds; rhel-10, centos-10 and fedora have no edge image types) and checked one by one with
# ../shared/tools/osbuild-images/bpcheck (tests/test_device_distro.py). `rhel-9` alone is no distribution.
EDGE_DISTROS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("rhel-8.N (or rhel-8N)", re.compile(r"^rhel-8\.?[0-9]{1,2}$")),
    ("rhel-9.N (or rhel-9N)", re.compile(r"^rhel-9\.?[0-9]{1,2}$")),
    ("centos-8", re.compile(r"^centos-8$")),
    ("centos-9", re.compile(r"^centos-9$")),
    ("almalinux-8.N", re.compile(r"^almalinux-8\.[0-9]{1,2}$")),
    ("almalinux-9.N", re.compile(r"^almalinux-9\.[0-9]{1,2}$")),
    ("rocky-8.N", re.compile(r"^rocky-8\.[0-9]{1,2}$")),
    ("rocky-9.N", re.compile(r"^rocky-9\.[0-9]{1,2}$")),
)
EDGE_IMAGE_TYPES = ("edge-commit", "edge-container", "edge-installer")


def distro_problem(distro: str, image_type: str = "edge-commit") -> str | None:
    """Why osbuild would refuse `distro` for an edge image type, or None when it builds it."""
    if image_type in EDGE_IMAGE_TYPES and not any(p.match(distro) for _, p in EDGE_DISTROS):
        valid = ", ".join(label for label, _ in EDGE_DISTROS)
        return (f"distro {distro!r} has no {image_type} image type in osbuild/images (a distribution needs its "
                f"minor version, e.g. rhel-9.6; rhel-10 has no edge types); valid: {valid}")
    return None
MODE_RE = re.compile(r"^0?[0-7]{3}$")
USER_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}$")
GROUP_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,31}$")

# path -> allowed; the longest component-wise prefix decides (osbuild/images pkg/policies).
OSTREE_FILE_POLICY: dict[str, bool] = {
    "/": False, "/etc": True, "/root": True, "/usr/local/bin": True, "/usr/local/sbin": True,
    "/etc/fstab": False, "/etc/shadow": False, "/etc/passwd": False, "/etc/group": False,
}
OSTREE_DIRECTORY_POLICY: dict[str, bool] = {"/": False, "/etc": True}

# Keys of the legacy (Weldr TOML) blueprint that the Cloud API `Blueprint` also has.
_TOP_KEYS = {"name", "description", "version", "distro", "packages", "modules", "enabled_modules",
             "groups", "containers", "customizations"}
_CUSTOMIZATION_KEYS = {"hostname", "kernel", "sshkey", "user", "group", "timezone", "locale", "firewall",
                       "services", "filesystem", "disk", "dnf", "installation_device", "partitioning_mode",
                       "fdo", "openscap", "ignition", "directories", "files", "repositories", "fips",
                       "installer", "rpm", "rhsm", "cacerts"}
_CONTAINER_KEYS = {"source", "name", "tls-verify"}
_FILE_KEYS = {"path", "mode", "user", "group", "data"}
_DIRECTORY_KEYS = {"path", "mode", "user", "group", "ensure_parents"}

# What each image type takes from a blueprint (osbuild/images data/distrodefs/rhel-9/imagetypes.yaml).
_OSTREE_COMMIT = {"distro", "packages", "modules", "groups", "enabled_modules", "containers",
                  "customizations.dnf", "customizations.directories", "customizations.files",
                  "customizations.fips", "customizations.firewall", "customizations.user",
                  "customizations.sshkey", "customizations.group", "customizations.hostname",
                  "customizations.kernel", "customizations.locale", "customizations.repositories",
                  "customizations.services", "customizations.timezone", "customizations.rhsm"}
_OSTREE_DISK = {"distro", "customizations.directories", "customizations.files", "customizations.fips",
                "customizations.user", "customizations.group", "customizations.sshkey",
                "customizations.kernel", "customizations.disk", "customizations.installation_device",
                "customizations.fdo", "customizations.ignition", "customizations.locale",
                "customizations.timezone", "customizations.partitioning_mode"}
SUPPORTED_OPTIONS: dict[str, set[str]] = {
    "edge-commit": _OSTREE_COMMIT,
    "edge-container": _OSTREE_COMMIT,
    "edge-installer": {"distro", "customizations.installer", "customizations.user", "customizations.sshkey",
                       "customizations.group", "customizations.fips", "customizations.timezone",
                       "customizations.locale"},
    "edge-raw-image": _OSTREE_DISK,
    "edge-simplified-installer": _OSTREE_DISK,
}
_ALWAYS = {"name", "description", "version"}


def path_allowed(path: str, policy: dict[str, bool]) -> bool:
    """Longest component-wise prefix of `path` in `policy` decides."""
    best, allowed = "", policy.get("/", False)
    for prefix, ok in policy.items():
        if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
            if len(prefix) > len(best):
                best, allowed = prefix, ok
    return allowed


def _check_path(path: Any, where: str) -> list[str]:
    if not isinstance(path, str):
        return [f"{where}: path must be a string"]
    if not path:
        return [f"{where}: path is empty"]
    problems = []
    if not path.startswith("/"):
        problems.append(f"{where}: path {path!r} must be absolute")
    if path != "/" and path.endswith("/"):
        problems.append(f"{where}: path {path!r} must not end with '/'")
    elif posixpath.normpath(path) != path or path.startswith("//"):
        problems.append(f"{where}: path {path!r} is not clean (write {posixpath.normpath(path)!r})")
    return problems


def _check_owner_mode(entry: dict[str, Any], where: str) -> list[str]:
    problems = []
    if "mode" in entry:
        mode = entry["mode"]
        if not isinstance(mode, str):
            problems.append(f"{where}: mode must be a string such as \"0644\", not {type(mode).__name__} {mode!r}")
        elif not MODE_RE.match(mode):
            problems.append(f"{where}: mode {mode!r} must match ^0?[0-7]{{3}}$ (permission bits only)")
    for key, pattern in (("user", USER_RE), ("group", GROUP_RE)):
        value = entry.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            problems.append(f"{where}: {key} must be a name or a numeric id")
        elif isinstance(value, int) and value < 0:
            problems.append(f"{where}: {key} id {value} must not be negative")
        elif isinstance(value, str) and not pattern.match(value):
            problems.append(f"{where}: {key} {value!r} is not a valid {key} name")
    return problems


def _unknown(entry: dict[str, Any], allowed: set[str], where: str) -> list[str]:
    extra = sorted(set(entry) - allowed)
    if not extra:
        return []
    hint = " (TOML spells it tls-verify; tls_verify is the Cloud API JSON key)" if "tls_verify" in extra else ""
    return [f"{where}: unknown key(s) {', '.join(extra)}{hint}"]


def check_blueprint(doc: dict[str, Any], ostree: bool = True) -> list[str]:
    """Every problem of a parsed legacy blueprint; empty when osbuild would accept it."""
    problems: list[str] = []
    problems += _unknown(doc, _TOP_KEYS, "blueprint")
    name = doc.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append(f"name {name!r} must match ^[a-zA-Z0-9._-]+$ (osbuild-composer ValidBlueprintName)")
    version = doc.get("version")
    if version is not None and (not isinstance(version, str) or not SEMVER_RE.match(version)):
        problems.append(f"version {version!r} must be Semantic Versioning, e.g. 1.0.0")
    distro = doc.get("distro")
    if distro is not None and (not isinstance(distro, str) or not DISTRO_RE.match(distro)):
        problems.append(f"distro {distro!r} must look like rhel-94 or centos-9")
    elif ostree and isinstance(distro, str) and (problem := distro_problem(distro)):
        problems.append(problem)
    for key in ("packages", "modules"):
        for i, pkg in enumerate(doc.get(key) or []):
            if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str) or not pkg["name"]:
                problems.append(f"{key}[{i}]: name is required")
            elif set(pkg) - {"name", "version"}:
                problems += _unknown(pkg, {"name", "version"}, f"{key}[{i}] ({pkg['name']})")
    problems += _check_containers(doc.get("containers") or [])
    custom = doc.get("customizations") or {}
    problems += _unknown(custom, _CUSTOMIZATION_KEYS, "customizations")
    problems += _check_fsnodes(custom.get("directories") or [], custom.get("files") or [], ostree)
    return problems


def _check_containers(containers: list[Any]) -> list[str]:
    problems = []
    local_names: dict[str, int] = {}
    for i, c in enumerate(containers):
        where = f"containers[{i}]"
        if not isinstance(c, dict):
            problems.append(f"{where}: must be a table")
            continue
        where += f" ({c.get('source')})"
        problems += _unknown(c, _CONTAINER_KEYS, where)
        source = c.get("source")
        try:
            if not ImageReference.parse(source if isinstance(source, str) else "").digest:
                problems.append(f"{where}: source has no digest; pull every image by digest so the build is "
                                "reproducible and the embedded image is the one the plan verified")
        except ReferenceError as exc:
            problems.append(f"{where}: source: {exc}")
            continue
        # The name may be a tag: it is what the device asks for (a CSV that names a tag asks CRI-O for it).
        name = str(c.get("name") or source)
        try:
            ImageReference.parse(name)
        except ReferenceError as exc:
            problems.append(f"{where}: name: {exc}")
        if "tls-verify" in c and not isinstance(c["tls-verify"], bool):
            problems.append(f"{where}: tls-verify must be true or false")
        if name in local_names:
            problems.append(f"{where}: lands on the device as {name!r}, like containers[{local_names[name]}]")
        local_names.setdefault(name, i)
    return problems


def _check_fsnodes(directories: list[Any], files: list[Any], ostree: bool) -> list[str]:
    problems: list[str] = []
    seen: dict[str, str] = {}
    file_paths: list[tuple[str, str]] = []
    nodes: list[tuple[str, str]] = []
    for kind, entries, allowed_keys, policy in (
            ("directories", directories, _DIRECTORY_KEYS, OSTREE_DIRECTORY_POLICY),
            ("files", files, _FILE_KEYS, OSTREE_FILE_POLICY)):
        for i, entry in enumerate(entries):
            where = f"customizations.{kind}[{i}]"
            if not isinstance(entry, dict):
                problems.append(f"{where}: must be a table")
                continue
            path = entry.get("path")
            where += f" ({path})"
            problems += _unknown(entry, allowed_keys, where)
            path_problems = _check_path(path, where)
            problems += path_problems
            problems += _check_owner_mode(entry, where)
            if kind == "files" and "data" in entry and not isinstance(entry["data"], str):
                problems.append(f"{where}: data must be a string")
            if kind == "directories" and "ensure_parents" in entry and not isinstance(entry["ensure_parents"], bool):
                problems.append(f"{where}: ensure_parents must be true or false")
            if path_problems or not isinstance(path, str):
                continue
            if ostree and not path_allowed(path, policy):
                allowed = ", ".join(p for p, ok in policy.items() if ok)
                problems.append(f"{where}: {kind} may not be written to {path} on edge (ostree) images; "
                                f"allowed under {allowed}" + (", and never /etc/fstab, /etc/passwd, /etc/shadow, "
                                                              "/etc/group" if kind == "files" else ""))
            if path in seen:
                problems.append(f"{where}: duplicate path, already used by {seen[path]}")
            else:
                seen[path] = where
            nodes.append((path, where))
            if kind == "files":
                file_paths.append((path, where))
    for fpath, fwhere in file_paths:
        for npath, nwhere in nodes:
            if npath.startswith(fpath + "/"):
                problems.append(f"{fwhere}: is a file but {nwhere} lies below it")
    return problems


def unsupported_options(doc: dict[str, Any], image_type: str) -> list[str]:
    """Parts of `doc` that `image_type` ignores (osbuild warns and drops them)."""
    supported = SUPPORTED_OPTIONS.get(image_type)
    if supported is None:
        return [f"image type {image_type!r} is not one edgebuild knows; "
                f"known: {', '.join(sorted(SUPPORTED_OPTIONS))}"]
    present = {k for k, v in doc.items() if k != "customizations" and v not in (None, [], {})}
    present |= {f"customizations.{k}" for k, v in (doc.get("customizations") or {}).items() if v not in (None, [], {})}
    ignored = sorted(present - supported - _ALWAYS)
    return [f"{image_type} ignores {key} of blueprint {doc.get('name')}" for key in ignored]

