"""The copy engine: moves a set of images between endpoints, concurrently and at most once per blob.

Work runs on two small priority pools. The blob pool, bounded by `parallel`, moves the bytes of
big blobs, biggest first: one 300 MB layer started late would run alone at the end, so transfers
wait until every image has been inspected (half a second at most) and then take the biggest of
the whole set first. The image pool does everything that is a round trip rather than a transfer:
it inspects images (is it already at the destination? the source manifest), mounts blobs another
repository already holds, sends small blobs, and finishes images (children, then the index or
manifest, then the tag). Mounts and finishing come first there; then image by image in plan
order, inspecting it and sending its small blobs, so reads from the source and writes to the
destination overlap (measured: inspecting everything first left the destination idle at the
start and cost 10-20 % on 300 small images) and no transfer slot waits on a request that moves
no bytes.

An image waits for nothing while its blobs move: the last blob to arrive hands the image back to
the image pool. A blob needed by several images is transferred once per destination: the first
request uploads it, later ones wait for that upload and then find it (same repository) or mount
it (another repository). Children of an index are pushed before the index, blobs before their
manifest, and the tag last, so a failure never leaves a tag pointing at something incomplete.

Each blob is looked up before it is sent (HEAD), except small blobs going to a repository the
destination reports as absent (tags/list answers 404): there the lookup cannot succeed, and a
wrong guess only sends a small blob twice.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import EdgebuildError, RegistryError
from .endpoints import Endpoint
from .manifest import Descriptor, Manifest, filter_index
from .progress import Progress

# In a repository the destination says does not exist, blobs up to this size are sent without
# asking first: one HEAD costs the registry about what receiving a small blob again would.
SMALL_BLOB = 1024 * 1024

# Image pool priorities: lower runs first, first come first served among equals.
_MOUNT = (0, 0)
_FINISH_IMAGE = (0, 0)
_IMAGE_WORK = 1  # inspecting image n and sending its small blobs: (_IMAGE_WORK, n), in plan order
# Big transfers wait until every image has been inspected (or this many seconds have passed), so
# the biggest blob of the whole set goes first, not the biggest of the first images looked at.
HOLD_TRANSFERS = 0.5


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


@dataclass(slots=True)
class _Inspected:
    """An image known to be missing at the destination: what to push once its blobs are there."""

    source_digest: str
    top: Manifest
    children: list[Manifest]
    dst_ref: str
    blobs: list[Future] = field(default_factory=list)


class PriorityPool:
    """`workers` threads serving one queue, lowest priority value first, FIFO among equals.

    A ThreadPoolExecutor runs work strictly in submission order; the copy needs to run the work
    that shortens the whole run first (see the module docstring)."""

    def __init__(self, workers: int, name: str, *, held: bool = False) -> None:
        self._heap: list[tuple[tuple[int, int], int, Future, Callable[..., Any], tuple[Any, ...]]] = []
        self._cond = threading.Condition()
        self._order = itertools.count()
        self._closed = False
        self._held = held  # queue work but start none of it until release()
        self._threads = [threading.Thread(target=self._serve, name=f"{name}_{n}", daemon=True)
                         for n in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: tuple[int, int], fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("pool is shut down")
            heapq.heappush(self._heap, (priority, next(self._order), future, fn, args))
            self._cond.notify()
        return future

    def _serve(self) -> None:
        while True:
            with self._cond:
                while (self._held or not self._heap) and not self._closed:
                    self._cond.wait()
                if not self._heap:
                    return
                _, _, future, fn, args = heapq.heappop(self._heap)
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                future.set_exception(exc)

    def release(self) -> None:
        """Start the work a held pool has queued."""
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def shutdown(self, cancel: bool = False) -> None:
        """Stop taking work; with `cancel`, drop what has not started. Waits for running work."""
        with self._cond:
            self._closed = True
            self._held = False
            dropped = [item[2] for item in self._heap] if cancel else []
            if cancel:
                self._heap.clear()
            self._cond.notify_all()
        for future in dropped:
            future.cancel()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()


class CopyEngine:
    def __init__(self, progress: Progress, *, parallel: int = 4, image_parallel: int | None = None,
                 arch: str | None = None) -> None:
        self.progress = progress
        self.parallel = max(1, parallel)
        self.image_parallel = image_parallel or max(16, 4 * self.parallel)
        self.arch = arch
        self._first: dict[tuple[int, str], Future] = {}
        self._lock = threading.Lock()
        self._blobs: PriorityPool | None = None
        self._images: PriorityPool | None = None
        self._uninspected = 0
        self._rank: dict[int, int] = {}
        self._stop = threading.Event()

    def run(self, jobs: list[CopyJob]) -> list[CopyResult]:
        """Copy every job; failures are collected per image, never stop the others."""
        self._images = PriorityPool(self.image_parallel, "image")
        self._blobs = PriorityPool(self.parallel, "blob", held=True)
        self._uninspected = len(jobs)
        timer = threading.Timer(HOLD_TRANSFERS, self._blobs.release)
        timer.daemon = True
        timer.start()
        finals: list[Future] = [Future() for _ in jobs]
        try:
            self._rank = {id(job): n for n, job in enumerate(jobs)}
            for job, final in zip(jobs, finals, strict=True):
                self._images.submit((_IMAGE_WORK, self._rank[id(job)]), self._start, job, final)
            return [final.result() for final in finals]
        except BaseException:
            # Ctrl-C or a bug: drop queued work; only transfers already running finish (at most `parallel`)
            self._stop.set()
            self._images.shutdown(cancel=True)
            self._blobs.shutdown(cancel=True)
            raise
        finally:
            timer.cancel()
            self._images.shutdown()
            self._blobs.shutdown()

    # ------------------------------------------------------------------ one image, in three steps

    def _start(self, job: CopyJob, final: Future) -> None:
        """Inspect the image; if it must be copied, queue its blobs and arrange for `_finish`."""
        try:
            outcome = self._inspect(job)
        except Exception as exc:  # noqa: BLE001 - fails only this image
            self._conclude(job, final, self._failure(job, exc))
            return
        finally:
            self._inspected_one()
        if isinstance(outcome, CopyResult):
            self._conclude(job, final, outcome)
            return
        waiting = len(outcome.blobs)
        count_lock = threading.Lock()

        def blob_done(_: Future) -> None:
            nonlocal waiting
            with count_lock:
                waiting -= 1
                last = waiting == 0
            if last:
                self._queue_finish(job, outcome, final)
        if not outcome.blobs:
            self._queue_finish(job, outcome, final)
        for future in outcome.blobs:
            future.add_done_callback(blob_done)

    def _inspect(self, job: CopyJob) -> CopyResult | _Inspected:
        if self._stop.is_set():
            raise RegistryError(f"{job.label_src}: not copied, the run was interrupted")
        state = job.dst.repository_state(job.dst_repo)
        absent = state == "absent"

        def held_digest(reference: str) -> str | None:
            """What the destination holds under `reference`, asking only when it may hold it."""
            if absent or (isinstance(state, set) and not reference.startswith("sha256:") and reference not in state):
                return None
            return job.dst.manifest_digest(job.dst_repo, reference)

        asked = False
        if job.expected_digest and not self.arch:
            # an image named by digest that the destination already holds needs nothing from the source
            asked = True
            if held_digest(job.dst_ref or job.expected_digest) == job.expected_digest:
                return CopyResult(job.key, "present", job.expected_digest, job.expected_digest)
        top = job.src.get_manifest(job.src_repo, job.src_ref)
        source_digest = top.digest
        if job.expected_digest and source_digest != job.expected_digest:
            raise RegistryError(f"{job.label_src}: resolves to {source_digest}, not {job.expected_digest}",
                                hint="the source changed since the plan was made; re-plan")
        if top.is_index and self.arch:
            top = filter_index(top, self.arch, job.label_src)
        dst_ref = job.dst_ref or top.digest
        if not asked and held_digest(dst_ref) == top.digest:
            return CopyResult(job.key, "present", source_digest, top.digest)
        children = [job.src.get_manifest(job.src_repo, child.digest) for child in top.children] if top.is_index else []
        inspected = _Inspected(source_digest, top, children, dst_ref)
        seen: set[str] = set()
        for manifest in children or [top]:
            for desc in manifest.blobs:
                if desc.digest not in seen:
                    seen.add(desc.digest)
                    inspected.blobs.append(self._blob(job, desc, absent and desc.size <= SMALL_BLOB
                                                      and not job.dst.cheap_blob_check))
        return inspected

    def _inspected_one(self) -> None:
        with self._lock:
            self._uninspected -= 1
            last = self._uninspected == 0
        if last and self._blobs is not None:
            self._blobs.release()

    def _queue_finish(self, job: CopyJob, inspected: _Inspected, final: Future) -> None:
        try:
            assert self._images is not None
            self._images.submit(_FINISH_IMAGE, self._finish, job, inspected, final)
        except RuntimeError:  # the run is being interrupted
            self._conclude(job, final, self._failure(job, RegistryError(
                f"{job.label_src}: not copied, the run was interrupted")))

    def _finish(self, job: CopyJob, inspected: _Inspected, final: Future) -> None:
        """All blobs are there (or failed): push children, then the image and its tag."""
        outcomes: dict[str, int] = {}
        errors: list[BaseException] = []
        for future in inspected.blobs:
            try:
                outcome = future.result()
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            except CancelledError:
                errors.append(RegistryError(f"{job.label_src}: not copied, the run was interrupted"))
            except BaseException as exc:  # noqa: BLE001 - collect, report the first
                errors.append(exc)
        try:
            if errors:
                raise errors[0]
            for child in inspected.children:
                if job.dst.manifest_digest(job.dst_repo, child.digest) != child.digest:
                    job.dst.put_manifest(job.dst_repo, child.digest, child)
            job.dst.put_manifest(job.dst_repo, inspected.dst_ref, inspected.top)
        except BaseException as exc:  # noqa: BLE001 - fails only this image
            self._conclude(job, final, self._failure(job, exc))
            return
        self._conclude(job, final, CopyResult(job.key, "copied", inspected.source_digest, inspected.top.digest,
                                              blobs=outcomes))

    def _failure(self, job: CopyJob, exc: BaseException) -> CopyResult:
        if isinstance(exc, EdgebuildError):
            return CopyResult(job.key, "failed", error=exc)
        return CopyResult(job.key, "failed", error=RegistryError(
            f"{job.key}: unexpected {type(exc).__name__}: {exc}"))

    def _conclude(self, job: CopyJob, final: Future, result: CopyResult) -> None:
        self.progress.image_finished(job.label_src or job.key, job.label_dst, result.status,
                                     str(result.error).splitlines()[0] if result.error else "")
        final.set_result(result)

    # ------------------------------------------------------------------ blobs

    def _blob(self, job: CopyJob, desc: Descriptor, assume_absent: bool = False) -> Future:
        """A future for `desc` being present in the destination repository."""
        assert self._blobs is not None and self._images is not None
        key = (id(job.dst), desc.digest)
        with self._lock:
            first = self._first.get(key)
            if first is None:
                if desc.size > SMALL_BLOB:
                    future = self._blobs.submit((0, -desc.size), self._ensure, job, desc, assume_absent)
                else:
                    future = self._images.submit((_IMAGE_WORK, self._rank[id(job)]), self._ensure, job, desc,
                                                  assume_absent)
                self._first[key] = future
                return future
        chained: Future = Future()
        images = self._images

        def after_first(_: Future) -> None:
            # by now the blob is in the destination: this is a lookup or a mount, not a transfer
            try:
                inner = images.submit(_MOUNT, self._ensure, job, desc)
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
    if source.cancelled():
        target.cancel()
        return
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())
