"""Weldr API client against the composer stand-in (tests/composer_standin.py).

No osbuild-composer can run on these machines, so these tests drive the client against a stand-in
that implements the documented Weldr endpoints and status flow (WAITING -> RUNNING -> FINISHED |
FAILED) on a real unix socket and records every request that breaks the API's rules; the `standin`
fixture fails a test that sent such a request.
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

import httpx
import pytest

from edgebuild.compose import (
    ComposeFailedError,
    ComposerAPIError,
    ComposerUnavailableError,
    ComposeTimeoutError,
    WeldrClient,
    compose_weldr,
)
from edgebuild.compose.transport import Waiter
from edgebuild.errors import EdgebuildError, UsageError
from tests.composer_standin import SAMPLE_BLUEPRINT, StandIn

REF = "rhel/9/x86_64/edge"


def weldr_calls(standin: StandIn) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in standin.requests("weldr")]


def test_full_flow_pushes_depsolves_composes_polls_and_downloads(standin: StandIn, blueprint: Path,
                                                                  tmp_path: Path) -> None:
    seen = []
    result = compose_weldr(blueprint, "edge-commit", socket=standin.weldr_socket, ref=REF, wait=True,
                           download_dir=tmp_path / "out", progress=seen.append, poll_interval=0.001)

    assert result.state == "FINISHED" and result.finished
    compose = standin.state()["composes"][result.compose_id]
    assert result.artifact == tmp_path / "out" / f"{result.compose_id}-commit.tar"
    assert result.artifact_sha256 == compose["artifact_sha256"]
    assert result.artifact.stat().st_size == result.artifact_size
    assert [p.state for p in seen] == ["WAITING", "RUNNING", "FINISHED", "DOWNLOADED"]
    assert not list((tmp_path / "out").glob(".*partial")), "no temporary file is left behind"

    calls = weldr_calls(standin)
    assert calls[:3] == ["POST /api/v1/blueprints/new", "GET /api/v1/blueprints/depsolve/microshift-edge",
                         "POST /api/v1/compose"]
    assert calls[-1] == f"GET /api/v1/compose/image/{result.compose_id}"
    assert calls.count(f"GET /api/v1/compose/status/{result.compose_id}") == result.polls + 1
    push, _, start = standin.requests("weldr")[:3]
    assert push["content_type"] == "text/x-toml"
    assert tomllib.loads(push["text"]) == tomllib.loads(SAMPLE_BLUEPRINT), "the TOML goes to Weldr as is"
    assert start["json"] == {"blueprint_name": "microshift-edge", "compose_type": "edge-commit",
                             "branch": "master", "ostree": {"ref": REF}}


def test_without_wait_returns_the_queued_compose(standin: StandIn, blueprint: Path) -> None:
    result = compose_weldr(blueprint, "edge-container", socket=standin.weldr_socket)
    assert result.state == "WAITING" and result.artifact is None
    assert not any("/compose/status/" in c for c in weldr_calls(standin))
    assert standin.requests("weldr")[-1]["json"] == {"blueprint_name": "microshift-edge",
                                                     "compose_type": "edge-container", "branch": "master"}


def test_failed_compose_shows_the_osbuild_error_and_keeps_the_log(standin: StandIn, blueprint: Path,
                                                                 tmp_path: Path) -> None:
    standin.scenario(outcome="failure")
    with pytest.raises(ComposeFailedError) as caught:
        compose_weldr(blueprint, "edge-commit", socket=standin.weldr_socket, ref=REF, download_dir=tmp_path,
                      poll_interval=0.001)
    err = caught.value
    text = str(err)
    assert err.compose_id in text and "Weldr API" in text
    assert "Stage: org.osbuild.skopeo" in text and "manifest unknown" in text
    assert err.log_path == str(tmp_path / f"{err.compose_id}-osbuild.log")
    assert "manifest unknown" in Path(err.log_path).read_text()
    assert f"GET /api/v1/compose/logs/{err.compose_id}" in weldr_calls(standin)
    assert not list(tmp_path.glob("*commit.tar")), "nothing is downloaded for a failed compose"
    assert err.exit_code == 1


def test_depsolve_error_is_shown_with_its_id_and_nothing_is_composed(standin: StandIn, blueprint: Path) -> None:
    standin.scenario(depsolve_error="DNF error occurred: missing packages: microshift-olm-4.17.1")
    with pytest.raises(ComposerAPIError) as caught:
        compose_weldr(blueprint, "edge-commit", socket=standin.weldr_socket, wait=True)
    assert caught.value.error_ids == ["BlueprintsError"]
    assert "missing packages: microshift-olm-4.17.1" in str(caught.value)
    assert "composer-cli sources list" in str(caught.value)
    assert "POST /api/v1/compose" not in weldr_calls(standin)


def test_refused_compose_is_shown_with_the_api_error_id_and_message(standin: StandIn, blueprint: Path) -> None:
    standin.scenario(compose_error={"id": "ComposePushErrored", "msg": "No worker for arch: x86_64"})
    with pytest.raises(ComposerAPIError) as caught:
        compose_weldr(blueprint, "edge-commit", socket=standin.weldr_socket)
    text = str(caught.value)
    assert "ComposePushErrored: No worker for arch: x86_64" in text
    assert "POST /api/v1/compose" in text and "HTTP 400" in text


def test_edge_installer_sends_the_ostree_url(standin: StandIn, tmp_path: Path) -> None:
    installer = tmp_path / "installer.toml"
    installer.write_text('name = "microshift-installer"\nversion = "0.0.1"\ndistro = "rhel-94"\npackages = []\n')
    url = "http://10.0.0.5:8080/repo/"
    compose_weldr(installer, "edge-installer", socket=standin.weldr_socket, ref=REF, url=url)
    assert standin.requests("weldr")[-1]["json"]["ostree"] == {"ref": REF, "url": url}


@pytest.mark.parametrize("image_type, options, needle", [
    ("edge-commit", {"parent": REF}, "--parent needs --url"),
    ("edge-installer", {}, "edge-installer needs --url"),
    ("qcow2", {}, "not supported"),
])
def test_ostree_options_composer_would_refuse_are_refused_before_sending(
        standin: StandIn, blueprint: Path, image_type: str, options: dict[str, str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        compose_weldr(blueprint, image_type, socket=standin.weldr_socket, **options)
    assert standin.requests("weldr") == []


def test_missing_socket_names_the_path_and_the_fix(tmp_path: Path, blueprint: Path) -> None:
    path = str(tmp_path / "weldr" / "api.socket")
    with pytest.raises(ComposerUnavailableError) as caught:
        compose_weldr(blueprint, "edge-commit", socket=path)
    text = str(caught.value)
    assert path in text and "does not exist" in text
    assert "systemctl start osbuild-composer.socket" in text


def test_default_socket_path_is_the_weldr_socket(blueprint: Path) -> None:
    if Path("/run/weldr/api.socket").exists():
        pytest.skip("a real composer socket exists on this machine")
    with pytest.raises(ComposerUnavailableError, match="/run/weldr/api.socket"):
        compose_weldr(blueprint, "edge-commit")


def test_a_file_that_is_not_a_socket_is_explained(tmp_path: Path, blueprint: Path) -> None:
    path = tmp_path / "api.socket"
    path.write_text("")
    with pytest.raises(ComposerUnavailableError, match="is not a unix socket"):
        compose_weldr(blueprint, "edge-commit", socket=str(path))


def test_a_socket_nobody_listens_on_is_explained(tmp_path: Path, blueprint: Path) -> None:
    """A stale socket file (service stopped) refuses connections; the error points at the service."""
    path = tmp_path / "stale.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    with pytest.raises(ComposerUnavailableError) as caught:
        compose_weldr(blueprint, "edge-commit", socket=str(path))
    assert str(path) in str(caught.value) and "systemctl status osbuild-composer.socket" in str(caught.value)


def test_timeout_leaves_the_compose_running_and_says_how_to_follow_it(standin: StandIn, blueprint: Path) -> None:
    standin.scenario(running_polls=1000)
    clock = iter(range(0, 10_000, 30))
    waiter = Waiter(interval=0, timeout=100, clock=lambda: float(next(clock)), sleep=lambda _s: None)
    with pytest.raises(ComposeTimeoutError) as caught:
        compose_weldr(blueprint, "edge-commit", socket=standin.weldr_socket, wait=True, waiter=waiter)
    text = str(caught.value)
    assert "still RUNNING" in text and "composer-cli compose cancel" in text


def test_image_of_an_unfinished_compose_is_refused_with_build_in_wrong_state(standin: StandIn, blueprint: Path,
                                                                            tmp_path: Path) -> None:
    result = compose_weldr(blueprint, "edge-commit", socket=standin.weldr_socket)
    with WeldrClient(standin.weldr_socket) as client, pytest.raises(ComposerAPIError) as caught:
        client.download_image(result.compose_id, "edge-commit", tmp_path / "out")
    assert caught.value.error_ids == ["BuildInWrongState"]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir()), "no file is left"


@pytest.mark.parametrize("text, needle", [
    ('name = "bad name"\n', "characters composer refuses"),
    ('name = "ok"\nversion = "1.0"\n', "not semantic versioning"),
    ("name = \n", "not valid TOML"),
    ('description = "x"\n', "has no name"),
])
def test_blueprint_problems_name_the_file(standin: StandIn, tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bp.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        compose_weldr(path, "edge-commit", socket=standin.weldr_socket)
    assert needle in str(caught.value) and str(path) in str(caught.value)
    assert caught.value.exit_code == 2


def test_standin_records_a_push_with_a_wrong_content_type(standin: StandIn) -> None:
    """The stand-in's own strictness: a body Weldr would refuse is a recorded violation (fails tests)."""
    with httpx.Client(transport=httpx.HTTPTransport(uds=standin.weldr_socket), base_url="http://x") as c:
        response = c.post("/api/v1/blueprints/new", content=SAMPLE_BLUEPRINT, headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["msg"] == "blueprint must be in json or toml format"
    assert any("Content-Type 'text/plain'" in v for v in standin.take_violations())


def test_every_compose_error_is_an_edgebuild_error() -> None:
    for cls in (ComposeFailedError, ComposerAPIError, ComposerUnavailableError, ComposeTimeoutError):
        assert issubclass(cls, EdgebuildError)


def test_image_download_streams_to_disk(standin: StandIn, blueprint: Path, tmp_path: Path) -> None:
    """A 64 MiB image goes to disk in chunks: Python allocations stay far below the image size."""
    import time
    import tracemalloc

    size = 64 * 1024 * 1024
    standin.scenario(artifact_size=size)
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = compose_weldr(blueprint, "edge-commit", socket=standin.weldr_socket, download_dir=tmp_path,
                               poll_interval=0.001)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    assert result.artifact_size is not None and result.artifact_size > size
    assert result.artifact_sha256 == standin.state()["composes"][result.compose_id]["artifact_sha256"]
    assert peak < 16 * 1024 * 1024, f"peak Python allocation {peak / 2**20:.1f} MiB while downloading"
    print(f"weldr download: {size / 2**20:.0f} MiB in {elapsed:.2f}s, peak Python allocation {peak / 2**20:.1f} MiB")
