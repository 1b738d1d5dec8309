"""`--target bootc`: OUT as a Containerfile and its build context instead of a blueprint.

The device files are the blueprint path's (rendered by `render_outputs` into a staging directory);
the blueprints are replaced by a Containerfile, the boot-time copy unit and script, the
bootc-image-builder `config.toml`, and the image store: every embedded image as a `dir:` copy
(digests preserved) in `images/<sha256 of the reference>/`, with `images/images.list` mapping every
name the device asks for to its copy. This follows the MicroShift docs' "fully self-contained bootc
image" (physically bound images): one subdirectory per image named by the SHA of the reference
string, an image list, and a unit that copies them into the container storage at boot.

edgebuild fills the store itself from the mirror (the copy engine's client, digests verified) so
the build needs no registry credentials and no network: `podman build` only COPYs the context.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import tomlkit

from ..config import ImageSetConfig
from ..errors import UsageError
from ..plan import Plan
from ..reference import ImageReference, ReferenceError
from ..registry.dirtransport import DirImage, is_complete
from .blueprint import ALIAS_UNIT_PATH, MICROSHIFT_PORTS, MICROSHIFT_TRUSTED_SOURCES, TEMPLATE_DIR, check_version_pin
from .options import RenderOptions, RenderResult
from .output import _check_replaceable as check_replaceable_output
from .output import _microshift_version, _swap_in, render_outputs
from .release_info import read_release_info

CONTAINERFILE = "Containerfile"
CONFIG_TOML = "config.toml"
STORE_DIR = "images"
IMAGE_LIST = "images.list"
DEVICE_STORE = "/usr/lib/containers/edgebuild-images"
UNIT = "edgebuild-embedded-images.service"
SCRIPT_NAME = "edgebuild-copy-embedded-images"
SCRIPT = f"/usr/libexec/edgebuild/{SCRIPT_NAME}"
PLAN_DIR = "/usr/share/edgebuild"
PACKAGES = ("microshift", "microshift-olm", "microshift-release-info")
_SIZE_RE = re.compile(r"^[0-9]+ ?(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?$")
_DISTRO_RE = re.compile(r"^rhel-(9|10)(\d+)$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

# (reference to pull from the mirror, directory to fill) -> what was written
Fetch = Callable[[str, Path], DirImage]


@dataclass(slots=True)
class BootcOptions:
    """The bootc side of a render: base image and what bootc-image-builder's config.toml carries."""

    base_image: str | None = None
    users: list[str] = field(default_factory=list)
    ssh_keys: list[Path] = field(default_factory=list)
    kickstart: Path | None = None
    filesystems: list[str] = field(default_factory=list)  # MOUNTPOINT=SIZE, e.g. /=20 GiB


@dataclass(frozen=True, slots=True)
class StoreEntry:
    """One `dir:` copy and every device reference that is copied from it at boot."""

    pull: str
    subdir: str
    names: tuple[str, ...]


def default_base_image(distro: str) -> tuple[str, str | None]:
    """(base image, warning): the rhel-bootc image of the distro's minor; RHEL 9.6 for older minors."""
    match = _DISTRO_RE.match(distro)
    if match and match.group(1) == "10":
        return f"registry.redhat.io/rhel10/rhel-bootc:10.{match.group(2)}", None
    if match and int(match.group(2)) >= 6:
        return f"registry.redhat.io/rhel9/rhel-bootc:9.{match.group(2)}", None
    return ("registry.redhat.io/rhel9/rhel-bootc:9.6",
            f"--distro {distro}: MicroShift in image mode needs RHEL 9.6 or later; the base is rhel-bootc:9.6 "
            "(pass --base-image to choose another)")


def store_entries(images_json: list[dict[str, object]]) -> list[StoreEntry]:
    """Group the embedded images by where they are pulled from: one copy, every name it is asked by."""
    names: dict[str, list[str]] = {}
    for item in images_json:
        if item.get("embedded") is False:
            continue
        names.setdefault(str(item["pullFrom"]), []).append(str(item["deviceReference"]))
    return [StoreEntry(pull, hashlib.sha256(pull.encode()).hexdigest(), tuple(sorted(set(refs))))
            for pull, refs in sorted(names.items())]


def image_list_text(entries: list[StoreEntry]) -> str:
    lines = ["# edgebuild image list: REFERENCE SUBDIRECTORY (a dir: copy under this directory)\n"]
    lines += [f"{name} {entry.subdir}\n" for entry in entries for name in entry.names]
    return "".join(lines)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), undefined=jinja2.StrictUndefined,
                             autoescape=False, keep_trailing_newline=True)
    return env


def render_containerfile(base_image: str, microshift_version: str | None) -> str:
    try:
        ImageReference.parse(base_image)
    except ReferenceError as exc:
        raise UsageError(f"--base-image: {exc}") from None
    if microshift_version:
        check_version_pin(microshift_version)
    return _environment().get_template("Containerfile.j2").render(
        base_image=base_image, version=microshift_version or "", packages=PACKAGES,
        ports=[p.replace(":", "/") for p in MICROSHIFT_PORTS], trusted=MICROSHIFT_TRUSTED_SOURCES,
        store=DEVICE_STORE, unit=UNIT, script=SCRIPT, script_name=SCRIPT_NAME, plan_dir=PLAN_DIR)


def render_boot_files() -> dict[str, str]:
    """{context path: text} of the boot-time copy: the systemd unit and its script."""
    env = _environment()
    values = {"store": DEVICE_STORE, "list_name": IMAGE_LIST, "unit": UNIT, "script": SCRIPT}
    return {f"bootc/{SCRIPT_NAME}": env.get_template("bootc/copy-embedded-images.sh.j2").render(**values),
            f"bootc/{UNIT}": env.get_template("bootc/embedded-images.service.j2").render(**values)}


def render_builder_config(options: BootcOptions) -> str:
    """bootc-image-builder's config.toml: users with SSH keys, filesystem sizes, an installer kickstart."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment("bootc-image-builder configuration rendered by edgebuild (--config /config.toml)"))
    custom = tomlkit.table(is_super_table=True)
    keys = [_read_key(path) for path in options.ssh_keys]
    if keys and not options.users:
        raise UsageError("--bootc-ssh-key needs --bootc-user NAME: the key is installed for that user")
    users = tomlkit.aot()
    for name in options.users:
        if not _USER_RE.match(name):
            raise UsageError(f"--bootc-user {name!r}: not a valid user name (lower case letters, digits, _ and -)")
        user = tomlkit.table()
        user.update({"name": name, "groups": ["wheel"]})
        if keys:
            user["key"] = "\n".join(keys)
        users.append(user)
    if len(users):
        custom["user"] = users
    filesystems = tomlkit.aot()
    for spec in options.filesystems:
        mount, sep, size = spec.partition("=")
        if not sep or not mount.startswith("/") or not _SIZE_RE.match(size.strip()):
            raise UsageError(f"--bootc-filesystem {spec!r}: expected MOUNTPOINT=SIZE, e.g. /=20 GiB or /var=10 GiB")
        fs = tomlkit.table()
        fs.update({"mountpoint": mount, "minsize": size.strip()})
        filesystems.append(fs)
    if len(filesystems):
        custom["filesystem"] = filesystems
    if options.kickstart is not None:
        try:
            text = options.kickstart.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--bootc-kickstart {options.kickstart}: cannot read it: {exc}") from None
        custom["installer"] = {"kickstart": {"contents": tomlkit.string(text, multiline=True)}}
    if len(custom):
        doc["customizations"] = custom
    return tomlkit.dumps(doc)


def _read_key(path: Path) -> str:
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--bootc-ssh-key {path}: cannot read it: {exc}") from None
    if not text.startswith(("ssh-", "ecdsa-", "sk-")) or "PRIVATE KEY" in text:
        raise UsageError(f"--bootc-ssh-key {path}: not an SSH public key (expected a line such as 'ssh-ed25519 …')",
                         "give the .pub file, never the private key")
    return text


def _check_replaceable(outdir: Path) -> None:
    """An earlier bootc output (plan.json + Containerfile) may be replaced, as an earlier blueprint output may."""
    if not ((outdir / "plan.json").is_file() and (outdir / CONTAINERFILE).is_file()):
        check_replaceable_output(outdir)


def _reuse_earlier(outdir: Path, entry: StoreEntry, target: Path) -> bool:
    """Hard-link a complete copy of an earlier run (same pull reference) instead of fetching it again."""
    earlier = outdir / STORE_DIR / entry.subdir
    if "@" not in entry.pull or not is_complete(earlier):
        return False  # a tag may point elsewhere now; a digest reference's copy cannot change
    target.mkdir(parents=True)
    for item in earlier.iterdir():
        if item.is_file() and not item.name.startswith("."):
            try:
                (target / item.name).hardlink_to(item)
            except OSError:
                shutil.copy2(item, target / item.name)
    return True


@dataclass(slots=True)
class BootcResult:
    render: RenderResult
    containerfile: Path
    builder_config: Path
    entries: list[StoreEntry]
    embedded_bytes: int
    copied: int
    warnings: list[str] = field(default_factory=list)


def render_bootc_outputs(plan: Plan, config: ImageSetConfig, options: RenderOptions, bootc: BootcOptions,
                         outdir: Path, fetch: Fetch) -> BootcResult:
    """Render OUT for `podman build`: device files, Containerfile, boot-time copy, config.toml, image store.

    Everything goes to a sibling staging directory first; OUT is replaced only when all of it, the
    image copies included, is complete.
    """
    outdir = Path(outdir).resolve()
    _check_replaceable(outdir)
    warnings: list[str] = []
    base = bootc.base_image
    if not base:
        base, warning = default_base_image(options.distro)
        if warning:
            warnings.append(warning)
    builder_config = render_builder_config(bootc)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.bootc-", dir=outdir.parent))
    try:
        tree = staging / "out"
        result = render_outputs(plan, config, options, tree)
        for name in ("blueprint.toml", "blueprint-installer.toml"):
            (tree / name).unlink()
        # The blueprint path's second-name unit reads osbuild's additional image store, which a bootc
        # image does not have: here the boot-time copy gives every name (images.list).
        (tree / "files" / ALIAS_UNIT_PATH.lstrip("/")).unlink(missing_ok=True)
        containerfile = render_containerfile(base, _pinned_version(options))
        (tree / CONTAINERFILE).write_text(containerfile, encoding="utf-8")
        for rel, text in render_boot_files().items():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (tree / rel).write_text(text, encoding="utf-8")
        (tree / CONFIG_TOML).write_text(builder_config, encoding="utf-8")
        entries = store_entries(json.loads((tree / "images.json").read_text(encoding="utf-8")))
        store = tree / STORE_DIR
        store.mkdir()
        copied = 0
        by_digest: dict[str, StoreEntry] = {}
        kept: list[StoreEntry] = []
        for entry in entries:
            target = store / entry.subdir
            if not _reuse_earlier(outdir, entry, target):
                fetch(entry.pull, target)
                copied += 1
            digest = "sha256:" + hashlib.sha256((target / "manifest.json").read_bytes()).hexdigest()
            if digest in by_digest:  # the same image pulled under another name: one copy, both names
                shutil.rmtree(target)
                first = by_digest[digest]
                kept[kept.index(first)] = first = StoreEntry(first.pull, first.subdir,
                                                             tuple(sorted({*first.names, *entry.names})))
                by_digest[digest] = first
                continue
            by_digest[digest] = entry
            kept.append(entry)
        entries = kept
        (store / IMAGE_LIST).write_text(image_list_text(entries), encoding="utf-8")
        embedded = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
        _swap_in(tree, outdir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result.outdir = outdir
    result.warnings = [w for w in result.warnings if "blueprint" not in w] + warnings
    return BootcResult(result, outdir / CONTAINERFILE, outdir / CONFIG_TOML, entries, embedded, copied,
                       result.warnings)


def _pinned_version(options: RenderOptions) -> str | None:
    """The pin the blueprint path uses: as asked, else the release-info base (RPMs match the images)."""
    releases = [image for path in options.release_info for image in read_release_info(path)]
    return _microshift_version(options.microshift_version, releases, [])


def shell_join(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
