"""Faults and bad input during mirroring. Nothing partial is ever tagged in the destination.

Real registries are used wherever the fault can be produced with one (a registry killed with
SIGKILL and restarted, blob bytes corrupted in its storage, wrong credentials). The FaultProxy
(a fake in front of a real registry) is used only for answers a real registry cannot be made to
give on demand: 500 then 200, 429 with Retry-After, a connection reset mid-blob, a manifest over
4 MiB and an unknown manifest media type.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from edgebuild.errors import RegistryError
from edgebuild.registry.manifest import OCI_MANIFEST, sha256_digest
from edgebuild.registry.mirror import MirrorOptions, mirror_to_disk, mirror_to_registry
from edgebuild.registry.retry import RetryPolicy
from tests.registry_fixtures import PASSWORD, USER, FaultRule, write_authfile
from tests.registry_images import Layout, inspect_raw, push, simple_image, skopeo, verify_pull
from tests.test_mirror_registry import make_plan

pytestmark = pytest.mark.usefixtures("isolated_auth_env")
FAST = RetryPolicy(attempts=3, base_delay=0.02, max_delay=0.1)


def options(**kw) -> MirrorOptions:
    return MirrorOptions(src_tls_verify=False, dest_tls_verify=False, quiet=True, retry=FAST, **kw)


@pytest.fixture
def one_image(registry, tmp_path: Path) -> str:
    layout = Layout(tmp_path / "layout")
    simple_image(layout, "one", (200_000, 3_000))
    push(layout, "one", f"{registry.host}/f/one:v1")
    return f"{registry.host}/f/one:v1"


def assert_tags_complete(registry_host: str, repos: list[str], workdir: Path) -> None:
    """Every tag in the destination resolves to an image whose blobs all verify (skopeo)."""
    for repo in repos:
        listed = skopeo("list-tags", "--tls-verify=false", f"docker://{registry_host}/{repo}", check=False)
        tags = json.loads(listed.stdout)["Tags"] if listed.returncode == 0 else []
        for tag in tags:
            verify_pull(f"{registry_host}/{repo}:{tag}", workdir / "verify")


def test_destination_killed_mid_copy_then_restarted(registry, registry2, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "layout")
    refs = []
    for i in range(6):
        simple_image(layout, f"big{i}", (12_000_000,))
        refs.append(f"{registry.host}/k/big{i}:v1")
        push(layout, f"big{i}", refs[-1])
    plan = make_plan(refs)
    outcome: dict[str, BaseException | None] = {}

    def copy() -> None:
        try:
            mirror_to_registry(plan, f"docker://{registry2.host}", options())
            outcome["error"] = None
        except BaseException as exc:  # noqa: BLE001
            outcome["error"] = exc
    worker = threading.Thread(target=copy)
    worker.start()
    uploads = registry2.storage / "docker/registry/v2/repositories"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(uploads.glob("k/*/_uploads/*")):
        time.sleep(0.005)
    registry2.kill()
    worker.join(60)
    assert isinstance(outcome.get("error"), RegistryError), outcome
    assert registry2.host in str(outcome["error"])
    registry2.start()  # same port, same storage
    assert_tags_complete(registry2.host, [f"k/big{i}" for i in range(6)], tmp_path)
    report = mirror_to_registry(plan, f"docker://{registry2.host}", options())
    assert not report.failed
    for ref in refs:
        dest = ref.replace(registry.host, registry2.host)
        assert inspect_raw(dest) == inspect_raw(ref)
        verify_pull(dest, tmp_path / "final")


def test_500_then_200_is_retried(one_image, registry, registry2, fault_proxy_factory) -> None:
    proxy = fault_proxy_factory(registry)
    proxy.add(FaultRule("GET", r"/manifests/v1$", "status", status=500))
    plan = make_plan([one_image.replace(registry.host, proxy.host)])
    mirror_to_registry(plan, f"docker://{registry2.host}", options())
    statuses = [s for m, p, s, _ in proxy.log if m == "GET" and p.endswith("/manifests/v1")]
    assert statuses == [500, 200]
    assert inspect_raw(f"{registry2.host}/f/one:v1") == inspect_raw(one_image)


def test_429_waits_for_retry_after(one_image, registry, registry2, fault_proxy_factory) -> None:
    proxy = fault_proxy_factory(registry)
    proxy.add(FaultRule("GET", r"/blobs/sha256:", "status", status=429, headers={"Retry-After": "1"}))
    plan = make_plan([one_image.replace(registry.host, proxy.host)])
    mirror_to_registry(plan, f"docker://{registry2.host}", options())
    throttled = next(t for m, p, s, t in proxy.log if s == 429)
    path = next(p for m, p, s, t in proxy.log if s == 429)
    retried = next(t for m, p, s, t in proxy.log if p == path and s == 200)
    assert retried - throttled >= 0.95
    verify_pull(f"{registry2.host}/f/one:v1", Path(proxy.upstream.root) / "v")


def test_404_is_not_retried(registry, registry2, fault_proxy_factory) -> None:
    proxy = fault_proxy_factory(registry)
    with pytest.raises(RegistryError, match="HTTP 404.*MANIFEST_UNKNOWN"):
        mirror_to_registry(make_plan([f"{proxy.host}/f/absent:v1"]), f"docker://{registry2.host}", options())
    assert len([1 for m, p, s, _ in proxy.log if p.endswith("/absent/manifests/v1")]) == 1


def test_connection_reset_mid_blob_is_retried(one_image, registry, registry2, fault_proxy_factory,
                                              tmp_path: Path) -> None:
    proxy = fault_proxy_factory(registry)
    layer = json.loads(inspect_raw(one_image))["layers"][0]["digest"]
    proxy.add(FaultRule("GET", f"/blobs/{layer}", "reset", after_bytes=50_000))
    plan = make_plan([one_image.replace(registry.host, proxy.host)])
    report = mirror_to_registry(plan, f"docker://{registry2.host}", options())
    assert not report.failed
    assert len([1 for m, p, s, _ in proxy.log if p.endswith(layer)]) == 2
    verify_pull(f"{registry2.host}/f/one:v1", tmp_path / "v")


def test_blob_bytes_not_matching_digest_fail_the_image_and_tag_nothing(registry, registry2, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "layout")
    simple_image(layout, "good", (10_000,))
    simple_image(layout, "bad", (100_000,))
    push(layout, "good", f"{registry.host}/c/good:v1")
    push(layout, "bad", f"{registry.host}/c/bad:v1")
    layer = json.loads(inspect_raw(f"{registry.host}/c/bad:v1"))["layers"][0]["digest"]
    data = registry.blob_data_path(layer)
    content = bytearray(data.read_bytes())
    content[5000] ^= 0xFF  # same size, different bytes: the real registry serves them as they are
    data.write_bytes(bytes(content))
    plan = make_plan([f"{registry.host}/c/good:v1", f"{registry.host}/c/bad:v1"])
    with pytest.raises(RegistryError) as info:
        mirror_to_registry(plan, f"docker://{registry2.host}", options())
    text = str(info.value)
    assert "1 of 2 images failed" in text and "c/bad:v1" in text and "does not match its digest" in text
    assert layer in text and "nothing of this image was tagged" in text
    assert skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry2.host}/c/bad:v1",
                  check=False).returncode != 0
    verify_pull(f"{registry2.host}/c/good:v1", tmp_path / "v")
    # to disk: the damaged blob never lands under its digest
    with pytest.raises(RegistryError, match="does not match its digest"):
        mirror_to_disk(make_plan([f"{registry.host}/c/bad:v1"]), tmp_path / "disk", options())
    assert not (tmp_path / "disk" / "blobs" / "sha256" / layer[7:]).exists()
    assert not list((tmp_path / "disk" / "blobs" / "sha256").glob(".*"))


def test_manifest_over_4_mib_is_refused(registry, registry2, fault_proxy_factory) -> None:
    proxy = fault_proxy_factory(registry)
    huge = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "annotations": {"x": "y" * (4 * 1024 * 1024 + 100)}}).encode()
    proxy.add(FaultRule("GET", r"/manifests/v1$", "status", status=200, body=huge,
                        headers={"Content-Type": OCI_MANIFEST}))
    with pytest.raises(RegistryError, match="over the 4 MiB limit"):
        mirror_to_registry(make_plan([f"{proxy.host}/h/huge:v1"]), f"docker://{registry2.host}", options())


def test_unknown_media_type_is_refused(registry, registry2, fault_proxy_factory) -> None:
    proxy = fault_proxy_factory(registry)
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.example.thing.v1+json"}).encode()
    proxy.add(FaultRule("GET", r"/manifests/v1$", "status", status=200, body=body,
                        headers={"Content-Type": "application/vnd.example.thing.v1+json"}))
    with pytest.raises(RegistryError,
                       match="unsupported manifest media type 'application/vnd.example.thing.v1") as info:
        mirror_to_registry(make_plan([f"{proxy.host}/u/thing:v1"]), f"docker://{registry2.host}", options())
    assert "OCI and Docker schema2" in str(info.value)


def test_wrong_credentials_fail_naming_the_registry(one_image, registry_factory, tmp_path: Path) -> None:
    dest = registry_factory("auth", auth=True)
    authfile = write_authfile(tmp_path / "auth.json", {dest.host: (USER, PASSWORD + "-wrong")})
    with pytest.raises(RegistryError) as info:
        mirror_to_registry(make_plan([one_image]), f"docker://{dest.host}", options(authfile=str(authfile)))
    assert f"registry {dest.host} rejected the credentials" in str(info.value)
    assert PASSWORD + "-wrong" not in str(info.value)


def test_auth_file_not_json_fails_clearly(one_image, registry2, tmp_path: Path) -> None:
    bad = tmp_path / "auth.json"
    bad.write_text("not json at all")
    with pytest.raises(RegistryError, match="is not valid JSON"):
        mirror_to_registry(make_plan([one_image]), f"docker://{registry2.host}", options(authfile=str(bad)))


def test_digest_pinned_source_that_changed_is_refused(one_image, registry2) -> None:
    wrong = one_image.rsplit(":", 1)[0] + "@sha256:" + "1" * 64
    with pytest.raises(RegistryError, match="HTTP 404|resolves to"):
        mirror_to_registry(make_plan([wrong]), f"docker://{registry2.host}", options())


def test_nothing_written_outside_the_work_dir(one_image, tmp_path: Path, monkeypatch, isolated_auth_env: Path) -> None:
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    before = sorted(p for p in isolated_auth_env.rglob("*"))
    mirror_to_disk(make_plan([one_image]), tmp_path / "disk", options())
    assert list(scratch.iterdir()) == []
    assert sorted(p for p in isolated_auth_env.rglob("*")) == before
    digest = sha256_digest(inspect_raw(one_image))
    assert sha256_digest((tmp_path / "disk" / "blobs" / "sha256" / digest[7:]).read_bytes()) == digest
