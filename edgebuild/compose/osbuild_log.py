"""Finding the osbuild error in what composer returns for a failed compose.

Weldr gives a tar with `logs/osbuild.log`; the Cloud API gives, per image, the worker's job result
(osbuild-composer `internal/worker/json.go` OSBuildJobResult: `job_error` plus `osbuild_output`,
osbuild's JSON result whose `log` maps each pipeline to its stages with `type`, `output`, `success`).
A pipeline log shows the first failing stage and the end of its output: that is where dnf, skopeo
or a stage script says what went wrong.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

TAIL_LINES = 25


def tail(text: str, lines: int = TAIL_LINES) -> str:
    kept = text.rstrip().splitlines()
    if len(kept) > lines:
        return "\n".join(["...", *kept[-lines:]])
    return "\n".join(kept)


def osbuild_log_from_tar(data: bytes) -> str | None:
    """The text of `logs/osbuild.log` (any `*osbuild.log` member) in a Weldr logs tar, or None."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.endswith("osbuild.log"):
                    handle = tar.extractfile(member)
                    if handle is not None:
                        return handle.read().decode("utf-8", errors="replace")
    except tarfile.TarError:
        return None
    return None


def failed_stages(result: Any) -> list[str]:
    """Describe the stages osbuild marked failed in its JSON result, with the end of their output."""
    if not isinstance(result, dict) or not isinstance(result.get("log"), dict):
        return []
    found = []
    for pipeline, stages in result["log"].items():
        for stage in stages if isinstance(stages, list) else []:
            if isinstance(stage, dict) and stage.get("success") is False:
                text = f"pipeline {pipeline}, stage {stage.get('type', '?')} failed"
                output = str(stage.get("output") or stage.get("error") or "").strip()
                found.append(f"{text}:\n{tail(output)}" if output else text)
    return found


def excerpt_from_weldr_log(text: str) -> str:
    """The useful end of a Weldr osbuild.log; a JSON result (older workers) is reduced to its failures."""
    try:
        stages = failed_stages(json.loads(text))
    except ValueError:
        stages = []
    return "\n".join(stages) if stages else tail(text)


def excerpt_from_cloud_logs(logs: Any) -> str:
    """Job errors and failing stages from a Cloud API ComposeLogs document."""
    parts: list[str] = []
    builds = logs.get("image_builds") if isinstance(logs, dict) else None
    for build in builds if isinstance(builds, list) else []:
        if not isinstance(build, dict):
            continue
        job_error = build.get("job_error")
        if isinstance(job_error, dict):
            line = f"job error {job_error.get('id', '?')}: {job_error.get('reason', '')}".rstrip()
            details = job_error.get("details")
            if details:
                line += f" ({details if isinstance(details, str) else json.dumps(details)})"
            parts.append(line)
        parts.extend(failed_stages(build.get("osbuild_output")))
    return "\n".join(parts)
