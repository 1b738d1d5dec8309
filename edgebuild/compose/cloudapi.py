"""The Cloud API's JSON shapes: a Weldr TOML blueprint as a Cloud API `Blueprint`, and the ComposeRequest.

The Cloud API (`/api/image-builder-composer/v2`, composer-cloudapi-openapi.v2.yml) carries the
legacy blueprint as JSON, but not byte for byte:
- containers spell `tls-verify` as `tls_verify` and have no `local-storage` (Weldr drops that field
  before it reaches the worker too, so it is dropped here with a warning);
- `architecture` is not a blueprint field: it becomes the image request's `architecture`;
- files are `BlueprintFile` (path, mode, user, group, data): no `uri` and no `ensure_parents`;
- users have no `expiredate` or `force_password_reset`; the installer has no `kickstart`;
- `containers-storage`, `firstboot`, `iso` and `sshd` customizations do not exist;
- services lists must be non-empty (`minItems: 1`), so empty lists are left out;
- filesystem `minsize` is a string with units (`"2 GiB"`), so an integer byte count becomes its string.
Anything that would change the image when dropped is an error that names the key, so a Cloud API
compose never builds something else than the Weldr compose of the same file would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import BlueprintConversionError

# Keys of each object the Cloud API accepts, by component name in the OpenAPI document.
_TOP = ("name", "description", "version", "distro", "packages", "modules", "enabled_modules", "groups",
        "containers", "customizations")
_PACKAGE = ("name", "version")
_GROUP = ("name",)
_MODULE = ("name", "stream")
_SSHKEY = ("user", "key")
_USER = ("name", "description", "password", "key", "home", "shell", "groups", "uid", "gid")
_USER_GROUP = ("name", "gid")
_KERNEL = ("name", "append")
_TIMEZONE = ("timezone", "ntpservers")
_LOCALE = ("languages", "keyboard")
_FIREWALL_SERVICES = ("enabled", "disabled")
_ZONE = ("name", "sources")
_DIRECTORY = ("path", "mode", "user", "group", "ensure_parents")
_FILE = ("path", "mode", "user", "group", "data")
_REPOSITORY = ("id", "baseurls", "gpgkeys", "metalink", "mirrorlist", "name", "priority", "enabled", "gpgcheck",
               "repo_gpgcheck", "sslverify", "filename", "module_hotfixes")
_FDO = ("manufacturing_server_url", "diun_pub_key_insecure", "diun_pub_key_hash", "diun_pub_key_root_certs",
        "di_mfg_string_type_mac_iface")
_INSTALLER = ("unattended", "sudo-nopasswd")
_CACERTS = ("pem_certs",)
# Objects whose inner shape is the same in TOML and JSON; the schema test checks them as a whole.
_SAME_SHAPE = ("disk", "dnf", "openscap", "ignition", "rpm", "rhsm")
_SCALARS = ("hostname", "installation_device", "partitioning_mode", "fips")


@dataclass
class CloudBlueprint:
    """A blueprint ready for a Cloud API ComposeRequest, plus what the conversion had to say."""

    blueprint: dict[str, Any]
    architecture: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def distro(self) -> str | None:
        value = self.blueprint.get("distro")
        return value if isinstance(value, str) and value else None


class _Converter:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.problems: list[str] = []

    def pick(self, obj: Any, allowed: Sequence[str], where: str,
             why: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Keep `allowed` keys of a table; every other key is a problem (the image would differ)."""
        if not isinstance(obj, Mapping):
            self.problems.append(f"{where}: expected a table, got {type(obj).__name__}")
            return {}
        for key in obj:
            if key not in allowed:
                reason = (why or {}).get(key, "the Cloud API has no such field")
                self.problems.append(f"{where}.{key}: {reason}")
        return {k: obj[k] for k in allowed if k in obj}

    def pick_list(self, items: Any, allowed: Sequence[str], where: str,
                  why: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        if not isinstance(items, list):
            self.problems.append(f"{where}: expected an array of tables")
            return []
        return [self.pick(item, allowed, f"{where}[{i}]", why) for i, item in enumerate(items)]

    def containers(self, items: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if not isinstance(items, list):
            self.problems.append("containers: expected an array of tables")
            return out
        for i, item in enumerate(items):
            where = f"containers[{i}]"
            if not isinstance(item, Mapping):
                self.problems.append(f"{where}: expected a table")
                continue
            entry = {k: item[k] for k in ("source", "name") if k in item}
            if "tls-verify" in item:
                entry["tls_verify"] = item["tls-verify"]
            if item.get("local-storage"):
                self.warnings.append(f"{where}.local-storage dropped: the Cloud API has no such field and the "
                                     f"worker pulls {item.get('source', '?')} from its registry")
            for key in item:
                if key not in ("source", "name", "tls-verify", "local-storage"):
                    self.problems.append(f"{where}.{key}: the Cloud API has no such field")
            out.append(entry)
        return out

    def files(self, items: Any) -> list[dict[str, Any]]:
        plain = []
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, Mapping) and "ensure_parents" in item:
                self.warnings.append(f"customizations.files[{i}].ensure_parents dropped: files have no such field "
                                     "(Weldr ignores it too); add a [[customizations.directories]] entry instead")
                item = {k: v for k, v in item.items() if k != "ensure_parents"}
            plain.append(item)
        if not isinstance(items, list):
            self.problems.append("customizations.files: expected an array of tables")
        return self.pick_list(plain, _FILE, "customizations.files",
                              {"uri": "the Cloud API takes file contents only as 'data' (a uri names a file on "
                                      "the composer host); inline the contents as data"})

    def filesystems(self, items: Any) -> list[dict[str, Any]]:
        out = self.pick_list(items, ("mountpoint", "minsize"), "customizations.filesystem")
        for entry in out:
            if isinstance(entry.get("minsize"), int):
                entry["minsize"] = str(entry["minsize"])
        return out

    def services(self, obj: Any) -> dict[str, Any] | None:
        picked = self.pick(obj, ("enabled", "disabled", "masked"), "customizations.services")
        kept = {k: v for k, v in picked.items() if v}
        return kept or None

    def firewall(self, obj: Any) -> dict[str, Any]:
        out = self.pick(obj, ("ports", "services", "zones"), "customizations.firewall")
        if "services" in out:
            out["services"] = self.pick(out["services"], _FIREWALL_SERVICES, "customizations.firewall.services")
        if "zones" in out:
            out["zones"] = self.pick_list(out["zones"], _ZONE, "customizations.firewall.zones")
        return out

    def customizations(self, obj: Any) -> dict[str, Any]:
        if not isinstance(obj, Mapping):
            self.problems.append("customizations: expected a table")
            return {}
        handlers: dict[str, Callable[[Any], Any]] = {
            "kernel": lambda v: self.pick(v, _KERNEL, "customizations.kernel"),
            "sshkey": lambda v: self.pick_list(v, _SSHKEY, "customizations.sshkey"),
            "user": lambda v: self.pick_list(v, _USER, "customizations.user", {
                "expiredate": "the Cloud API BlueprintUser has no expiredate; set it in a first-boot script",
                "force_password_reset": "the Cloud API BlueprintUser has no force_password_reset"}),
            "group": lambda v: self.pick_list(v, _USER_GROUP, "customizations.group"),
            "timezone": lambda v: self.pick(v, _TIMEZONE, "customizations.timezone"),
            "locale": lambda v: self.pick(v, _LOCALE, "customizations.locale"),
            "firewall": self.firewall,
            "services": self.services,
            "filesystem": self.filesystems,
            "fdo": lambda v: self.pick(v, _FDO, "customizations.fdo"),
            "directories": lambda v: self.pick_list(v, _DIRECTORY, "customizations.directories"),
            "files": self.files,
            "repositories": lambda v: self.pick_list(v, _REPOSITORY, "customizations.repositories"),
            "installer": lambda v: self.pick(v, _INSTALLER, "customizations.installer", {
                "kickstart": "the Cloud API Installer has no kickstart; use Weldr for a kickstart"}),
            "cacerts": lambda v: self.pick(v, _CACERTS, "customizations.cacerts"),
        }
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key in handlers:
                converted = handlers[key](value)
                if converted is not None:
                    out[key] = converted
            elif key in _SAME_SHAPE or key in _SCALARS:
                out[key] = value
            else:
                self.problems.append(f"customizations.{key}: the Cloud API blueprint has no such customization; "
                                     "compose this blueprint through Weldr (--socket) instead")
        return out


def blueprint_to_cloud(data: Mapping[str, Any], source: str = "blueprint") -> CloudBlueprint:
    """Convert a parsed Weldr TOML blueprint into the Cloud API `Blueprint` object.

    Raises BlueprintConversionError listing every key the Cloud API cannot carry.
    """
    conv = _Converter()
    out: dict[str, Any] = {}
    architecture = data.get("architecture")
    for key, value in data.items():
        if key == "architecture":
            continue
        if key not in _TOP:
            conv.problems.append(f"{key}: the Cloud API blueprint has no such field")
        elif key in ("packages", "modules"):
            out[key] = conv.pick_list(value, _PACKAGE, key)
        elif key == "groups":
            out[key] = conv.pick_list(value, _GROUP, key)
        elif key == "enabled_modules":
            out[key] = conv.pick_list(value, _MODULE, key)
        elif key == "containers":
            out[key] = conv.containers(value)
        elif key == "customizations":
            out[key] = conv.customizations(value)
        else:
            out[key] = value
    if conv.problems:
        raise BlueprintConversionError(
            f"{source} cannot be sent to the Cloud API without changing the image:\n"
            + "\n".join(f"  - {p}" for p in conv.problems),
            hint="change those keys, or compose through the Weldr API (--socket) which takes the TOML as is")
    return CloudBlueprint(blueprint=out, architecture=architecture if isinstance(architecture, str) else None,
                          warnings=conv.warnings)


def compose_request(blueprint: CloudBlueprint, image_type: str, *, distribution: str, architecture: str,
                    ref: str | None = None, parent: str | None = None, url: str | None = None,
                    repositories: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A ComposeRequest for one image that composer keeps for download (upload target `local`).

    An empty `repositories` list means the distribution's default repositories, as weldr-client
    sends it; pass Repository objects ({"baseurl": ..., "rhsm": ...}) for extra ones (rhocp, fast-datapath).
    """
    image_request: dict[str, Any] = {
        "architecture": architecture,
        "image_type": image_type,
        "repositories": [dict(r) for r in repositories],
        "upload_targets": [{"type": "local", "upload_options": {}}],
    }
    ostree = {k: v for k, v in (("ref", ref), ("parent", parent), ("url", url)) if v}
    if ostree:
        image_request["ostree"] = ostree
    return {"distribution": distribution, "blueprint": blueprint.blueprint, "image_request": image_request}
