"""A disk copy that is damaged or not a disk copy at all (`mirror --from file://DIR`, `oci://` catalogs):
each case is a RegistryError that names the directory or file and says what to do, before anything is
sent anywhere. The layouts are written with tests/ocibuild.py and then broken by hand, as a truncated copy,
a hand edit or a wrong path would break them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebuild.errors import RegistryError
from edgebuild.registry.layout import LayoutEndpoint, check_layout, remove_leftovers
from tests.ocibuild import OciLayout


@pytest.fixture
def layout(tmp_path: Path) -> tuple[OciLayout, dict]:
    oci = OciLayout.create(tmp_path / "layout")
    desc = oci.add_image([{"etc/hello": b"hi\n"}])
    oci.tag(desc, "edge/hello:v1")
    return oci, desc


def _blob(oci: OciLayout, digest: str) -> Path:
    return oci.root / "blobs" / "sha256" / digest.split(":", 1)[1]


@pytest.mark.parametrize("marker, needle", [
    (None, "is not an OCI image layout: it has no oci-layout file"),
    ("{not json", "oci-layout: unreadable"),
    ('{"imageLayoutVersion": "2.0.0"}', "OCI layout version '2.0.0' is not supported (expected 1.0.0)"),
])
def test_a_directory_that_is_not_a_layout_of_version_1_is_refused(layout, marker, needle):
    oci, _ = layout
    path = oci.root / "oci-layout"
    if marker is None:
        path.unlink()
    else:
        path.write_text(marker)
    with pytest.raises(RegistryError) as caught:
        check_layout(oci.root)
    assert needle in str(caught.value) and str(oci.root) in str(caught.value)


def test_reading_a_directory_without_index_points_at_the_directory_a_disk_mirror_wrote(tmp_path):
    with pytest.raises(RegistryError) as caught:
        LayoutEndpoint(tmp_path, create=False)
    assert "is not an OCI image layout (no index.json)" in str(caught.value)
    assert "mirror --to file://DIR" in str(caught.value)


@pytest.mark.parametrize("index, needle", [
    ("{", "is not valid JSON"),
    ('{"manifests": {}}', "has no 'manifests' list"),
    ("[]", "has no 'manifests' list"),
])
def test_a_damaged_index_json_is_named(layout, index, needle):
    oci, _ = layout
    (oci.root / "index.json").write_text(index)
    with pytest.raises(RegistryError) as caught:
        LayoutEndpoint(oci.root, create=False)
    assert needle in str(caught.value) and "index.json" in str(caught.value)


def test_which_image_of_a_layout_is_meant(layout):
    oci, desc = layout
    endpoint = LayoutEndpoint(oci.root, create=False)
    assert endpoint.entry("")["digest"] == desc["digest"], "the only image needs no name"
    assert endpoint.entry("edge/hello:v1")["digest"] == desc["digest"]
    with pytest.raises(RegistryError) as caught:
        endpoint.entry("edge/hello:v2")
    assert "has no image named 'edge/hello:v2'" in str(caught.value) and "edge/hello:v1" in str(caught.value)

    oci.tag(oci.add_image([{"etc/other": b"x\n"}]), "edge/other:v1")
    with pytest.raises(RegistryError) as caught:
        LayoutEndpoint(oci.root, create=False).entry("")
    assert "holds 2 images; say which one" in str(caught.value)
    assert f"oci://{oci.root}:NAME" in str(caught.value)

    (oci.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": []}))
    with pytest.raises(RegistryError) as caught:
        LayoutEndpoint(oci.root, create=False).entry("")
    assert "holds no image" in str(caught.value)


def test_a_missing_or_altered_manifest_and_a_missing_blob_say_the_copy_is_incomplete(layout):
    oci, desc = layout
    endpoint = LayoutEndpoint(oci.root, create=False)
    with pytest.raises(RegistryError) as caught:
        endpoint.get_manifest("edge/hello", "v2")
    assert "no image named edge/hello:v2" in str(caught.value) and "rerun mirror-to-disk" in str(caught.value)

    manifest = endpoint.get_manifest("edge/hello", "v1")
    layer = manifest.blobs[-1]
    _blob(oci, layer.digest).unlink()
    with pytest.raises(RegistryError) as caught, endpoint.open_blob("edge/hello", layer):
        pass
    assert f"blob {layer.digest} of edge/hello is missing" in str(caught.value)

    path = _blob(oci, desc["digest"])
    path.write_bytes(path.read_bytes().replace(b'"layers"', b' "layers"'))
    with pytest.raises(RegistryError) as caught:
        endpoint.get_manifest("edge/hello", "v1")
    assert "does not match its digest" in str(caught.value) and "copy the image again" in str(caught.value)

    path.unlink()
    with pytest.raises(RegistryError) as caught:
        endpoint.get_manifest("edge/hello", "v1")
    assert f"manifest {desc['digest']} is missing" in str(caught.value)


def test_what_a_killed_writer_left_is_removed_and_nothing_else(layout):
    oci, desc = layout
    blobs = oci.root / "blobs" / "sha256"
    (blobs / ".0123456789abcdef.x.part").write_bytes(b"half a blob")
    (oci.root / ".index.json.abc.tmp").write_text("{")
    (oci.root / "edgebuild").mkdir()
    (oci.root / "edgebuild" / "edgebuild-catalog-1234").mkdir()
    (oci.root / "notes.part").write_text("a user's file: no leading dot, kept")
    assert remove_leftovers(oci.root) == 3
    assert (oci.root / "notes.part").exists() and _blob(oci, desc["digest"]).exists()
    assert not (blobs / ".0123456789abcdef.x.part").exists()
    assert LayoutEndpoint(oci.root, create=False).manifest_digest("edge/hello", "v1") == desc["digest"]


def test_a_digest_reference_is_looked_up_by_its_blob(layout):
    oci, desc = layout
    endpoint = LayoutEndpoint(oci.root, create=False)
    assert endpoint.manifest_digest("edge/hello", desc["digest"]) == desc["digest"]
    absent = "sha256:" + "0" * 64
    assert endpoint.manifest_digest("edge/hello", absent) is None
