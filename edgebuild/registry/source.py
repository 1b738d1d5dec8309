"""Catalog images read from a registry: the `ImageSource` that edgebuild.catalog.sources expects.

`RegistryImageSource` reads one repository through the shared RegistryClient; blobs come back as a
file-like stream over the HTTP response, so a large catalog layer is never held in memory (the
catalog extractor verifies the digest while it reads).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

from ..reference import ImageReference
from .client import RegistryClient
from .manifest import Manifest
from .retry import RetryPolicy


class _BlobReader(io.RawIOBase):
    """A read-only raw stream over an open blob response; closing it closes the response."""

    def __init__(self, context: Any) -> None:
        self._context = context
        chunks, _size = context.__enter__()
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._context.__exit__(None, None, None)
        super().close()


class RegistryImageSource:
    """One repository of a registry as a catalog ImageSource."""

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client = client
        self.repository = repository

    def get_manifest(self, reference: str) -> Manifest:
        return self.client.get_manifest(self.repository, reference)

    def open_blob(self, digest: str) -> BinaryIO:
        reader = _BlobReader(self.client.open_blob(self.repository, digest))
        return io.BufferedReader(reader, buffer_size=1 << 20)


class RegistrySourceFactory:
    """`image_source_factory` for edgebuild.catalog.sources.open_catalog: one client per registry host."""

    def __init__(self, *, tls_verify: bool = True, cert_dir: str | os.PathLike[str] | None = None,
                 authfile: str | os.PathLike[str] | None = None, retry: RetryPolicy | None = None) -> None:
        self._tls_verify, self._cert_dir, self._authfile, self._retry = tls_verify, cert_dir, authfile, retry
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def __call__(self, reference: ImageReference) -> RegistryImageSource:
        with self._lock:  # catalogs load concurrently
            client = self._clients.get(reference.registry)
            if client is None:
                client = RegistryClient(reference.registry, tls_verify=self._tls_verify, cert_dir=self._cert_dir,
                                        authfile=self._authfile, retry=self._retry)
                self._clients[reference.registry] = client
        return RegistryImageSource(client, reference.repository)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
