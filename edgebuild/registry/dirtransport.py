"""containers/image's `dir:` transport, written from a registry: the image store of a bootc image.

The layout is the one `skopeo copy … dir:PATH` writes (containers/image `directory/dir_dest.go`,
`dir_transport.go`): a `version` file ("Directory Transport Version: 1.1"), the top-level manifest
bytes as `manifest.json`, each instance of an index as `<hex>.manifest.json`, and every config and
layer blob as a file named by its sha256 hex. Manifests are written byte for byte as the registry
serves them, so every digest is preserved and `skopeo copy --preserve-digests dir:PATH
containers-storage:NAME@DIGEST` works on the device.

Writes resume: blobs appear whole (temporary name, verified while streaming, renamed), and
`manifest.json` is written last, so a directory that has one is complete.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import RegistryError
from ..fsutil import commit_file, write_atomic
from .client import RegistryClient
from .manifest import Descriptor, Manifest, platform_matches
from .stream import verified_chunks

VERSION_TEXT = b"Directory Transport Version: 1.1\n"
TOP_MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class DirImage:
    """What one `dir:` copy holds: the top-level manifest digest and the bytes of every file."""

    path: Path
    digest: str
    size: int
    blobs_copied: int


def instance_manifest_name(digest: str) -> str:
    return f"{digest.split(':', 1)[1]}.manifest.json"


def blob_name(digest: str) -> str:
    return digest.split(":", 1)[1]


def is_complete(path: Path) -> bool:
    return (path / TOP_MANIFEST).is_file() and (path / "version").is_file()


def write_dir_image(client: RegistryClient, repository: str, reference: str, target: Path, *,
                    arch: str | None = None) -> DirImage:
    """Copy `repository@reference` (a digest or tag) from `client`'s registry into `target` as a `dir:` image.

    An index is kept whole (its bytes and digest); with `arch`, only that platform's instances get
    their manifests and blobs (the device copies one platform; the index stays as served).
    """
    origin = f"{client.registry}/{repository}@{reference}"
    target.mkdir(parents=True, exist_ok=True)
    top = client.get_manifest(repository, reference)
    images: list[tuple[Manifest, str | None]] = []
    if top.is_index:
        wanted = [c for c in top.children if arch is None or platform_matches(c.platform, arch)]
        if not wanted:
            raise RegistryError(f"{origin}: the index has no linux/{arch} manifest",
                                hint="choose an --arch the image is built for, or leave --arch out")
        images = [(client.get_manifest(repository, child.digest), child.digest) for child in wanted]
    else:
        images = [(top, None)]
    copied = 0
    for manifest, _instance in images:
        for desc in manifest.blobs:
            if _write_blob(client, repository, desc, target / blob_name(desc.digest), origin):
                copied += 1
    for manifest, instance in images:
        if instance is not None:
            write_atomic(target / instance_manifest_name(instance), manifest.data, durable=True)
    write_atomic(target / "version", VERSION_TEXT, durable=True)
    write_atomic(target / TOP_MANIFEST, top.data, durable=True)  # last: marks the directory complete
    size = sum(f.stat().st_size for f in target.iterdir() if f.is_file())
    return DirImage(target, top.digest, size, copied)


def _write_blob(client: RegistryClient, repository: str, desc: Descriptor, path: Path, origin: str,
                on_bytes: Callable[[int], None] | None = None) -> bool:
    """Stream one blob into `path`, verified against its digest; False when it is already there whole."""
    if path.is_file() and path.stat().st_size == desc.size:
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:16]}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            with client.open_blob(repository, desc.digest) as (chunks, _size):
                for chunk in verified_chunks(chunks, desc, f"{origin} blob {desc.digest}", on_bytes):
                    out.write(chunk)
            os.fchmod(out.fileno(), 0o644)
            commit_file(out, tmp, path, sync_dir=False)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


class DirFetcher:
    """`dir:` copies of references from their registries, one client per registry (the mirror's TLS
    and certificates for the mirror, the source side's for any other registry)."""

    def __init__(self, mirror_registry: str, *, mirror_tls_verify: bool, mirror_cert_dir: str | None,
                 src_tls_verify: bool, src_cert_dir: str | None, authfile: str | None, arch: str | None) -> None:
        self._mirror = mirror_registry
        self._settings = (mirror_tls_verify, mirror_cert_dir, src_tls_verify, src_cert_dir)
        self._authfile = authfile
        self._arch = arch
        self._clients: dict[str, RegistryClient] = {}

    def _client(self, registry: str) -> RegistryClient:
        if registry not in self._clients:
            mirror_tls, mirror_certs, src_tls, src_certs = self._settings
            mine = registry == self._mirror
            self._clients[registry] = RegistryClient(registry, tls_verify=mirror_tls if mine else src_tls,
                                                     cert_dir=mirror_certs if mine else src_certs,
                                                     authfile=self._authfile)
        return self._clients[registry]

    def __call__(self, pull: str, target: Path) -> DirImage:
        from ..reference import ImageReference
        ref = ImageReference.parse(pull)
        return write_dir_image(self._client(ref.registry), ref.repository, ref.digest or ref.tag or "latest",
                               target, arch=self._arch)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
