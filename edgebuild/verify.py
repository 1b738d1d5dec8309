"""The offline device model: would this blueprint boot with every image its operators need?

It does locally what osbuild does when it builds the image, then checks the result the way the
device would use it, with no network:

1. lay the blueprint's directories and files into a root folder;
2. copy each `[[containers]]` image with skopeo into `<root>/usr/share/containers/storage` under the
   name osbuild gives it (`name`, or `source` when `name` is empty), and write the storage.conf that
   makes it an additional image store (osbuild's `org.osbuild.containers.storage.conf` stage);
3. in a new network namespace (`unshare -n`), ask podman for every image the device needs — the
   CatalogSource images of the manifests, the selected bundle and related images from plan.json,
   the MicroShift/OLM release images — by exactly the reference the device will use;
4. build every manifests directory with `kubectl kustomize`.

Every miss is reported by name with the reason; any miss fails the check. An image the user chose
not to embed (`render --no-embed`) passes when the rendered drop-in sends it to the mirror.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import EdgebuildError
from .plan import PlanImage
from .render.release_info import read_release_info

DEVICE_STORE = "/usr/share/containers/storage"
MANIFESTS_DIR = "etc/microshift/manifests.d"
ROOT_MARKER = ".edgebuild-verify-root"
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
            "storageConf": str(self.storage_conf),
            "images": [{"reference": i.reference, "neededBy": i.needed_by, "status": i.status,
                        "detail": i.detail} for i in self.images],
            "manifests": [{"path": m.path, "ok": m.ok, "detail": m.detail} for m in self.manifests],
        }

    def format_text(self) -> str:
        lines = [f"device root: {self.root}", f"embedded images: {len(self.embedded)}"]
        for m in self.manifests:
            lines.append(f"  {'ok     ' if m.ok else 'FAILED '} kustomize {m.path}" + (f": {m.detail}" if m.detail else ""))
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


def write_storage_confs(root: Path, workdir: Path) -> Path:
    """Write the device's storage.conf into the root, and a host view of it for checking.

    The device file is what osbuild writes (additional store at /usr/share/containers/storage). The
    host view points the same additional store into `root`, with an empty primary store, so podman
    on this machine sees exactly the images the device would see.
    """
    device_conf = root / "etc/containers/storage.conf"
    device_conf.parent.mkdir(parents=True, exist_ok=True)
    device_conf.write_text('[storage]\ndriver = "overlay"\n\n[storage.options]\n'
                           f'additionalimagestores = ["{DEVICE_STORE}"]\n', encoding="utf-8")
    host_conf = workdir / "storage.conf"
    host_conf.write_text(
        "[storage]\n"
        'driver = "vfs"\n'
        f'runroot = "{workdir / "runroot"}"\n'
        f'graphroot = "{workdir / "graphroot"}"\n\n'
        "[storage.options]\n"
        f'additionalimagestores = ["{root / DEVICE_STORE.lstrip("/")}"]\n', encoding="utf-8")
    return host_conf


def embed_containers(blueprint: dict[str, Any], root: Path, workdir: Path, *, authfile: str | None = None,
                     arch: str | None = None) -> list[str]:
    """skopeo-copy every [[containers]] image into the root's image store; return the local names."""
    skopeo = _tool("skopeo")
    store = root / DEVICE_STORE.lstrip("/")
    store.mkdir(parents=True, exist_ok=True)
    runroot = workdir / "embed-runroot"
    names = []
    containers = blueprint.get("containers") or []
    for number, container in enumerate(containers, 1):
        source = container["source"]
        name = container.get("name") or source
        logging.getLogger("edgebuild").info("verify: embedding %d/%d %s", number, len(containers), name)
        cmd = [skopeo, "copy", "--quiet", "--retry-times", "2"]
        if container.get("tls-verify") is False:
            cmd.append("--src-tls-verify=false")
        if authfile:
            cmd += ["--src-authfile", authfile]
        if arch:
            cmd += ["--override-arch", arch]
        cmd += [f"docker://{source}", f"containers-storage:[vfs@{store}+{runroot}]{name}"]
        result = _run(cmd)
        if result.returncode != 0:
            raise EdgebuildError(f"cannot embed {source} as {name}: {result.stderr.strip()}",
                                 hint="is the mirror running and does it hold the image? "
                                      "(the build host pulls [[containers]] sources from it)")
        names.append(name)
    return names


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


def find_offline(references: list[str], storage_conf: Path, workdir: Path) -> set[str]:
    """The references podman finds in the image stores, asked in a new network namespace."""
    if not references:
        return set()
    podman = _tool("podman")
    _tool("unshare")
    env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(storage_conf)}
    script = 'for r in "$@"; do if "$P" image exists "$r"; then echo "found $r"; fi; done'
    result = _run(["unshare", "-n", "sh", "-c", script, "sh", *references], env={**env, "P": podman})
    if result.returncode != 0:
        raise EdgebuildError(f"offline check failed to run: {result.stderr.strip()}",
                             hint="verify runs 'unshare -n' and needs root (or user namespaces)")
    return {line[6:] for line in result.stdout.splitlines() if line.startswith("found ")}


def _mirror_for(reference: str, root: Path) -> str | None:
    """The mirror a digest reference resolves to through the rendered drop-ins, if any."""
    if "@" not in reference:
        return None
    best: tuple[int, str] | None = None
    conf_dir = root / "etc/containers/registries.conf.d"
    for conf in sorted(conf_dir.glob("*.conf")) if conf_dir.is_dir() else []:
        data = tomllib.loads(conf.read_text(encoding="utf-8"))
        for reg in data.get("registry", []):
            prefix = reg.get("prefix") or reg.get("location") or ""
            mirrors = reg.get("mirror") or []
            name = reference.split("@", 1)[0]
            if mirrors and (name == prefix or name.startswith(prefix.rstrip("/") + "/")):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), mirrors[0]["location"])
    return best[1] if best else None


def _fresh_root(root: Path) -> None:
    """Clear a device root from an earlier run; never a directory edgebuild did not lay out itself."""
    if not root.exists():
        return
    if not root.is_dir() or (any(root.iterdir()) and not (root / ROOT_MARKER).is_file()):
        raise EdgebuildError(f"--root {root} exists and was not laid out by edgebuild verify; it is left alone",
                             hint="give a new or empty directory, or leave --root out (OUTDIR/.verify/root)")
    shutil.rmtree(root)


def verify(outdir: Path, *, root: Path | None = None, release_info: list[Path] | None = None,
           authfile: str | None = None, arch: str | None = None) -> VerifyReport:
    """Build the device root from OUTDIR/blueprint.toml and check it offline."""
    outdir = Path(outdir)
    blueprint_file = outdir / "blueprint.toml"
    if not blueprint_file.exists():
        raise EdgebuildError(f"{blueprint_file} does not exist", hint="run 'edgebuild render' or 'edgebuild build' first")
    blueprint = tomllib.loads(blueprint_file.read_text(encoding="utf-8"))
    workdir = outdir / ".verify"
    root = Path(root) if root else workdir / "root"
    _fresh_root(root)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / ROOT_MARKER).write_text("a device root laid out by edgebuild verify; replaced on every run\n")
    root, workdir = root.resolve(), workdir.resolve()

    lay_files(blueprint, root)
    storage_conf = write_storage_confs(root, workdir)
    report = VerifyReport(root=root, storage_conf=storage_conf)
    report.embedded = embed_containers(blueprint, root, workdir, authfile=authfile, arch=arch)
    report.manifests, objects = build_manifests(root)
    needed = needed_images(outdir, objects, list(release_info or []))
    found = find_offline(sorted(needed), storage_conf, workdir)
    left_to_mirror = not_embedded(outdir)
    for reference, needed_by in sorted(needed.items()):
        if reference in found:
            report.images.append(ImageCheck(reference, needed_by, "embedded"))
            continue
        if "@" not in reference:
            report.images.append(ImageCheck(reference, needed_by, "missing",
                                            "referenced by tag, and no image is embedded under that tag: the "
                                            "device would pull the tag, which an offline device cannot"))
            continue
        mirror = _mirror_for(reference, root)
        if reference in left_to_mirror and mirror:
            report.images.append(ImageCheck(reference, needed_by, "mirror",
                                            f"not embedded (--no-embed); the device pulls it from {mirror}"))
            continue
        detail = "not in the image store under this reference"
        detail += f"; the drop-in would pull it from {mirror}, which an offline device cannot reach" if mirror else \
            "; and no drop-in mirror covers it"
        report.images.append(ImageCheck(reference, needed_by, "missing", detail))
    return report
