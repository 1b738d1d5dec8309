"""Source -> mirror rules at the scope oc-mirror uses for its ICSP/IDMS/ITMS.

oc-mirror v2 maps a whole namespace (`registry/ns` -> `mirror/ns`) when the destination path ends
with the source path, and a single repository otherwise (`clusterresources.go`,
`attemptNamespaceScope`). The same rules feed the CRI-O drop-in and the cluster resources, so a
device and an OpenShift cluster resolve images the same way.

Where oc-mirror compares paths as plain strings (a destination `ns/foobar/x` "ends with" `bar/x`),
this compares whole path components, which never maps a namespace onto the wrong mirror path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..reference import ImageReference

PullKind = Literal["digest", "tag"]
Category = Literal["release", "operator", "generic"]


@dataclass(frozen=True, slots=True)
class MirrorRule:
    """`source` scope (host[/path]) is served by `mirror` scope, for digest or tag pulls."""

    source: str
    mirror: str
    pull: PullKind = "digest"
    category: Category = "generic"
    block_source: bool = False


def scopes(source: ImageReference, destination: ImageReference,
           force_repository: bool = False) -> tuple[str, str]:
    """(source scope, mirror scope) of one copied image."""
    src = source.repository.split("/")
    dst = destination.repository.split("/")
    if not force_repository and len(dst) >= len(src) and dst[len(dst) - len(src):] == src:
        return source.namespace, destination.namespace
    return source.name, destination.name


def category_of(image_type: str) -> Category:
    """oc-mirror's category of an image type: bundles and related images are 'operator'."""
    if image_type in ("bundle", "related", "catalog"):
        return "operator"
    if image_type == "release":
        return "release"
    return "generic"


def unique_rules(rules: Iterable[MirrorRule]) -> list[MirrorRule]:
    """Rules without repeats, sorted by source scope then mirror, so outputs are stable."""
    return sorted(set(rules), key=lambda r: (r.source, r.mirror, r.pull, r.category))
