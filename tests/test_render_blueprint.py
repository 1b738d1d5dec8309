"""The blueprint: parses as TOML, passes the composer Cloud API `Blueprint` schema and osbuild's path
policy, embeds every image the device needs under the reference the device asks for, and carries
exactly the bytes of files/. Invalid inputs fail with errors naming the entry and the rule."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

import pytest

from edgebuild.compose import blueprint_to_cloud
from edgebuild.errors import UsageError
from edgebuild.reference import ImageReference, MirrorTarget
from edgebuild.render import BlueprintError, RenderError, RenderOptions, render_outputs
from edgebuild.render.blueprint import (
    DeviceDirectory,
    DeviceFile,
    EmbeddedImage,
    _environment,
    edge_blueprint,
    render_blueprint,
)
from edgebuild.render.policy import check_blueprint, unsupported_options
from tests.composer_standin import SPEC, Spec
from tests.test_render_support import sample_config, sample_plan

MIRROR = MirrorTarget.parse("mirror.example.com:8443/edge")
OCP_ART = "quay.io/openshift-release-dev/ocp-v4.0-art-dev"


def release_files(tmp_path: Path) -> list[Path]:
    core = tmp_path / "release-x86_64.json"
    core.write_text(json.dumps({"release": {"base": "4.17.1"}, "images": {
        "haproxy-router": f"{OCP_ART}@sha256:{'1' * 64}",
        "ovn-kubernetes-microshift": f"{OCP_ART}@sha256:{'2' * 64}"}}))
    olm = tmp_path / "release-olm-x86_64.json"
    olm.write_text(json.dumps({"release": {"base": "4.17.1"}, "images": {
        "operator-registry": f"registry.redhat.io/openshift4/ose-operator-registry-rhel9@sha256:{'3' * 64}"}}))
    return [core, olm]


@pytest.fixture
def rendered(tmp_path) -> tuple[Path, dict]:
    out = tmp_path / "out"
    plan = sample_plan(MIRROR)
    render_outputs(plan, sample_config(), RenderOptions(release_info=release_files(tmp_path), insecure_mirror=True,
                                                        embed="all",
                                                        blueprint_name="edge-amq", blueprint_version="1.2.3"), out)
    return out, tomllib.loads((out / "blueprint.toml").read_text())


def test_blueprint_passes_the_cloud_api_schema_and_the_path_policy(rendered):
    """The rendered blueprint, converted by the shipped converter (compose/cloudapi.blueprint_to_cloud, what
    `edgebuild compose --cloud-api` sends), is a valid Cloud API Blueprint."""
    _, bp = rendered
    api = blueprint_to_cloud(bp, "blueprint.toml").blueprint
    assert Spec(str(SPEC)).errors("Blueprint", api) == []
    assert all("tls_verify" in c and "tls-verify" not in c for c in api["containers"])
    assert check_blueprint(bp) == []
    assert bp["name"] == "edge-amq" and bp["version"] == "1.2.3" and bp["distro"] == "rhel-94"


def test_schema_check_catches_a_wrong_shape():
    """The validator is not vacuous: the Cloud API refuses unknown top-level keys and non-boolean TLS."""
    spec = Spec(str(SPEC))
    assert spec.errors("Blueprint", {"name": "x", "architecture": "x86_64"})
    assert spec.errors("Blueprint", {"name": "x", "containers": [{"source": "a/b", "tls_verify": "no"}]})


def test_microshift_packages_services_and_firewall(rendered):
    _, bp = rendered
    assert bp["packages"] == [{"name": n, "version": "4.17.1"}
                              for n in ("microshift", "microshift-olm", "microshift-greenboot")]
    assert bp["customizations"]["services"] == {"enabled": ["microshift"]}
    firewall = bp["customizations"]["firewall"]
    assert {"6443:tcp", "80:tcp", "443:tcp", "5353:udp", "30000-32767:tcp", "30000-32767:udp"} <= set(firewall["ports"])
    assert firewall["zones"] == [{"name": "trusted", "sources": ["10.42.0.0/16", "169.254.169.1", "fd01::/48"]}]


def test_every_image_of_the_plan_and_the_release_has_a_container(rendered):
    out, bp = rendered
    by_name = {c["name"]: c for c in bp["containers"]}
    plan = sample_plan(MIRROR)
    for image in plan.images_of("bundle", "related", "additional"):
        container = by_name[image.device_reference]
        assert container["source"] == f"{ImageReference.parse(image.destination).name}@{image.digest}"
        assert container["source"].startswith("mirror.example.com:8443/edge/")
        assert container["tls-verify"] is False
    catalog = plan.images_of("catalog")[0]
    catalog_ref = f"mirror.example.com:8443/edge/redhat/redhat-operator-index@{catalog.digest}"
    assert by_name[catalog_ref]["source"] == catalog_ref
    release = by_name[f"{OCP_ART}@sha256:{'1' * 64}"]
    assert release["source"] == f"mirror.example.com:8443/edge/openshift-release-dev/ocp-v4.0-art-dev@sha256:{'1' * 64}"
    assert f"registry.redhat.io/openshift4/ose-operator-registry-rhel9@sha256:{'3' * 64}" in by_name
    assert len(bp["containers"]) == len(plan.images) + 3
    # the device falls back to the mirror for release images too (repository scope, as oc-mirror's release ICSP)
    dropin = tomllib.loads((out / "files/etc/containers/registries.conf.d/999-edgebuild-mirror.conf").read_text())
    assert {"prefix": OCP_ART, "location": OCP_ART, "mirror-by-digest-only": True,
            "mirror": [{"location": "mirror.example.com:8443/edge/openshift-release-dev/ocp-v4.0-art-dev",
                        "insecure": True}]} in dropin["registry"]
    images_json = json.loads((out / "images.json").read_text())
    assert {i["deviceReference"] for i in images_json} == set(by_name)


def test_files_tree_holds_the_exact_bytes_of_the_blueprint(rendered):
    out, bp = rendered
    files = bp["customizations"]["files"]
    assert files, "the blueprint carries files"
    on_disk = sorted(str(p.relative_to(out / "files")) for p in (out / "files").rglob("*") if p.is_file())
    assert on_disk == sorted(f["path"].lstrip("/") for f in files)
    for entry in files:
        assert (out / "files" / entry["path"].lstrip("/")).read_bytes() == entry["data"].encode()
        assert entry["mode"] == "0644"
    assert all(d["path"].startswith("/etc/") for d in bp["customizations"]["directories"])


def test_installer_blueprint_is_minimal(rendered):
    out, bp = rendered
    installer = tomllib.loads((out / "blueprint-installer.toml").read_text())
    assert installer == {"name": "edge-amq-installer", "description": bp["description"], "version": "1.2.3",
                         "distro": "rhel-94", "packages": []}
    assert unsupported_options(installer, "edge-installer") == []
    ignored = unsupported_options(bp, "edge-installer")
    assert any("containers" in w for w in ignored) and any("customizations.files" in w for w in ignored)
    assert unsupported_options(bp, "edge-commit") == []
    assert any("containers" in w for w in unsupported_options(bp, "edge-raw-image"))


@pytest.mark.parametrize("mutate, message", [
    (lambda bp: bp["customizations"]["files"].append(
        {"path": "/usr/lib/microshift/manifests.d/050-x/kustomization.yaml", "data": "x"}),
     "customizations.files[*] (/usr/lib/microshift/manifests.d/050-x/kustomization.yaml): files may not be written"),
    (lambda bp: bp["customizations"]["files"][0].update(mode=644), "mode must be a string"),
    (lambda bp: bp.update(name="my blueprint"), "name 'my blueprint' must match ^[a-zA-Z0-9._-]+$"),
    (lambda bp: bp["customizations"]["files"].append(dict(bp["customizations"]["files"][0])), "duplicate path"),
    (lambda bp: bp.update(version="1.0"), "version '1.0' must be Semantic Versioning"),
    (lambda bp: bp["customizations"]["files"].append({"path": "/etc/passwd", "data": "root::0:0::/:/bin/sh"}),
     "(/etc/passwd): files may not be written"),
    (lambda bp: bp["customizations"]["directories"].append({"path": "/usr/local/bin/tools"}),
     "directories may not be written to /usr/local/bin/tools"),
    (lambda bp: bp["customizations"]["files"].append({"path": "/etc/microshift/manifests.d", "data": ""}),
     "is a file but"),
    (lambda bp: bp["customizations"]["files"][0].update(mode="0755x"), "mode '0755x' must match"),
    (lambda bp: bp["customizations"]["files"].append({"path": "/etc/a/../b", "data": ""}), "is not clean"),
    (lambda bp: bp["containers"][0].update({"tls_verify": False}), "TOML spells it tls-verify"),
    (lambda bp: bp["containers"].append({"source": "quay.io/x/y:latest"}), "has no digest"),
])
def test_invalid_blueprints_name_the_entry_and_the_rule(rendered, mutate, message):
    _, bp = rendered
    broken = copy.deepcopy(bp)
    mutate(broken)
    problems = check_blueprint(broken)
    assert any(message.replace("[*]", "") in p or _matches_index(message, p) for p in problems), problems
    with pytest.raises(BlueprintError) as info:
        render_blueprint(broken)
    assert info.value.exit_code == 2


def _matches_index(message: str, problem: str) -> bool:
    head, _, tail = message.partition("[*]")
    return bool(tail) and problem.startswith(head + "[") and tail in problem


def test_failed_render_leaves_previous_output_untouched(tmp_path):
    out = tmp_path / "out"
    render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(), out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(BlueprintError, match="name 'bad name'"):
        render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(blueprint_name="bad name"), out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "no temporary directory is left behind"


def test_rerender_replaces_the_previous_output(tmp_path):
    out = tmp_path / "out"
    render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(), out)
    (out / "stale.txt").write_text("added by the user")
    with pytest.raises(UsageError, match="holds files an earlier render did not write: stale.txt") as info:
        render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(blueprint_version="2.0.0"), out)
    assert info.value.exit_code == 2 and (out / "stale.txt").read_text() == "added by the user"
    (out / "stale.txt").unlink()
    render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(blueprint_version="2.0.0"), out)
    assert tomllib.loads((out / "blueprint.toml").read_text())["version"] == "2.0.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_directory_that_is_not_an_output_is_never_replaced(tmp_path):
    out = tmp_path / "home"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="holds no earlier edgebuild output"):
        render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(), out)
    assert (out / "notes.txt").read_text() == "mine"


def test_values_are_escaped_as_toml():
    tricky = "a: 'quoted'\nb: \"double\" \\ backslash\nc: '''triple'''\n"
    doc = edge_blueprint("esc", 'says "hi"\nand \\ more', "0.1.0", "rhel-94", None,
                         [DeviceDirectory("/etc/edge")],
                         [DeviceFile("/etc/edge/tricky.yaml", tricky), DeviceFile("/etc/edge/plain.yaml", "k: v\n"),
                          DeviceFile("/etc/edge/ctl.txt", "bell\x07\ttab\r\n")],
                         [EmbeddedImage("m:5000/a/b@sha256:" + "f" * 64, "quay.io/a/b@sha256:" + "f" * 64, None,
                                        "additional", "quay.io/a/b:1")])
    text = render_blueprint(doc)
    assert tomllib.loads(text) == doc
    assert "data = '''\nk: v\n'''" in text  # readable literal block where the text allows it


def test_templates_refuse_unescaped_values():
    with pytest.raises(RenderError, match="without a TOML filter"):
        _environment().from_string("name = {{ name }}").render(name='x"\ny = 1')


def test_render_needs_digests_and_a_clean_plan(tmp_path):
    plan = sample_plan(MIRROR)
    plan.images_of("catalog")[0].digest = None
    with pytest.raises(RenderError, match="digest of its mirrored image is unknown"):
        render_outputs(plan, sample_config(), RenderOptions(), tmp_path / "a")
    plan = sample_plan(MIRROR)
    plan.errors.append("catalog x: package y not found")
    with pytest.raises(RenderError, match="the plan has errors"):
        render_outputs(plan, sample_config(), RenderOptions(), tmp_path / "b")


def test_release_info_must_pin_digests(tmp_path):
    bad = tmp_path / "release-x86_64.json"
    bad.write_text(json.dumps({"release": {"base": "4.17.1"}, "images": {"router": "quay.io/x/router:4.17"}}))
    with pytest.raises(Exception, match="images.router: quay.io/x/router:4.17 has no digest"):
        render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(release_info=[bad]), tmp_path / "out")


def test_a_write_failing_midway_leaves_previous_output_untouched(tmp_path, monkeypatch):
    """A disk that fills up while the new output is written (injected: the third fsync raises ENOSPC, since a
    full disk cannot be had on demand here): the old output stays byte for byte, no staging dir remains."""
    import errno

    from edgebuild.render import output
    out = tmp_path / "out"
    render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(), out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    calls = {"n": 0}
    real_fsync = output.os.fsync

    def failing_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)
    monkeypatch.setattr(output.os, "fsync", failing_fsync)
    with pytest.raises(RenderError, match="No space left on device.*nothing was changed"):
        render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(blueprint_version="9.9.9"), out)
    assert calls["n"] == 3
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
