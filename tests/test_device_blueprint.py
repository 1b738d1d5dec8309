"""One image under several names, end to end through the real builder code and real containers-storage.

The two scenarios of issue 9: an additional image given once by tag and once by digest, and one digest
under two repositories (a --release-info image that is also an operator's related image). Each renders a
blueprint; bpcheck (osbuild/images) says under which name the skopeo stage stores each image; the image
is stored under exactly that name with the stage's command into a real containers-storage, the boot-time
unit's names are added, and every device reference must resolve by containers/image's lookup (CRI-O's).
The same blueprints written the old way (one entry per reference) lose a name: the contrast shows the test
would catch the bug. Also: edge distros, refused by edgebuild as by the builder.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from edgebuild.device_store import (
    DeviceStore,
    add_names,
    resolve_all,
    store_images,
    usable_driver,
)
from edgebuild.plan import PlanImage, image_destination
from edgebuild.reference import ImageReference, MirrorTarget
from edgebuild.render import BlueprintError, RenderOptions, render_outputs
from edgebuild.render.blueprint import (
    ALIAS_UNIT,
    ALIAS_UNIT_PATH,
    EmbeddedImage,
    edge_blueprint,
    render_blueprint,
)
from edgebuild.render.policy import distro_problem
from tests.bpcheck import BPCHECK, boot_time_names, problems_of, run_bpcheck
from tests.conftest import require_shared, require_tool
from tests.ocibuild import OciLayout
from tests.test_render_support import (
    BROKER_REPO,
    HELLO,
    ImageDigests,
    sample_config,
    sample_plan,
)

MIRROR = MirrorTarget.parse("mirror.example.com:8443/edge")
OCP_ART = "quay.io/openshift-release-dev/ocp-v4.0-art-dev"
FIELDS = ("catalog", "broker_bundle", "broker_old_bundle", "broker", "local_bundle", "local_operator", "hello")


@pytest.fixture
def real_images(tmp_path: Path) -> tuple[ImageDigests, dict[str, str]]:
    """Real images for every digest of the sample plan: (digests, {digest: oci: source})."""
    require_tool("skopeo")
    layout = OciLayout.create(tmp_path / "images")
    sources, values = {}, {}
    for field in FIELDS:
        desc = layout.add_image([{f"etc/{field}": field.encode()}])
        layout.tag(desc, field)
        sources[desc["digest"]] = f"oci:{layout.root}:{field}"
        values[field] = desc["digest"]
    return ImageDigests(**values), sources


def device_lookup(tmp_path: Path, text: str, doc: dict, sources: dict[str, str], references: list[str]) -> dict:
    """Store the blueprint's images as the real manifest stores them, run the boot-time names, look up."""
    require_shared()
    if not BPCHECK.is_file():
        pytest.skip("bpcheck is not in ../shared/tools/osbuild-images")
    verdict = run_bpcheck(text)
    assert problems_of(verdict) == []
    stage = {(c["stage_local_name"], c["spec"]["digest"]) for t in verdict["types"] for c in t["containers"]
             if c["stage_local_name"]}
    driver = usable_driver(tmp_path)
    embedded = DeviceStore(tmp_path / "usr-share-containers-storage", tmp_path / "run-build", driver)
    store_images(embedded, [(sources[digest], name) for name, digest in sorted(stage)])
    runtime = DeviceStore(tmp_path / "var-lib-containers-storage", tmp_path / "run", driver,
                          additional=(embedded.root,))
    add_names(runtime, boot_time_names(doc))
    return resolve_all(runtime, references)


def _render(tmp_path: Path, plan, release_info: list[Path] | None = None) -> tuple[str, dict, list[dict]]:
    out = tmp_path / "out"
    render_outputs(plan, sample_config(), RenderOptions(release_info=release_info or [], insecure_mirror=True,
                                                        embed="all"), out)
    text = (out / "blueprint.toml").read_text()
    return text, tomllib.loads(text), json.loads((out / "images.json").read_text())


def test_tag_and_digest_of_one_image_resolve_from_one_entry(tmp_path: Path, real_images):
    digests, sources = real_images
    plan = sample_plan(MIRROR, digests)
    by_digest = f"{ImageReference.parse(HELLO).name}@{digests.hello}"
    destination, tag = image_destination(ImageReference.parse(by_digest), "v1", MIRROR)
    plan.images.append(PlanImage(by_digest, "additional", destination, tag, digests.hello))
    text, doc, images = _render(tmp_path, plan)
    wanted = [i["deviceReference"] for i in images]
    assert HELLO in wanted and by_digest in wanted
    hello_entries = [c for c in doc["containers"] if c["source"].endswith(digests.hello)]
    assert [c["name"] for c in hello_entries] == [HELLO]  # one entry, named by the tag
    assert ALIAS_UNIT not in doc["customizations"]["services"]["enabled"]  # the tag name covers the digest
    found = device_lookup(tmp_path / "store", text, doc, sources, wanted)
    assert {r: f.ok for r, f in found.items()} == {r: True for r in wanted}

    # The old rendering, one entry per reference: the builder keeps one name and the tag is lost.
    old = dict(doc, containers=doc["containers"] + [{"source": hello_entries[0]["source"], "name": by_digest,
                                                     "tls-verify": False}])
    found = device_lookup(tmp_path / "old", render_blueprint(old), old, sources, [HELLO, by_digest])
    assert not found[HELLO].ok and found[by_digest].ok


def test_one_digest_in_two_repositories_resolves_through_the_boot_time_name(tmp_path: Path, real_images):
    """A --release-info image with the digest of an operator's related image: one entry, plus the unit that
    adds the second repository's name before CRI-O starts (skopeo is added to the packages for it)."""
    digests, sources = real_images
    release = tmp_path / "release-x86_64.json"
    release_ref = f"{OCP_ART}@{digests.broker}"
    release.write_text(json.dumps({"release": {"base": "4.17.1"}, "images": {"shared": release_ref}}))
    text, doc, images = _render(tmp_path, sample_plan(MIRROR, digests), [release])
    related_ref = f"{BROKER_REPO}@{digests.broker}"
    wanted = [i["deviceReference"] for i in images]
    assert related_ref in wanted and release_ref in wanted
    assert len([c for c in doc["containers"] if c["source"].endswith(digests.broker)]) == 1
    assert ALIAS_UNIT in doc["customizations"]["services"]["enabled"]
    assert {"name": "skopeo"} in doc["packages"]
    unit = next(f for f in doc["customizations"]["files"] if f["path"] == ALIAS_UNIT_PATH)["data"]
    assert "Before=crio.service microshift.service" in unit
    assert (tmp_path / "out" / "files" / ALIAS_UNIT_PATH.lstrip("/")).read_text() == unit  # files/ = blueprint
    found = device_lookup(tmp_path / "store", text, doc, sources, wanted)
    assert {r: f.ok for r, f in found.items()} == {r: True for r in wanted}

    # Without the unit (the old rendering: two entries), one of the two names never resolves.
    entry = next(c for c in doc["containers"] if c["source"].endswith(digests.broker))
    other = release_ref if entry["name"] != release_ref else related_ref
    old = dict(doc, containers=doc["containers"] + [dict(entry, name=other)])
    old["customizations"] = dict(doc["customizations"], files=[f for f in doc["customizations"]["files"]
                                                               if f["path"] != ALIAS_UNIT_PATH])
    found = device_lookup(tmp_path / "old", render_blueprint(old), old, sources, [related_ref, release_ref])
    assert sorted(f.ok for f in found.values()) == [False, True]


def test_two_tags_and_a_digest_under_three_repositories():
    """The naming rule on its own: a tag name per repository where the device asks for a tag, a
    sha256-<hex> tag where it asks only by digest; never a digest name (it cannot be added at boot)."""
    d = "sha256:" + "a" * 64
    images = [EmbeddedImage(f"m:5000/x@{d}", ref, None, "related", ref)
              for ref in (f"quay.io/a/x@{d}", "quay.io/a/x:1", "quay.io/b/x:2", f"quay.io/c/x@{d}", "quay.io/a/x:3")]
    doc = edge_blueprint("n", "d", "0.0.1", "rhel-9.6", None, [], [], images)
    assert [c["name"] for c in doc["containers"]] == ["quay.io/a/x:1"]
    unit = next(f for f in doc["customizations"]["files"] if f["path"] == ALIAS_UNIT_PATH)["data"]
    news = [line.rsplit("containers-storage:", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart")]
    assert news == ["quay.io/b/x:2", "quay.io/a/x:3", f"quay.io/c/x:sha256-{'a' * 64}"]


@pytest.mark.parametrize("distro", ["rhel-9", "rhel-10.0", "fedora-41", "centos-10"])
def test_distros_without_edge_image_types_are_refused(distro: str):
    problem = distro_problem(distro)
    assert problem and "valid: rhel-8.N" in problem and "rhel-9.N" in problem
    doc = edge_blueprint("n", "d", "0.0.1", distro, None, [], [], [])
    with pytest.raises(BlueprintError, match=f"distro '{distro}' has no edge-commit") as info:
        render_blueprint(doc)
    assert info.value.exit_code == 2


def test_edgebuilds_distro_table_agrees_with_the_real_builder():
    """Every name edgebuild accepts builds edge-commit/-container/-installer in osbuild/images and every
    name it refuses does not (bpcheck runs the real distro lookup)."""
    require_shared()
    names = ["rhel-9", "rhel-10", "rhel-10.0", "rhel-10.1", "rhel-94", "rhel-9.6", "rhel-9.10", "rhel-8.10",
             "centos-8", "centos-9", "centos-10", "fedora-41", "almalinux-9.5", "rocky-9.4", "almalinux-8.10",
             "rocky-8.9", "almalinux-10.0"]
    for name in names:
        verdict = run_bpcheck(f'name = "p"\nversion = "0.0.1"\ndistro = "{name}"\n',
                              "edge-commit,edge-container,edge-installer", ostree_url="http://example.invalid/r")
        builds = not verdict.get("weldr_error") and all(not t.get("error") for t in verdict.get("types") or [])
        assert builds == (distro_problem(name) is None), (name, verdict)
