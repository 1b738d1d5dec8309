"""Deterministic test images for the registry tests (on tests/ocibuild.py) and skopeo helpers.

Layers are tars of seeded random bytes (incompressible, like real layers), gzip'ed with mtime 0,
so the same arguments always give the same digests. Images are pushed to a real registry with
skopeo, and checked with `skopeo inspect --raw`, never only with edgebuild's own client.
"""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.ocibuild import Layer, OciLayout, sha256_digest, tar_bytes


def digest_of(data: bytes) -> str:
    return sha256_digest(data)


def make_layer(seed: str, size: int, files: dict[str, bytes] | None = None) -> Layer:
    """A layer with one file of `size` seeded random bytes (incompressible, like real layers) plus `files`."""
    entries = dict(files or {})
    if size:
        entries[f"data/{seed}.bin"] = random.Random(seed).randbytes(size)
    return Layer(tar_bytes(entries))


@dataclass
class Layout:
    """An OCI image layout under construction (tests/ocibuild.py); `ref` names go into index.json."""

    path: Path

    def __post_init__(self) -> None:
        self._oci = OciLayout.open(self.path)

    def add_blob(self, data: bytes, media_type: str) -> dict:
        return self._oci.add_blob(data, media_type)

    def add_image(self, layers: list[Layer], arch: str = "amd64", labels: dict[str, str] | None = None,
                  ref: str | None = None) -> dict:
        """An image manifest over `layers` (from make_layer); returns its descriptor."""
        desc = self._oci.add_image(layers, labels=labels, arch=arch, variant="v8" if arch == "arm64" else None)
        desc.pop("platform", None)
        if ref:
            self.tag(desc, ref)
        return desc

    def add_index(self, children: list[tuple[dict, str]], ref: str | None = None) -> dict:
        """An OCI index over (manifest descriptor, arch) pairs."""
        manifests = [{**desc, "platform": {"architecture": arch, "os": "linux",
                                           **({"variant": "v8"} if arch == "arm64" else {})}}
                     for desc, arch in children]
        desc = self._oci.add_index(manifests)
        if ref:
            self.tag(desc, ref)
        return desc

    def tag(self, desc: dict, ref: str) -> None:
        self._oci.tag(desc, ref)


def skopeo(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], check=check, capture_output=True, text=True)


def tls_args(prefix: str, tls_verify: bool, cert_dir: Path | None, creds: tuple[str, str] | None) -> list[str]:
    args = [f"--{prefix}-tls-verify={'true' if tls_verify else 'false'}"]
    if cert_dir:
        args.append(f"--{prefix}-cert-dir={cert_dir}")
    if creds:
        args.append(f"--{prefix}-creds={creds[0]}:{creds[1]}")
    return args


def push(layout: Layout, ref: str, dest: str, *, tls_verify: bool = False, cert_dir: Path | None = None,
         creds: tuple[str, str] | None = None) -> None:
    """skopeo copy --all oci:LAYOUT:REF docker://DEST (digests are kept: layers are already gzip)."""
    skopeo("copy", "--all", "--quiet", *tls_args("dest", tls_verify, cert_dir, creds),
           f"oci:{layout.path}:{ref}", f"docker://{dest}")


def inspect_raw(ref: str, *, tls_verify: bool = False, cert_dir: Path | None = None,
                creds: tuple[str, str] | None = None) -> bytes:
    args = ["inspect", "--raw", f"--tls-verify={'true' if tls_verify else 'false'}"]
    if cert_dir:
        args.append(f"--cert-dir={cert_dir}")
    if creds:
        args.append(f"--creds={creds[0]}:{creds[1]}")
    out = subprocess.run(["skopeo", *args, f"docker://{ref}"], check=True, capture_output=True)
    return out.stdout


def verify_pull(ref: str, workdir: Path, *, tls_verify: bool = False, cert_dir: Path | None = None,
                creds: tuple[str, str] | None = None) -> None:
    """skopeo copy --all of `ref` into a scratch layout: skopeo checks every blob digest on the way."""
    skopeo("copy", "--all", "--quiet", *tls_args("src", tls_verify, cert_dir, creds), f"docker://{ref}",
           f"oci:{workdir}:check")


def simple_image(layout: Layout, name: str, sizes: tuple[int, ...] = (20_000, 5_000), arch: str = "amd64",
                 base: list[Layer] | None = None) -> dict:
    layers = list(base or []) + [make_layer(f"{name}-{i}-{arch}", s) for i, s in enumerate(sizes)]
    return layout.add_image(layers, arch=arch, ref=name)


def multiarch_image(layout: Layout, name: str, sizes: tuple[int, ...] = (20_000, 5_000)) -> dict:
    children = [(layout.add_image([make_layer(f"{name}-{i}-{arch}", s) for i, s in enumerate(sizes)], arch=arch),
                 arch) for arch in ("amd64", "arm64")]
    return layout.add_index(children, ref=name)
