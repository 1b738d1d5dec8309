"""`edgebuild compose` arguments -> clients, and the compose commands of the ci/ templates run for real.

No osbuild-composer can run on these machines: the commands run against the composer stand-in
(tests/composer_standin.py), which implements the documented Weldr and Cloud API endpoints and
validates every Cloud API request body against the OpenAPI document.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest

from edgebuild.cli import build_parser
from edgebuild.compose.command import run_compose
from edgebuild.errors import UsageError
from tests.composer_standin import SAMPLE_BLUEPRINT, StandIn
from tests.test_ci_templates import CI, TEMPLATES, edgebuild_commands


def run(argv: list[str]) -> str:
    out = io.StringIO()
    assert run_compose(build_parser().parse_args(argv), out=out, poll_interval=0.001) == 0
    return out.getvalue()


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "blueprint.toml").write_text(SAMPLE_BLUEPRINT, encoding="utf-8")
    return tmp_path


def test_weldr_from_cli_flags(standin: StandIn, outdir: Path) -> None:
    text = run(["compose", str(outdir / "out/blueprint.toml"), "--type", "edge-commit", "--wait",
                "--download", str(outdir / "image"), "--socket", standin.weldr_socket, "--ref", "rhel/9/x86_64/edge"])
    compose_id = next(iter(standin.state()["composes"]))
    assert f"compose {compose_id} (weldr API, edge-commit, blueprint microshift-edge): FINISHED" in text
    assert f"image: {outdir}/image/{compose_id}-commit.tar" in text


def test_cloud_api_from_cli_flags_with_ca_from_ssl_cert_file(standin: StandIn, outdir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", standin.ca_cert)
    text = run(["compose", str(outdir / "out/blueprint.toml"), "--type", "edge-container",
                "--cloud-api", standin.cloud_url, "--token-file", standin.token_file, "--arch", "amd64"])
    assert "(cloud API, edge-container, blueprint microshift-edge): pending" in text
    assert "pass --wait to follow it" in text
    assert standin.token not in text


@pytest.mark.parametrize("extra, needle", [
    (["--socket", "/x.sock", "--cloud-api", "https://h"], "exclude each other"),
    (["--token-file", "/t"], "--token-file is for the Cloud API"),
])
def test_conflicting_flags_are_usage_errors(outdir: Path, extra: list[str], needle: str) -> None:
    args = build_parser().parse_args(["compose", str(outdir / "out/blueprint.toml"), "--type", "edge-commit", *extra])
    with pytest.raises(UsageError, match=needle):
        run_compose(args)


def _expand(token: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: env[m.group(1)], token)


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_compose_commands_run_against_the_standin(name: str, standin: StandIn, outdir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Each compose command of a template, with its variables pointed at the stand-in, composes and downloads."""
    runner_temp = outdir / "runner"
    runner_temp.mkdir()
    shutil.copy(standin.token_file, runner_temp / "composer-token")
    env = {"OUTDIR": "out", "IMAGE_DIR": "image", "OSTREE_REF": "rhel/9/x86_64/edge",
           "COMPOSER_SOCKET": standin.weldr_socket, "COMPOSER_CLOUD_API": standin.cloud_url,
           "CLOUD_API": standin.cloud_url, "COMPOSER_TOKEN_FILE": standin.token_file,
           "TOKEN_FILE": standin.token_file, "RUNNER_TEMP": str(runner_temp)}
    monkeypatch.chdir(outdir)
    monkeypatch.setenv("SSL_CERT_FILE", standin.ca_cert)
    composes = [argv for argv in edgebuild_commands(CI / name) if argv[1] == "compose"]
    for argv in composes:
        text = run([_expand(t, env) for t in argv[1:]])
        assert "image: image/" in text
    assert len(list((outdir / "image").glob("*-commit.tar"))) == len(composes)
