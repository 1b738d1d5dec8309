"""The offline device model for image mode: would this bootc image boot with every image it needs?

The same questions as the blueprint path's `verify`, asked of a bootc OUT (before `podman build`) or
of a built image (`--image`):

1. the image list covers every reference the device asks for (CatalogSource images from the
   manifests, the plan's bundle, related and additional images, release-info images);
2. the boot-time copy runs offline — the rendered script on OUT's store in a new network namespace,
   or the image's own script inside `podman run --network none` of the built image — into a scratch
   container storage;
3. every reference then resolves by containers/image's storage lookup, as CRI-O does it
   (`skopeo inspect containers-storage:[vfs@ROOT+RUNROOT]REF`);
4. every manifests directory builds with `kubectl kustomize`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import EdgebuildError
from .render.bootc import DEVICE_STORE, IMAGE_LIST, PLAN_DIR, SCRIPT, SCRIPT_NAME, STORE_DIR, UNIT
from .verify import ImageCheck, VerifyReport, build_manifests, needed_images, not_embedded

SCRATCH_IN_CONTAINER = "/var/lib/edgebuild-verify"


def read_image_list(path: Path) -> dict[str, str]:
    """{reference: subdirectory} of an image list file."""
    if not path.is_file():
        raise EdgebuildError(f"{path}: the image list is missing", hint="render again with --target bootc")
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            ref, _, subdir = line.partition(" ")
            out[ref] = subdir.strip()
    return out


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise EdgebuildError(f"verify needs '{name}', which is not installed", hint="run scripts/setup.sh")
    return path


def _storage_conf(path: Path, graphroot: str, runroot: str) -> Path:
    path.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{graphroot}"\nrunroot = "{runroot}"\n',
                    encoding="utf-8")
    return path


@contextmanager
def mounted_image(image: str) -> Iterator[Path]:
    """The built image's filesystem, read-only through `podman image mount` (root)."""
    podman = _tool("podman")
    result = subprocess.run([podman, "image", "mount", image], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EdgebuildError(f"--image {image}: cannot mount it: {result.stderr.strip()}",
                             hint="build it first (edgebuild compose OUT or podman build), and run verify as root")
    try:
        yield Path(result.stdout.strip())
    finally:
        subprocess.run([podman, "image", "unmount", image], capture_output=True, check=False)


def run_boot_copy(workdir: Path, *, outdir: Path | None = None, image: str | None = None) -> tuple[int, str]:
    """Run the boot-time copy offline into the scratch storage under `workdir`: (exit code, output)."""
    (workdir / "graphroot").mkdir(parents=True, exist_ok=True)
    if image is not None:
        _storage_conf(workdir / "storage.conf", f"{SCRATCH_IN_CONTAINER}/graphroot", f"{SCRATCH_IN_CONTAINER}/runroot")
        cmd = [_tool("podman"), "run", "--rm", "--network", "none", "--pull=never",
               "-v", f"{workdir}:{SCRATCH_IN_CONTAINER}",
               "-e", f"CONTAINERS_STORAGE_CONF={SCRATCH_IN_CONTAINER}/storage.conf",
               "--entrypoint", SCRIPT, image]
        env = None
    else:
        assert outdir is not None
        conf = _storage_conf(workdir / "host-storage.conf", str(workdir / "graphroot"), str(workdir / "runroot"))
        cmd = [_tool("unshare"), "-n", "sh", str(outdir / "bootc" / SCRIPT_NAME)]
        env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf),
               "EDGEBUILD_IMAGE_STORE": str(outdir / STORE_DIR)}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    return result.returncode, (result.stdout + result.stderr).strip()


def resolves(reference: str, graphroot: Path, runroot: Path) -> tuple[bool, str]:
    """containers/image's storage lookup of `reference`, as CRI-O asks for an image."""
    result = subprocess.run([_tool("skopeo"), "inspect", "--raw",
                             f"containers-storage:[vfs@{graphroot}+{runroot}]{reference}"],
                            capture_output=True, text=True, check=False)
    return result.returncode == 0, result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""


def verify_bootc(outdir: Path | None, *, image: str | None = None, release_info: list[Path] | None = None,
                 workdir: Path | None = None) -> VerifyReport:
    """Check a bootc OUT, or the built `image` (its own plan when OUT is not given)."""
    if outdir is None and image is None:
        raise EdgebuildError("verify needs OUT or --image IMAGE")
    # The model's store is scratch, outside OUT (OUT is a build context): removed when the check ends.
    scratch = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="edgebuild-verify-bootc-"))
    try:
        return _verify_in(outdir, image, release_info or [], scratch.resolve())
    finally:
        if workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def _verify_in(outdir: Path | None, image: str | None, release_info: list[Path], scratch: Path) -> VerifyReport:
    if image is not None:
        with mounted_image(image) as rootfs:
            plan_dir = outdir or rootfs / PLAN_DIR.lstrip("/")
            report = _check(rootfs, rootfs / DEVICE_STORE.lstrip("/") / IMAGE_LIST, plan_dir, scratch,
                            release_info, image=image)
            report.kept = False  # the image's file system, unmounted when the check ends
            return report
    assert outdir is not None
    if not (outdir / "Containerfile").is_file():
        raise EdgebuildError(f"{outdir}: no Containerfile", hint="render it with --target bootc")
    return _check(outdir / "files", outdir / STORE_DIR / IMAGE_LIST, outdir, scratch, release_info, outdir=outdir)


def _check(root: Path, image_list: Path, plan_dir: Path, scratch: Path, release_info: list[Path], *,
           outdir: Path | None = None, image: str | None = None) -> VerifyReport:
    listed = read_image_list(image_list)
    report = VerifyReport(root=root, storage_conf=scratch / "storage.conf")
    report.embedded = sorted(listed)
    report.manifests, objects = build_manifests(root)
    needed = needed_images(plan_dir, objects, release_info)
    left_to_mirror = not_embedded(plan_dir)
    code, output = run_boot_copy(scratch, outdir=outdir, image=image)
    graphroot, runroot = scratch / "graphroot", scratch / "runroot-check"
    for reference, needed_by in sorted(needed.items()):
        if reference in left_to_mirror and reference not in listed:
            report.images.append(ImageCheck(reference, needed_by, "mirror",
                                            "not embedded (--no-embed); the device pulls it from the mirror"))
            continue
        if reference not in listed:
            report.images.append(ImageCheck(reference, needed_by, "missing",
                                            f"not in the image list {image_list.name}: {UNIT} never copies it"))
            continue
        found, why = resolves(reference, graphroot, runroot)
        if found:
            report.images.append(ImageCheck(reference, needed_by, "embedded"))
        else:
            detail = f"in the image list, but the boot-time copy did not make it resolvable ({why})"
            if code != 0:
                detail += f"; {SCRIPT} failed: {output.splitlines()[-1] if output else f'exit {code}'}"
            report.images.append(ImageCheck(reference, needed_by, "missing", detail))
    return report
