"""Kubernetes object names as oc-mirror gives them (CatalogSource names per semantics), fitted to
what the API server and OLM accept: a CatalogSource name is a DNS-1123 label of at most 63
characters (validate.py says why). A longer name keeps its start and ends in a stable hash of the
whole name; oc-mirror v1 cuts at 63 and then appends `-1` for a duplicate (65), and oc-mirror v2
stops with "error creating catalog source name" (clusterresources.go, generateCatalogSource)."""

from __future__ import annotations

from ..reference import ImageReference, digest_hex
from .validate import DNS1123_LABEL_MAX, fit_name, is_dns1123_label

_HASH_TRUNC = 12


def rfc1035(text: str) -> str:
    """Lowercase; every character outside [a-z0-9-] becomes '-' (oc-mirror's toRFC1035)."""
    return "".join(c if ("a" <= c <= "z" or "0" <= c <= "9" or c == "-") else "-" for c in text.lower())


def is_dns_label(name: str) -> bool:
    return is_dns1123_label(name)


def catalog_source_name_v1(source_catalog: str) -> str:
    """oc-mirror v1: `cs-` + the source repository's last path component, RFC 1035-mapped."""
    repo = ImageReference.parse(source_catalog).repository.rsplit("/", 1)[-1]
    return fit_name(rfc1035("cs-" + repo).rstrip("-"))


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
    return fit_name(rfc1035(f"cs-{repo}-{suffix}").rstrip("-"))


def unique(name: str, taken: set[str], limit: int = DNS1123_LABEL_MAX) -> str:
    """`name`, or `name-1`, `name-2`, … when already taken (oc-mirror v1's duplicate rule), the base
    shortened so that the result still fits in `limit`."""
    candidate, n = name, 0
    while candidate in taken:
        n += 1
        candidate = f"{fit_name(name, limit - len(str(n)) - 1)}-{n}"
    taken.add(candidate)
    return candidate


def namespace_for_package(package: str) -> str:
    """A DNS-1123 label for an operator's own namespace, derived from its package name."""
    label = rfc1035(package).strip("-")
    return fit_name(label) if label else "operator"
