"""Where images are read from and written to: a registry, or an OCI image layout on disk.

Both sides offer the same few operations, so the copy engine moves an image the same way for
mirror-to-mirror, mirror-to-disk and disk-to-mirror. A registry endpoint copies each blob at most
once per destination repository: it asks first (HEAD), mounts from a repository of the same
registry that already has it, and only then uploads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Literal, Protocol
from urllib.parse import quote

from ..errors import EdgebuildError, RegistryError
from .client import RegistryClient
from .manifest import Descriptor, Manifest
from .retry import RetryPolicy, StatusError, single_attempt
from .stream import verified_chunks
from .transport import TransportFailure

# The repository list is read once per run when it is short; a registry with more repositories
# than this is asked per repository instead (each listing page walks its whole storage).
LISTING_PAGE = 1000
LISTING_MAX_PAGES = 3
LISTING_MAX_BYTES = 16 * 1024 * 1024
# What distribution answers when a manifest's blob cannot be read in the repository at that moment.
RACE_CODES = frozenset({"MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN", "DIGEST_INVALID"})

BlobOpener = Callable[[], AbstractContextManager[tuple[Iterator[bytes], int | None]]]
BlobOutcome = Literal["present", "mounted", "copied"]
# "absent": the destination says the repository does not exist; "exists": it may hold anything;
# a set: the repository exists with exactly these tags
RepositoryState = Literal["absent", "exists"] | set[str]


class Endpoint(Protocol):
    label: str
    cheap_blob_check: bool  # True when asking whether a blob exists costs next to nothing (a stat)

    def repository_state(self, repository: str) -> RepositoryState: ...

    def get_manifest(self, repository: str, reference: str) -> Manifest: ...

    def manifest_digest(self, repository: str, reference: str) -> str | None: ...

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None: ...

    def open_blob(self, repository: str, desc: Descriptor
                  ) -> AbstractContextManager[tuple[Iterator[bytes], int | None]]: ...

    def ensure_blob(self, repository: str, desc: Descriptor, opener: BlobOpener, origin: str,
                    on_bytes: Callable[[int], None] | None = None, assume_absent: bool = False) -> BlobOutcome: ...


def transfer_with_retries(send: Callable[[Callable[[int], None]], None], retry: RetryPolicy,
                          on_bytes: Callable[[int], None] | None = None,
                          undo: Callable[[], None] | None = None) -> None:
    """Move one blob under the retry policy: the one loop of a transfer (its requests are sent once).

    `send(count)` moves the bytes and reports them through `count`. A failed attempt's bytes are taken
    back from the progress and `undo` removes its traces; a digest mismatch or any other lasting failure
    is raised at once."""
    def attempt(_n: int) -> None:
        sent = 0

        def count(n: int) -> None:
            nonlocal sent
            sent += n
            if on_bytes:
                on_bytes(n)
        try:
            with single_attempt():
                send(count)
        except BaseException:
            if on_bytes and sent:
                on_bytes(-sent)
            if undo:
                undo()
            raise
    retry.run(attempt)


class RegistryEndpoint:
    """A registry seen through one shared client; remembers which repositories hold which blobs."""

    def __init__(self, client: RegistryClient, retry: RetryPolicy | None = None) -> None:
        self.client = client
        self.label = client.registry
        self.retry = retry or client.retry
        self.cheap_blob_check = False
        self._known: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._touched: set[str] = set()
        self._listing_lock = threading.Lock()
        self._listing: set[str] | None | bool = False  # False: not read yet; None: not available

    def _remember(self, digest: str, repository: str) -> None:
        with self._lock:
            self._known.setdefault(digest, set()).add(repository)
            self._touched.add(repository)

    def holders(self, digest: str) -> set[str]:
        with self._lock:
            return set(self._known.get(digest, ()))

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        return self.client.get_manifest(repository, reference)

    def repository_state(self, repository: str) -> RepositoryState:
        """Whether `repository` exists and its tags.

        One repository listing (GET /v2/_catalog) answers for every repository of a run, saving
        one tags/list per image: "absent" for a new place, "exists" for one the listing names.
        When the registry will not list (auth scope, disabled, too many) each repository gets
        tags/list."""
        with self._lock:
            touched = repository in self._touched
        listing = self._repository_listing()
        if listing is not None:
            # a listed repository is simply asked for the image (a manifest HEAD) by the caller
            return "exists" if repository in listing or touched else "absent"
        tags = self.client.repository_tags(repository)
        return "absent" if tags is None and not touched else (tags if tags is not None else "exists")

    def _repository_listing(self) -> set[str] | None:
        with self._listing_lock:
            if self._listing is False:
                self._listing = self._read_listing()
            return self._listing  # type: ignore[return-value]

    def _read_listing(self) -> set[str] | None:
        names: set[str] = set()
        last = ""
        for _ in range(LISTING_MAX_PAGES):
            query = f"?n={LISTING_PAGE}" + (f"&last={quote(last, safe='')}" if last else "")
            try:
                response = self.client.request("GET", f"/v2/_catalog{query}", repository=None,
                                               what="list repositories")
                body = response.read(LISTING_MAX_BYTES) if response.status == 200 else response.drain()
                page = json.loads(body) if response.status == 200 else None
            except (EdgebuildError, TransportFailure, ValueError):
                return None
            batch = page.get("repositories") if isinstance(page, dict) else None
            if not isinstance(batch, list) or not all(isinstance(n, str) for n in batch):
                return None
            names.update(batch)
            if len(batch) < LISTING_PAGE or "link" not in response.headers:
                return names
            last = batch[-1]
        return None

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        return self.client.head_manifest(repository, reference)

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        """PUT the manifest; a push that races another run writing the same blobs is tried again.

        distribution's filesystem driver rewrites a blob's link file in place (truncate, then write)
        each time a blob is uploaded or mounted into a repository, so while another run links the
        same blob, a manifest PUT here can read the link empty and answer MANIFEST_BLOB_UNKNOWN or
        DIGEST_INVALID for a blob that is there. So on those answers every referenced blob or child is
        checked again: all present, the PUT is repeated (a short wait between, up to the retry
        budget); one really missing, the error says which."""
        attempt = 0
        while True:
            try:
                self.client.put_manifest(repository, reference, manifest.data, manifest.media_type)
                break
            except StatusError as exc:
                if exc.status != 400 or not RACE_CODES & set(exc.codes) or attempt + 1 >= self.retry.attempts:
                    raise
                missing = self._missing_references(repository, manifest)
                if missing:
                    raise RegistryError(f"{exc.message}; {repository} lacks {', '.join(missing[:3])}",
                                        hint="another run or a garbage collection removed what this image "
                                             "references meanwhile; rerun to copy it again") from None
                self.retry.sleep(attempt)
                attempt += 1
        with self._lock:
            self._touched.add(repository)

    def _missing_references(self, repository: str, manifest: Manifest) -> list[str]:
        """The blobs (image) or child manifests (index) the destination does not hold, asked twice
        apart, so a link caught mid-rewrite does not count as missing."""
        missing: list[str] = []
        for desc in manifest.children or manifest.blobs:
            for check in range(2):
                found = (self.client.head_manifest(repository, desc.digest) if manifest.children
                         else self.client.head_blob(repository, desc.digest))
                if found is not None:
                    break
                if check == 0:
                    self.retry.sleep(0)
            else:
                missing.append(desc.digest)
                with self._lock:
                    self._known.get(desc.digest, set()).discard(repository)
        return missing

    def open_blob(self, repository: str, desc: Descriptor
                  ) -> AbstractContextManager[tuple[Iterator[bytes], int | None]]:
        return self.client.open_blob(repository, desc.digest)

    def ensure_blob(self, repository: str, desc: Descriptor, opener: BlobOpener, origin: str,
                    on_bytes: Callable[[int], None] | None = None, assume_absent: bool = False) -> BlobOutcome:
        """Make the blob present in `repository`: known, or HEAD, or mount, or upload.

        `assume_absent` skips the HEAD (the caller saw that the repository does not exist; a wrong
        guess only costs sending the blob again)."""
        holders = self.holders(desc.digest)
        if repository in holders:
            return "present"
        if not assume_absent and self.client.head_blob(repository, desc.digest) is not None:
            self._remember(desc.digest, repository)
            return "present"
        location: str | None = None
        for other in sorted(holders)[:1]:
            location = self.client.start_upload(repository, mount=desc.digest, mount_from=other)
            if location is None:
                self._remember(desc.digest, repository)
                return "mounted"
        def send(count: Callable[[int], None]) -> None:
            nonlocal location
            if location is None:
                location = self.client.start_upload(repository)
                assert location is not None  # None only answers a mount
            with opener() as (chunks, _size):
                body = verified_chunks(chunks, desc, origin, count)
                self.client.finish_upload(location, repository, desc.digest, body, desc.size)

        def undo() -> None:  # an unfinished upload session is cancelled, the next attempt opens a new one
            nonlocal location
            if location:
                self.client.cancel_upload(location, repository)
                location = None
        transfer_with_retries(send, self.retry, on_bytes, undo)
        self._remember(desc.digest, repository)
        return "copied"

