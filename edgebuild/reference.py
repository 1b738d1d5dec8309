"""Container image references: parse, normalize, and map to a mirror.

The grammar follows containers/image (docker/reference): the first path component is a registry
host when it contains '.' or ':' or is 'localhost'; otherwise the image is on docker.io, and a
single-component docker.io path gets the 'library/' namespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                      r"(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$")


class ReferenceError(ValueError):
    """A string that is not a valid image reference."""


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A parsed image reference: registry host, repository path, optional tag and digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse `text`; raise ReferenceError with the reason when it is not a reference."""
        original = text
        if not text or text != text.strip():
            raise ReferenceError(f"invalid image reference {original!r}: empty or surrounded by spaces")
        if "://" in text:
            raise ReferenceError(f"invalid image reference {original!r}: a transport prefix is not allowed here")
        digest = None
        if "@" in text:
            text, digest = text.split("@", 1)
            if not _DIGEST_RE.match(digest):
                raise ReferenceError(f"invalid image reference {original!r}: bad digest {digest!r}")
        tag = None
        slash = text.rfind("/")
        colon = text.rfind(":")
        if colon > slash:
            text, tag = text[:colon], text[colon + 1:]
            if not _TAG_RE.match(tag):
                raise ReferenceError(f"invalid image reference {original!r}: bad tag {tag!r}")
        parts = text.split("/")
        if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"
                               or parts[0].startswith("[")):
            registry, path = parts[0], parts[1:]
            if not _HOST_RE.match(registry):
                raise ReferenceError(f"invalid image reference {original!r}: bad registry host {registry!r}")
        else:
            registry, path = DOCKER_HUB, parts
        if registry == DOCKER_HUB and len(path) == 1:
            path = ["library", *path]
        for component in path:
            if not _PATH_COMPONENT_RE.match(component):
                raise ReferenceError(
                    f"invalid image reference {original!r}: path component {component!r} must be lowercase "
                    "letters, digits and separators (. _ __ -)")
        return cls(registry, "/".join(path), tag, digest)

    @property
    def name(self) -> str:
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def namespace(self) -> str:
        """registry/all-but-last-path-component: the scope oc-mirror uses for namespace mirrors."""
        head, _, _ = self.repository.rpartition("/")
        return f"{self.registry}/{head}" if head else self.registry

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def by_digest(self) -> str:
        """name@digest; the form a device must use for an embedded image."""
        if not self.digest:
            raise ReferenceError(f"{self} has no digest")
        return f"{self.name}@{self.digest}"


def digest_hex(digest: str) -> str:
    """The hex part of 'sha256:abc…'."""
    return digest.split(":", 1)[1]


@dataclass(frozen=True, slots=True)
class MirrorTarget:
    """Where images go: a registry host[:port] and an optional namespace path (docker://HOST/NS)."""

    registry: str
    namespace: str = ""

    @classmethod
    def parse(cls, text: str) -> MirrorTarget:
        """Accept 'docker://host[:port][/ns]' or the same without the transport."""
        body = text.removeprefix("docker://").strip("/")
        if not body or "://" in body:
            raise ReferenceError(f"invalid mirror {text!r}: expected docker://HOST[:PORT][/NAMESPACE]")
        host, _, namespace = body.partition("/")
        if not _HOST_RE.match(host):
            raise ReferenceError(f"invalid mirror {text!r}: bad registry host {host!r}")
        for component in filter(None, namespace.split("/")):
            if not _PATH_COMPONENT_RE.match(component):
                raise ReferenceError(f"invalid mirror {text!r}: path component {component!r} is not valid")
        return cls(host, namespace)

    def __str__(self) -> str:
        return f"{self.registry}/{self.namespace}" if self.namespace else self.registry

    def repository_for(self, source_repository: str) -> str:
        """The destination repository path for a source repository path (oc-mirror keeps the source path)."""
        return f"{self.namespace}/{source_repository}" if self.namespace else source_repository


def v1_tag(ref: ImageReference) -> str:
    """oc-mirror v1 destination tag: the source tag, else the first 6 hex chars of the digest, else 'latest'."""
    if ref.tag:
        return ref.tag
    if ref.digest:
        return digest_hex(ref.digest)[:6]
    return "latest"


def v2_tag(ref: ImageReference) -> str:
    """oc-mirror v2 destination tag: the source tag, else 'sha256-<hex>' for digest-only references."""
    if ref.tag:
        return ref.tag
    if ref.digest:
        algo, hexpart = ref.digest.split(":", 1)
        return f"{algo}-{hexpart}"
    return "latest"
