"""The osbuild blueprints: built as data, rendered from Jinja2 templates, parsed back and checked.

Templates live in `blueprints/` at the repository root (packaged through the `edgebuild/blueprints` link). Every value goes through a TOML filter
(`toml`, or `toml_text` for file contents); the environment refuses any other output, so nothing
reaches the TOML text unescaped. After rendering, the text is parsed with tomllib and must equal
the data it was rendered from, then pass `policy.check_blueprint`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import tomlkit

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


def edge_blueprint(name: str, description: str, version: str, distro: str, microshift_version: str | None,
                   directories: list[DeviceDirectory], files: list[DeviceFile],
                   images: list[EmbeddedImage]) -> dict[str, Any]:
    """The edge-commit/edge-container blueprint as data, in the legacy TOML key spelling."""
    packages: list[dict[str, Any]] = []
    for pkg in MICROSHIFT_PACKAGES:
        entry: dict[str, Any] = {"name": pkg}
        if microshift_version:
            entry["version"] = microshift_version
        packages.append(entry)
    containers = []
    for image in images:
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
            "services": {"enabled": ["microshift"]},
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
