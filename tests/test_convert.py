"""`convert icsp|idms`: oc-mirror results turned into the CRI-O drop-in, resolved by skopeo against a
real docker-registry on 127.0.0.1."""

from __future__ import annotations

import tomllib

import pytest

from edgebuild.errors import UsageError
from edgebuild.render import RenderError, convert_file
from tests.test_render_support import push, skopeo_inspect, write_oci_image


@pytest.fixture(scope="module")
def pushed(mirror_registry, tmp_path_factory):
    """Images in the mirror where oc-mirror would have put them: {name: (original ref, digest)}."""
    layout = tmp_path_factory.mktemp("oci") / "layout"
    host = mirror_registry.host
    images = {
        "broker": ("registry.redhat.io/amq7/amq-broker-rhel8", "ocmirror/amq7/amq-broker-rhel8", "7.11"),
        "bundle": ("registry.redhat.io/amq7/amq-broker-operator-bundle",
                   "ocmirror/amq7/amq-broker-operator-bundle", "b"),
        "tool": ("quay.io/edgebuild/tool", "ocmirror/edgebuild/tool", "1.0"),
    }
    out = {}
    for name, (original, repo, tag) in images.items():
        write_oci_image(layout, name, f"payload of {name}")
        out[name] = (original, push(host, layout, name, repo, tag))
    return host, out


V1_ICSP = """---
apiVersion: operator.openshift.io/v1alpha1
kind: ImageContentSourcePolicy
metadata:
  name: generic-0
spec:
  repositoryDigestMirrors:
  - mirrors:
    - {host}/ocmirror/edgebuild
    source: quay.io/edgebuild
---
apiVersion: operator.openshift.io/v1alpha1
kind: ImageContentSourcePolicy
metadata:
  labels:
    operators.openshift.org/catalog: "true"
  name: operator-0
spec:
  repositoryDigestMirrors:
  - mirrors:
    - {host}/ocmirror/amq7
    source: registry.redhat.io/amq7
"""

V2_IDMS = """---
apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
  annotations:
    createdBy: oc-mirror v2
  name: idms-operator-0
spec:
  imageDigestMirrors:
  - mirrors:
    - {host}/ocmirror/amq7
    source: registry.redhat.io/amq7
---
apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
  name: idms-generic-0
spec:
  imageDigestMirrors:
  - mirrors:
    - {host}/ocmirror/edgebuild
    source: quay.io/edgebuild
    mirrorSourcePolicy: NeverContactSource
---
apiVersion: config.openshift.io/v1
kind: ImageTagMirrorSet
metadata:
  name: itms-generic-0
spec:
  imageTagMirrors:
  - mirrors:
    - {host}/ocmirror/edgebuild
    source: quay.io/edgebuild
"""


def test_convert_icsp_gives_a_dropin_that_skopeo_resolves(pushed, tmp_path):
    host, images = pushed
    icsp = tmp_path / "imageContentSourcePolicy.yaml"
    icsp.write_text(V1_ICSP.format(host=host))
    dropin = tmp_path / "999-mirror.conf"
    dropin.write_text(convert_file("icsp", icsp, insecure=True))
    for original, digest in images.values():
        result = skopeo_inspect(f"{original}@{digest}", dropin)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == digest
    # ICSP mirrors digests only: a tag goes to the original registry, which does not exist here.
    assert skopeo_inspect("registry.redhat.io/amq7/amq-broker-rhel8:7.11", dropin).returncode != 0
    entries = tomllib.loads(dropin.read_text())["registry"]
    assert [e["prefix"] for e in entries] == ["quay.io/edgebuild", "registry.redhat.io/amq7"]
    assert all(e["mirror-by-digest-only"] is True and e["location"] == e["prefix"] for e in entries)


def test_convert_idms_with_tag_mirrors_gives_a_dropin_that_skopeo_resolves(pushed, tmp_path):
    host, images = pushed
    idms = tmp_path / "idms-oc-mirror.yaml"
    idms.write_text(V2_IDMS.format(host=host))
    dropin = tmp_path / "999-mirror.conf"
    dropin.write_text(convert_file("idms", idms, insecure=True))
    for original, digest in images.values():
        result = skopeo_inspect(f"{original}@{digest}", dropin)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == digest
    # the ITMS entry lets the tag go to the mirror as well
    assert skopeo_inspect("quay.io/edgebuild/tool:1.0", dropin).stdout.strip() == images["tool"][1]
    entries = {e["prefix"]: e for e in tomllib.loads(dropin.read_text())["registry"]}
    tool = entries["quay.io/edgebuild"]
    assert tool["blocked"] is True, "NeverContactSource blocks the source"
    assert tool["mirror-by-digest-only"] is False and tool["mirror"][0]["pull-from-mirror"] == "all"
    assert "blocked" not in entries["registry.redhat.io/amq7"]


def test_kind_list_wrappers_and_several_mirrors_keep_their_order(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("""apiVersion: v1
kind: List
items:
- apiVersion: operator.openshift.io/v1alpha1
  kind: ImageContentSourcePolicy
  metadata: {name: release-0}
  spec:
    repositoryDigestMirrors:
    - source: quay.io/openshift-release-dev/ocp-release
      mirrors: [b.example.com/ocp/release, a.example.com/ocp/release]
""")
    doc = tomllib.loads(convert_file("icsp", path))
    assert [m["location"] for m in doc["registry"][0]["mirror"]] == ["b.example.com/ocp/release",
                                                                    "a.example.com/ocp/release"]
    assert all(m["insecure"] is False for m in doc["registry"][0]["mirror"])


def test_wrong_kind_of_file_names_what_was_found(tmp_path):
    path = tmp_path / "icsp.yaml"
    path.write_text(V1_ICSP.format(host="m:5000"))
    with pytest.raises(RenderError,
                       match=r"no ImageDigestMirrorSet or ImageTagMirrorSet .*found: ImageContentSourcePolicy"):
        convert_file("idms", path)


@pytest.mark.parametrize("entry, message", [
    ("- source: registry.redhat.io/amq7:latest\n    mirrors: [m:5000/amq7]",
     r"spec.repositoryDigestMirrors\[0\].source"),
    ("- source: registry.redhat.io/amq7\n    mirrors: []", "must list at least one mirror"),
    ("- source: registry.redhat.io/amq7\n    mirrors: ['m:5000/amq7@sha256:abc']", r"mirrors\[0\]"),
])
def test_invalid_entries_name_document_and_field(tmp_path, entry, message):
    path = tmp_path / "icsp.yaml"
    path.write_text("apiVersion: operator.openshift.io/v1alpha1\nkind: ImageContentSourcePolicy\n"
                    f"metadata: {{name: operator-0}}\nspec:\n  repositoryDigestMirrors:\n  {entry}\n")
    with pytest.raises(RenderError, match=message) as info:
        convert_file("icsp", path)
    assert "document 1 (ImageContentSourcePolicy operator-0)" in str(info.value)


def test_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown kind 'itsp'"):
        convert_file("itsp", tmp_path / "x.yaml")
    with pytest.raises(UsageError, match="cannot read"):
        convert_file("icsp", tmp_path / "missing.yaml")
