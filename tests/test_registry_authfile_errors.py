"""Auth files and credential helpers that are broken: each is a clear error naming the file and the fix,
never a traceback and never the secret; harmless oddities (an empty file, a non-object entry, a damaged
`auth` beside an identity token) are read the way podman reads them (containers-auth.json(5))."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from edgebuild.errors import RegistryError
from edgebuild.registry.auth import find_credentials

HOST = "registry.example.com"


def _auth_file(tmp_path: Path, content: str | dict) -> Path:
    path = tmp_path / "auth.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize("content, needle, fix", [
    ('{"auths": {', "is not valid JSON (line 1, column", "podman login"),
    ('["a list"]', "must hold a JSON object with an 'auths' map", None),
    ({"auths": ["x"]}, "'auths' must be a JSON object", None),
    ({"auths": {HOST: {"auth": "%%%not-base64"}}}, f"the 'auth' value for {HOST} is not base64", "podman login"),
    ({"auths": {HOST: {"auth": base64.b64encode(b"no-colon").decode()}}}, "has no ':' between user and password",
     "podman login"),
])
def test_a_broken_auth_file_names_the_file_and_the_fix(isolated_auth_env, tmp_path, content, needle, fix):
    path = _auth_file(tmp_path, content)
    with pytest.raises(RegistryError) as caught:
        find_credentials(HOST, authfile=path)
    text = str(caught.value)
    assert str(path) in text and needle in text
    if fix:
        assert fix in text
    assert "no-colon" not in text, "what the file holds is not echoed"


def test_an_auth_file_that_cannot_be_read_says_so(isolated_auth_env, tmp_path, monkeypatch):
    """A directory where the default auth file should be (the read fails with an OS error, even as root)."""
    target = isolated_auth_env / "run" / "containers" / "auth.json"
    target.mkdir(parents=True)
    with pytest.raises(RegistryError) as caught:
        find_credentials(HOST)
    assert f"cannot read auth file {target}" in str(caught.value)
    assert "REGISTRY_AUTH_FILE" in str(caught.value)


def test_harmless_oddities_are_read_as_podman_reads_them(isolated_auth_env, tmp_path):
    assert find_credentials(HOST, authfile=_auth_file(tmp_path, "  \n")) is None, "an empty file holds nothing"
    path = _auth_file(tmp_path, {"auths": {HOST: "not an object", "other.example": {}}})
    assert find_credentials(HOST, authfile=path) is None
    path = _auth_file(tmp_path, {"auths": {f"https://{HOST}/v1/": {"username": "u", "password": "p"}}})
    creds = find_credentials(HOST, authfile=path)
    assert creds is not None and (creds.username, creds.password) == ("u", "p"), "a URL key is normalised"
    path = _auth_file(tmp_path, {"auths": {HOST: {"auth": "%%%", "identitytoken": "tok"}}})
    creds = find_credentials(HOST, authfile=path)
    assert creds is not None and creds.identity_token == "tok", "the token counts; a damaged auth loses the user"


def test_a_legacy_dockercfg_is_the_map_itself(isolated_auth_env, tmp_path):
    path = tmp_path / ".dockercfg"
    path.write_text(json.dumps({HOST: {"auth": base64.b64encode(b"user:pw").decode()}}))
    creds = find_credentials(HOST, authfile=path)
    assert creds is not None and (creds.username, creds.password) == ("user", "pw")


def _helper(tmp_path: Path, monkeypatch, body: str) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / "docker-credential-odd"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")


@pytest.mark.parametrize("body, needle", [
    ("echo 'keychain locked' >&2; exit 3\n", "docker-credential-odd failed for registry.example.com (exit 3)"),
    ("echo 'not json'\n", 'gave an answer that is not {"Username": …, "Secret": …}'),
    ('echo \'{"Username": "u"}\'\n', 'gave an answer that is not {"Username": …, "Secret": …}'),
])
def test_a_failing_credential_helper_is_named_with_how_to_try_it(isolated_auth_env, tmp_path, monkeypatch, body,
                                                                 needle):
    _helper(tmp_path, monkeypatch, body)
    path = _auth_file(tmp_path, {"credHelpers": {HOST: "odd"}})
    with pytest.raises(RegistryError) as caught:
        find_credentials(HOST, authfile=path)
    assert needle in str(caught.value)


def test_a_helper_identity_token_without_a_secret_is_no_credential(isolated_auth_env, tmp_path, monkeypatch):
    _helper(tmp_path, monkeypatch, 'echo \'{"Username": "<token>", "Secret": ""}\'\n')
    assert find_credentials(HOST, authfile=_auth_file(tmp_path, {"credsStore": "odd"})) is None
