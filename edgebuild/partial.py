"""Carrying on when some images could not be mirrored (`--continue-on-error`, `--skip-missing`).

As oc-mirror v1 does (v1/pkg/cli/mirror/util.go `checkErr`, mirror.go `Run`): with
--continue-on-error a failed image is logged and the run goes on, and the command still fails at
the end ("one or more errors occurred"); with --skip-missing an image the source does not have
(not found) is skipped with a warning and the run succeeds. `render` and `build` then work on what
was mirrored and mark the rest in OUT/images.json (`"mirrored": false` with the reason) and in
the summary, so nobody mistakes a partial output for a whole one.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EdgebuildError, FileSystemError, RegistryError
from .fsutil import write_atomic
from .plan import Plan

log = logging.getLogger("edgebuild")


def is_not_found(error: EdgebuildError | None) -> bool:
    """An image the source registry does not have (HTTP 404 on its manifest)."""
    return error is not None and "HTTP 404" in error.message


@dataclass(slots=True)
class Shortfall:
    """The images a tolerated mirror run did not mirror: {plan source: first line of the reason}."""

    failed: dict[str, str] = field(default_factory=dict)
    fatal: bool = False  # --continue-on-error: the command fails at the end even so

    def __bool__(self) -> bool:
        return bool(self.failed)


def tolerate(error: RegistryError, args: argparse.Namespace) -> Shortfall:
    """The shortfall of a failed mirror run when the user asked to carry on; re-raises otherwise."""
    report = getattr(error, "report", None)
    continue_on_error = getattr(args, "continue_on_error", False)
    skip_missing = getattr(args, "skip_missing", False)
    if report is None or not (continue_on_error or skip_missing):
        raise error
    failed = report.failed
    if not continue_on_error and not all(is_not_found(r.error) for r in failed):
        raise error
    shortfall = Shortfall({r.key: str(r.error).splitlines()[0] for r in failed}, fatal=continue_on_error)
    word = "--continue-on-error" if continue_on_error else "--skip-missing"
    log.warning("warning: %s: carrying on without %d image(s) that could not be mirrored:", word, len(failed))
    for source, reason in shortfall.failed.items():
        log.warning("  not mirrored: %s: %s", source, reason)
    return shortfall


def without(plan: Plan, shortfall: Shortfall) -> Plan:
    """The plan minus what was not mirrored (render must not embed what the mirror lacks)."""
    if shortfall:
        plan.images = [img for img in plan.images if img.source not in shortfall.failed]
    return plan


def mark_in_outputs(outdir: Path, plan_types: Mapping[str, str], shortfall: Shortfall) -> None:
    """Add the images that were not mirrored to OUT/images.json, each with why."""
    if not shortfall:
        return
    path = outdir / "images.json"
    try:
        entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        entries += [{"type": plan_types.get(source, "related"), "source": source, "mirrored": False,
                     "reason": reason} for source, reason in sorted(shortfall.failed.items())]
        write_atomic(path, (json.dumps(entries, indent=2) + "\n").encode())
    except OSError as exc:
        raise FileSystemError.from_os_error(exc, path, "writing") from None


def summary(shortfall: Shortfall, outdir: Path | None = None) -> str:
    where = f" (marked \"mirrored\": false in {outdir / 'images.json'})" if outdir is not None else ""
    return (f"incomplete: {len(shortfall.failed)} image(s) were not mirrored and are not in the output{where}: "
            + ", ".join(sorted(shortfall.failed)))
