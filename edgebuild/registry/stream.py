"""Blob bytes checked while they stream: size and sha256 against the descriptor.

The check runs inside the generator that feeds the upload, so a source that serves wrong bytes
fails before the upload is completed (the destination also refuses a PUT whose digest does not
match). Source read failures are wrapped in `SourceStreamError` so the engine can tell them from
destination failures when both happen inside the same upload request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator

from ..errors import RegistryError
from .manifest import Descriptor


class DigestMismatch(RegistryError):
    """A blob whose bytes do not hash to its digest (or have the wrong size). Not retried."""


class SourceStreamError(Exception):
    """Reading the source blob failed mid-stream (connection reset, registry died). Retried."""

    def __init__(self, origin: str, cause: BaseException) -> None:
        super().__init__(f"{origin}: reading the blob failed: {type(cause).__name__}: {cause}")
        self.origin = origin
        self.cause = cause


def verified_chunks(chunks: Iterable[bytes], desc: Descriptor, origin: str,
                    on_bytes: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """Yield `chunks` unchanged; raise DigestMismatch if the total is not `desc.size` bytes hashing to `desc.digest`."""
    hasher = hashlib.sha256()
    seen = 0
    iterator = iter(chunks)
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            break
        except RegistryError:
            raise
        except Exception as exc:  # any read failure of the source is a stream error
            raise SourceStreamError(origin, exc) from exc
        if not chunk:
            continue
        seen += len(chunk)
        if seen > desc.size:
            raise DigestMismatch(f"{origin}: blob {desc.digest} is longer than the {desc.size} bytes its descriptor says",
                                 hint="the source is corrupt or serves different content; nothing was tagged")
        hasher.update(chunk)
        if on_bytes:
            on_bytes(len(chunk))
        yield chunk
    actual = "sha256:" + hasher.hexdigest()
    if seen != desc.size or actual != desc.digest:
        raise DigestMismatch(
            f"{origin}: blob {desc.digest} does not match its digest: got {seen} bytes hashing to {actual} "
            f"(expected {desc.size} bytes)",
            hint="the source registry's storage is corrupt or a proxy altered the bytes; fix or re-push the source "
                 "image; nothing of this image was tagged in the destination")
