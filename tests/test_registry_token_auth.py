"""Bearer-token auth against a REAL docker-registry (distribution 2.8, `auth: token`) whose realm is the
test issuer in tests/token_server.py: the registry verifies every JWT itself (signature chained to its
rootcertbundle, issuer, audience, expiry, access), so a token edgebuild uses wrongly fails for real.

Covered: `edgebuild mirror` pushing (and the engine pulling) with a password traded for tokens, checked
with skopeo (which does its own bearer dance); one token request per scope, not per blob; a wrong
password (exit 1, the registry named, the password never shown); identity tokens from auth.json and
from a credential helper (OAuth2 refresh grant, never printed); short-lived and early-dying tokens.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import stat
from pathlib import Path

import httpx
import pytest

from edgebuild.cli import main
from edgebuild.errors import RegistryError
from edgebuild.plan import Plan, PlanImage
from edgebuild.registry.client import RegistryClient
from edgebuild.registry.manifest import sha256_digest
from edgebuild.registry.mirror import MirrorOptions, mirror_to_registry
from edgebuild.registry.retry import is_transient
from tests.conftest import require_tool
from tests.registry_fixtures import PASSWORD, USER, RegistryServer, write_authfile
from tests.registry_images import Layout, inspect_raw, make_layer, push, simple_image, verify_pull
from tests.token_server import TokenRequest, TokenServer

pytestmark = pytest.mark.usefixtures("isolated_auth_env")
V2 = "mirror.openshift.io/v2alpha1"
CREDS = (USER, PASSWORD)
NAMES = ("app-a", "app-b", "app-c")
CATALOG_SCOPE = "registry:catalog:*"


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_tool("skopeo")
    require_tool("docker-registry")


@pytest.fixture
def source_images(registry: RegistryServer, tmp_path: Path) -> dict[str, str]:
    """Three images sharing a base layer in a plain registry; {name: reference}."""
    layout = Layout(tmp_path / "layout")
    base = [make_layer("token-base", 200_000)]
    refs = {}
    for name in NAMES:
        simple_image(layout, name, (30_000, 4_000), base=base)
        refs[name] = f"{registry.host}/team/{name}:v1"
        push(layout, name, refs[name])
    return refs


def write_isc(path: Path, refs: list[str]) -> Path:
    path.write_text(f"apiVersion: {V2}\nkind: ImageSetConfiguration\nmirror:\n  additionalImages:\n"
                    + "".join(f"  - name: {ref}\n" for ref in refs))
    return path


def identity_authfile(path: Path, host: str, token: str) -> Path:
    """What `docker login` writes after an offline password grant: the user in `auth`, no password."""
    entry = {"auth": base64.b64encode(f"{USER}:".encode()).decode(), "identitytoken": token}
    path.write_text(json.dumps({"auths": {host: entry}}))
    return path


def login_for_refresh_token(issuer: TokenServer) -> str:
    """An identity token the way `docker login` gets one: OAuth2 password grant with access_type=offline."""
    answer = httpx.post(issuer.realm, data={"grant_type": "password", "username": USER, "password": PASSWORD,
                                            "service": issuer.service, "client_id": "test-login",
                                            "access_type": "offline"})
    answer.raise_for_status()
    return answer.json()["refresh_token"]


def mirror_cli(isc: Path, dest: str, authfile: Path, *extra: str) -> int:
    return main(["mirror", "-c", str(isc), "--to", f"docker://{dest}", "--src-tls-verify=false",
                 "--dest-tls-verify=false", "--authfile", str(authfile), *extra])


def assert_one_request_per_scope(issued: list[TokenRequest]) -> None:
    scopes = [r.scopes for r in issued]
    assert issued and len(scopes) == len(set(scopes)), f"a scope was asked for twice: {scopes}"


def test_mirror_pushes_and_pulls_with_a_password_traded_for_tokens(source_images, token_registry, token_issuer,
                                                                    registry2, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    authfile = write_authfile(tmp_path / "auth.json", {token_registry.host: CREDS})
    isc = write_isc(tmp_path / "isc.yaml", list(source_images.values()))

    assert mirror_cli(isc, f"{token_registry.host}/mirror", authfile, "-q") == 0
    pushes = token_issuer.issued()  # edgebuild's requests; skopeo's below are its own
    pushed = {}
    for name, ref in source_images.items():
        dest = f"{token_registry.host}/mirror/team/{name}:v1"
        raw = inspect_raw(dest, creds=CREDS)  # skopeo gets its own token from the same issuer
        assert raw == inspect_raw(ref)
        pushed[name] = sha256_digest(raw)
        verify_pull(dest, tmp_path / "pulled", creds=CREDS)
    # docker token protocol (GET + Basic) only, one request per scope: 3 repositories, each with a
    # pull scope, a push scope and at most a mount scope pair, while 10 blobs and 3 manifests were sent
    assert {(r.method, r.grant, r.user, r.service) for r in pushes} == {("GET", "basic", USER, token_issuer.service)}
    assert_one_request_per_scope(pushes)
    repo_scoped = [r for r in pushes if r.scopes != (CATALOG_SCOPE,)]  # the engine may list the registry once
    assert len(repo_scoped) <= 3 * len(NAMES)
    assert all(s.startswith("repository:mirror/team/") for r in repo_scoped for s in r.scopes)

    # ... and the engine pulls from the token registry just as well
    token_issuer.requests.clear()
    plan = Plan(api_version=V2, images=[PlanImage(source=f"{token_registry.host}/mirror/team/{n}:v1",
                                                  type="additional") for n in NAMES])
    report = mirror_to_registry(plan, f"docker://{registry2.host}/back",
                                MirrorOptions(src_tls_verify=False, dest_tls_verify=False, authfile=str(authfile),
                                              quiet=True))
    assert len(report.copied) == 3 and not report.failed
    for name in NAMES:
        assert sha256_digest(inspect_raw(f"{registry2.host}/back/mirror/team/{name}:v1")) == pushed[name]
    pulls = token_issuer.issued()
    assert pulls and all(s.endswith(":pull") or s == CATALOG_SCOPE for r in pulls for s in r.scopes)
    assert_one_request_per_scope(pulls)


def test_wrong_password_exits_1_names_the_registry_and_never_prints_it(source_images, token_registry, token_issuer,
                                                                       tmp_path: Path, monkeypatch, capsys,
                                                                       caplog) -> None:
    monkeypatch.chdir(tmp_path)
    secret = "Not-The-Password-7f3a"
    authfile = write_authfile(tmp_path / "auth.json", {token_registry.host: (USER, secret)})
    isc = write_isc(tmp_path / "isc.yaml", [source_images["app-a"]])
    with caplog.at_level(logging.DEBUG):
        assert mirror_cli(isc, token_registry.host, authfile, "-vv") == 1
    captured = capsys.readouterr()
    output = captured.out + captured.err + caplog.text
    assert f"registry {token_registry.host} rejected the credentials of user {USER!r}" in captured.err
    assert str(authfile) in captured.err
    assert secret not in output and base64.b64encode(f"{USER}:{secret}".encode()).decode() not in output
    assert token_issuer.requests and not token_issuer.issued()  # the issuer refused every request
    assert not (token_registry.storage / "docker/registry/v2/repositories").exists()  # nothing was pushed


def test_identity_token_from_auth_json(source_images, token_registry, token_issuer, tmp_path: Path, monkeypatch,
                                       capsys, caplog) -> None:
    monkeypatch.chdir(tmp_path)
    refresh = login_for_refresh_token(token_issuer)
    token_issuer.requests.clear()
    authfile = identity_authfile(tmp_path / "auth.json", token_registry.host, refresh)
    isc = write_isc(tmp_path / "isc.yaml", list(source_images.values()))
    with caplog.at_level(logging.DEBUG):
        assert mirror_cli(isc, token_registry.host, authfile, "-vv") == 0
    issued = token_issuer.issued()
    for name, ref in source_images.items():
        assert inspect_raw(f"{token_registry.host}/team/{name}:v1", creds=CREDS) == inspect_raw(ref)
    # every access token came from the OAuth2 refresh grant, as containers/image and docker ask for it
    assert issued and all((r.method, r.grant, r.client_id, r.service, r.user) ==
                          ("POST", "refresh_token", "edgebuild", token_issuer.service, USER) for r in issued)
    assert all(r.scopes for r in issued)
    assert_one_request_per_scope(issued)
    captured = capsys.readouterr()
    assert refresh not in captured.out + captured.err + caplog.text


def test_identity_token_from_a_credential_helper(token_registry, token_issuer, registry2, tmp_path: Path,
                                                 monkeypatch) -> None:
    """A helper answering Username "<token>" (the credential-helper convention) gives an identity token;
    the engine pulls with it from the token registry."""
    layout = Layout(tmp_path / "layout")
    simple_image(layout, "one")
    src = f"{token_registry.host}/x/one:v1"
    push(layout, "one", src, creds=CREDS)
    refresh = login_for_refresh_token(token_issuer)
    token_issuer.requests.clear()

    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-edgetok"
    helper.write_text(f'#!/bin/sh\n[ "$1" = get ] || exit 2\nread server\n'
                      f'[ "$server" = "{token_registry.host}" ] || {{ echo "credentials not found"; exit 1; }}\n'
                      f'printf \'{{"ServerURL":"%s","Username":"<token>","Secret":"{refresh}"}}\' "$server"\n')
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"credHelpers": {token_registry.host: "edgetok"}}))

    log = io.StringIO()
    plan = Plan(api_version=V2, images=[PlanImage(source=src, type="additional")])
    report = mirror_to_registry(plan, f"docker://{registry2.host}",
                                MirrorOptions(src_tls_verify=False, dest_tls_verify=False, authfile=str(authfile),
                                              progress_stream=log))
    assert len(report.copied) == 1
    assert sha256_digest(inspect_raw(f"{registry2.host}/x/one:v1")) == plan.images[0].digest
    issued = token_issuer.issued()
    assert issued and {(r.method, r.grant, r.client_id) for r in issued} == {("POST", "refresh_token", "edgebuild")}
    assert refresh not in log.getvalue()


def test_revoked_identity_token_is_refused_without_showing_it(token_registry, token_issuer, tmp_path: Path) -> None:
    secret = "rt-revoked-0123456789abcdef"
    authfile = identity_authfile(tmp_path / "auth.json", token_registry.host, secret)
    with RegistryClient(token_registry.host, tls_verify=False, authfile=authfile) as client:
        with pytest.raises(RegistryError) as info:
            client.head_manifest("team/app", "v1")
    text = str(info.value)
    assert f"registry {token_registry.host} rejected the identity token from {authfile}" in text
    assert "log in again" in text and secret not in text and secret not in repr(client.credentials(None))


def test_identity_token_against_a_basic_auth_registry_is_a_clear_error(registry_factory, tmp_path: Path) -> None:
    basic = registry_factory("basic", auth=True)
    secret = "rt-for-a-token-registry-0123"
    authfile = identity_authfile(tmp_path / "auth.json", basic.host, secret)
    with RegistryClient(basic.host, tls_verify=False, authfile=authfile) as client:
        with pytest.raises(RegistryError, match="asks for Basic authentication") as info:
            client.head_manifest("team/app", "v1")
    text = str(info.value)
    assert basic.host in text and str(authfile) in text and "identity token" in text and secret not in text


class FakeClock:
    """The client's monotonic clock, moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_short_lived_tokens_are_renewed(token_registry, token_issuer, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "layout")
    simple_image(layout, "one")
    push(layout, "one", f"{token_registry.host}/x/one:v1", creds=CREDS)
    token_issuer.requests.clear()
    token_issuer.expires_in = 2
    authfile = write_authfile(tmp_path / "auth.json", {token_registry.host: CREDS})
    clock = FakeClock()
    with RegistryClient(token_registry.host, tls_verify=False, authfile=authfile, clock=clock) as client:
        digest = client.head_manifest("x/one", "v1")
        assert digest and client.head_manifest("x/one", "v1") == digest
        clock.now += 1.5
        assert client.head_manifest("x/one", "v1") == digest
        assert len(token_issuer.issued()) == 1  # cached while it lives (renewed a tenth early: at 1.8 s)
        clock.now += 0.5
        assert client.get_manifest("x/one", digest).digest == digest
        assert len(token_issuer.issued()) == 2  # renewed after expires_in, not reused
    assert not [r for r in token_issuer.requests if r.status != 200]


def test_a_token_that_dies_early_is_replaced(source_images, token_registry, token_issuer, tmp_path: Path) -> None:
    """The issuer claims 300 s but the first tokens are already dead for the registry: the client must
    take the registry's 401 as "get a new token", not as "wrong password"."""
    token_issuer.stale_tokens = 2
    authfile = write_authfile(tmp_path / "auth.json", {token_registry.host: CREDS})
    plan = Plan(api_version=V2, images=[PlanImage(source=ref, type="additional") for ref in source_images.values()])
    report = mirror_to_registry(plan, f"docker://{token_registry.host}",
                                MirrorOptions(src_tls_verify=False, dest_tls_verify=False, authfile=str(authfile),
                                              quiet=True))
    assert len(report.copied) == 3 and not report.failed
    for ref in source_images.values():
        assert inspect_raw(ref.replace(ref.split("/")[0], token_registry.host), creds=CREDS) == inspect_raw(ref)
    assert token_issuer.stale_tokens == 0


def test_upload_whose_token_dies_midway_is_retryable(token_registry, token_issuer, tmp_path: Path) -> None:
    """The streamed upload (http.client path) cannot replay its body: a 401 there drops the tokens and is
    transient, so the engine's blob retry gets a fresh token."""
    token_issuer.expires_in = 60
    authfile = write_authfile(tmp_path / "auth.json", {token_registry.host: CREDS})
    data = b"blob bytes " * 1000
    digest = sha256_digest(data)
    clock = FakeClock()
    with RegistryClient(token_registry.host, tls_verify=False, authfile=authfile, clock=clock) as client:
        location = client.start_upload("x/blob")
        assert location
        # the client's token expires; the next one it gets is already dead for the registry
        clock.now += 120
        token_issuer.stale_tokens, token_issuer.stale_after = 1, 0
        with pytest.raises(RegistryError, match="refused the bearer token") as info:
            client.finish_upload(location, "x/blob", digest, iter([data]), len(data))
        assert is_transient(info.value)
        client.cancel_upload(location, "x/blob")
        location = client.start_upload("x/blob")
        client.finish_upload(location, "x/blob", digest, iter([data]), len(data))
        assert client.head_blob("x/blob", digest) == len(data)


def test_scope_named_by_the_registry_challenge(token_registry, token_issuer, tmp_path: Path) -> None:
    """/v2/_catalog implies no repository: the registry's 401 names registry:catalog:*, and that is the
    one token asked for (no scope-less token, which would grant nothing)."""
    layout = Layout(tmp_path / "layout")
    simple_image(layout, "one")
    push(layout, "one", f"{token_registry.host}/x/one:v1", creds=CREDS)
    token_issuer.requests.clear()
    authfile = write_authfile(tmp_path / "auth.json", {token_registry.host: CREDS})
    with RegistryClient(token_registry.host, tls_verify=False, authfile=authfile) as client:
        for _ in range(2):
            response = client.request("GET", "/v2/_catalog", repository=None, what="list repositories")
            assert response.status == 200 and response.json()["repositories"] == ["x/one"]
    assert [r.scopes for r in token_issuer.requests] == [(CATALOG_SCOPE,)]


def test_account_without_push_rights_is_told_so(token_registry, token_issuer, tmp_path: Path) -> None:
    token_issuer.users["reader"] = "reader-pw"
    token_issuer.pull_only.add("reader")
    authfile = write_authfile(tmp_path / "auth.json", {token_registry.host: ("reader", "reader-pw")})
    with RegistryClient(token_registry.host, tls_verify=False, authfile=authfile) as client:
        assert client.head_manifest("x/one", "v1") is None  # pull is granted
        with pytest.raises(RegistryError, match="did not grant the credentials of user 'reader'") as info:
            client.start_upload("x/one")
    assert "repository:x/one:pull,push" in str(info.value) and "permission" in str(info.value)
    assert "reader-pw" not in str(info.value)


def test_auth_json_identitytoken_entries(tmp_path: Path) -> None:
    """`identitytoken` wins over the password; `auth` (often "user:") only names the user."""
    from edgebuild.registry.auth import find_credentials
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"auths": {
        "a.example": {"auth": base64.b64encode(b"robot:").decode(), "identitytoken": "rt-a"},
        "b.example": {"identitytoken": "rt-b"},
        "c.example": {"auth": base64.b64encode(b"user:pw").decode()}}}))
    a = find_credentials("a.example", authfile=authfile)
    assert (a.username, a.password, a.identity_token, a.origin) == ("robot", "", "rt-a", str(authfile))
    b = find_credentials("b.example", authfile=authfile)
    assert b.is_identity_token and b.identity_token == "rt-b" and "rt-b" not in repr(b)
    c = find_credentials("c.example", authfile=authfile)
    assert not c.is_identity_token and (c.username, c.password) == ("user", "pw")
