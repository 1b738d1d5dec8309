"""Public mirroring API for the CLI: registry to registry, to disk, from disk, and dry run.

    report = mirror_to_registry(plan, "docker://mirror.example:5000/ns", MirrorOptions(...))
    report = mirror_to_disk(plan, "file:///data/mirror", options)
    report = mirror_from_disk("file:///data/mirror", "docker://mirror.example:5000", options)
    lines = dry_run(plan, target)          # the mapping, nothing written

A disk copy is one OCI image layout (DIR/index.json, DIR/blobs/sha256/…) plus DIR/edgebuild/
holding plan.json and images.json (what each layout name is, and whether the run finished).
Failures of single images do not stop the others; at the end a RegistryError lists them (exit 1)
and carries the report as `.report`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ..errors import EdgebuildError, RegistryError
from ..plan import Plan, PlanImage, image_destination
from ..reference import ImageReference, MirrorTarget
from .client import RegistryClient
from .endpoints import Endpoint, RegistryEndpoint
from .engine import CopyEngine, CopyJob, CopyResult
from ..fsutil import write_atomic
from .layout import LayoutEndpoint
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
    arch: str | None = None  # keep only this architecture of manifest lists / indexes
    parallel: int = 4  # concurrent blob transfers
    quiet: bool = False
    progress_stream: TextIO | None = None
    live_progress: bool | None = None  # None: live when the stream is a terminal
    retry: RetryPolicy | None = None
    archive_size_gb: int | None = None  # mirror-to-disk: also pack the result into tar archives of this size
    previous_state: dict[str, Any] | None = None  # storageConfig state: images mirrored by earlier runs
    # catalog source reference -> its extracted FBC directory: rebuild that catalog filtered to the
    # plan's selection (oc-mirror v1 --rebuild-catalogs) instead of copying it verbatim
    catalog_dirs: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None  # scratch space for rebuilt catalog layers (default: the system temp dir)


@dataclass(slots=True)
class MirrorReport:
    target: str
    results: list[CopyResult] = field(default_factory=list)
    elapsed: float = 0.0
    bytes: int = 0
    blobs: dict[str, int] = field(default_factory=dict)
    skipped_previous: list[str] = field(default_factory=list)  # known from storageConfig state, not copied
    archives: list[str] = field(default_factory=list)
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
            client = RegistryClient(registry, tls_verify=tls_verify, cert_dir=self.options.cert_dir,
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


def dry_run(plan: Plan, target: str | MirrorTarget | None = None) -> list[str]:
    """The mapping a mirror run would use; touches no registry and writes nothing."""
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


def _source_of(img: PlanImage, clients: "_Clients") -> _Source:
    """A registry image, or an `oci://PATH[:NAME]` catalog read from its OCI layout by digest."""
    if img.source.startswith("oci://"):
        from ..catalog.sources import OciLayoutSource
        spec = img.source.removeprefix("oci://")
        path, name = spec, ""
        if not Path(spec).is_dir() and ":" in spec:
            path, _, name = spec.rpartition(":")
        try:
            digest = str(OciLayoutSource(Path(path)).descriptor(name)["digest"])
        except EdgebuildError as exc:
            raise RegistryError(f"{img.source}: {exc.message}", exc.hint) from None
        return _Source(clients.layout(path), "", digest, digest)
    ref = ImageReference.parse(img.source)
    return _Source(clients.endpoint(ref.registry, "src"), ref.repository, ref.digest or ref.tag or "latest",
                   ref.digest)


def _run(jobs: list[CopyJob], options: MirrorOptions, target_label: str, total: int | None = None) -> MirrorReport:
    report = MirrorReport(target=target_label)
    start = time.monotonic()
    with Progress(total if total is not None else len(jobs), stream=options.progress_stream, quiet=options.quiet,
                  live=options.live_progress) as progress:
        engine = CopyEngine(progress, parallel=options.parallel, arch=options.arch)
        report.results = engine.run(jobs)
    report.elapsed = time.monotonic() - start
    report.bytes = progress.bytes
    report.blobs = dict(progress.blobs)
    return report


def _finish(report: MirrorReport, options: MirrorOptions) -> MirrorReport:
    if not options.quiet:
        (options.progress_stream or sys.stderr).write(report.summary() + "\n")
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
                      report: MirrorReport, workroot: str | None) -> None:
    from .catalog_rebuild import rebuild_catalog_image, write_filtered_fbc
    rebuild = _catalogs_to_rebuild(plan, options)
    for img in plan.images:
        op = rebuild.get(img.source)
        if op is None or img.type != "catalog":
            continue
        source = _source_of(img, clients)
        repository, tag = relative_destination(img, plan)
        start = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(dir=workroot, prefix="edgebuild-catalog-") as work:
                fbc = write_filtered_fbc(op.selection, options.catalog_dirs[img.source], Path(work) / "index.json")
                digest, pushed = rebuild_catalog_image(source.endpoint, source.repository, source.reference, dst,
                                               dst_repo_for(repository), tag or "latest", fbc, Path(work), img.source)
        except RegistryError as exc:
            report.results.append(CopyResult(img.source, "failed", error=exc))
            continue
        report.elapsed += time.monotonic() - start
        img.digest = digest
        report.rebuilt[img.source] = digest
        report.results.append(CopyResult(img.source, "copied" if pushed else "present", digest, digest))


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
        report = _run(jobs, options, f"docker://{mirror}")
        _record_digests(plan, report)
        _rebuild_catalogs(plan, options, clients, destination, mirror.repository_for, report, options.workdir)
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
        write_atomic(meta / PLAN_FILE, plan_json.encode())
    body = {"version": FORMAT_VERSION, "complete": complete, "images": entries}
    write_atomic(meta / IMAGES_FILE, (json.dumps(body, indent=1) + "\n").encode())


def mirror_to_disk(plan: Plan, directory: str | os.PathLike[str], options: MirrorOptions | None = None
                   ) -> MirrorReport:
    """Copy every plan image into an OCI layout at `directory` (file://DIR); resumable, atomic per file.

    With `options.previous_state` (storageConfig), images an earlier run already mirrored at the
    same digest are left out, as oc-mirror v1 does for incremental mirroring.
    """
    options = options or MirrorOptions()
    root = parse_dir(directory)
    layout = LayoutEndpoint(root, retry=options.retry)
    entries = _disk_entries(plan)
    _write_metadata(root, plan.dumps(), entries, complete=False)
    previous = _previously_mirrored(options)
    clients = _Clients(options)
    skipped: list[str] = []
    try:
        jobs = []
        rebuild = _catalogs_to_rebuild(plan, options)
        for img, entry in zip(plan.images, entries):
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
        report = _run(jobs, options, f"file://{root}", total=len(jobs))
        _record_digests(plan, report)
        (root / METADATA_DIR).mkdir(exist_ok=True)
        _rebuild_catalogs(plan, options, clients, layout, lambda repo: repo, report,
                          options.workdir or str(root / METADATA_DIR))
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
    _write_metadata(root, plan.dumps(), entries, complete=not report.failed)
    if options.archive_size_gb and not report.failed:
        from .archive import write_archives
        report.archives = [str(p) for p in write_archives(root, options.archive_size_gb)]
    return _finish(report, options)


def read_disk_metadata(directory: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """(layout root, images.json body) of a disk copy; unpacks archives first when only they are there."""
    root = parse_dir(directory)
    if not (root / METADATA_DIR / IMAGES_FILE).is_file():
        from .archive import find_archives, unpack_archives
        if find_archives(root):
            root = unpack_archives(root)
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
    return root, body


def mirror_from_disk(directory: str | os.PathLike[str], target: str | MirrorTarget,
                     options: MirrorOptions | None = None) -> MirrorReport:
    """Push a disk copy made by mirror_to_disk to `target` (disk-to-mirror)."""
    options = options or MirrorOptions()
    mirror = parse_target(target)
    root, body = read_disk_metadata(directory)
    layout = LayoutEndpoint(root, create=False, retry=options.retry)
    clients = _Clients(options)
    try:
        destination = clients.endpoint(mirror.registry, "dst")
        jobs = []
        for entry in body["images"]:
            if entry.get("previous"):
                continue
            src_ref = entry["tag"] or entry["layoutDigest"]
            dst_repo = mirror.repository_for(entry["repository"])
            jobs.append(CopyJob(entry["source"], layout, entry["repository"], src_ref, destination, dst_repo,
                                entry["tag"], expected_digest=entry.get("layoutDigest"), label_src=entry["source"],
                                label_dst=f"{mirror.registry}/{dst_repo}" + (f":{entry['tag']}" if entry["tag"] else "")))
        report = _run(jobs, options, f"docker://{mirror}")
    finally:
        clients.close()
    # the layout already holds what was chosen at mirror-to-disk time (arch filtering included)
    by_key = {e["source"]: e for e in body["images"]}
    for result in report.results:
        entry = by_key.get(result.key)
        if entry and result.status != "failed":
            result.digest = entry.get("digest") or result.digest
    return _finish(report, options)


def load_disk_plan(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The plan JSON a disk copy was made from (for rendering after disk-to-mirror)."""
    root, _ = read_disk_metadata(directory)
    return json.loads((root / METADATA_DIR / PLAN_FILE).read_text())
