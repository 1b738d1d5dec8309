"""Deterministic test images: an OCI image layout writer (stdlib only) and skopeo helpers.

Layers are tars of seeded random bytes (incompressible, like real layers), gzip'ed with mtime 0,
so the same arguments always give the same digests. Images are pushed to a real registry with
skopeo, and checked with `skopeo inspect --raw`, never only with edgebuild's own client.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layer(seed: str, size: int, files: dict[str, bytes] | None = None) -> tuple[bytes, str]:
    """(gzip'ed tar, diff_id): one file of `size` seeded random bytes plus optional extra files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = dict(files or {})
        if size:
            entries[f"data/{seed}.bin"] = random.Random(seed).randbytes(size)
        for name, content in sorted(entries.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", compresslevel=0, mtime=0) as fh:
        fh.write(tar_bytes)
    return gz.getvalue(), digest_of(tar_bytes)


@dataclass
class Layout:
    """An OCI image layout under construction; `ref` names go into index.json annotations."""

    path: Path

    def __post_init__(self) -> None:
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        if not (self.path / "index.json").exists():
            self._write_index([])

    def _write_index(self, manifests: list[dict]) -> None:
        (self.path / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                          "manifests": manifests}))

    def add_blob(self, data: bytes, media_type: str) -> dict:
        digest = digest_of(data)
        target = self.path / "blobs" / "sha256" / digest[7:]
        if not target.exists():
            target.write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_image(self, layers: list[tuple[bytes, str]], arch: str = "amd64", labels: dict[str, str] | None = None,
                  ref: str | None = None) -> dict:
        """An image manifest over `layers` (from make_layer); returns its descriptor."""
        config = {"architecture": arch, "os": "linux",
                  "config": {"Labels": labels or {}, "Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]}}
        config_desc = self.add_blob(json.dumps(config, sort_keys=True).encode(), OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc,
                    "layers": [self.add_blob(data, OCI_LAYER) for data, _ in layers]}
        desc = self.add_blob(json.dumps(manifest).encode(), OCI_MANIFEST)
        if ref:
            self.tag(desc, ref)
        return desc

    def add_index(self, children: list[tuple[dict, str]], ref: str | None = None) -> dict:
        """An OCI index over (manifest descriptor, arch) pairs."""
        manifests = []
        for desc, arch in children:
            platform = {"architecture": arch, "os": "linux"}
            if arch == "arm64":
                platform["variant"] = "v8"
            manifests.append({**desc, "platform": platform})
        desc = self.add_blob(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                         "manifests": manifests}).encode(), OCI_INDEX)
        if ref:
            self.tag(desc, ref)
        return desc

    def tag(self, desc: dict, ref: str) -> None:
        index = json.loads((self.path / "index.json").read_text())
        entries = [m for m in index["manifests"]
                   if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != ref]
        entries.append({**desc, "annotations": {"org.opencontainers.image.ref.name": ref}})
        self._write_index(entries)


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
                 base: list[tuple[bytes, str]] | None = None) -> dict:
    layers = list(base or []) + [make_layer(f"{name}-{i}-{arch}", s) for i, s in enumerate(sizes)]
    return layout.add_image(layers, arch=arch, ref=name)


def multiarch_image(layout: Layout, name: str, sizes: tuple[int, ...] = (20_000, 5_000)) -> dict:
    children = [(layout.add_image([make_layer(f"{name}-{i}-{arch}", s) for i, s in enumerate(sizes)], arch=arch),
                 arch) for arch in ("amd64", "arm64")]
    return layout.add_index(children, ref=name)
