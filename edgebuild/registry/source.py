"""Catalog images read straight from a registry: the `ImageSource` of catalog/sources.py over RegistryClient.

`open_catalog` asks a factory for one source per image reference; the factory keeps one client per
registry host, so loading several catalogs from one registry reuses connections and auth tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import BinaryIO

from ..reference import ImageReference
from .client import RegistryClient


class BlobStream:
    """A read()-able stream over the client's chunk iterator; closing it releases the HTTP response."""

    def __init__(self, chunks: Iterator[bytes], stack: ExitStack) -> None:
        self._chunks, self._stack, self._rest = chunks, stack, b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._rest) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._rest += chunk
        if size < 0:
            data, self._rest = self._rest, b""
        else:
            data, self._rest = self._rest[:size], self._rest[size:]
        return data

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> "BlobStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RegistryImageSource:
    """ImageSource for one repository of a registry."""

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client, self.repository = client, repository

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        manifest = self.client.get_manifest(self.repository, reference)
        return manifest.data, manifest.media_type

    def open_blob(self, digest: str) -> BinaryIO:
        stack = ExitStack()
        chunks, _size = stack.enter_context(self.client.open_blob(self.repository, digest))
        return BlobStream(iter(chunks), stack)  # type: ignore[return-value]


def registry_image_source_factory(*, tls_verify: bool = True, authfile: str | None = None,
                                  cert_dir: str | None = None):
    """A factory `ImageReference -> RegistryImageSource`, with one RegistryClient per registry host."""
    clients: dict[str, RegistryClient] = {}

    def factory(ref: ImageReference) -> RegistryImageSource:
        client = clients.get(ref.registry)
        if client is None:
            client = clients[ref.registry] = RegistryClient(ref.registry, tls_verify=tls_verify,
                                                            authfile=authfile, cert_dir=cert_dir)
        return RegistryImageSource(client, ref.repository)

    return factory
