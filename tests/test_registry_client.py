"""The distribution client against a real docker-registry: API calls, auth files, basic auth, TLS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebuild.errors import RegistryError
from edgebuild.registry.auth import find_credentials, parse_challenge
from edgebuild.registry.client import RegistryClient
from edgebuild.registry.manifest import OCI_INDEX, OCI_MANIFEST, sha256_digest
from edgebuild.registry.retry import RetryPolicy
from tests.registry_fixtures import PASSWORD, USER, write_authfile
from tests.registry_images import Layout, digest_of, inspect_raw, multiarch_image, push, simple_image

pytestmark = pytest.mark.usefixtures("isolated_auth_env")
FAST = RetryPolicy(attempts=2, base_delay=0.01)


@pytest.fixture(autouse=True, params=["fast", "httpx"])
def transport(request, monkeypatch) -> str:
    """Every test runs on both transports: one implementation per operation, two ways to send it."""
    monkeypatch.setenv("EDGEBUILD_FAST_HTTP", "1" if request.param == "fast" else "0")
    return request.param


@pytest.fixture
def seeded(registry, tmp_path: Path):
    layout = Layout(tmp_path / "layout")
    simple_image(layout, "one")
    multiarch_image(layout, "multi")
    push(layout, "one", f"{registry.host}/test/one:v1")
    push(layout, "multi", f"{registry.host}/test/multi:v1")
    return registry


def test_manifests_blobs_and_tags(seeded) -> None:
    with RegistryClient(seeded.host, tls_verify=False) as client:
        single = client.get_manifest("test/one", "v1")
        assert single.media_type == OCI_MANIFEST
        assert single.digest == sha256_digest(inspect_raw(f"{seeded.host}/test/one:v1"))
        assert client.get_manifest("test/one", single.digest).data == single.data
        assert client.head_manifest("test/one", "v1") == single.digest
        assert client.head_manifest("test/one", "nope") is None
        index = client.get_manifest("test/multi", "v1")
        assert index.media_type == OCI_INDEX and len(index.children) == 2
        layer = single.blobs[1]
        assert client.head_blob("test/one", layer.digest) == layer.size
        with client.open_blob("test/one", layer.digest) as (chunks, size):
            data = b"".join(chunks)
        assert size == layer.size and digest_of(data) == layer.digest
        assert client.list_tags("test/one") == ["v1"]
        assert client.list_tags("test/absent") == []


def test_uploads_monolithic_chunked_and_mount(registry) -> None:
    data = bytes(range(256)) * 4096
    digest = digest_of(data)
    with RegistryClient(registry.host, tls_verify=False) as client:
        location = client.start_upload("up/a")
        client.finish_upload(location, "up/a", digest, iter([data[:5000], data[5000:]]), len(data))
        assert client.head_blob("up/a", digest) == len(data)
        other = digest_of(data[:300000])
        client.upload_chunked("up/b", other, [data[:100000], data[100000:300000]])
        assert client.head_blob("up/b", other) == 300000
        assert client.mount_blob("up/c", digest, "up/a") is True
        assert client.head_blob("up/c", digest) == len(data)
        assert client.mount_blob("up/d", digest, "up/nothing-here") is False
        assert client.head_blob("up/d", digest) is None


def test_wrong_digest_upload_is_refused(registry) -> None:
    with RegistryClient(registry.host, tls_verify=False) as client:
        location = client.start_upload("up/x")
        with pytest.raises(RegistryError, match="DIGEST_INVALID"):
            client.finish_upload(location, "up/x", digest_of(b"other"), b"data", 4)


def test_basic_auth_from_authfile(registry_factory, tmp_path: Path, tmp_path_factory) -> None:
    reg = registry_factory("auth", auth=True)
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: (USER, PASSWORD)})
    layout = Layout(tmp_path / "layout")
    simple_image(layout, "one")
    push(layout, "one", f"{reg.host}/test/one:v1", creds=(USER, PASSWORD))
    with RegistryClient(reg.host, tls_verify=False, authfile=authfile) as client:
        assert client.get_manifest("test/one", "v1").digest


def test_auth_from_registry_auth_file_env(registry_factory, tmp_path: Path, monkeypatch) -> None:
    reg = registry_factory("auth", auth=True)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(write_authfile(tmp_path / "a.json", {reg.host: (USER, PASSWORD)})))
    with RegistryClient(reg.host, tls_verify=False) as client:
        assert client.head_manifest("test/none", "v1") is None


def test_wrong_credentials_name_the_registry_and_hide_the_password(registry_factory, tmp_path: Path) -> None:
    reg = registry_factory("auth", auth=True)
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: (USER, "wrong-secret")})
    with RegistryClient(reg.host, tls_verify=False, authfile=authfile) as client:
        with pytest.raises(RegistryError) as info:
            client.head_manifest("test/one", "v1")
    text = str(info.value)
    assert reg.host in text and "rejected the credentials" in text and USER in text
    assert "wrong-secret" not in text and "podman login" in text


def test_missing_credentials_say_where_they_were_looked_for(registry_factory) -> None:
    reg = registry_factory("auth", auth=True)
    with RegistryClient(reg.host, tls_verify=False) as client:
        with pytest.raises(RegistryError, match="requires authentication.*no credentials") as info:
            client.head_manifest("test/one", "v1")
    assert "auth.json" in str(info.value)


def test_auth_file_that_is_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "auth.json"
    bad.write_text('{"auths": {"h": {"auth": "c2VjcmV0"}')  # truncated
    with pytest.raises(RegistryError, match=r"auth file .*auth.json is not valid JSON \(line 1") as info:
        find_credentials("h", authfile=bad)
    assert "c2VjcmV0" not in str(info.value)


def test_explicit_authfile_must_exist(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="does not exist"):
        find_credentials("h", authfile=tmp_path / "nope.json")


def test_auth_lookup_order_and_namespaced_keys(tmp_path: Path, isolated_auth_env: Path) -> None:
    env = {"HOME": str(isolated_auth_env), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    docker = isolated_auth_env / ".docker"
    docker.mkdir()
    write_authfile(docker / "config.json", {"https://index.docker.io/v1/": ("hub", "p1"), "reg.example": ("d", "p")})
    (tmp_path / "run" / "containers").mkdir(parents=True)
    write_authfile(tmp_path / "run" / "containers" / "auth.json",
                   {"reg.example": ("xdg", "p"), "reg.example/team": ("team", "p")})
    assert find_credentials("reg.example", "other/x", env=env).username == "xdg"
    assert find_credentials("reg.example", "team/app", env=env).username == "team"
    assert find_credentials("docker.io", "library/busybox", env=env).username == "hub"
    assert "p1" not in repr(find_credentials("docker.io", env=env))
    env["REGISTRY_AUTH_FILE"] = str(write_authfile(tmp_path / "env.json", {"reg.example": ("env", "p")}))
    assert find_credentials("reg.example", "other/x", env=env).username == "env"


def test_parse_bearer_challenge() -> None:
    ch = parse_challenge('Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull,push"')
    assert ch.scheme == "bearer"
    assert ch.params == {"realm": "https://auth.example/token", "service": "registry",
                         "scope": "repository:a/b:pull,push"}


def test_tls_verification_on_by_default_and_cert_dir(registry_factory, tls_files) -> None:
    reg = registry_factory("tls", tls=True)
    with RegistryClient(reg.host, retry=FAST) as client:
        with pytest.raises(RegistryError, match="CERTIFICATE_VERIFY_FAILED|certificate") as info:
            client.ping()
        assert "--cert-dir" in str(info.value.hint)
    with RegistryClient(reg.host, cert_dir=tls_files.cert_dir) as client:
        client.ping()
        assert client.base_url.startswith("https://")
    with RegistryClient(reg.host, tls_verify=False) as client:
        client.ping()
        assert client.base_url.startswith("https://")


def test_plain_http_needs_tls_verify_false(registry) -> None:
    with RegistryClient(registry.host, retry=FAST) as client:
        with pytest.raises(RegistryError, match="cannot reach") as info:
            client.ping()
        assert "tls-verify=false" in str(info.value.hint)
    with RegistryClient(registry.host, tls_verify=False) as client:
        client.ping()
        assert client.base_url.startswith("http://")


def test_tls_and_basic_auth_together(registry_factory, tls_files, tmp_path: Path) -> None:
    reg = registry_factory("tlsauth", tls=True, auth=True)
    authfile = write_authfile(tmp_path / "auth.json", {reg.host: (USER, PASSWORD)})
    data = b"hello" * 1000
    with RegistryClient(reg.host, cert_dir=tls_files.cert_dir, authfile=authfile) as client:
        location = client.start_upload("t/a")
        client.finish_upload(location, "t/a", digest_of(data), data, len(data))
        config = b"{}"
        client.finish_upload(client.start_upload("t/a"), "t/a", digest_of(config), config, 2)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": digest_of(config), "size": 2},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": digest_of(data), "size": len(data)}]}).encode()
        assert client.put_manifest("t/a", "v1", manifest, OCI_MANIFEST) == digest_of(manifest)
    raw = inspect_raw(f"{reg.host}/t/a:v1", tls_verify=True, cert_dir=tls_files.cert_dir, creds=(USER, PASSWORD))
    assert raw == manifest


def test_tag_list_follows_link_pagination(seeded, fault_proxy_factory) -> None:
    """Fake pages: distribution 2.8 ignores `n` on tags/list and never paginates it, other registries do."""
    from tests.registry_fixtures import FaultRule
    proxy = fault_proxy_factory(seeded)
    proxy.add(FaultRule("GET", r"/tags/list$", "status", status=200, body=b'{"name":"test/one","tags":["a","b"]}',
                        headers={"Link": '</v2/test/one/tags/list?last=b&n=2>; rel="next"',
                                 "Content-Type": "application/json"}))
    proxy.add(FaultRule("GET", r"/tags/list\?last=b", "status", status=200, body=b'{"name":"test/one","tags":["c"]}',
                        headers={"Content-Type": "application/json"}))
    with RegistryClient(proxy.host, tls_verify=False) as client:
        assert client.list_tags("test/one") == ["a", "b", "c"]


def test_max_per_registry_bounds_concurrent_requests(seeded) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor
    with RegistryClient(seeded.host, tls_verify=False, max_per_registry=2) as client:
        digest = client.head_manifest("test/one", "v1")
        lock, state = threading.Lock(), {"now": 0, "peak": 0}
        send = client._transports.send

        def counted(*args, **kw):
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            try:
                return send(*args, **kw)
            finally:
                with lock:
                    state["now"] -= 1
        client._transports.send = counted  # type: ignore[method-assign]
        with ThreadPoolExecutor(12) as pool:
            assert set(pool.map(lambda _: client.head_manifest("test/one", "v1"), range(60))) == {digest}
    assert state["peak"] == 2


def test_mirror_within_one_registry_with_one_request_at_a_time(seeded, tmp_path: Path, capsys) -> None:
    """Source and destination are the same registry and the limit is 1: a streamed blob GET gives its
    slot back once its answer starts, so the upload that reads it can run (no deadlock)."""
    from edgebuild.cli import main
    config = tmp_path / "isc.yaml"
    config.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                      f"  additionalImages:\n  - name: {seeded.host}/test/one:v1\n"
                      f"  - name: {seeded.host}/test/multi:v1\n")
    assert main(["mirror", "-c", str(config), "--to", f"docker://{seeded.host}/copy", "--src-tls-verify=false",
                 "--dest-tls-verify=false", "--max-per-registry", "1", "-q"]) == 0
    assert inspect_raw(f"{seeded.host}/copy/test/one:v1") == inspect_raw(f"{seeded.host}/test/one:v1")
