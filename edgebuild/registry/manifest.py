"""The OCI model shared by mirroring and catalog loading: media types, size caps, parsing, platform choice.

Only OCI and Docker schema2 types are understood (single manifests and indexes / manifest lists);
anything else is refused with an error naming the type, because copying a manifest whose children
we cannot see would leave a destination that references missing blobs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import RegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
SUPPORTED_TYPES = INDEX_TYPES | IMAGE_TYPES
# Sent on every manifest request: distribution 2.8 answers 404 for an OCI manifest when Accept lacks OCI types.
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
# The limits containers/image applies (internal/iolimits: MaxManifestBodySize, MaxConfigBodySize), and
# distribution's manifest limit: a larger body is refused before it is read whole.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, raw: Any, origin: str) -> Descriptor:
        if not isinstance(raw, dict) or not isinstance(raw.get("digest"), str) or not isinstance(raw.get("size"), int):
            raise RegistryError(f"{origin}: malformed descriptor {str(raw)[:200]!r}: needs 'digest' and 'size'")
        digest = raw["digest"]
        if not digest.startswith("sha256:") or len(digest) != 71:
            raise RegistryError(f"{origin}: unsupported digest {digest!r}: only sha256 digests are copied")
        return cls(str(raw.get("mediaType") or ""), digest, raw["size"], raw.get("platform"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass(slots=True)
class Manifest:
    """A parsed manifest: its bytes, type and digest, plus children (index) or blobs (image)."""

    data: bytes
    media_type: str
    digest: str
    children: list[Descriptor] = field(default_factory=list)
    blobs: list[Descriptor] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def parse_manifest(data: bytes, content_type: str | None, origin: str) -> Manifest:
    """Parse manifest bytes; the media type comes from the body when it names one, else the header."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise RegistryError(f"{origin}: manifest is {len(data)} bytes, over the 4 MiB limit registries accept",
                            hint="such a manifest cannot be pushed to a distribution registry; exclude the image")
    body = _json_object(data, f"{origin}: manifest")
    media_type = body.get("mediaType") or (content_type or "").split(";")[0].strip()
    if media_type not in SUPPORTED_TYPES:
        if not media_type or media_type in ("application/json", "application/octet-stream"):
            media_type = OCI_INDEX if "manifests" in body else OCI_MANIFEST if "layers" in body else media_type
    if body.get("schemaVersion") == 1 or media_type not in SUPPORTED_TYPES:
        raise RegistryError(
            f"{origin}: unsupported manifest media type {media_type or '(none)'!r}",
            hint="edgebuild copies OCI and Docker schema2 images and indexes; convert the image "
                 "(for example `skopeo copy --format oci`) or leave it out of the image set")
    manifest = Manifest(data, media_type, sha256_digest(data), body=body)
    if manifest.is_index:
        manifest.children = [Descriptor.from_json(d, origin) for d in body.get("manifests") or []]
    else:
        config = body.get("config")
        if config is None:
            raise RegistryError(f"{origin}: image manifest without a config descriptor")
        manifest.blobs = [Descriptor.from_json(config, origin)]
        manifest.blobs += [Descriptor.from_json(d, origin) for d in body.get("layers") or []]
    return manifest


def platform_matches(platform: dict[str, Any] | None, arch: str) -> bool:
    """True when a child of an index is for `arch` on linux (a missing os counts as linux)."""
    if not platform:
        return False
    return platform.get("architecture") == arch and platform.get("os", "linux") == "linux"


def instances_for(index: Manifest, arch: str) -> list[Descriptor]:
    """The children of `index` that serve linux/`arch`, best first.

    As containers/image chooses (internal/manifest/oci_index.go, chooseInstance): children whose
    platform matches; when none does, an OCI index child without a platform (the first one), which
    is meant for any platform. A Docker manifest list child always names its platform
    (docker_schema2_list.go, ChooseInstance), so it has no such fallback.
    """
    matching = [c for c in index.children if platform_matches(c.platform, arch)]
    if matching or index.media_type != OCI_INDEX:
        return matching
    return [c for c in index.children if not c.platform][:1]


def _no_instance(index: Manifest, arch: str, origin: str, hint: str) -> RegistryError:
    found = sorted({f"{(c.platform or {}).get('os', '?')}/{(c.platform or {}).get('architecture', '?')}"
                    for c in index.children})
    return RegistryError(f"{origin}: the index has no linux/{arch} manifest (it has: {', '.join(found) or 'none'})",
                         hint=hint)


def choose_instance(index: Manifest, arch: str, origin: str) -> Descriptor:
    """The one child of `index` to read for linux/`arch` (see instances_for)."""
    chosen = instances_for(index, arch)
    if not chosen:
        raise _no_instance(index, arch, origin, "pass --arch with one of the listed architectures")
    return chosen[0]


def filter_index(index: Manifest, arch: str, origin: str) -> Manifest:
    """A new index holding only the children for `arch`, serialised as a valid index of the same type."""
    kept = instances_for(index, arch)
    if not kept:
        raise _no_instance(index, arch, origin,
                           "choose an --arch the image is built for, or leave --arch unset to keep it whole")
    if len(kept) == len(index.children):
        return index  # nothing to drop: keep the original bytes and digest
    body = dict(index.body)
    body["manifests"] = [c for c in index.body.get("manifests", []) if c.get("digest") in {k.digest for k in kept}]
    data = json.dumps(body, separators=(",", ":")).encode()
    return Manifest(data, index.media_type, sha256_digest(data), children=kept, body=body)


def parse_config(data: bytes, desc: Descriptor, origin: str) -> dict[str, Any]:
    """An image config blob (read up to MAX_CONFIG_BYTES + 1), checked against its cap and digest, as JSON."""
    if len(data) > MAX_CONFIG_BYTES:
        raise RegistryError(f"{origin}: config {desc.digest} is over {MAX_CONFIG_BYTES} bytes; "
                            "that is not an image config")
    actual = sha256_digest(data)
    if actual != desc.digest:
        raise RegistryError(f"{origin}: config content digest is {actual}, expected {desc.digest}",
                            hint="the image is corrupt; copy it again")
    return _json_object(data, f"{origin}: config {desc.digest}")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise RegistryError(f"{what} is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{what} is not a JSON object")
    return doc
