"""The offline device model: would this blueprint boot with every image its operators need?

It does locally what the real builder and the real runtime do, with no network on the device side:

1. lay the blueprint's directories and files into a scratch root (outside OUTDIR, removed after);
2. derive what the image holds as osbuild/images does: one stored name per image, because the
   `org.osbuild.skopeo` stage inputs are keyed by image ID and the last entry wins
   (`pkg/osbuild/containers_input.go`, `newContainersInputForSources`); then store each image once
   with the stage's own command, `skopeo copy SOURCE containers-storage:[overlay@ROOT/usr/share/
   containers/storage+RUNROOT]NAME` (vfs only where overlay cannot mount), and write the
   storage.conf that adds that store as an additional image store (a throw-away run spreads the
   images over two such stores, searched together: `THROWAWAY_SHARDS`);
3. run the boot-time unit edgebuild renders for the other names of one image
   (`render.blueprint.ALIAS_UNIT`), against a scratch /var/lib/containers/storage;
4. look every reference the device asks for up as CRI-O does: containers/image's storage lookup
   (`skopeo inspect containers-storage:REF`, `storage_reference.go` `resolveImage`), not podman's
   lenient `image exists`; the CatalogSource images of the manifests, the selected bundle and
   related images from plan.json, the MicroShift/OLM release images and every `[[containers]]` name;
5. build every manifests directory with `kubectl kustomize`.

Every miss is reported by name with the reason (a name the builder collapses into another, a
digest stored only under another repository); any miss fails the check. An image render left to
the mirror (`embedded: false` in images.json) passes when the rendered drop-in sends it there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import yaml

from .device_store import (
    SCRATCH_ENV,
    Copy,
    DeviceStore,
    Resolution,
    add_names,
    ids_in_several,
    read_store,
    resolve_all,
    scratch_parent,
    shard_of,
    store_copies,
    usable_driver,
)
from .errors import EdgebuildError
from .plan import PlanImage
from .render.blueprint import ALIAS_UNIT, ALIAS_UNIT_PATH
from .render.release_info import read_release_info

DEVICE_STORE = "/usr/share/containers/storage"
# A throw-away run spreads the embedded images over this many stores, which the lookup searches together
# as CRI-O searches its additional image stores: copies into one store wait for each other on its lock
# (bench/RESULTS.md: storing 95 images took 7.8 s in one store, 6.5 s in two). Every lookup answers as it
# would in one store unless one image lands in two stores (`ids_in_several`): then it is stored again,
# into one. A kept --root is the device's layout: one store.
THROWAWAY_SHARDS = 2
HOST_DIR = ".edgebuild-host"  # inside --root: the scratch /var/lib/containers/storage and its storage.conf
MANIFESTS_DIR = "etc/microshift/manifests.d"
ROOT_MARKER = ".edgebuild-verify-root"
SCRATCH_PREFIX = "edgebuild-verify-"
OWNER_FILE = ".owner-pid"  # in a scratch directory: the verify process that made it
Status = Literal["embedded", "mirror", "missing"]


@dataclass(slots=True)
class ImageCheck:
    reference: str
    needed_by: str
    status: Status
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "missing"


@dataclass(slots=True)
class ManifestCheck:
    path: str
    ok: bool
    detail: str = ""


@dataclass(slots=True)
class VerifyReport:
    root: Path
    storage_conf: Path
    kept: bool = True  # False: `root` was a temporary directory, removed when verify finished
    images: list[ImageCheck] = field(default_factory=list)
    manifests: list[ManifestCheck] = field(default_factory=list)
    embedded: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.images) and all(m.ok for m in self.manifests)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "root": str(self.root),
            "rootKept": self.kept,
            "storageConf": str(self.storage_conf),
            "images": [{"reference": i.reference, "neededBy": i.needed_by, "status": i.status,
                        "detail": i.detail} for i in self.images],
            "manifests": [{"path": m.path, "ok": m.ok, "detail": m.detail} for m in self.manifests],
        }

    def format_text(self) -> str:
        where = str(self.root) if self.kept else "a temporary directory, removed (--root DIR keeps it)"
        lines = [f"device root: {where}", f"embedded images: {len(self.embedded)}"]
        for m in self.manifests:
            detail = f": {m.detail}" if m.detail else ""
            lines.append(f"  {'ok     ' if m.ok else 'FAILED '} kustomize {m.path}{detail}")
        for i in sorted(self.images, key=lambda c: (c.ok, c.reference)):
            mark = {"embedded": "found  ", "mirror": "mirror ", "missing": "MISSING"}[i.status]
            lines.append(f"  {mark} {i.reference}  ({i.needed_by})" + (f": {i.detail}" if i.detail else ""))
        misses = sum(not i.ok for i in self.images) + sum(not m.ok for m in self.manifests)
        lines.append("verify: ok, every needed image is on the device" if self.ok
                     else f"verify: FAILED, {misses} problem(s)")
        return "\n".join(lines) + "\n"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise EdgebuildError(f"verify needs '{name}', which is not installed",
                             hint="run scripts/setup.sh (Debian: apt-get install skopeo podman)")
    return path


def _run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def lay_files(blueprint: dict[str, Any], root: Path) -> None:
    """Create the blueprint's directories and files under `root`, as osbuild's mkdir/copy stages do."""
    custom = blueprint.get("customizations") or {}
    for directory in custom.get("directories") or []:
        target = root / directory["path"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        if directory.get("mode"):
            target.chmod(int(directory["mode"], 8))
    for entry in custom.get("files") or []:
        if "data" not in entry:
            raise EdgebuildError(f"blueprint file {entry.get('path')}: only inline 'data' files can be verified")
        target = root / entry["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["data"], encoding="utf-8")
        target.chmod(int(entry.get("mode") or "0644", 8))


def write_device_storage_conf(root: Path) -> None:
    """The storage.conf osbuild writes into the image (`org.osbuild.containers.storage.conf`)."""
    device_conf = root / "etc/containers/storage.conf"
    device_conf.parent.mkdir(parents=True, exist_ok=True)
    device_conf.write_text('[storage]\ndriver = "overlay"\n\n[storage.options]\n'
                           f'additionalimagestores = ["{DEVICE_STORE}"]\n', encoding="utf-8")


@dataclass(frozen=True, slots=True)
class BuilderEntry:
    """One `[[containers]]` entry as osbuild/images stores it."""

    index: int
    source: str
    name: str  # the entry's own local name (`name`, or `source` when empty)
    image: str  # what the builder keys it by: the source's manifest digest
    stored_name: str  # the name the image is stored under (the last entry of that image wins)
    tls_verify: bool | None

    @property
    def collapsed(self) -> bool:
        return self.name != self.stored_name


def builder_entries(blueprint: dict[str, Any]) -> list[BuilderEntry]:
    """The `[[containers]]` entries with the name each image is really stored under.

    osbuild/images resolves each source to an image ID and builds the skopeo stage's inputs as a map
    keyed by that ID (`newContainersInputForSources`: `refs[c.ImageID] = ...`), so entries of one
    image collapse and the last entry's name wins (bpcheck's `stage_local_name` shows the same).
    Here an image is keyed by the source's manifest digest, as bpcheck does.
    """
    raw = []
    for index, container in enumerate(blueprint.get("containers") or []):
        source = container["source"]
        name = container.get("name") or source
        image = source.split("@", 1)[1] if "@" in source else source
        raw.append((index, source, name, image, container.get("tls-verify")))
    last_name = {image: name for _i, _s, name, image, _t in raw}
    return [BuilderEntry(i, src, name, image, last_name[image], tls) for i, src, name, image, tls in raw]


_ALIAS_LINE_RE = re.compile(
    r"^ExecStart=/usr/bin/skopeo copy --quiet containers-storage:(\S+) containers-storage:(\S+)$")


def boot_time_names(root: Path) -> list[tuple[str, str]]:
    """(existing, new) names the rendered boot-time unit adds, read from the laid-out root."""
    unit = root / ALIAS_UNIT_PATH.lstrip("/")
    if not unit.is_file():
        return []
    return [(m.group(1), m.group(2)) for line in unit.read_text(encoding="utf-8").splitlines()
            if (m := _ALIAS_LINE_RE.match(line.strip()))]


def needed_images(outdir: Path, manifests_output: list[dict[str, Any]],
                  release_info: list[Path]) -> dict[str, str]:
    """{reference the device asks for: who needs it} from manifests, plan.json and release-info files."""
    needed: dict[str, str] = {}
    for obj in manifests_output:
        if obj.get("kind") == "CatalogSource":
            image = (obj.get("spec") or {}).get("image")
            if image:
                needed[image] = f"CatalogSource {obj['metadata'].get('name')}"
    plan_file = outdir / "plan.json"
    if plan_file.exists():
        plan = json.loads(plan_file.read_text(encoding="utf-8"))
        for img in plan.get("images", []):
            if img.get("type") == "catalog":
                continue  # the device asks for the catalog by the CatalogSource reference, checked above
            # The same rule render embeds by: name@digest for digest references, the tag for tag references.
            image = PlanImage(source=img["source"], type=img.get("type", "related"), digest=img.get("digest"))
            needed.setdefault(image.device_reference, ", ".join(img.get("neededBy") or [image.type]))
    for path in release_info:
        for rel in read_release_info(Path(path)):
            needed.setdefault(rel.reference, f"release-info {Path(path).name}")
    return needed


def embedded_bytes(outdir: Path) -> int | None:
    """The bytes images.json says are embedded (None when it does not say: an older render, or none)."""
    try:
        images = json.loads((outdir / "images.json").read_text(encoding="utf-8"))
        sizes = [image.get("bytes") for image in images if image.get("embedded", True)]
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    if not sizes or any(not isinstance(size, int) for size in sizes):
        return None
    return sum(sizes)


def not_embedded(outdir: Path) -> set[str]:
    """Device references render left out of the blueprint on purpose (images.json `embedded: false`)."""
    path = outdir / "images.json"
    if not path.exists():
        return set()
    return {i["deviceReference"] for i in json.loads(path.read_text(encoding="utf-8"))
            if i.get("embedded") is False}


def build_manifests(root: Path) -> tuple[list[ManifestCheck], list[dict[str, Any]]]:
    """`kubectl kustomize` every manifests.d directory, as MicroShift applies them at start-up."""
    checks: list[ManifestCheck] = []
    objects: list[dict[str, Any]] = []
    base = root / MANIFESTS_DIR
    dirs = sorted(d for d in base.iterdir() if d.is_dir()) if base.is_dir() else []
    if not dirs:
        return checks, objects
    kubectl = _tool("kubectl")
    for directory in dirs:
        rel = "/" + str(directory.relative_to(root))
        if not any((directory / n).exists() for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")):
            checks.append(ManifestCheck(rel, False, "no kustomization.yaml: MicroShift would skip this directory"))
            continue
        result = _run([kubectl, "kustomize", str(directory)])
        if result.returncode != 0:
            checks.append(ManifestCheck(rel, False, result.stderr.strip().splitlines()[-1] if result.stderr else
                                        f"exit {result.returncode}"))
            continue
        objects.extend(o for o in yaml.safe_load_all(result.stdout) if isinstance(o, dict))
        checks.append(ManifestCheck(rel, True))
    return checks, objects


def _mirror_for(reference: str, root: Path) -> str | None:
    """The mirror a reference resolves to through the rendered drop-ins, if any.

    As containers/image reads them: a digest reference uses any mirror except `pull-from-mirror =
    "tag-only"`; a tag reference only where `mirror-by-digest-only` is false and the mirror is not
    `digest-only`. The longest matching prefix decides.
    """
    by_digest = "@" in reference
    name = reference.split("@", 1)[0]
    if not by_digest and name.rfind(":") > name.rfind("/"):
        name = name[:name.rfind(":")]
    best: tuple[int, str] | None = None
    conf_dir = root / "etc/containers/registries.conf.d"
    for conf in sorted(conf_dir.glob("*.conf")) if conf_dir.is_dir() else []:
        data = tomllib.loads(conf.read_text(encoding="utf-8"))
        for reg in data.get("registry", []):
            prefix = reg.get("prefix") or reg.get("location") or ""
            if not (name == prefix or name.startswith(prefix.rstrip("/") + "/")):
                continue
            if not by_digest and reg.get("mirror-by-digest-only", False):
                continue
            allowed = ("all", "digest-only") if by_digest else ("all", "tag-only")
            usable = [m for m in reg.get("mirror") or [] if m.get("pull-from-mirror", "all") in allowed]
            if usable and (best is None or len(prefix) > best[0]):
                best = (len(prefix), usable[0]["location"])
    return best[1] if best else None


def _fresh_root(root: Path) -> None:
    """Clear a device root from an earlier run; never a directory edgebuild did not lay out itself."""
    if not root.exists():
        return
    if not root.is_dir() or (any(root.iterdir()) and not (root / ROOT_MARKER).is_file()):
        raise EdgebuildError(f"--root {root} exists and was not laid out by edgebuild verify; it is left alone",
                             hint="give a new or empty directory, or leave --root out "
                                  "(a temporary directory, removed after)")
    shutil.rmtree(root)


class _Progress:
    """One line per step on stderr (verify can take a while on a large image set)."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.start = time.monotonic()

    def __call__(self, text: str) -> None:
        if self.out is not None:
            self.out.write(f"verify: {text} ({time.monotonic() - self.start:.1f} s)\n")
            self.out.flush()


def _prepare_root(outdir: Path, root: Path | None) -> tuple[Path, Path, bool]:
    """(device root, host-side scratch, remove after?). The scratch never lies inside OUTDIR."""
    if root is None:
        parent = scratch_parent(embedded_bytes(outdir))
        if parent is not None and _inside(parent, outdir):
            raise EdgebuildError(f"{SCRATCH_ENV}={parent} lies inside OUTDIR {outdir}; the device store stays out "
                                 "of the output", hint=f"point {SCRATCH_ENV} at a directory outside OUTDIR")
        _remove_orphans(Path(parent or tempfile.gettempdir()))
        try:
            scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=parent))
            (scratch / OWNER_FILE).write_text(f"{os.getpid()}\n", encoding="utf-8")
        except OSError as exc:
            raise EdgebuildError(f"cannot make verify's scratch directory in {parent or tempfile.gettempdir()}: "
                                 f"{exc.strerror}", hint=f"set {SCRATCH_ENV} (or TMPDIR) to a writable directory "
                                                         "with room for the embedded images") from None
        device_root = scratch / "root"
        device_root.mkdir()
        return device_root.resolve(), (scratch / "host").resolve(), True
    root = Path(root).resolve()
    if _inside(root, outdir):
        raise EdgebuildError(f"--root {root} lies inside OUTDIR {outdir}; the device store stays out of the output",
                             hint="give a directory outside OUTDIR, or leave --root out (a temporary directory)")
    _fresh_root(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / ROOT_MARKER).write_text("a device root laid out by edgebuild verify; replaced on every run\n")
    return root, root / HOST_DIR, False


def _remove_orphans(parent: Path) -> None:
    """Remove the scratch stores of verify runs that were killed (their owner process is gone): in
    memory, a store left behind would hold RAM until the next reboot."""
    for scratch in parent.glob(SCRATCH_PREFIX + "*"):
        try:
            owner = int((scratch / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not one of ours, or still being made: leave it
        if owner == os.getpid() or _alive(owner):
            continue
        shutil.rmtree(scratch, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _inside(path: Path, outdir: Path) -> bool:
    path, outdir = Path(path).resolve(), outdir.resolve()
    return path == outdir or outdir in path.parents


def _stored_elsewhere(reference: str, stores: list[tuple[Path, str]]) -> list[str]:
    """Names under which the digest of `reference` is stored (what podman's lenient lookup would accept)."""
    if "@" not in reference:
        return []
    digest = reference.split("@", 1)[1]
    names: list[str] = []
    for store_root, driver in stores:
        stored = read_store(store_root, driver)
        for image_id, digests in stored.digests.items():
            if digest in digests:
                names += stored.names.get(image_id, [])
    return names


def _miss_detail(reference: str, resolution: Resolution | None, collapsed: list[BuilderEntry],
                 elsewhere: list[str], mirror: str | None) -> str:
    if collapsed:
        entry = collapsed[0]
        return (f"containers[{entry.index}] asks for it, but osbuild stores one name per image and keeps "
                f"{entry.stored_name!r} for {entry.image}; render one entry per image (edgebuild render does)")
    if elsewhere:
        return (f"stored only as {', '.join(sorted(elsewhere))}: podman's lenient lookup would find it, CRI-O's "
                "storage lookup does not (a digest resolves only under a repository the image is stored with)")
    if "@" not in reference:
        return ("referenced by tag, and no image is embedded under that tag: the device would pull the tag, "
                "which an offline device cannot" + (f" (from {mirror})" if mirror else ""))
    detail = "not in the image store under this reference"
    return detail + (f"; the drop-in would pull it from {mirror}, which an offline device cannot reach" if mirror
                     else "; and no drop-in mirror covers it")


def _store_embedded(entries: list[BuilderEntry], stores: list[DeviceStore], authfile: str | None,
                    arch: str | None, say: _Progress) -> None:
    """Each entry's image into one of `stores` (`shard_of` its name), with the skopeo stage's command."""
    done = [0]

    def stored(_source: str, name: str) -> None:
        done[0] += 1
        say(f"embedding {done[0]}/{len(entries)} {name}")
    copies = [Copy(stores[shard_of(e.stored_name, len(stores))], f"docker://{e.source}", e.stored_name,
                   e.tls_verify is not False) for e in entries]
    store_copies(copies, authfile=authfile, arch=arch, on_done=stored)


def verify(outdir: Path, *, root: Path | None = None, release_info: list[Path] | None = None,
           authfile: str | None = None, arch: str | None = None, progress: TextIO | None | str = "stderr",
           keep: bool = False) -> VerifyReport:
    """Build the device's image store from OUTDIR/blueprint.toml as osbuild would and check it offline."""
    outdir = Path(outdir)
    blueprint_file = outdir / "blueprint.toml"
    if not blueprint_file.exists():
        raise EdgebuildError(f"{blueprint_file} does not exist",
                             hint="run 'edgebuild render' or 'edgebuild build' first")
    blueprint = tomllib.loads(blueprint_file.read_text(encoding="utf-8"))
    say = _Progress(sys.stderr if progress == "stderr" else progress)  # type: ignore[arg-type]
    root, host, remove = _prepare_root(outdir, root)
    try:
        shards = THROWAWAY_SHARDS if remove and not keep else 1
        report = _verify_in(outdir, blueprint, root, host, list(release_info or []), authfile, arch, say, shards)
        report.kept = keep or not remove
        return report
    finally:
        if remove and not keep:
            shutil.rmtree(root.parent, ignore_errors=True)
        elif remove:  # kept on purpose: no longer an orphan for the next run to remove
            (root.parent / OWNER_FILE).unlink(missing_ok=True)


def _verify_in(outdir: Path, blueprint: dict[str, Any], root: Path, host: Path, release_info: list[Path],
               authfile: str | None, arch: str | None, say: _Progress, shards: int = 1) -> VerifyReport:
    host.mkdir(parents=True, exist_ok=True)
    lay_files(blueprint, root)
    write_device_storage_conf(root)
    driver = usable_driver(host)
    blobs_tmp = host / "tmp"
    blobs_tmp.mkdir(exist_ok=True)
    entries = builder_entries(blueprint)
    to_store = {e.image: e for e in entries if not e.collapsed}
    shards = max(1, min(shards, len(to_store)))
    image_stores = [DeviceStore(root / DEVICE_STORE.lstrip("/"), host / "build-run", driver, tmpdir=blobs_tmp)]
    image_stores += [DeviceStore(host / f"embedded-{i}", host / f"build-run-{i}", driver, tmpdir=blobs_tmp)
                     for i in range(1, shards)]
    where = f"scratch store in {host.parent}" + (f", spread over {shards} stores" if shards > 1 else "")
    say(f"storing {len(to_store)} image(s) of {len(entries)} [[containers]] entries ({driver} driver, {where})")
    device_store = image_stores[0]  # the one the device has, at /usr/share/containers/storage in the root
    _store_embedded(list(to_store.values()), image_stores, authfile, arch, say)
    # A store no copy went to does not exist, and containers-storage refuses a missing additional store.
    image_stores = [store for store in image_stores if store.root.is_dir()]
    if len(image_stores) > 1 and ids_in_several(image_stores):
        say("one image landed in two stores (two manifests of one image ID): storing again into one store")
        for store in image_stores:
            shutil.rmtree(store.root, ignore_errors=True)
            shutil.rmtree(store.runroot, ignore_errors=True)
        image_stores = [device_store]
        _store_embedded(list(to_store.values()), image_stores, authfile, arch, say)
    runtime = DeviceStore(host / "var-lib-containers-storage", host / "run-containers-storage", driver,
                          additional=tuple(store.root for store in image_stores))
    (host / "storage.conf").write_text(runtime.storage_conf(), encoding="utf-8")
    report = VerifyReport(root=root, storage_conf=host / "storage.conf")
    report.embedded = [e.stored_name for e in to_store.values()]
    aliases = boot_time_names(root)
    if aliases:
        say(f"adding {len(aliases)} boot-time name(s) ({ALIAS_UNIT})")
        add_names(runtime, aliases)

    report.manifests, objects = build_manifests(root)
    needed = needed_images(outdir, objects, release_info)
    for entry in entries:
        needed.setdefault(entry.name, f"blueprint containers[{entry.index}]")
    say(f"looking up {len(needed)} reference(s) as CRI-O does")
    found = resolve_all(runtime, sorted(needed))
    left_to_mirror = not_embedded(outdir)
    stores = [(store.root, driver) for store in (*image_stores, runtime)]
    for reference, needed_by in sorted(needed.items()):
        resolution = found.get(reference)
        if resolution is not None and resolution.ok:
            report.images.append(ImageCheck(reference, needed_by, "embedded"))
            continue
        mirror = _mirror_for(reference, root)
        if reference in left_to_mirror and mirror:
            report.images.append(ImageCheck(reference, needed_by, "mirror",
                                            f"not embedded (--embed/--no-embed); the device pulls it from {mirror}"))
            continue
        collapsed = [e for e in entries if e.name == reference and e.collapsed]
        detail = _miss_detail(reference, resolution, collapsed, _stored_elsewhere(reference, stores), mirror)
        report.images.append(ImageCheck(reference, needed_by, "missing", detail))
    say("done: " + ("ok" if report.ok else f"{sum(not i.ok for i in report.images)} image problem(s)"))
    return report
