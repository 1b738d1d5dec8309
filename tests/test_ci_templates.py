"""The ci/ pipeline templates: they parse, and every edgebuild command they run parses with the real CLI.

Commands are found in every string of each YAML document (GitLab `script`, GitHub `run`, Tekton
`script`), with shell line continuations joined, and handed to `edgebuild.cli.build_parser()`, so
a renamed or missing flag fails here rather than in a user's pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CI = Path(__file__).resolve().parents[1] / "ci"
TEMPLATES = ("gitlab-ci.yml", "github-actions.yml", "tekton-task.yaml")


SHELL_KEYS = ("script", "before_script", "after_script", "run")


def shell_strings(node: Any, in_shell: bool = False) -> Iterator[str]:
    """Strings a runner hands to a shell: values (or list items) under script/run keys."""
    if isinstance(node, str):
        if in_shell:
            yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from shell_strings(value, in_shell or key in SHELL_KEYS)
    elif isinstance(node, list):
        for value in node:
            yield from shell_strings(value, in_shell)


def shell_text(path: Path) -> str:
    return "\n".join(t for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) for t in shell_strings(doc))


def edgebuild_commands(path: Path) -> list[list[str]]:
    """Every `edgebuild ...` command line in the template, split as the shell would split it."""
    found = []
    for line in shell_text(path).replace("\\\n", " ").splitlines():
        line = line.strip()
        if re.match(r"^(exec\s+)?edgebuild\s", line):
            argv = shlex.split(line, comments=True)
            found.append(argv[1:] if argv[0] == "exec" else argv)
    return found


def parse(argv: list[str]) -> argparse.Namespace:
    from edgebuild.cli import build_parser  # the lead's CLI; imported here so a missing module fails clearly
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"the CLI refuses {shlex.join(argv)}:\n{errors.getvalue()}")


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_parses_as_yaml(name: str) -> None:
    docs = list(yaml.safe_load_all((CI / name).read_text(encoding="utf-8")))
    assert docs and all(isinstance(d, dict) for d in docs)


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_edgebuild_command_parses_with_the_cli(name: str) -> None:
    commands = edgebuild_commands(CI / name)
    assert commands, f"{name} runs no edgebuild command"
    for argv in commands:
        parse(argv)


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_builds_with_an_authfile_then_composes_an_edge_commit_and_waits(name: str) -> None:
    parsed = [parse(argv) for argv in edgebuild_commands(CI / name)]
    builds = [a for a in parsed if a.command == "build"]
    composes = [a for a in parsed if a.command == "compose"]
    assert builds and composes
    for args in builds:
        assert args.config and args.to and args.output and args.authfile
    for args in composes:
        assert args.blueprint.endswith("blueprint.toml")
        assert args.image_type == "edge-commit" and args.wait and args.ref and args.download
        assert args.socket or (args.cloud_api and args.token_file), "a composer address and, for HTTPS, a token"


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_never_trace_or_echo_secrets(name: str) -> None:
    text = shell_text(CI / name)
    assert shell_text(CI / name).strip(), "the template has shell steps"
    assert "set -x" not in text and "set -o xtrace" not in text
    for line in text.splitlines():
        if re.search(r"\b(echo|printf|cat)\b", line) and re.search(r"TOKEN|AUTH", line):
            assert ">" in line or "exit" in line, f"{name}: a line may print a secret: {line.strip()}"


def test_github_secrets_reach_the_shell_only_through_env() -> None:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text(encoding="utf-8"))
    assert workflow[True]  # YAML 1.1 reads the key `on` as true
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            assert "secrets." not in step.get("run", ""), f"step {step.get('name')} inlines a secret in run"


def test_gitlab_caches_the_storage_config_metadata_and_keeps_the_render_output() -> None:
    pipeline = yaml.safe_load((CI / "gitlab-ci.yml").read_text(encoding="utf-8"))
    build = pipeline["edgebuild-build"]
    assert build["cache"]["paths"] == [".edgebuild-metadata/"] and build["cache"]["policy"] == "pull-push"
    assert build["artifacts"]["paths"] == [pipeline["variables"]["OUTDIR"] + "/"]
    assert pipeline["edgebuild-compose"]["artifacts"]["paths"] == [pipeline["variables"]["IMAGE_DIR"] + "/"]
    assert pipeline["edgebuild-compose"]["needs"] == ["edgebuild-build"]


def test_tekton_task_references_only_declared_params_workspaces_and_results() -> None:
    task = yaml.safe_load((CI / "tekton-task.yaml").read_text(encoding="utf-8"))
    assert task["apiVersion"] == "tekton.dev/v1" and task["kind"] == "Task"
    spec = task["spec"]
    params = {p["name"] for p in spec["params"]}
    workspaces = {w["name"] for w in spec["workspaces"]}
    results = {r["name"] for r in spec["results"]}
    text = yaml.safe_dump(spec["steps"])
    assert set(re.findall(r"\$\(params\.([a-z0-9-]+)\)", text)) <= params
    assert set(re.findall(r"\$\(workspaces\.([a-z0-9-]+)\.", text)) <= workspaces
    assert set(re.findall(r"\$\(results\.([a-z0-9-]+)\.", text)) <= results
    assert {"registry-auth", "metadata", "composer-token"} <= workspaces
    assert all("$(params." not in step["script"] for step in spec["steps"]), "params reach scripts via env only"


def test_readme_explains_each_template() -> None:
    readme = (CI / "README.md").read_text(encoding="utf-8")
    for name in TEMPLATES:
        assert name in readme
    for needle in ("REGISTRY_AUTH_FILE", "storageConfig", "--token-file", "osbuild-composer.socket"):
        assert needle in readme
