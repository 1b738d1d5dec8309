"""The copy engine: moves a set of images between endpoints, concurrently and at most once per blob.

Two thread pools: images (manifest work, cheap, many at once so small images overlap their
round trips) and blobs (byte transfers, bounded by `parallel`). A blob needed by several images
is transferred once per destination: the first request uploads it, later ones wait for that
upload and then find it (same repository) or mount it (another repository). Children of an index
are pushed before the index, blobs before their manifest, and the tag last, so a failure never
leaves a tag pointing at something incomplete.

Each blob is looked up before it is sent (HEAD), except small blobs going to a repository the
destination reports as absent (tags/list answers 404): there the lookup
cannot succeed, and a wrong guess only sends a small blob twice.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from ..errors import EdgebuildError, RegistryError
from .endpoints import Endpoint
from .manifest import Descriptor, Manifest, filter_index
from .progress import Progress

# In a repository the destination says does not exist, blobs up to this size are sent without
# asking first: one HEAD costs the registry about what receiving a small blob again would.
SMALL_BLOB = 1024 * 1024


@dataclass(slots=True)
class CopyJob:
    """One image: read `src_repo` at `src_ref` (tag or digest), write `dst_repo` at `dst_ref`."""

    key: str  # the plan's source reference, for results and messages
    src: Endpoint
    src_repo: str
    src_ref: str
    dst: Endpoint
    dst_repo: str
    dst_ref: str | None  # None: push by digest only
    expected_digest: str | None = None
    label_src: str = ""
    label_dst: str = ""


@dataclass(slots=True)
class CopyResult:
    key: str
    status: Literal["copied", "present", "failed"]
    digest: str | None = None  # digest of the source manifest (what the reference resolves to)
    pushed_digest: str | None = None  # what the destination holds (differs when an index was filtered)
    error: EdgebuildError | None = None
    blobs: dict[str, int] = field(default_factory=dict)


class CopyEngine:
    def __init__(self, progress: Progress, *, parallel: int = 4, image_parallel: int | None = None,
                 arch: str | None = None) -> None:
        self.progress = progress
        self.parallel = max(1, parallel)
        self.image_parallel = image_parallel or max(8, 2 * self.parallel)
        self.arch = arch
        self._first: dict[tuple[int, str], Future] = {}
        self._lock = threading.Lock()
        self._blob_pool: ThreadPoolExecutor | None = None
        self._stop = threading.Event()

    def run(self, jobs: list[CopyJob]) -> list[CopyResult]:
        """Copy every job; failures are collected per image, never stop the others."""
        blob_pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="blob")
        image_pool = ThreadPoolExecutor(self.image_parallel, thread_name_prefix="image")
        self._blob_pool = blob_pool
        try:
            futures = [image_pool.submit(self._copy_image_safely, job) for job in jobs]
            return [f.result() for f in futures]
        except BaseException:
            # Ctrl-C or a bug: drop queued work; only transfers already running finish (at most `parallel`)
            self._stop.set()
            image_pool.shutdown(wait=False, cancel_futures=True)
            blob_pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            image_pool.shutdown(wait=True)
            blob_pool.shutdown(wait=True)

    def _copy_image_safely(self, job: CopyJob) -> CopyResult:
        try:
            result = self._copy_image(job)
        except EdgebuildError as exc:
            result = CopyResult(job.key, "failed", error=exc)
        except Exception as exc:  # noqa: BLE001 - an unexpected failure still fails only this image
            result = CopyResult(job.key, "failed", error=RegistryError(
                f"{job.key}: unexpected {type(exc).__name__}: {exc}"))
        self.progress.image_finished(job.label_src or job.key, job.label_dst, result.status,
                                     str(result.error).splitlines()[0] if result.error else "")
        return result

    def _copy_image(self, job: CopyJob) -> CopyResult:
        if self._stop.is_set():
            raise RegistryError(f"{job.label_src}: not copied, the run was interrupted")
        top = job.src.get_manifest(job.src_repo, job.src_ref)
        source_digest = top.digest
        if job.expected_digest and source_digest != job.expected_digest:
            raise RegistryError(f"{job.label_src}: resolves to {source_digest}, not {job.expected_digest}",
                                hint="the source changed since the plan was made; re-plan")
        if top.is_index and self.arch:
            top = filter_index(top, self.arch, job.label_src)
        dst_ref = job.dst_ref or top.digest
        state = job.dst.repository_state(job.dst_repo)
        absent = state == "absent"
        maybe_present = not absent and (not isinstance(state, set) or dst_ref.startswith("sha256:") or dst_ref in state)
        if maybe_present and job.dst.manifest_digest(job.dst_repo, dst_ref) == top.digest:
            return CopyResult(job.key, "present", source_digest, top.digest)
        children: list[Manifest] = []
        if top.is_index:
            for child in top.children:
                children.append(job.src.get_manifest(job.src_repo, child.digest))
        blob_futures: list[Future] = []
        seen: set[str] = set()
        for manifest in children or [top]:
            for desc in manifest.blobs:
                if desc.digest not in seen:
                    seen.add(desc.digest)
                    blob_futures.append(self._blob(job, desc, absent and desc.size <= SMALL_BLOB
                                                    and not job.dst.cheap_blob_check))
        outcomes: dict[str, int] = {}
        errors: list[BaseException] = []
        for future in blob_futures:
            try:
                outcome = future.result()
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            except BaseException as exc:  # noqa: BLE001 - collect, report the first
                errors.append(exc)
        if errors:
            raise errors[0]
        for child in children:
            if job.dst.manifest_digest(job.dst_repo, child.digest) != child.digest:
                job.dst.put_manifest(job.dst_repo, child.digest, child)
        job.dst.put_manifest(job.dst_repo, dst_ref, top)
        return CopyResult(job.key, "copied", source_digest, top.digest, blobs=outcomes)

    def _blob(self, job: CopyJob, desc: Descriptor, assume_absent: bool = False) -> Future:
        """A future for `desc` being present in the destination repository."""
        pool = self._blob_pool
        assert pool is not None
        key = (id(job.dst), desc.digest)
        with self._lock:
            first = self._first.get(key)
            if first is None:
                future = pool.submit(self._ensure, job, desc, assume_absent)
                self._first[key] = future
                return future
        chained: Future = Future()

        def after_first(_: Future) -> None:
            try:
                inner = pool.submit(self._ensure, job, desc)
            except RuntimeError as exc:  # pool shutting down
                chained.set_exception(exc)
                return
            inner.add_done_callback(lambda f: _forward(f, chained))
        first.add_done_callback(after_first)
        return chained

    def _ensure(self, job: CopyJob, desc: Descriptor, assume_absent: bool = False) -> str:
        origin = f"{job.label_src or job.src.label}"

        def opener():  # type: ignore[no-untyped-def]
            return job.src.open_blob(job.src_repo, desc)
        outcome = job.dst.ensure_blob(job.dst_repo, desc, opener, f"{origin} blob {desc.digest[:19]}",
                                      self.progress.add_bytes, assume_absent)
        self.progress.blob(outcome)
        return outcome


def _forward(source: Future, target: Future) -> None:
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())

