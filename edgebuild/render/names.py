"""Kubernetes object names as oc-mirror gives them (CatalogSource names per semantics)."""

from __future__ import annotations

import re

from ..reference import ImageReference, digest_hex

_HASH_TRUNC = 12
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def rfc1035(text: str) -> str:
    """Lowercase; every character outside [a-z0-9-] becomes '-' (oc-mirror's toRFC1035)."""
    return "".join(c if ("a" <= c <= "z" or "0" <= c <= "9" or c == "-") else "-" for c in text.lower())


def is_dns_label(name: str) -> bool:
    return bool(_DNS1123_LABEL.match(name))


def catalog_source_name_v1(source_catalog: str) -> str:
    """oc-mirror v1: `cs-` + the source repository's last path component, RFC 1035-mapped."""
    repo = ImageReference.parse(source_catalog).repository.rsplit("/", 1)[-1]
    return rfc1035("cs-" + repo)[:63].rstrip("-")


def catalog_source_name_v2(destination: str) -> str:
    """oc-mirror v2: `cs-<last path component>-<suffix>`; suffix = the destination tag (first 12
    characters) or the first 12 hex of a digest-only reference, '0' if neither; '.' -> '-'."""
    ref = ImageReference.parse(destination)
    if ref.tag:
        suffix = rfc1035(ref.tag[:_HASH_TRUNC])
    elif ref.digest:
        suffix = digest_hex(ref.digest)[:_HASH_TRUNC]
    else:
        suffix = "0"
    repo = ref.repository.rsplit("/", 1)[-1]
    return f"cs-{repo}-{suffix}".replace(".", "-").replace("_", "-")


def unique(name: str, taken: set[str]) -> str:
    """`name`, or `name-1`, `name-2`, … when already taken (oc-mirror v1's duplicate rule)."""
    candidate, n = name, 0
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    taken.add(candidate)
    return candidate


def namespace_for_package(package: str) -> str:
    """A DNS-1123 label for an operator's own namespace, derived from its package name."""
    label = rfc1035(package).strip("-")[:63].rstrip("-")
    return label or "operator"
