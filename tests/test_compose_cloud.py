"""Cloud API client against the composer stand-in (tests/composer_standin.py).

No osbuild-composer can run on these machines, so these tests drive the client against a stand-in
that implements the documented Cloud API endpoints and status flow (pending -> building ->
uploading -> success | failure), on its unix socket (no token) and on 127.0.0.1 over TLS with a
bearer token. The stand-in validates every request body with jsonschema against the components of
composer-cloudapi-openapi.v2.yml; the `standin` fixture fails a test that sent an invalid body.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edgebuild.compose import ComposeFailedError, ComposerAPIError, ComposerUnavailableError, Token, compose_cloud
from edgebuild.compose.cloud import CloudClient
from edgebuild.compose.transport import parse_endpoint
from edgebuild.errors import UsageError
from tests.composer_standin import StandIn

REF = "rhel/9/x86_64/edge"


def https(standin: StandIn, **extra: object) -> dict[str, object]:
    return {"endpoint": standin.cloud_url, "token": Token.from_file(standin.token_file), "ca_cert": standin.ca_cert,
            "poll_interval": 0.001, **extra}


def test_full_flow_over_https_with_token(standin: StandIn, blueprint: Path, tmp_path: Path) -> None:
    seen = []
    result = compose_cloud(blueprint, "edge-commit", ref=REF, download_dir=tmp_path / "out", progress=seen.append,
                           arch="amd64", **https(standin))
    compose = standin.state()["composes"][result.compose_id]
    assert result.state == "success" and result.finished
    assert result.artifact == tmp_path / "out" / f"{result.compose_id}-commit.tar"
    assert result.artifact_sha256 == compose["artifact_sha256"]
    assert result.ostree_commit == compose["ostree_commit"]
    states = [(p.state, p.done, p.total) for p in seen]
    assert states == [("pending", None, None), ("building", 1, 3), ("building", 2, 3), ("building", 3, 3),
                      ("success", 3, 3), ("downloaded", None, None)]

    requests = standin.requests("cloud")
    assert all(r["authorized"] for r in requests), "every request carries the bearer token"
    paths = [f"{r['method']} {r['path'].removeprefix('/api/image-builder-composer/v2')}" for r in requests]
    assert paths[0] == "POST /compose" and paths[-2:] == [f"GET /composes/{result.compose_id}/metadata",
                                                           f"GET /composes/{result.compose_id}/download"]
    body = requests[0]["json"]
    assert body["distribution"] == "rhel-94"
    assert body["image_request"] == {"architecture": "x86_64", "image_type": "edge-commit", "repositories": [],
                                     "upload_targets": [{"type": "local", "upload_options": {}}],
                                     "ostree": {"ref": REF}}
    assert body["blueprint"]["containers"][1]["tls_verify"] is False
    assert "tls-verify" not in body["blueprint"]["containers"][1]


def test_full_flow_over_the_local_socket_sends_no_token(standin: StandIn, blueprint: Path, tmp_path: Path) -> None:
    result = compose_cloud(blueprint, "edge-container", endpoint=f"unix://{standin.cloud_socket}", ref=REF,
                           wait=True, poll_interval=0.001)
    assert result.state == "success" and result.artifact is None
    assert not any(r["authorized"] for r in standin.requests("cloud"))


def test_without_wait_returns_the_pending_compose(standin: StandIn, blueprint: Path) -> None:
    result = compose_cloud(blueprint, "edge-commit", **https(standin))
    assert result.state == "pending" and result.polls == 0
    assert len(standin.requests("cloud")) == 1


def test_failed_compose_shows_the_image_error_and_the_failing_stage(standin: StandIn, blueprint: Path,
                                                                   tmp_path: Path) -> None:
    standin.scenario(outcome="failure")
    with pytest.raises(ComposeFailedError) as caught:
        compose_cloud(blueprint, "edge-commit", ref=REF, download_dir=tmp_path, **https(standin))
    err = caught.value
    text = str(err)
    assert err.compose_id in text and "Cloud API" in text
    assert "error 10: osbuild build failed" in text
    assert "job error 10: osbuild build failed" in text
    assert "pipeline os, stage org.osbuild.skopeo failed" in text and "manifest unknown" in text
    assert err.log_path == str(tmp_path / f"{err.compose_id}-logs.json")
    assert "manifest unknown" in Path(err.log_path).read_text()
    assert not list(tmp_path.glob("*commit.tar"))


def test_refused_compose_is_shown_with_the_api_error_code_and_reason(standin: StandIn, blueprint: Path) -> None:
    standin.scenario(compose_error={"id": 4, "reason": "Unsupported distribution"})
    with pytest.raises(ComposerAPIError) as caught:
        compose_cloud(blueprint, "edge-commit", **https(standin))
    text = str(caught.value)
    assert "IMAGE-BUILDER-COMPOSER-4: Unsupported distribution" in text
    assert "POST /api/image-builder-composer/v2/compose" in text and "HTTP 400" in text
    assert "[operation " in text


def test_wrong_token_is_refused_and_never_printed_or_logged(standin: StandIn, blueprint: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    secret = "wrong-" + standin.token
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the CLI quiets httpx; these tests want every line
    with pytest.raises(ComposerAPIError) as caught:
        compose_cloud(blueprint, "edge-commit", endpoint=standin.cloud_url, token=secret, ca_cert=standin.ca_cert)
    err = caught.value
    assert err.status_code == 401 and "IMAGE-BUILDER-COMPOSER-1000" in str(err)
    assert "--token-file" in str(err)
    assert secret not in str(err) and secret not in repr(err.errors)
    assert secret not in caplog.text


def test_a_server_echoing_the_token_is_redacted(standin: StandIn, blueprint: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Fault a real composer should not produce: an error text that echoes the Authorization header."""
    standin.scenario(echo_auth_in_error=True, compose_error={"id": 4, "reason": "Unsupported distribution"})
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the CLI quiets httpx; these tests want every line
    with pytest.raises(ComposerAPIError) as caught:
        compose_cloud(blueprint, "edge-commit", **https(standin))
    assert "Bearer ***" in str(caught.value)
    assert standin.token not in str(caught.value) and standin.token not in caplog.text


def test_token_stays_out_of_logs_in_a_whole_successful_and_failed_run(standin: StandIn, blueprint: Path,
                                                                      tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the CLI quiets httpx; these tests want every line
    compose_cloud(blueprint, "edge-commit", download_dir=tmp_path, **https(standin))
    standin.scenario(outcome="failure")
    with pytest.raises(ComposeFailedError) as caught:
        compose_cloud(blueprint, "edge-commit", download_dir=tmp_path, **https(standin))
    assert "HTTP Request" in caplog.text, "httpx debug logging was captured"
    assert standin.token not in caplog.text and standin.token not in str(caught.value)
    for path in tmp_path.iterdir():
        assert standin.token.encode() not in path.read_bytes()
    token = Token(standin.token)
    assert standin.token not in repr(token) and standin.token not in f"{token}"


def test_token_is_not_sent_over_plain_http_to_another_host(blueprint: Path) -> None:
    with pytest.raises(UsageError, match="over plain HTTP"):
        compose_cloud(blueprint, "edge-commit", endpoint="http://composer.example.com", token="abc")


def test_unknown_certificate_authority_is_a_clear_error(standin: StandIn, blueprint: Path) -> None:
    with pytest.raises(ComposerUnavailableError) as caught:
        compose_cloud(blueprint, "edge-commit", endpoint=standin.cloud_url, token=standin.token)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value) and "CA file" in str(caught.value)
    assert standin.token not in str(caught.value)


def test_missing_cloud_socket_names_the_path_and_the_fix(tmp_path: Path, blueprint: Path) -> None:
    path = tmp_path / "cloudapi" / "api.socket"
    with pytest.raises(ComposerUnavailableError) as caught:
        compose_cloud(blueprint, "edge-commit", endpoint=f"unix://{path}")
    assert str(path) in str(caught.value) and "systemctl start osbuild-composer.socket" in str(caught.value)


def test_blueprint_without_distro_needs_one(standin: StandIn, tmp_path: Path) -> None:
    path = tmp_path / "bp.toml"
    path.write_text('name = "no-distro"\nversion = "0.0.1"\n')
    with pytest.raises(UsageError, match="sets no distro"):
        compose_cloud(path, "edge-commit", **https(standin))
    compose_cloud(path, "edge-commit", distribution="rhel-94", **https(standin))
    assert standin.requests("cloud")[-1]["json"]["distribution"] == "rhel-94"


def test_blueprint_architecture_goes_to_the_image_request(standin: StandIn, tmp_path: Path) -> None:
    path = tmp_path / "bp.toml"
    path.write_text('name = "arm"\nversion = "0.0.1"\ndistro = "rhel-94"\narchitecture = "aarch64"\n')
    compose_cloud(path, "edge-commit", **https(standin))
    body = standin.requests("cloud")[-1]["json"]
    assert body["image_request"]["architecture"] == "aarch64" and "architecture" not in body["blueprint"]
    with pytest.raises(UsageError, match="is for aarch64"):
        compose_cloud(path, "edge-commit", arch="amd64", **https(standin))


def test_edge_installer_with_parent_and_url(standin: StandIn, tmp_path: Path) -> None:
    path = tmp_path / "installer.toml"
    path.write_text('name = "microshift-installer"\nversion = "0.0.1"\ndistro = "rhel-94"\npackages = []\n')
    url = "http://10.0.0.5:8080/repo/"
    compose_cloud(path, "edge-installer", ref=REF, url=url, **https(standin))
    assert standin.requests("cloud")[-1]["json"]["image_request"]["ostree"] == {"ref": REF, "url": url}


def test_standin_rejects_and_records_a_body_that_breaks_the_schema(standin: StandIn) -> None:
    """A TOML blueprint sent unconverted (tls-verify) is not a ComposeRequest: 400 and a violation."""
    bad = {"distribution": "rhel-94",
           "blueprint": {"name": "x", "containers": [{"source": "quay.io/a/b:1", "tls-verify": False}],
                         "architecture": "x86_64"},
           "image_request": {"architecture": "x86_64", "image_type": "edge-commit", "repositories": []}}
    with CloudClient(parse_endpoint(f"unix://{standin.cloud_socket}")) as client, \
            pytest.raises(ComposerAPIError) as caught:
        client.post_compose(bad)
    assert "IMAGE-BUILDER-COMPOSER-30" in str(caught.value)
    violations = standin.take_violations()
    assert any("'architecture' was unexpected" in v for v in violations), violations
