"""Credential helpers named by an auth file (`credHelpers`, `credsStore`), as podman and the docker CLI
use them. The helper is a small executable speaking the credential-helper protocol (server name on
stdin, JSON on stdout) — no real keychain exists on these machines — and the registry is a real
docker-registry with htpasswd auth, so a wrong answer would fail the login for real."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from edgebuild.errors import RegistryError
from edgebuild.registry.auth import find_credentials
from edgebuild.registry.client import RegistryClient
from tests.registry_fixtures import PASSWORD, USER

HELPER = """#!/bin/sh
[ "$1" = get ] || exit 2
read server
echo "$server" >> "{log}"
if [ "$server" = "{host}" ]; then
  printf '{{"ServerURL":"%s","Username":"{user}","Secret":"{secret}"}}' "$server"
else
  echo "credentials not found in native keychain"; exit 1
fi
"""


@pytest.fixture
def helper_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_auth_env):
    def install(name: str, host: str, user: str = USER, secret: str = PASSWORD) -> Path:
        bindir = tmp_path / "bin"
        bindir.mkdir(exist_ok=True)
        log = tmp_path / f"{name}.log"
        script = bindir / f"docker-credential-{name}"
        script.write_text(HELPER.format(log=log, host=host, user=user, secret=secret))
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
        return log
    return install


def test_cred_helpers_log_in_to_a_real_registry(registry_factory, helper_on_path, tmp_path: Path):
    server = registry_factory("auth", auth=True)
    log = helper_on_path("edgetest", server.host)
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {}, "credHelpers": {server.host: "edgetest"}}))
    # Without credentials the registry refuses (401) ...
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with RegistryClient(server.host, tls_verify=False, authfile=str(empty)) as client:
        with pytest.raises(RegistryError):
            client.head_manifest("nothing/here", "latest")
    # ... with the helper's answer it lets the same request through (404 -> None).
    with RegistryClient(server.host, tls_verify=False, authfile=str(authfile)) as client:
        assert client.head_manifest("nothing/here", "latest") is None
    asked = log.read_text().split()
    assert asked and set(asked) == {server.host}


def test_creds_store_answers_for_hosts_without_entries(helper_on_path, tmp_path: Path):
    helper_on_path("store", "registry.example.com", user="robot", secret="s3cret")
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {"other.example.com": {"auth": "dTpw"}}, "credsStore": "store"}))
    creds = find_credentials("registry.example.com", authfile=authfile)
    assert (creds.username, creds.password) == ("robot", "s3cret")
    assert "s3cret" not in repr(creds)
    # An entry in auths still wins for its host; a host the helper does not know gets no credentials.
    assert find_credentials("other.example.com", authfile=authfile).username == "u"
    assert find_credentials("unknown.example.com", authfile=authfile) is None


def test_missing_helper_is_a_clear_error(isolated_auth_env, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"credHelpers": {"quay.io": "ecr-login"}}))
    with pytest.raises(RegistryError, match="docker-credential-ecr-login is not on PATH"):
        find_credentials("quay.io", authfile=authfile)


def test_helper_identity_token_is_kept_and_never_shown(helper_on_path, tmp_path: Path):
    """Username "<token>" is the helper protocol's mark for an identity token (docker, containers/image):
    it becomes a refresh token for the token service, not a password, and stays out of every text."""
    secret = "rt-helper-secret-42"
    helper_on_path("idtok", "registry.example.com", user="<token>", secret=secret)
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"credHelpers": {"registry.example.com": "idtok"}}))
    creds = find_credentials("registry.example.com", authfile=authfile)
    assert creds.is_identity_token and creds.identity_token == secret and creds.password == ""
    assert "docker-credential-idtok" in creds.origin and str(authfile) in creds.origin
    for text in (repr(creds), str(creds), creds.who, f"{creds!r}"):
        assert secret not in text
