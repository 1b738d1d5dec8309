"""Mirror-to-mirror between real registries, checked with skopeo (never only with edgebuild's client)."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from edgebuild.plan import Plan, PlanImage
from edgebuild.reference import MirrorTarget
from edgebuild.registry.manifest import OCI_INDEX, sha256_digest
from edgebuild.registry.mirror import MirrorOptions, dry_run, mirror_to_registry
from tests.registry_fixtures import PASSWORD, USER, FaultRule, RegistryServer, TlsFiles, write_authfile
from tests.registry_images import Layout, inspect_raw, make_layer, multiarch_image, push, simple_image, verify_pull

pytestmark = pytest.mark.usefixtures("isolated_auth_env")
V2 = "mirror.openshift.io/v2alpha1"


def make_plan(sources: list[str], api: str = V2) -> Plan:
    return Plan(api_version=api, images=[PlanImage(source=s, type="additional") for s in sources])


@pytest.fixture
def source_images(registry, tmp_path: Path) -> dict[str, str]:
    """Three images sharing a base layer, and one amd64+arm64 index; {name: source reference}."""
    layout = Layout(tmp_path / "layout")
    base = [make_layer("base", 300_000)]
    refs = {}
    for name in ("app-a", "app-b", "app-c"):
        simple_image(layout, name, (50_000, 7_000), base=base)
        refs[name] = f"{registry.host}/team/{name}:v1"
        push(layout, name, refs[name])
    multiarch_image(layout, "multi")
    refs["multi"] = f"{registry.host}/team/multi:v2"
    push(layout, "multi", refs["multi"])
    return refs


def test_mirror_to_mirror_copies_verifies_and_records_digests(source_images, registry2, tmp_path: Path) -> None:
    plan = make_plan(sorted(source_images.values()))
    log = io.StringIO()
    report = mirror_to_registry(plan, f"docker://{registry2.host}/mirror",
                                MirrorOptions(src_tls_verify=False, dest_tls_verify=False, progress_stream=log))
    assert len(report.copied) == 4 and not report.failed
    for img in plan.images:
        source_raw = inspect_raw(img.source)
        dest = img.source.replace(source_images["app-a"].split("/")[0], f"{registry2.host}/mirror")
        assert inspect_raw(dest) == source_raw  # byte-identical manifests
        assert img.digest == sha256_digest(source_raw)
        verify_pull(dest, tmp_path / "pulled")  # skopeo checks every blob digest
    # the shared base layer was uploaded once and mounted into the other repositories
    assert report.blobs["mounted"] >= 2
    assert "copied: " in log.getvalue() and "mirrored to" in log.getvalue()


def test_second_run_copies_nothing_and_says_so(source_images, registry2) -> None:
    options = MirrorOptions(src_tls_verify=False, dest_tls_verify=False, progress_stream=io.StringIO())
    mirror_to_registry(make_plan(list(source_images.values())), f"docker://{registry2.host}", options)
    log = io.StringIO()
    options.progress_stream = log
    report = mirror_to_registry(make_plan(list(source_images.values())), f"docker://{registry2.host}", options)
    assert report.nothing_new and report.bytes == 0 and len(report.present) == 4
    assert "nothing new to mirror" in log.getvalue()


def test_multi_arch_index_kept_whole(source_images, registry2) -> None:
    plan = make_plan([source_images["multi"]])
    mirror_to_registry(plan, f"docker://{registry2.host}", MirrorOptions(src_tls_verify=False, dest_tls_verify=False,
                                                                         quiet=True))
    raw = inspect_raw(f"{registry2.host}/team/multi:v2")
    assert raw == inspect_raw(source_images["multi"])
    index = json.loads(raw)
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    for child in index["manifests"]:
        inspect_raw(f"{registry2.host}/team/multi@{child['digest']}")


def test_multi_arch_index_filtered_to_one_arch(source_images, registry2, tmp_path: Path) -> None:
    plan = make_plan([source_images["multi"]])
    report = mirror_to_registry(plan, f"docker://{registry2.host}",
                                MirrorOptions(src_tls_verify=False, dest_tls_verify=False, arch="arm64", quiet=True))
    raw = inspect_raw(f"{registry2.host}/team/multi:v2")
    index = json.loads(raw)
    assert index["mediaType"] == OCI_INDEX
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["arm64"]
    assert report.results[0].pushed_digest == sha256_digest(raw) != report.results[0].digest
    assert plan.images[0].digest == sha256_digest(inspect_raw(source_images["multi"]))
    verify_pull(f"{registry2.host}/team/multi:v2", tmp_path / "pulled")
    # the amd64 child was not copied
    amd64 = next(m for m in json.loads(inspect_raw(source_images["multi"]))["manifests"]
                 if m["platform"]["architecture"] == "amd64")
    from tests.registry_images import skopeo
    assert skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry2.host}/team/multi@{amd64['digest']}",
                  check=False).returncode != 0


def test_filter_to_missing_arch_fails_clearly(source_images, registry2) -> None:
    from edgebuild.errors import RegistryError
    with pytest.raises(RegistryError, match="no linux/s390x manifest.*amd64.*arm64"):
        mirror_to_registry(make_plan([source_images["multi"]]), f"docker://{registry2.host}",
                           MirrorOptions(src_tls_verify=False, dest_tls_verify=False, arch="s390x", quiet=True))


def test_tag_resolved_to_digest_and_digest_sources_v1_naming(source_images, registry2) -> None:
    digest = sha256_digest(inspect_raw(source_images["app-a"]))
    by_digest = source_images["app-a"].rsplit(":", 1)[0] + "@" + digest
    plan = make_plan([by_digest], api="mirror.openshift.io/v1alpha2")
    mirror_to_registry(plan, MirrorTarget(registry2.host, "ns"),
                       MirrorOptions(src_tls_verify=False, dest_tls_verify=False, quiet=True))
    # oc-mirror v1 names a digest-only image by the first 6 hex characters of its digest
    assert sha256_digest(inspect_raw(f"{registry2.host}/ns/team/app-a:{digest[7:13]}")) == digest


def test_mirror_into_tls_registry_with_basic_auth(source_images, registry_factory, tls_files, tmp_path: Path) -> None:
    dest = registry_factory("tlsauth", tls=True, auth=True)
    authfile = write_authfile(tmp_path / "auth.json", {dest.host: (USER, PASSWORD)})
    plan = make_plan(list(source_images.values()))
    report = mirror_to_registry(plan, f"docker://{dest.host}",
                                MirrorOptions(src_tls_verify=False, dest_tls_verify=True,
                                              cert_dir=str(tls_files.cert_dir), authfile=str(authfile), quiet=True))
    assert len(report.copied) == 4
    for img in plan.images:
        ref = img.source.replace(img.source.split("/")[0], dest.host)
        assert sha256_digest(inspect_raw(ref, tls_verify=True, cert_dir=tls_files.cert_dir,
                                         creds=(USER, PASSWORD))) == img.digest


def test_mirror_from_tls_auth_source_with_tls_verify_false(registry_factory, registry2, tmp_path: Path) -> None:
    src = registry_factory("srcauth", tls=True, auth=True)
    layout = Layout(tmp_path / "layout")
    simple_image(layout, "one")
    push(layout, "one", f"{src.host}/x/one:v1", creds=(USER, PASSWORD))
    authfile = write_authfile(tmp_path / "auth.json", {src.host: (USER, PASSWORD)})
    plan = make_plan([f"{src.host}/x/one:v1"])
    mirror_to_registry(plan, f"docker://{registry2.host}",
                       MirrorOptions(src_tls_verify=False, dest_tls_verify=False, authfile=str(authfile), quiet=True))
    assert sha256_digest(inspect_raw(f"{registry2.host}/x/one:v1")) == plan.images[0].digest


def test_dry_run_returns_mapping_and_writes_nothing(source_images, registry2) -> None:
    plan = make_plan(sorted(source_images.values()))
    lines = dry_run(plan, f"docker://{registry2.host}/mirror")
    assert f"{source_images['app-a']}={registry2.host}/mirror/team/app-a:v1" in lines
    assert len(lines) == 4
    from tests.registry_images import skopeo
    assert skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry2.host}/mirror/team/app-a:v1",
                  check=False).returncode != 0


def test_blob_lookups_skipped_only_in_repositories_that_do_not_exist(registry, registry2, tmp_path: Path,
                                                                     fault_proxy_factory) -> None:
    """The proxy (a pass-through in front of the real destination) only records the requests."""
    layout = Layout(tmp_path / "layout")
    base = [make_layer("shared-base", 200_000)]
    simple_image(layout, "v1", (10_000,), base=base)
    simple_image(layout, "v2", (12_000,), base=base)
    push(layout, "v1", f"{registry.host}/r/app:v1")
    push(layout, "v2", f"{registry.host}/r/app:v2")
    proxy = fault_proxy_factory(registry2)
    opts = MirrorOptions(src_tls_verify=False, dest_tls_verify=False, quiet=True)
    mirror_to_registry(make_plan([f"{registry.host}/r/app:v1"]), f"docker://{proxy.host}", opts)
    assert not [p for m, p, s, _ in proxy.log if m == "HEAD" and "/blobs/" in p]  # new repository: nothing to ask
    proxy.log.clear()
    report = mirror_to_registry(make_plan([f"{registry.host}/r/app:v2"]), f"docker://{proxy.host}", opts)
    heads = [s for m, p, s, _ in proxy.log if m == "HEAD" and "/blobs/" in p]
    assert 200 in heads and report.blobs["present"] == 1  # the shared base layer was found, not sent again
    assert inspect_raw(f"{registry2.host}/r/app:v2") == inspect_raw(f"{registry.host}/r/app:v2")


def test_new_destination_is_listed_once_instead_of_asked_per_repository(registry, registry2, tmp_path: Path,
                                                                         fault_proxy_factory) -> None:
    """One repository listing tells a fresh destination holds none of the repositories, and a warm
    run which ones exist; a registry that will not list is asked per repository."""
    layout = Layout(tmp_path / "layout")
    sources = []
    for name in ("a", "b", "c"):
        simple_image(layout, name, (5_000 + len(name),))
        push(layout, name, f"{registry.host}/list/{name}:v1")
        sources.append(f"{registry.host}/list/{name}:v1")
    proxy = fault_proxy_factory(registry2)
    opts = MirrorOptions(src_tls_verify=False, dest_tls_verify=False, quiet=True)
    mirror_to_registry(make_plan(sources), f"docker://{proxy.host}", opts)
    requests = [(m, p.split("?")[0]) for m, p, s, _ in proxy.log]
    assert requests.count(("GET", "/v2/_catalog")) == 1
    assert not [p for m, p in requests if p.endswith("/tags/list")]
    proxy.log.clear()
    report = mirror_to_registry(make_plan(sources), f"docker://{proxy.host}", opts)
    assert len(report.present) == 3  # the listing names the repositories: each image is asked for directly
    assert not [p for m, p, s, _ in proxy.log if p.endswith("/tags/list")]
    assert len([p for m, p, s, _ in proxy.log if m == "HEAD" and "/manifests/" in p]) == 3
    # a registry that does not offer the listing (disabled, or no catalog scope) is asked per repository
    unlisted = fault_proxy_factory(registry)
    unlisted.add(FaultRule("GET", r"^/v2/_catalog", "status", times=10, status=404))
    report = mirror_to_registry(make_plan(sources), f"docker://{unlisted.host}/elsewhere", opts)
    assert len(report.copied) == 3
    assert len([p for m, p, s, _ in unlisted.log if p.endswith("/tags/list")]) == 3
    for source in sources:
        copy = source.replace("/list/", "/elsewhere/list/")
        assert inspect_raw(copy) == inspect_raw(source)


def _second_ca(root: Path) -> TlsFiles:
    """Another self-signed certificate for 127.0.0.1, so each side's cert dir trusts only its own registry."""
    root.mkdir(parents=True)
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    (root / "certd").mkdir()
    (root / "certd" / "ca.crt").write_bytes(cert.read_bytes())
    return TlsFiles(cert, key, root / "certd")


def test_source_and_destination_cert_dirs_are_separate(registry_factory, tls_files, tmp_path: Path, capsys) -> None:
    """skopeo's --src-cert-dir / --dest-cert-dir: two TLS registries, each signed by its own CA."""
    from edgebuild.cli import main
    source = registry_factory("tls-src", tls=True)
    other_ca = _second_ca(tmp_path / "ca2")
    dest = RegistryServer(tmp_path / "registry-tls-dst", tls=other_ca).start()
    try:
        layout = Layout(tmp_path / "layout")
        simple_image(layout, "app", (20_000,))
        subprocess.run(["skopeo", "copy", "--quiet", f"--dest-cert-dir={tls_files.cert_dir}",
                        f"oci:{layout.path}:app", f"docker://{source.host}/team/app:v1"], check=True)
        isc = tmp_path / "isc.yaml"
        isc.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                       f"  additionalImages:\n  - name: {source.host}/team/app:v1\n")
        one_dir = ["mirror", "-c", str(isc), "--to", f"docker://{dest.host}/m", "--cert-dir", str(tls_files.cert_dir)]
        assert main(one_dir) == 1  # the destination's CA is not in the source's cert dir
        assert dest.host in capsys.readouterr().err
        assert main(["mirror", "-c", str(isc), "--to", f"docker://{dest.host}/m", "-q",
                     "--src-cert-dir", str(tls_files.cert_dir), "--dest-cert-dir", str(other_ca.cert_dir)]) == 0
        assert inspect_raw(f"{dest.host}/m/team/app:v1", tls_verify=True, cert_dir=other_ca.cert_dir) == \
            inspect_raw(f"{source.host}/team/app:v1", tls_verify=True, cert_dir=tls_files.cert_dir)
    finally:
        dest.stop()


def test_images_named_by_digest_already_mirrored_need_nothing_from_the_source(source_images, registry,
                                                                               registry2) -> None:
    """A rerun of digest-pinned images (as catalogs pin operator images) asks only the destination:
    the source may be slow, far, or gone."""
    opts = MirrorOptions(src_tls_verify=False, dest_tls_verify=False, quiet=True)
    first = mirror_to_registry(make_plan(list(source_images.values())), f"docker://{registry2.host}", opts)
    pinned = [f"{ref.rsplit(':', 1)[0]}@{digest}" for ref, digest in
              ((r.key, r.digest) for r in first.results)]
    mirror_to_registry(make_plan(pinned), f"docker://{registry2.host}", opts)
    registry.stop()
    report = mirror_to_registry(make_plan(pinned), f"docker://{registry2.host}", opts)
    assert len(report.present) == len(pinned) and not report.failed
