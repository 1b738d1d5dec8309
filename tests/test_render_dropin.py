"""The CRI-O drop-in resolves original digest references to the mirror, proved with skopeo against a
real docker-registry on 127.0.0.1; a tag reference never goes to a digest-only mirror."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from edgebuild.reference import ImageReference, MirrorTarget
from edgebuild.render import RenderOptions, render_outputs
from edgebuild.render.dropin import DropinOptions, render_dropin
from edgebuild.render.mirrors import MirrorRule, scopes
from tests.test_render_support import (
    BROKER_REPO,
    HELLO,
    ImageDigests,
    push,
    sample_config,
    sample_plan,
    skopeo_inspect,
    write_oci_image,
)

DROPIN = "files/etc/containers/registries.conf.d/999-edgebuild-mirror.conf"


@pytest.fixture(scope="module")
def mirrored(mirror_registry, tmp_path_factory):
    """Push every image of the sample plan to the mirror under oc-mirror v1 names; return (plan, digests)."""
    layout = tmp_path_factory.mktemp("oci") / "layout"
    mirror = MirrorTarget(mirror_registry.host, "mirror")
    payloads = {"catalog": "catalog", "broker_bundle": "bundle 7.11.1", "broker_old_bundle": "bundle 7.11.0",
                "broker": "broker", "local_bundle": "local bundle", "local_operator": "local operator",
                "hello": "hello"}
    for name, payload in payloads.items():
        write_oci_image(layout, name, payload)
    digests = ImageDigests()
    pushed = {
        "catalog": ("mirror/redhat/redhat-operator-index", "v4.15"),
        "broker_bundle": ("mirror/amq7/amq-broker-operator-bundle", "b1"),
        "broker_old_bundle": ("mirror/amq7/amq-broker-operator-bundle", "b0"),
        "broker": ("mirror/amq7/amq-broker-rhel8", "7.11"),
        "local_bundle": ("mirror/storage/local-storage-bundle", "l1"),
        "local_operator": ("mirror/storage/local-storage-operator", "l1"),
        "hello": ("mirror/edgebuild/hello", "1.0"),
    }
    for name, (repo, tag) in pushed.items():
        setattr(digests, name, push(mirror_registry.host, layout, name, repo, tag))
    return sample_plan(mirror, digests), digests


def _render(plan, tmp_path: Path, **options) -> Path:
    out = tmp_path / "out"
    render_outputs(plan, sample_config(), RenderOptions(insecure_mirror=True, **options), out)
    return out / DROPIN


def test_original_digest_references_resolve_to_the_mirror(mirrored, tmp_path):
    plan, _ = mirrored
    dropin = _render(plan, tmp_path)
    for image in plan.images_of("bundle", "related", "additional"):
        result = skopeo_inspect(image.device_reference, dropin)
        assert result.returncode == 0, f"{image.device_reference}: {result.stderr}"
        assert result.stdout.strip() == image.digest


def test_without_the_dropin_the_original_registry_is_asked_and_fails(mirrored):
    plan, _ = mirrored
    image = plan.images_of("related")[0]
    result = skopeo_inspect(image.device_reference)
    assert result.returncode != 0
    assert "registry.example.com" in result.stderr


def test_tag_reference_does_not_go_to_a_digest_only_mirror(mirrored, tmp_path, mirror_registry):
    plan, digests = mirrored
    dropin = _render(plan, tmp_path)
    # The mirror does serve this tag, so only the drop-in's digest-only rule keeps skopeo away from it.
    served = skopeo_inspect(f"{mirror_registry.host}/mirror/amq7/amq-broker-rhel8:7.11", dropin)
    assert served.stdout.strip() == digests.broker
    result = skopeo_inspect(f"{BROKER_REPO}:7.11", dropin)
    assert result.returncode != 0
    assert "registry.example.com" in result.stderr
    entry = next(r for r in tomllib.loads(dropin.read_text())["registry"] if r["prefix"] == "registry.example.com/amq7")
    assert entry["mirror-by-digest-only"] is True
    assert "pull-from-mirror" not in entry["mirror"][0]


def test_image_given_by_tag_also_resolves_by_tag(mirrored, tmp_path):
    plan, digests = mirrored
    dropin = _render(plan, tmp_path)
    result = skopeo_inspect(HELLO, dropin)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == digests.hello
    entry = next(r for r in tomllib.loads(dropin.read_text())["registry"] if r["prefix"] == "quay.io/edgebuild")
    assert entry["mirror-by-digest-only"] is False and entry["mirror"][0]["pull-from-mirror"] == "all"


def test_catalog_is_reachable_under_its_mirror_name(mirrored, tmp_path, mirror_registry):
    """The insecure mirror gets its own entry, so the catalog's device reference works over plain HTTP."""
    plan, digests = mirrored
    dropin = _render(plan, tmp_path)
    reference = f"{mirror_registry.host}/mirror/redhat/redhat-operator-index@{digests.catalog}"
    result = skopeo_inspect(reference, dropin)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == digests.catalog


def test_blocked_originals_still_resolve_digests_through_the_mirror(mirrored, tmp_path):
    plan, digests = mirrored
    dropin = _render(plan, tmp_path, block_originals=True)
    entries = [r for r in tomllib.loads(dropin.read_text())["registry"] if "mirror" in r]
    assert entries and all(r["blocked"] is True for r in entries)
    related = plan.images_of("related")[0]
    assert skopeo_inspect(related.device_reference, dropin).stdout.strip() == related.digest
    result = skopeo_inspect(f"{BROKER_REPO}:7.11", dropin)
    assert result.returncode != 0 and "blocked" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare")
def test_dropin_bind_mounted_over_registries_conf_d(mirrored, tmp_path):
    """The path CRI-O reads: /etc/containers/registries.conf.d, replaced only in a private mount namespace."""
    plan, _ = mirrored
    dropin = _render(plan, tmp_path)
    confd = tmp_path / "registries.conf.d"
    confd.mkdir()
    shutil.copy(dropin, confd / dropin.name)
    host_files = sorted(os.listdir("/etc/containers/registries.conf.d"))
    image = plan.images_of("related")[0]
    script = (f"mount --bind {confd} /etc/containers/registries.conf.d && "
              f"skopeo --debug inspect -n --format '{{{{.Digest}}}}' docker://{image.device_reference}")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == image.digest
    assert "/etc/containers/registries.conf.d/999-edgebuild-mirror.conf" in result.stderr
    assert "127.0.0.1" in result.stderr  # the mirror was the one asked
    assert sorted(os.listdir("/etc/containers/registries.conf.d")) == host_files


def test_secure_mirror_has_no_insecure_entries():
    rules = [MirrorRule("registry.example.com/amq7", "mirror.example.com:8443/amq7")]
    doc = tomllib.loads(render_dropin(rules, DropinOptions(mirror_registry="mirror.example.com:8443")))
    assert doc["registry"] == [{"prefix": "registry.example.com/amq7", "location": "registry.example.com/amq7",
                                "mirror-by-digest-only": True,
                                "mirror": [{"location": "mirror.example.com:8443/amq7", "insecure": False}]}]


def test_scope_is_namespace_when_the_mirror_keeps_the_path_else_repository():
    src = ImageReference.parse("registry.example.com/amq7/broker@sha256:" + "a" * 64)
    assert scopes(src, ImageReference.parse("m:5000/ns/amq7/broker:x")) == ("registry.example.com/amq7",
                                                                            "m:5000/ns/amq7")
    assert scopes(src, ImageReference.parse("m:5000/elsewhere/broker:x")) == (
        "registry.example.com/amq7/broker", "m:5000/elsewhere/broker")
    assert scopes(src, ImageReference.parse("m:5000/ns/amq7/broker:x"), force_repository=True) == (
        "registry.example.com/amq7/broker", "m:5000/ns/amq7/broker")


def test_ca_file_is_carried_to_anchors_and_certs_d(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    mirror = MirrorTarget.parse("mirror.example.com:8443/ns")
    out = tmp_path / "out"
    render_outputs(sample_plan(mirror), sample_config(), RenderOptions(ca_file=ca), out)
    assert (out / "files/etc/pki/ca-trust/source/anchors/edgebuild-mirror-ca.crt").read_text() == ca.read_text()
    assert (out / "files/etc/containers/certs.d/mirror.example.com:8443/ca.crt").read_text() == ca.read_text()
    bp = tomllib.loads((out / "blueprint.toml").read_text())
    assert {"path": "/etc/containers/certs.d/mirror.example.com:8443", "ensure_parents": True} in \
        bp["customizations"]["directories"]
    dropin = tomllib.loads((out / DROPIN).read_text())
    assert all(m["insecure"] is False for r in dropin["registry"] for m in r.get("mirror", []))
    assert all(c.get("tls-verify", True) for c in bp["containers"])
