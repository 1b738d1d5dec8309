"""Pruning of a registry mirror between runs (oc-mirror v1: v1alpha2 with a storageConfig).

oc-mirror v1 (pkg/cli/mirror/prune.go: planImagePruning, pruneImages, outputPruneImagePlan) records
what each run mirrored and, on the next run to the same registry, deletes the manifests that the
new image set no longer holds, keyed by digest and repository; `--skip-pruning` turns it off and
`--dry-run` writes `pruning-plan.json` instead. edgebuild does the same with its storageConfig state:
`with_mirrored` records the run's images under `"mirrored"`, `plan_pruning` compares that record with
the next plan, `prune` deletes.

Rules that keep the mirror whole:
* a manifest is deleted only when no image of the current set has the same digest, in any repository
  (an image shared by a pruned and a kept bundle stays), nor is a child of a kept manifest list;
* only manifests are deleted (by digest, which also drops their tags); blobs stay for the registry's
  garbage collection, which knows what other manifests still use;
* a registry that refuses deletes (HTTP 405) stops the pruning with the setting to change.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RegistryError
from .fsutil import write_atomic
from .plan import Plan
from .reference import ImageReference, ReferenceError
from .registry.client import RegistryClient

PLAN_FILE = "pruning-plan.json"
DELETE_DISABLED_HINT = ("the registry refuses deletes; enable them (docker-registry/distribution: "
                        "'storage: delete: enabled: true' in its config.yml, or REGISTRY_STORAGE_DELETE_ENABLED=true "
                        "in its environment; Quay, Harbor and others have their own setting), then run again; "
                        "or pass --skip-pruning to keep the old images")


@dataclass(frozen=True, slots=True)
class MirroredImage:
    """One manifest a run put in the mirror: repository path (no host), digest, and the tag it got."""

    repository: str
    digest: str | None
    tag: str | None = None
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"repository": self.repository, "digest": self.digest, "tag": self.tag, "source": self.source}


def mirrored_images(plan: Plan) -> list[MirroredImage]:
    """What `plan` puts in its mirror, by repository and digest (digest None until it is mirrored)."""
    out = []
    for img in plan.images:
        if not img.destination:
            continue
        try:
            ref = ImageReference.parse(img.destination)
        except ReferenceError:
            continue
        out.append(MirroredImage(ref.repository, img.digest or ref.digest, img.destination_tag or ref.tag,
                                 img.source))
    return out


def with_mirrored(state: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """`state` plus the record of this run's mirror content, which the next run prunes against."""
    if plan.mirror is None or plan.semantics != "v1":
        return state
    images = sorted((m.to_json() for m in mirrored_images(plan) if m.digest), key=lambda m: (m["repository"],
                                                                                               m["digest"]))
    return {**state, "mirrored": {"registry": plan.mirror.registry, "namespace": plan.mirror.namespace,
                                  "images": images}}


@dataclass(slots=True)
class PruningPlan:
    """Manifests to delete per repository, and those kept because the current set still shares them."""

    registry: str
    manifests: dict[str, list[str]] = field(default_factory=dict)  # repository -> digests
    kept_shared: list[str] = field(default_factory=list)  # "repo@digest (still used as ...)"

    @property
    def count(self) -> int:
        return sum(len(d) for d in self.manifests.values())

    def to_json(self) -> dict[str, Any]:
        """oc-mirror v1's pruning-plan.json shape (pruneImagePlan): registry, repositories[name, manifests]."""
        return {"registry": self.registry,
                "repositories": [{"name": repo, "manifests": sorted(digests)}
                                 for repo, digests in sorted(self.manifests.items())]}


def plan_pruning(previous: dict[str, Any] | None, plan: Plan) -> PruningPlan | None:
    """What left the image set since the recorded run, or None when there is nothing to compare with
    (no earlier record, v2 semantics, or an earlier run into another registry or namespace)."""
    record = (previous or {}).get("mirrored")
    if not record or plan.mirror is None or plan.semantics != "v1":
        return None
    if (record.get("registry"), record.get("namespace", "")) != (plan.mirror.registry, plan.mirror.namespace):
        return None
    current = mirrored_images(plan)
    kept_pairs = {(m.repository, m.digest) for m in current if m.digest}
    kept_digests = {m.digest: m for m in current if m.digest}
    # Before mirroring (dry run) an image by tag has no digest yet: its tag keeps the old manifest.
    kept_tags = {(m.repository, m.tag) for m in current if not m.digest and m.tag}
    result = PruningPlan(plan.mirror.registry)
    for old in record.get("images") or []:
        repo, digest, tag = old.get("repository"), old.get("digest"), old.get("tag")
        if not repo or not digest or (repo, digest) in kept_pairs or (repo, tag) in kept_tags:
            continue
        if digest in kept_digests:
            other = kept_digests[digest]
            result.kept_shared.append(f"{repo}@{digest} (the same image is still selected as {other.source})")
            continue
        result.manifests.setdefault(repo, []).append(digest)
    return result


def write_pruning_plan(pruning: PruningPlan, path: Path) -> None:
    """The dry-run file: oc-mirror's pruning-plan.json format (indented with one space, as it writes)."""
    write_atomic(path, (json.dumps(pruning.to_json(), indent=1) + "\n").encode())


def protect_children(pruning: PruningPlan, plan: Plan, client: RegistryClient) -> None:
    """Add the children of pruned manifest lists to the plan, unless a kept list or image uses them.

    Reads the manifests of the repositories that lose something (kept and pruned ones), so a child
    digest shared with a kept index in the same repository is never deleted."""
    kept: dict[str, set[str]] = {}
    for m in mirrored_images(plan):
        if m.digest and m.repository in pruning.manifests:
            kept.setdefault(m.repository, set()).add(m.digest)
    for repo, digests in pruning.manifests.items():
        protected = set(kept.get(repo, set()))
        for digest in sorted(protected):
            protected |= _children(client, repo, digest)
        extra = []
        for digest in digests:
            extra += [c for c in sorted(_children(client, repo, digest)) if c not in protected and c not in digests]
        for digest in [d for d in digests if d in protected]:
            pruning.kept_shared.append(f"{repo}@{digest} (a kept manifest list of {repo} holds it)")
        digests[:] = [d for d in digests if d not in protected] + list(dict.fromkeys(extra))
    for repo in [r for r, d in pruning.manifests.items() if not d]:
        del pruning.manifests[repo]


def _children(client: RegistryClient, repo: str, digest: str) -> set[str]:
    if client.head_manifest(repo, digest) is None:
        return set()
    manifest = client.get_manifest(repo, digest)
    return {c.digest for c in manifest.children} if manifest.is_index else set()


@dataclass(slots=True)
class DeleteReport:
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def delete_manifests(client: RegistryClient, manifests: dict[str, list[str]], what: str) -> DeleteReport:
    """DELETE each manifest by digest (lists before their children); a 405 stops with the fix to make.

    Other failures are collected and raised together at the end, after every other delete was tried."""
    report = DeleteReport()
    for repo, digests in sorted(manifests.items()):
        for digest in digests:
            try:
                client.delete_manifest(repo, digest)
            except RegistryError as exc:
                if _is_delete_disabled(exc):
                    raise RegistryError(f"{what}: registry {client.registry} refused to delete {repo}@{digest} "
                                        f"(HTTP 405: deletes are disabled)", hint=DELETE_DISABLED_HINT) from None
                report.errors.append(str(exc))
                continue
            report.deleted.append(f"{client.registry}/{repo}@{digest}")
    if report.errors:
        raise RegistryError(f"{what}: {len(report.errors)} manifest(s) could not be deleted:\n  "
                            + "\n  ".join(report.errors), hint="the others were deleted; run again to retry")
    return report


def _is_delete_disabled(exc: RegistryError) -> bool:
    return getattr(exc, "status", None) == 405 or " HTTP 405 " in f"{exc.message} "


def run_pruning(plan: Plan, previous: dict[str, Any] | None, *, dry_run: bool, skip: bool, plan_file: Path,
                client_options: dict[str, Any], quiet: bool = False) -> DeleteReport | None:
    """The pruning step of a mirror/build run: plan it, then write the dry-run file or delete."""
    pruning = plan_pruning(previous, plan)
    if pruning is None:
        return None
    say = (lambda _text: None) if quiet else (lambda text: print(text, file=sys.stderr))
    for line in pruning.kept_shared:
        say(f"pruning: keeping {line}")
    if skip:
        say(f"pruning skipped (--skip-pruning): {pruning.count} manifest(s) that left the image set stay in "
            f"{pruning.registry}")
        return None
    with RegistryClient(pruning.registry, **client_options) as client:
        if pruning.manifests:
            protect_children(pruning, plan, client)
        if dry_run:
            write_pruning_plan(pruning, plan_file)
            say(f"pruning plan: {pruning.count} manifest(s) would be deleted, written to {plan_file}")
            return None
        if not pruning.manifests:
            return DeleteReport()
        for repo, digests in sorted(pruning.manifests.items()):
            say(f"Pruning {len(digests)} manifest(s) from repository {repo}")
        report = delete_manifests(client, pruning.manifests, "pruning")
    say(f"pruned {len(report.deleted)} manifest(s) from {pruning.registry}; blobs are left to the registry's "
        f"garbage collection (docker-registry: 'registry garbage-collect CONFIG')")
    return report
