"""Image mode: `podman build` of a rendered OUT, then bootc-image-builder for an ISO / qcow2 / raw disk.

The commands are built here once and either run (podman is real on the build host) or printed for a
pipeline to run, so the printed text and what runs are the same argv.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import EdgebuildError, UsageError

DISK_TYPES = ("anaconda-iso", "qcow2", "raw", "vmdk")
DEFAULT_TAG = "localhost/edgebuild-microshift:latest"


def builder_image(base_image: str) -> str:
    """The bootc-image-builder of the base's RHEL major (the builder must match the OS it builds)."""
    return ("registry.redhat.io/rhel10/bootc-image-builder:latest" if "/rhel10/" in base_image
            else "registry.redhat.io/rhel9/bootc-image-builder:latest")


def podman_build_command(outdir: Path, tag: str, *, authfile: str | None = None,
                         build_args: list[str] | None = None, extra: list[str] | None = None) -> list[str]:
    """`podman build` of OUT: the auth file is the pull secret for the base image only (the embedded
    images are already in the context, so no credential enters the build)."""
    cmd = ["podman", "build", "-t", tag, "-f", str(outdir / "Containerfile")]
    if authfile:
        cmd += ["--authfile", authfile]
    for arg in build_args or []:
        cmd += ["--build-arg", arg]
    return cmd + list(extra or []) + [str(outdir)]


def bib_command(outdir: Path, tag: str, disk_type: str, output: Path, base_image: str) -> list[str]:
    """bootc-image-builder through podman, as the RHEL image mode docs run it (root, privileged,
    the host's container storage mounted so it finds the image just built)."""
    if disk_type not in DISK_TYPES:
        raise UsageError(f"--type {disk_type}: image mode builds one of {', '.join(DISK_TYPES)}")
    return ["podman", "run", "--rm", "--privileged", "--pull=newer", "--security-opt", "label=type:unconfined_t",
            "-v", f"{outdir / 'config.toml'}:/config.toml:ro", "-v", f"{output}:/output",
            "-v", "/var/lib/containers/storage:/var/lib/containers/storage",
            builder_image(base_image), "--type", disk_type, "--config", "/config.toml", tag]


def base_image_of(outdir: Path) -> str:
    """The FROM default of a rendered Containerfile (`ARG BASE_IMAGE=…`)."""
    for line in (outdir / "Containerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("ARG BASE_IMAGE="):
            return line.split("=", 1)[1].strip()
    return ""


def quickstart_text(outdir: Path, tag: str = DEFAULT_TAG, disk_type: str = "anaconda-iso") -> str:
    """What to run next, printed at the end of render/build --target bootc."""
    base = base_image_of(outdir)
    return "\n".join([
        "To build the bootc image and a disk from it (root, podman; the base image needs your Red Hat pull secret):",
        "  " + shlex.join(podman_build_command(outdir, tag, authfile="/etc/containers/auth.json")),
        "  " + shlex.join(bib_command(outdir, tag, disk_type, Path.cwd() / "output", base)),
        "or, with edgebuild:",
        f"  edgebuild compose {shlex.quote(str(outdir))} --type {disk_type} --tag {tag}",
        f"  edgebuild verify {shlex.quote(str(outdir))} --image {tag}",
        ""])


def _run(cmd: list[str]) -> int:
    print("+ " + shlex.join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=False).returncode


def compose_bootc(outdir: Path, disk_type: str, *, tag: str, authfile: str | None, build_args: list[str],
                  output: Path, print_only: bool) -> int:
    """Build OUT with podman, then the disk with bootc-image-builder when its image is on this host;
    print the commands instead when asked or when a tool is missing."""
    if not (outdir / "Containerfile").is_file():
        raise UsageError(f"{outdir}: no Containerfile", "render it with 'edgebuild render --target bootc -o OUT'")
    base = base_image_of(outdir)
    build = podman_build_command(outdir, tag, authfile=authfile, build_args=build_args)
    output = output.resolve()  # a bare name would be a podman named volume, not this directory
    disk = bib_command(outdir, tag, disk_type, output, base)
    if print_only or not shutil.which("podman"):
        print(shlex.join(build))
        print(shlex.join(disk))
        return 0
    if _run(build) != 0:
        raise EdgebuildError(f"podman build of {outdir} failed", hint="see podman's output above")
    builder_present = subprocess.run(["podman", "image", "exists", builder_image(base)], check=False).returncode == 0
    if not builder_present:
        print(f"built {tag}; {builder_image(base)} is not on this host, so build the disk with:\n  {shlex.join(disk)}")
        return 0
    output.mkdir(parents=True, exist_ok=True)
    if _run(disk) != 0:
        raise EdgebuildError("bootc-image-builder failed", hint="see its output above")
    print(f"built {tag} and its {disk_type} in {output}")
    return 0
