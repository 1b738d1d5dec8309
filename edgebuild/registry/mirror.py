"""Public mirroring API for the CLI: registry to registry, to disk, from disk, and dry run.

    report = mirror_to_registry(plan, "docker://mirror.example:5000/ns", MirrorOptions(...))
    report = mirror_to_disk(plan, "file:///data/mirror", options)
    report = mirror_from_disk("file:///data/mirror", "docker://mirror.example:5000", options)
    lines = dry_run(plan, target)          # the mapping, nothing written

A disk copy is one OCI image layout (DIR/index.json, DIR/blobs/sha256/…) plus DIR/edgebuild/
holding plan.json and images.json (what each layout name is, and whether the run finished). With
archiveSize, each run also writes the next archive sequence (archive.py): only new blobs, so what
crosses the air gap is the difference; pushing a later sequence relies on the destination holding
what the earlier ones carried.
Failures of single images do not stop the others; at the end a RegistryError lists them (exit 1)
and carries the report as `.report`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..errors import RegistryError, UsageError
from ..fsutil import locked_directory, path_length_problem, pause_point, write_atomic
from ..plan import Plan, PlanImage, image_destination
from ..reference import ImageReference, MirrorTarget
from .archive import (
    ArchivedLayout,
    SequenceWritten,
    blob_repositories,
    blob_sequence,
    find_archives,
    open_archives,
    read_record,
    write_archives,
)
from .client import RegistryClient
from .endpoints import BlobOpener, BlobOutcome, Endpoint, RegistryEndpoint, RepositoryState
from .engine import CopyEngine, CopyJob, CopyResult
from .layout import LayoutEndpoint, ref_name, remove_leftovers
from .manifest import Descriptor, Manifest
from .progress import Progress, human_bytes
from .retry import RetryPolicy

METADATA_DIR = "edgebuild"
IMAGES_FILE = "images.json"
PLAN_FILE = "plan.json"
FORMAT_VERSION = 1


@dataclass(slots=True)
class MirrorOptions:
    src_tls_verify: bool = True
    dest_tls_verify: bool = True
    authfile: str | None = None
    cert_dir: str | None = None  # CA (*.crt) and client certs, for source and destination registries
    src_cert_dir: str | None = None  # ... for source registries only (instead of cert_dir)
    dest_cert_dir: str | None = None  # ... for the destination registry only (instead of cert_dir)
    arch: str | None = None  # keep only this architecture of manifest lists / indexes
    parallel: int = 4  # concurrent blob transfers
    quiet: bool = False
    verbose: int = 0  # -v: a line per image
    progress_stream: TextIO | None = None
    live_progress: bool | None = None  # None: live when the stream is a terminal
    retry: RetryPolicy | None = None
    archive_size_gb: int | None = None  # mirror-to-disk: also pack the result into tar archives of this size
    previous_state: dict[str, Any] | None = None  # storageConfig state: images mirrored by earlier runs
    # catalog source reference -> its extracted FBC directory: rebuild that catalog filtered to the
    # plan's selection (oc-mirror v1 --rebuild-catalogs) instead of copying it verbatim
    catalog_dirs: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None  # scratch space for rebuilt catalog layers (default: the system temp dir)
    # --continue-on-error / --skip-missing: a disk copy with failed images is still complete (they are
    # marked "status": "failed" in images.json and left out when it is pushed)
    keep_going: bool = False


@dataclass(slots=True)
class MirrorReport:
    target: str
    results: list[CopyResult] = field(default_factory=list)
    elapsed: float = 0.0
    bytes: int = 0
    blobs: dict[str, int] = field(default_factory=dict)
    skipped_previous: list[str] = field(default_factory=list)  # known from storageConfig state, not copied
    archives: list[str] = field(default_factory=list)
    archive_sequence: int = 0  # mirror-to-disk: the sequence those archives form (0: nothing new to archive)
    rebuilt: dict[str, str] = field(default_factory=dict)  # catalog source -> digest of the rebuilt image

    def _with(self, status: str) -> list[CopyResult]:
        return [r for r in self.results if r.status == status]

    @property
    def copied(self) -> list[CopyResult]:
        return self._with("copied")

    @property
    def present(self) -> list[CopyResult]:
        return self._with("present")

    @property
    def failed(self) -> list[CopyResult]:
        return self._with("failed")

    @property
    def nothing_new(self) -> bool:
        return not self.copied and not self.failed

    @property
    def digests(self) -> dict[str, str]:
        """{plan source: resolved source digest} of every image that is in the target."""
        return {r.key: r.digest for r in self.results if r.digest and r.status != "failed"}

    def summary(self) -> str:
        total = len(self.results) + len(self.skipped_previous)
        if self.nothing_new:
            return (f"nothing new to mirror to {self.target}: all {total} images are already there"
                    + (f" ({len(self.skipped_previous)} recorded by earlier runs)" if self.skipped_previous else ""))
        rate = human_bytes(self.bytes / self.elapsed) if self.elapsed > 0 else "?"
        text = (f"mirrored to {self.target}: {len(self.copied)} copied, {len(self.present)} already present, "
                f"{len(self.failed)} failed; {human_bytes(self.bytes)} in {self.elapsed:.1f} s ({rate}/s); blobs "
                f"{self.blobs.get('copied', 0)} uploaded, {self.blobs.get('mounted', 0)} mounted, "
                f"{self.blobs.get('present', 0)} already there")
        return text


class _Clients:
    """One RegistryClient per (registry, role), so source and destination TLS options stay apart."""

    def __init__(self, options: MirrorOptions) -> None:
        self.options = options
        self._endpoints: dict[tuple[str, str], RegistryEndpoint] = {}
        self._layouts: dict[tuple[str, str], LayoutEndpoint] = {}

    def layout(self, path: str) -> LayoutEndpoint:
        """A read-only OCI layout used as a source (oci:// catalogs), one per path."""
        key = (path, "layout")
        if key not in self._layouts:
            self._layouts[key] = LayoutEndpoint(path, create=False, retry=self.options.retry)
        return self._layouts[key]

    def endpoint(self, registry: str, role: str, tls_verify: bool | None = None) -> RegistryEndpoint:
        key = (registry, role)
        if key not in self._endpoints:
            if tls_verify is None:
                tls_verify = self.options.src_tls_verify if role == "src" else self.options.dest_tls_verify
            cert_dir = (self.options.src_cert_dir if role == "src" else self.options.dest_cert_dir) \
                or self.options.cert_dir
            client = RegistryClient(registry, tls_verify=tls_verify, cert_dir=cert_dir,
                                    authfile=self.options.authfile, retry=self.options.retry,
                                    max_connections=4 * max(8, self.options.parallel))
            self._endpoints[key] = RegistryEndpoint(client)
        return self._endpoints[key]

    def close(self) -> None:
        for endpoint in self._endpoints.values():
            endpoint.client.close()


def parse_target(target: str | MirrorTarget) -> MirrorTarget:
    if isinstance(target, MirrorTarget):
        return target
    try:
        return MirrorTarget.parse(target)
    except ValueError as exc:
        raise RegistryError(str(exc), hint="use docker://HOST[:PORT][/NAMESPACE]") from None


def parse_dir(directory: str | os.PathLike[str]) -> Path:
    text = os.fspath(directory)
    return Path(text.removeprefix("file://")) if text.startswith("file://") else Path(text)


def relative_destination(img: PlanImage, plan: Plan) -> tuple[str, str | None]:
    """(repository path under the mirror, tag to push or None for digest only), independent of the mirror."""
    if img.destination:
        dest = ImageReference.parse(img.destination)
        repository = dest.repository
        if plan.mirror is not None and plan.mirror.namespace and dest.registry == plan.mirror.registry:
            repository = repository.removeprefix(plan.mirror.namespace + "/")
        return repository, img.destination_tag or dest.tag
    ref = ImageReference.parse(img.source)
    placeholder = MirrorTarget("placeholder.invalid")
    dest_text, tag = image_destination(ref, plan.semantics, placeholder)
    return ImageReference.parse(dest_text).repository, tag


def mapping_for(plan: Plan, target: str | MirrorTarget) -> list[str]:
    """oc-mirror's mapping lines (`source=destination:tag`) for `target`."""
    mirror = parse_target(target)
    lines = []
    for img in plan.images:
        repository, tag = relative_destination(img, plan)
        dest = f"{mirror.registry}/{mirror.repository_for(repository)}"
        lines.append(f"{img.source}={dest}:{tag}" if tag else f"{img.source}={dest}@{img.digest}")
    return lines


def disk_mapping(plan: Plan, directory: str | os.PathLike[str]) -> list[str]:
    """`source=file://DIR/REPOSITORY:TAG` (or `@DIGEST`): where mirror-to-disk puts each image in its layout."""
    root = parse_dir(directory)
    lines = []
    for img in plan.images:
        repository, tag = relative_destination(img, plan)
        lines.append(f"{img.source}=file://{root}/{repository}" + (f":{tag}" if tag else f"@{img.digest}"))
    return lines


def dry_run(plan: Plan, target: str | MirrorTarget | None = None) -> list[str]:
    """The mapping a mirror run would use; touches no registry and writes nothing."""
    if isinstance(target, str) and target.startswith("file://"):
        return disk_mapping(plan, target)
    if target is None or (plan.mirror is not None and parse_target(target) == plan.mirror):
        return plan.mapping_lines()
    return mapping_for(plan, target)


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a plan image is read from: an endpoint, the repository in it and a tag or digest."""

    endpoint: Endpoint
    repository: str
    reference: str
    digest: str | None  # known up front (a digest reference); checked against what is read


def _source_of(img: PlanImage, clients: _Clients) -> _Source:
    """A registry image, or an `oci://PATH[:NAME]` catalog read from its OCI layout by digest."""
    if img.source.startswith("oci://"):
        spec = img.source.removeprefix("oci://")
        path, name = spec, ""
        if not Path(spec).is_dir() and ":" in spec:
            path, _, name = spec.rpartition(":")
        try:
            digest = str(clients.layout(path).entry(name)["digest"])
        except RegistryError as exc:
            raise RegistryError(f"{img.source}: {exc.message}", exc.hint) from None
        return _Source(clients.layout(path), "", digest, digest)
    ref = ImageReference.parse(img.source)
    return _Source(clients.endpoint(ref.registry, "src"), ref.repository, ref.digest or ref.tag or "latest",
                   ref.digest)


class _StartSignal:
    """A copy source that tells the progress when the engine first reads an image from it (the image
    is then in flight); everything else goes straight to the wrapped endpoint."""

    def __init__(self, inner: Endpoint, progress: Progress, label: str) -> None:
        self._inner = inner
        self._progress = progress
        self._label = label

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        self._progress.image_started(self._label)
        return self._inner.get_manifest(repository, reference)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


AfterCopy = Callable[[Progress, MirrorReport], None]


def _run(jobs: list[CopyJob], options: MirrorOptions, target_label: str, total: int | None = None,
         after: AfterCopy | None = None, extra: int = 0) -> MirrorReport:
    """Copy `jobs`, then run `after` (the catalog rebuilds, `extra` images) under the same progress,
    so every image of the plan is counted once."""
    report = MirrorReport(target=target_label)
    start = time.monotonic()
    with Progress((total if total is not None else len(jobs)) + extra, stream=options.progress_stream,
                  quiet=options.quiet, live=options.live_progress, verbose=options.verbose) as progress:
        engine = CopyEngine(progress, parallel=options.parallel, arch=options.arch)
        for job in jobs:
            job.src = _StartSignal(job.src, progress, job.label_src or job.key)
        report.results = engine.run(jobs)
        if after is not None:
            after(progress, report)
    report.elapsed = time.monotonic() - start
    report.bytes = progress.bytes
    report.blobs = dict(progress.blobs)
    return report


def _finish(report: MirrorReport, options: MirrorOptions) -> MirrorReport:
    (options.progress_stream or sys.stderr).write(report.summary() + "\n")  # -q too: the result
    if report.failed:
        lines = [f"  {r.key}: {str(r.error).splitlines()[0]}" for r in report.failed]
        hints = sorted({r.error.hint for r in report.failed if r.error and r.error.hint})
        error = RegistryError(f"{len(report.failed)} of {len(report.results)} images failed to mirror to "
                              f"{report.target}:\n" + "\n".join(lines),
                              hint="; ".join(hints) or "fix the cause and rerun: finished images are kept")
        error.report = report  # type: ignore[attr-defined]
        raise error
    return report


def _record_digests(plan: Plan, report: MirrorReport) -> None:
    by_source = {r.key: r for r in report.results}
    for img in plan.images:
        result = by_source.get(img.source)
        if result and result.digest and result.status != "failed":
            img.digest = result.digest


def _previously_mirrored(options: MirrorOptions) -> dict[str, str]:
    state = options.previous_state or {}
    images = state.get("images") if isinstance(state, dict) else None
    return dict(images) if isinstance(images, dict) else {}


def _catalogs_to_rebuild(plan: Plan, options: MirrorOptions) -> dict[str, Any]:
    """{catalog source: its CatalogPlan} for catalogs that are rebuilt rather than copied."""
    out = {}
    for op in plan.operators:
        if op.selection is not None and op.spec.catalog in options.catalog_dirs:
            out[op.spec.catalog] = op
    return out


def _rebuild_catalogs(plan: Plan, options: MirrorOptions, clients: _Clients, dst: Endpoint,
                      dst_repo_for: Callable[[str], str],
                      report: MirrorReport, workroot: str | None, progress: Progress) -> None:
    rebuild = _catalogs_to_rebuild(plan, options)
    if not rebuild:
        return
    from .catalog_rebuild import rebuild_catalog_image, write_filtered_fbc
    for img in plan.images:
        op = rebuild.get(img.source)
        if op is None or img.type != "catalog":
            continue
        source = _source_of(img, clients)
        repository, tag = relative_destination(img, plan)
        label_dst = f"{dst.label}/{dst_repo_for(repository)}:{tag or 'latest'} (rebuilt with the selection)"
        progress.image_started(img.source)
        try:
            with tempfile.TemporaryDirectory(dir=workroot, prefix="edgebuild-catalog-") as work:
                fbc = write_filtered_fbc(op.selection, options.catalog_dirs[img.source], Path(work) / "index.json")
                digest, pushed = rebuild_catalog_image(source.endpoint, source.repository, source.reference, dst,
                                               dst_repo_for(repository), tag or "latest", fbc, Path(work), img.source)
        except RegistryError as exc:
            report.results.append(CopyResult(img.source, "failed", error=exc))
            progress.image_finished(img.source, label_dst, "failed", str(exc).splitlines()[0])
            continue
        img.digest = digest
        report.rebuilt[img.source] = digest
        report.results.append(CopyResult(img.source, "copied" if pushed else "present", digest, digest))
        progress.image_finished(img.source, label_dst, "copied" if pushed else "present")


def _rebuild_count(plan: Plan, rebuild: dict[str, Any]) -> int:
    return sum(1 for img in plan.images if img.type == "catalog" and img.source in rebuild)


def mirror_to_registry(plan: Plan, target: str | MirrorTarget, options: MirrorOptions | None = None
                       ) -> MirrorReport:
    """Copy every plan image to `target` (docker://HOST[:PORT][/NS]); sets PlanImage.digest."""
    options = options or MirrorOptions()
    mirror = parse_target(target)
    clients = _Clients(options)
    try:
        destination = clients.endpoint(mirror.registry, "dst")
        jobs = []
        rebuild = _catalogs_to_rebuild(plan, options)
        for img in plan.images:
            if img.source in rebuild and img.type == "catalog":
                continue
            source = _source_of(img, clients)
            repository, tag = relative_destination(img, plan)
            dst_repo = mirror.repository_for(repository)
            jobs.append(CopyJob(img.source, source.endpoint, source.repository, source.reference,
                                destination, dst_repo, tag, expected_digest=source.digest, label_src=img.source,
                                label_dst=f"{mirror.registry}/{dst_repo}" + (f":{tag}" if tag else "")))
        def after(progress: Progress, report: MirrorReport) -> None:
            _record_digests(plan, report)
            _rebuild_catalogs(plan, options, clients, destination, mirror.repository_for, report, options.workdir,
                              progress)
        report = _run(jobs, options, f"docker://{mirror}", after=after, extra=_rebuild_count(plan, rebuild))
    finally:
        clients.close()
    return _finish(report, options)


def _disk_entries(plan: Plan) -> list[dict[str, Any]]:
    entries = []
    for img in plan.images:
        repository, tag = relative_destination(img, plan)
        entries.append({"source": img.source, "type": img.type, "repository": repository, "tag": tag,
                        "digest": img.digest})
    return entries


def _write_metadata(root: Path, plan_json: str | None, entries: list[dict[str, Any]], complete: bool) -> None:
    meta = root / METADATA_DIR
    if plan_json is not None:
        write_atomic(meta / PLAN_FILE, plan_json.encode(), durable=True)
    body = {"version": FORMAT_VERSION, "complete": complete, "images": entries}
    write_atomic(meta / IMAGES_FILE, (json.dumps(body, indent=1) + "\n").encode(), durable=True)


def mirror_to_disk(plan: Plan, directory: str | os.PathLike[str], options: MirrorOptions | None = None
                   ) -> MirrorReport:
    """Copy every plan image into an OCI layout at `directory` (file://DIR); resumable, atomic per file.

    With `options.previous_state` (storageConfig), images an earlier run already mirrored at the
    same digest are left out, as oc-mirror v1 does for incremental mirroring.
    One writer per directory: a second run into the same DIR waits for the first (a lock on DIR
    itself), then reads the index the first one left, so both runs' images stay in index.json.
    """
    options = options or MirrorOptions()
    root = parse_dir(directory)
    if problem := path_length_problem(str(root.absolute())):
        raise UsageError(f"--to file://{root}: {problem}", "choose a shorter directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from ..errors import FileSystemError
        raise FileSystemError.from_os_error(exc, root, "writing") from None

    def say(text: str) -> None:
        (options.progress_stream or sys.stderr).write(text + "\n")

    with locked_directory(root, "this disk copy", None if options.quiet else say):
        remove_leftovers(root)
        pause_point("mirror-disk-locked")
        return _mirror_to_disk_locked(plan, root, options)


def _mirror_to_disk_locked(plan: Plan, root: Path, options: MirrorOptions) -> MirrorReport:
    layout = LayoutEndpoint(root, retry=options.retry)
    entries = _disk_entries(plan)
    _write_metadata(root, plan.dumps(), entries, complete=False)
    previous = _previously_mirrored(options)
    clients = _Clients(options)
    skipped: list[str] = []
    try:
        jobs = []
        rebuild = _catalogs_to_rebuild(plan, options)
        for img, entry in zip(plan.images, entries, strict=True):
            if img.source in rebuild and img.type == "catalog":
                continue
            source = _source_of(img, clients)
            if source.digest and previous.get(img.source) == source.digest:
                skipped.append(img.source)
                entry["previous"] = True
                continue
            dst_ref = entry["tag"]
            jobs.append(CopyJob(img.source, source.endpoint, source.repository, source.reference,
                                layout, entry["repository"], dst_ref, expected_digest=source.digest,
                                label_src=img.source, label_dst=f"{root}:{entry['repository']}:{dst_ref}"))
        def after(progress: Progress, report: MirrorReport) -> None:
            _record_digests(plan, report)
            (root / METADATA_DIR).mkdir(exist_ok=True)
            _rebuild_catalogs(plan, options, clients, layout, lambda repo: repo, report,
                              options.workdir or str(root / METADATA_DIR), progress)
        report = _run(jobs, options, f"file://{root}", total=len(jobs), after=after,
                      extra=_rebuild_count(plan, rebuild))
    finally:
        clients.close()
    report.skipped_previous = skipped
    by_source = {r.key: r for r in report.results}
    for entry in entries:
        result = by_source.get(entry["source"])
        if result is not None:
            entry["digest"] = result.digest
            entry["layoutDigest"] = result.pushed_digest
            if entry["source"] in report.rebuilt:
                entry["rebuilt"] = True
            entry["status"] = result.status
    whole = not report.failed or options.keep_going
    _write_metadata(root, plan.dumps(), entries, complete=whole)
    note = None
    if options.archive_size_gb and whole:
        written = write_archives(root, options.archive_size_gb)
        report.archives = [str(p) for p in written.archives]
        report.archive_sequence = written.sequence
        note = _archive_note(root, written)
    _finish(report, options)
    if note and not options.quiet:
        (options.progress_stream or sys.stderr).write(note + "\n")
    return report


def _archive_note(root: Path, written: SequenceWritten) -> str:
    """One line telling the user what to carry: the new sequence, and what it builds on."""
    if not written.sequence:
        return (f"archives: nothing new since mirror_seq{written.previous}; no archive written "
                f"({root / 'archives'} already holds the last sequence)")
    text = (f"archives: mirror_seq{written.sequence}, {len(written.archives)} file(s) in {root / 'archives'}: "
            f"{written.new_blobs} new blobs ({human_bytes(written.new_bytes)}) and the metadata")
    if written.previous:
        earlier = "mirror_seq1" if written.previous == 1 else f"mirror_seq1..{written.previous}"
        text += f"; it holds only what {earlier} did not, so push it to a registry that got those"
    return text


BlobStream = AbstractContextManager[tuple[Iterator[bytes], int | None]]


@dataclass(slots=True)
class _DiskCopy:
    """A disk copy opened for reading: a layout directory, or archives read in place."""

    layout: LayoutEndpoint  # an ArchivedLayout when the blobs are inside tar archives
    body: dict[str, Any]  # edgebuild/images.json
    record: dict[str, Any] | None  # edgebuild/archives.json: which sequence carried which blob
    sequences: list[int]  # archive sequences present in the directory ([] for a layout directory)


def _open_disk_copy(directory: str | os.PathLike[str], retry: RetryPolicy | None = None) -> _DiskCopy:
    """The layout when DIR holds one; otherwise DIR's archives, indexed, blobs left inside them."""
    root = parse_dir(directory)
    sequences: list[int] = []
    layout: LayoutEndpoint | None = None
    if not (root / METADATA_DIR / IMAGES_FILE).is_file() and find_archives(root):
        archived = open_archives(root)
        layout = ArchivedLayout(archived, retry=retry)
        root, sequences = archived.root, archived.sequences
    body = _read_images_file(root)
    layout = layout or LayoutEndpoint(root, create=False, retry=retry)
    return _DiskCopy(layout, body, read_record(root), sequences)


def _read_images_file(root: Path) -> dict[str, Any]:
    path = root / METADATA_DIR / IMAGES_FILE
    if not path.is_file():
        raise RegistryError(f"{root} holds no edgebuild disk copy ({METADATA_DIR}/{IMAGES_FILE} is missing)",
                            hint="point --from at a directory written by `edgebuild mirror --to file://DIR`")
    try:
        body = json.loads(path.read_text())
    except ValueError as exc:
        raise RegistryError(f"{path} is not valid JSON: {exc}", hint="rerun mirror-to-disk to rewrite it") from None
    if not body.get("complete"):
        raise RegistryError(f"the disk copy in {root} is incomplete (its mirror-to-disk run did not finish)",
                            hint="rerun `edgebuild mirror --to file://DIR` to complete it first")
    return body


def read_disk_metadata(directory: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """(root holding edgebuild/, images.json body) of a disk copy; for archives, the extracted
    metadata of the newest sequence."""
    copy = _open_disk_copy(directory)
    return copy.layout.root, copy.body


class _Carried:
    """What a push of one disk copy may rely on besides its own blobs: the destination holding
    what earlier archive sequences carried. Knows where such a blob should already be (the
    archive record's repositories, and repositories given it during this push) and, when it is
    nowhere, which sequence to push first."""

    MOUNT_TRIES = 3  # a blob a sequence carried is in every repository that used it; one is enough

    def __init__(self, copy: _DiskCopy, destination: RegistryEndpoint, directory: Path,
                 repository_for: Callable[[str], str]) -> None:
        self.copy = copy
        self.destination = destination
        self.directory = directory
        self.repository_for = repository_for
        self._given: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def held(self, digest: str) -> bool:
        return self.copy.layout.blob_size(digest) is not None

    def given(self, digest: str, repository: str) -> None:
        with self._lock:
            self._given.setdefault(digest, set()).add(repository)

    def mount_sources(self, digest: str, repository: str) -> list[str]:
        with self._lock:
            ours = sorted(self._given.get(digest, ()))
        recorded = [self.repository_for(r) for r in blob_repositories(self.copy.record, digest)]
        out = [r for r in dict.fromkeys(ours + recorded) if r != repository]
        return out[:self.MOUNT_TRIES]

    def missing(self, what: str, digest: str, repository: str) -> RegistryError:
        sequence = blob_sequence(self.copy.record, digest)
        at = f"{self.destination.label}/{repository}"
        if sequence is not None and self.copy.sequences and sequence not in self.copy.sequences:
            return RegistryError(
                f"{what} {digest} is in archive sequence mirror_seq{sequence}, which {self.directory} does not "
                f"hold, and {at} does not have it",
                hint=f"push mirror_seq{sequence} first (edgebuild mirror --from file://DIR with its archives), "
                     "then this sequence: each holds only what the sequences before it did not")
        return RegistryError(f"{what} {digest} is neither in {self.directory} nor in {at}",
                             hint="the disk copy is incomplete; rerun mirror-to-disk and carry every archive")


class _CarriedSource:
    """The disk copy as a copy source; a manifest an earlier sequence carried is read back from
    the destination (the engine needs it to see that the image is already there)."""

    def __init__(self, carried: _Carried) -> None:
        self.carried = carried
        self.layout = carried.copy.layout
        self.label = self.layout.label
        self.cheap_blob_check = self.layout.cheap_blob_check

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        digest = self.layout.indexed_digest(repository, reference)
        if digest is None or self.carried.held(digest):
            return self.layout.get_manifest(repository, reference)
        destination, dst_repo = self.carried.destination, self.carried.repository_for(repository)
        if destination.manifest_digest(dst_repo, digest) != digest:
            raise self.carried.missing(f"manifest of {ref_name(repository, reference)}", digest, dst_repo)
        return destination.get_manifest(dst_repo, digest)

    def repository_state(self, repository: str) -> RepositoryState:
        return self.layout.repository_state(repository)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        return self.layout.manifest_digest(repository, reference)

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        raise RegistryError(f"{self.label}: a disk copy is read-only when pushed")

    def open_blob(self, repository: str, desc: Descriptor) -> BlobStream:
        return self.layout.open_blob(repository, desc)

    def ensure_blob(self, repository: str, desc: Descriptor, opener: BlobOpener, origin: str,
                    on_bytes: Callable[[int], None] | None = None, assume_absent: bool = False) -> BlobOutcome:
        raise RegistryError(f"{self.label}: a disk copy is read-only when pushed")


class _CarriedDestination:
    """The destination registry; a blob the disk copy lacks must already be there: found by HEAD,
    or mounted from a repository that got it from an earlier sequence, else the image fails with
    the sequence to push first (before anything of it is pushed: the engine pushes manifests and
    tags only once every blob is in place)."""

    def __init__(self, carried: _Carried) -> None:
        self.carried = carried
        self.inner = carried.destination
        self.label = self.inner.label
        self.cheap_blob_check = self.inner.cheap_blob_check

    def repository_state(self, repository: str) -> RepositoryState:
        return self.inner.repository_state(repository)

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        return self.inner.get_manifest(repository, reference)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        return self.inner.manifest_digest(repository, reference)

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        self.inner.put_manifest(repository, reference, manifest)

    def open_blob(self, repository: str, desc: Descriptor) -> BlobStream:
        return self.inner.open_blob(repository, desc)

    def ensure_blob(self, repository: str, desc: Descriptor, opener: BlobOpener, origin: str,
                    on_bytes: Callable[[int], None] | None = None, assume_absent: bool = False) -> BlobOutcome:
        outcome: BlobOutcome
        if self.carried.held(desc.digest):
            outcome = self.inner.ensure_blob(repository, desc, opener, origin, on_bytes, assume_absent)
        elif self.inner.client.head_blob(repository, desc.digest) is not None:
            outcome = "present"
        else:
            for other in self.carried.mount_sources(desc.digest, repository):
                if self.inner.client.mount_blob(repository, desc.digest, other):
                    outcome = "mounted"
                    break
            else:
                raise self.carried.missing("blob", desc.digest, repository)
        self.carried.given(desc.digest, repository)
        return outcome


def mirror_from_disk(directory: str | os.PathLike[str], target: str | MirrorTarget,
                     options: MirrorOptions | None = None) -> MirrorReport:
    """Push a disk copy made by mirror_to_disk to `target` (disk-to-mirror).

    DIR is the mirror-to-disk directory itself, or holds its archives: any sequences, read in
    place. Blobs that earlier sequences carried are expected at the destination already."""
    options = options or MirrorOptions()
    mirror = parse_target(target)
    copy = _open_disk_copy(directory, options.retry)
    clients = _Clients(options)
    try:
        carried = _Carried(copy, clients.endpoint(mirror.registry, "dst"), parse_dir(directory),
                           mirror.repository_for)
        source, destination = _CarriedSource(carried), _CarriedDestination(carried)
        jobs = []
        for entry in copy.body["images"]:
            if entry.get("previous") or entry.get("status") == "failed":  # failed: not in the disk copy
                continue
            src_ref = entry["tag"] or entry["layoutDigest"]
            dst_repo = mirror.repository_for(entry["repository"])
            label_dst = f"{mirror.registry}/{dst_repo}" + (f":{entry['tag']}" if entry["tag"] else "")
            jobs.append(CopyJob(entry["source"], source, entry["repository"], src_ref, destination, dst_repo,
                                entry["tag"], expected_digest=entry.get("layoutDigest"), label_src=entry["source"],
                                label_dst=label_dst))
        report = _run(jobs, options, f"docker://{mirror}")
    finally:
        clients.close()
    # the layout already holds what was chosen at mirror-to-disk time (arch filtering included)
    by_key = {e["source"]: e for e in copy.body["images"]}
    for result in report.results:
        entry = by_key.get(result.key)
        if entry and result.status != "failed":
            result.digest = entry.get("digest") or result.digest
    return _finish(report, options)

