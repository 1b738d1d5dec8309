"""The osbuild blueprints: built as data, rendered from Jinja2 templates, parsed back and checked.

Templates live in `blueprints/` at the repository root (packaged through the `edgebuild/blueprints`
link). Every value goes through a TOML filter (`toml`, or `toml_text` for file contents); the
environment refuses any other output, so nothing reaches the TOML text unescaped. After rendering,
the text is parsed with tomllib and must equal the data it was rendered from, then pass
`policy.check_blueprint`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import tomlkit

from ..reference import ImageReference
from .errors import BlueprintError, RenderError
from .policy import check_blueprint

# blueprints/ at the repository root, reached through the edgebuild/blueprints link so that it also
# ships inside the package (package-data) when installed from a wheel.
TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "blueprints"
EDGE_TEMPLATE = "edge.toml.j2"
INSTALLER_TEMPLATE = "installer.toml.j2"

MICROSHIFT_PACKAGES = ("microshift", "microshift-olm", "microshift-greenboot")
# MicroShift's API, router, mDNS and NodePorts; pod network and the OVN gateway address are trusted.
MICROSHIFT_PORTS = ["6443:tcp", "80:tcp", "443:tcp", "5353:udp", "30000-32767:tcp", "30000-32767:udp"]
MICROSHIFT_TRUSTED_SOURCES = ["10.42.0.0/16", "169.254.169.1", "fd01::/48"]
_VERSION_PIN_RE = re.compile(r"^[0-9][0-9A-Za-z.*~_+-]*$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class DeviceFile:
    path: str
    data: str
    mode: str = "0644"
    user: str = "root"
    group: str = "root"


@dataclass(frozen=True, slots=True)
class DeviceDirectory:
    path: str
    ensure_parents: bool = True


@dataclass(frozen=True, slots=True)
class EmbeddedImage:
    """`source` is where the build host pulls; `name` the reference the device asks for."""

    source: str
    name: str
    tls_verify: bool | None
    kind: str
    origin: str  # the reference as the catalog, configuration or release info gives it


class _Toml(str):
    """Text that a TOML filter produced; the only kind of value the templates may output."""


def _toml(value: Any) -> _Toml:
    return _Toml(tomlkit.item(value).as_string())


def _toml_text(value: str) -> _Toml:
    """A multi-line literal string when the text allows one (readable YAML/INI), else escaped."""
    if ("'''" in value or value.startswith("\n") or value.endswith("'") or _CONTROL_RE.search(value)
            or "\r" in value):
        return _toml(value)
    return _Toml("'''\n" + value + "'''")


def _finalize(value: Any) -> Any:
    if isinstance(value, _Toml):
        return value
    raise RenderError(f"blueprint template printed {value!r} without a TOML filter (toml or toml_text)")


def _environment() -> jinja2.Environment:
    if not TEMPLATE_DIR.is_dir():
        raise RenderError(f"blueprint templates not found in {TEMPLATE_DIR}",
                          "run edgebuild from its source tree or reinstall it with the blueprints/ directory")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                             autoescape=False, keep_trailing_newline=True, finalize=_finalize)
    env.filters["toml"] = _toml
    env.filters["toml_text"] = _toml_text
    return env


def check_version_pin(version: str) -> None:
    if not _VERSION_PIN_RE.match(version):
        raise BlueprintError([f"microshift version {version!r} must be a package version such as 4.17.1 or 4.17.*"])


ALIAS_UNIT = "edgebuild-image-names.service"
ALIAS_UNIT_PATH = f"/etc/systemd/system/{ALIAS_UNIT}"
_ALIAS_EXEC = "ExecStart=/usr/bin/skopeo copy --quiet containers-storage:{existing} containers-storage:{new}"


@dataclass(frozen=True, slots=True)
class StoredImage:
    """One `[[containers]]` entry: the image osbuild stores once, under `name`.

    `aliases` are the other names the device asks for: (existing reference, new tag name) pairs
    that the boot-time unit adds before CRI-O starts. `covers` lists every device reference the
    stored name and the aliases make resolvable.
    """

    source: str
    name: str
    tls_verify: bool | None
    covers: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()


def _alias_tag(digest: str) -> str:
    """The tag a digest-only second name is stored under (a digest name cannot be added on the device)."""
    return digest.replace(":", "-")


def stored_images(images: list[EmbeddedImage]) -> list[StoredImage]:
    """One entry per image (manifest digest), named so that every device reference resolves.

    osbuild/images keys the skopeo stage's inputs by image ID (`newContainersInputForSources`,
    `refs[c.ImageID]`, the last entry wins), so entries of one image collapse into one stored
    name. containers/image's storage lookup finds `repo@D` for an image stored as `repo:tag`, so
    the stored name is a tag reference whenever the device asks for one. Names under other
    repositories (or other tags) become aliases added at boot by `ALIAS_UNIT`.
    """
    groups: dict[str, list[EmbeddedImage]] = {}
    for image in images:
        digest = ImageReference.parse(image.source).digest or image.source
        groups.setdefault(digest, []).append(image)
    out = []
    for digest, members in groups.items():
        refs = list(dict.fromkeys(m.name for m in members))
        parsed = [ImageReference.parse(r) for r in refs]
        primary = next((r for r, p in zip(refs, parsed, strict=True) if p.tag), refs[0])
        primary_ref = ImageReference.parse(primary)
        named = {primary_ref.name}
        existing = f"{primary_ref.name}@{primary_ref.digest or digest}"
        aliases: list[tuple[str, str]] = []
        # Tags first: a tag alias also makes that repository's digest references resolve.
        for ref, p in sorted(zip(refs, parsed, strict=True), key=lambda rp: rp[1].tag is None):
            if ref == primary or (p.tag is None and p.name in named):
                continue
            new = f"{p.name}:{p.tag}" if p.tag else f"{p.name}:{_alias_tag(p.digest or digest)}"
            if p.tag and (p.name, p.tag) == (primary_ref.name, primary_ref.tag):
                continue
            aliases.append((existing, new))
            named.add(p.name)
        out.append(StoredImage(members[0].source, primary, members[0].tls_verify, tuple(refs), tuple(aliases)))
    return out


def alias_unit(stored: list[StoredImage]) -> str | None:
    """The systemd unit that adds the second names, or None when no image needs one.

    Tested with skopeo 1.9.3: copying `containers-storage:A` to `containers-storage:B`, with A in
    the read-only additional store, adds an image record for B in /var/lib/containers/storage
    that reuses A's layers (nothing is copied), and `B@D` then resolves by the storage lookup.
    """
    lines = [_ALIAS_EXEC.format(existing=a, new=n) for s in stored for a, n in s.aliases]
    if not lines:
        return None
    return ("# Written by edgebuild. One image is embedded once (osbuild stores one name per image); the\n"
            "# device also asks for it under the names below, added before CRI-O and MicroShift start.\n"
            "[Unit]\nDescription=edgebuild: add the other names of embedded container images\n"
            "After=local-fs.target\nBefore=crio.service microshift.service\n\n"
            "[Service]\nType=oneshot\nRemainAfterExit=yes\n" + "\n".join(lines) + "\n\n"
            "[Install]\nWantedBy=multi-user.target crio.service\n")


def edge_blueprint(name: str, description: str, version: str, distro: str, microshift_version: str | None,
                   directories: list[DeviceDirectory], files: list[DeviceFile],
                   images: list[EmbeddedImage]) -> dict[str, Any]:
    """The edge-commit/edge-container blueprint as data, in the legacy TOML key spelling."""
    stored = stored_images(images)
    unit = alias_unit(stored)
    package_names = list(MICROSHIFT_PACKAGES)
    services = ["microshift"]
    files = list(files)
    if unit:
        package_names.append("skopeo")
        services.append(ALIAS_UNIT)
        files.append(DeviceFile(ALIAS_UNIT_PATH, unit))
    packages: list[dict[str, Any]] = []
    for pkg in package_names:
        entry: dict[str, Any] = {"name": pkg}
        if microshift_version and pkg in MICROSHIFT_PACKAGES:
            entry["version"] = microshift_version
        packages.append(entry)
    containers = []
    for image in stored:
        entry = {"source": image.source, "name": image.name}
        if image.tls_verify is not None:
            entry["tls-verify"] = image.tls_verify
        containers.append(entry)
    return {
        "name": name,
        "description": description,
        "version": version,
        "distro": distro,
        "packages": packages,
        "containers": containers,
        "customizations": {
            "services": {"enabled": services},
            "firewall": {"ports": list(MICROSHIFT_PORTS),
                         "zones": [{"name": "trusted", "sources": list(MICROSHIFT_TRUSTED_SOURCES)}]},
            "directories": [{"path": d.path, "ensure_parents": d.ensure_parents} for d in directories],
            "files": [{"path": f.path, "mode": f.mode, "user": f.user, "group": f.group, "data": f.data}
                      for f in files],
        },
    }


def installer_blueprint(name: str, description: str, version: str, distro: str) -> dict[str, Any]:
    """edge-installer takes only distro and a few customizations: nothing else is rendered."""
    return {"name": name, "description": description, "version": version, "distro": distro, "packages": []}


def render_blueprint(doc: dict[str, Any], template: str = EDGE_TEMPLATE) -> str:
    """TOML text of `doc`, checked: it must parse back to exactly `doc` and pass the blueprint rules."""
    problems = check_blueprint(doc)
    if problems:
        raise BlueprintError(problems)
    text = _environment().get_template(template).render(bp=doc)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RenderError(f"rendered blueprint {doc.get('name')} is not valid TOML: {exc}") from None
    if parsed != doc:
        differing = sorted(k for k in set(parsed) | set(doc) if parsed.get(k) != doc.get(k))
        raise RenderError(f"rendered blueprint {doc.get('name')} does not parse back to its data "
                          f"(differs in {', '.join(differing)}); the template {template} is wrong")
    problems = check_blueprint(parsed)
    if problems:
        raise BlueprintError(problems)
    return text
