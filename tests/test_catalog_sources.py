"""Catalog sources: FBC directories, OCI layouts (oci://), overrides, and a registry through ImageSource."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edgebuild.catalog.sources import CATALOG_LABEL, LoadedCatalog, OciLayoutSource, open_catalog, open_catalog_image
from edgebuild.errors import CatalogError
from edgebuild.reference import ImageReference
from tests.conftest import require_shared
from tests.ocibuild import Entry, Layer, OciLayout, fbc_files, gzip_bytes, tar_bytes, write_catalog_layout

PACKAGE = {"schema": "olm.package", "name": "demo", "defaultChannel": "stable"}
CHANNEL = {"schema": "olm.channel", "package": "demo", "name": "stable", "entries": [{"name": "demo.v1.0.0"}]}
BUNDLE = {"schema": "olm.bundle", "package": "demo", "name": "demo.v1.0.0", "image": "quay.io/demo/bundle:v1",
          "properties": [{"type": "olm.package", "value": {"packageName": "demo", "version": "1.0.0"}}]}


def demo_files(prefix: str = "configs", name: str = "demo") -> dict[str, bytes]:
    blobs = [{**b, "package": name} if "package" in b else {**b, "name": name} for b in (PACKAGE, CHANNEL, BUNDLE)]
    return {f"{prefix}/{name}/catalog.json": "".join(json.dumps(b, indent=2) + "\n" for b in blobs).encode()}


def test_fbc_directory_override_has_no_digest() -> None:
    V415 = require_shared("catalogs", "community-operators-v4.15")
    ref = "registry.example/ns/index:v4.15"
    loaded = open_catalog_image(ref, overrides={ref: str(V415)})
    assert loaded.digest is None and loaded.origin == f"directory {V415}"
    assert len(loaded.catalog.packages) == 16 and loaded.catalog.bundle_count == 202
    assert loaded.catalog.source == "registry.example/ns/index:v4.15"


def test_oci_layout_of_a_real_catalog(tmp_path: Path) -> None:
    V415 = require_shared("catalogs", "community-operators-v4.15")
    digest = write_catalog_layout(tmp_path / "layout", fbc_files(V415),
                                  extra_layers=[{"bin/opm": b"ELF", "etc/os-release": b"ID=test"}])
    loaded = open_catalog_image(f"oci://{tmp_path / 'layout'}")
    assert loaded.digest == loaded.manifest_digest == digest
    assert loaded.labels == {CATALOG_LABEL: "/configs"} and loaded.configs_dir == "/configs"
    assert len(loaded.catalog.packages) == 16 and loaded.catalog.bundle_count == 202
    assert open_catalog(f"oci://{tmp_path / 'layout'}").bundle_count == 202


def test_multi_arch_layout_picks_the_platform_and_reports_the_index_digest(tmp_path: Path) -> None:
    index_digest = write_catalog_layout(tmp_path / "l", demo_files(), arches=("amd64", "arm64"))
    amd = open_catalog_image(f"oci://{tmp_path / 'l'}")
    arm = open_catalog_image(f"oci://{tmp_path / 'l'}", arch="arm64")
    assert amd.digest == arm.digest == index_digest
    assert len({amd.manifest_digest, arm.manifest_digest, index_digest}) == 3
    assert list(arm.catalog.packages) == ["demo"]
    with pytest.raises(CatalogError, match=r"no linux/s390x manifest \(it has: linux/amd64, linux/arm64\)"):
        open_catalog_image(f"oci://{tmp_path / 'l'}", arch="s390x")


def test_rebuilt_catalog_layers_whiteout_the_original(tmp_path: Path) -> None:
    """oc-mirror v1 rebuilds a catalog as original + whiteout of /configs + new /configs layer."""
    layout = OciLayout.create(tmp_path / "l")
    desc = layout.add_image([demo_files(name="old"), [Entry(".wh.configs")], demo_files(name="new")],
                            labels={CATALOG_LABEL: "/configs"})
    layout.tag(desc, "rebuilt")
    catalog = open_catalog(f"oci://{tmp_path / 'l'}")
    assert list(catalog.packages) == ["new"]


def test_label_names_the_directory(tmp_path: Path) -> None:
    files = {**demo_files(prefix="srv/fbc", name="kept"), **demo_files(prefix="configs", name="ignored")}
    write_catalog_layout(tmp_path / "l", files, labels={CATALOG_LABEL: "/srv/fbc"})
    assert list(open_catalog(f"oci://{tmp_path / 'l'}").packages) == ["kept"]


def test_image_without_catalog_label_is_refused(tmp_path: Path) -> None:
    write_catalog_layout(tmp_path / "l", demo_files(), labels={"other": "x"})
    with pytest.raises(CatalogError, match=f"no label {CATALOG_LABEL}.*not a file-based catalog"):
        open_catalog(f"oci://{tmp_path / 'l'}")


def test_layout_with_several_images_needs_a_name(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "l")
    for name in ("v1", "v2"):
        layout.tag(layout.add_image([demo_files(name=f"pkg{name}")], labels={CATALOG_LABEL: "/configs"}), name)
    with pytest.raises(CatalogError, match=r"holds 2 images; say which one") as info:
        open_catalog(f"oci://{tmp_path / 'l'}")
    assert "v1, v2" in str(info.value)
    assert list(open_catalog(f"oci://{tmp_path / 'l'}:v2").packages) == ["pkgv2"]
    # an override picks the image named like the reference's tag
    overridden = open_catalog("quay.io/x/index:v1", overrides={"quay.io/x/index:v1": str(tmp_path / "l")})
    assert list(overridden.packages) == ["pkgv1"]
    with pytest.raises(CatalogError, match=r"has no image named 'v3'.*\n.*names in its index.json: v1, v2"):
        open_catalog(f"oci://{tmp_path / 'l'}:v3")


def test_override_matches_normalized_references(tmp_path: Path) -> None:
    write_catalog_layout(tmp_path / "l", demo_files())
    loaded = open_catalog_image("docker.io/library/index:1", overrides={"index:1": str(tmp_path / "l")})
    assert loaded.digest is not None and list(loaded.catalog.packages) == ["demo"]


def test_registry_reference_without_network_explains_the_way_out() -> None:
    with pytest.raises(CatalogError, match="loading from a registry needs network access") as info:
        open_catalog("registry.redhat.io/redhat/redhat-operator-index:v4.15")
    assert "--catalog-content registry.redhat.io/redhat/redhat-operator-index:v4.15=PATH" in str(info.value)


@pytest.mark.parametrize("ref,message", [
    ("oci:///nonexistent/layout", "does not exist or is not a directory"),
    ("Not A Reference", "use a registry reference, oci://PATH"),
])
def test_bad_references(ref: str, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        open_catalog(ref)


def test_oci_path_that_is_a_plain_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "fbc").mkdir()
    with pytest.raises(CatalogError, match="is not an OCI image layout.*\n.*--catalog-content"):
        open_catalog(f"oci://{tmp_path / 'fbc'}")


def test_local_path_reference_loads_a_directory(tmp_path: Path) -> None:
    root = tmp_path / "fbc" / "demo"
    root.mkdir(parents=True)
    (root / "catalog.json").write_bytes(demo_files()["configs/demo/catalog.json"])
    assert list(open_catalog(str(tmp_path / "fbc")).packages) == ["demo"]


def test_corrupt_layer_in_layout_fails_and_leaves_no_cache(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "l")
    tar = tar_bytes(demo_files())
    desc = layout.add_image([Layer(tar, blob_override=gzip_bytes(tar_bytes({"configs/x.json": b"{}"})))],
                            labels={CATALOG_LABEL: "/configs"})
    layout.tag(desc)
    work = tmp_path / "work"
    with pytest.raises(CatalogError, match="content digest is sha256:"):
        open_catalog(f"oci://{tmp_path / 'l'}", workdir=work)
    assert list((work / "catalogs").iterdir()) == []


def test_missing_blob_and_corrupt_manifest(tmp_path: Path) -> None:
    digest = write_catalog_layout(tmp_path / "l", demo_files())
    manifest_path = tmp_path / "l" / "blobs" / "sha256" / digest.split(":")[1]
    manifest = json.loads(manifest_path.read_bytes())
    layer = tmp_path / "l" / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    layer.unlink()
    with pytest.raises(CatalogError, match=f"lacks blob {manifest['layers'][0]['digest']}"):
        open_catalog(f"oci://{tmp_path / 'l'}")
    manifest_path.write_bytes(manifest_path.read_bytes() + b" ")
    with pytest.raises(CatalogError, match=f"manifest {digest} .*content digest is sha256:"):
        open_catalog(f"oci://{tmp_path / 'l'}")


def test_layout_source_refuses_digests_that_are_paths(tmp_path: Path) -> None:
    write_catalog_layout(tmp_path / "l", demo_files())
    source = OciLayoutSource(tmp_path / "l")
    with pytest.raises(CatalogError, match="refusing unexpected digest"):
        source.open_blob("sha256:../../../etc/passwd")


def test_workdir_keeps_the_unpacked_catalog_per_manifest(tmp_path: Path) -> None:
    digest = write_catalog_layout(tmp_path / "l", demo_files())
    work = tmp_path / "work"
    first = open_catalog_image(f"oci://{tmp_path / 'l'}", workdir=work)
    cached = work / "catalogs" / digest.split(":")[1]
    assert (cached / "configs-path").read_text() == "rootfs/configs"
    # with the layer gone from the layout, the unpacked copy is what gets loaded
    manifest = json.loads((tmp_path / "l" / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())
    (tmp_path / "l" / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]).unlink()
    second = open_catalog_image(f"oci://{tmp_path / 'l'}", workdir=work)
    assert second.catalog.packages == first.catalog.packages and second.digest == digest


# --------------------------------------------------------------------------------------------------
# Through a registry: a real docker-registry, images pushed by skopeo, read via the ImageSource protocol.


def test_catalog_from_a_real_registry_matches_the_layout(tmp_path: Path, registry) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    from edgebuild.registry.client import RegistryClient
    from edgebuild.registry.source import RegistryImageSource
    index_digest = write_catalog_layout(tmp_path / "l", demo_files(), arches=("amd64", "arm64"), ref_name="v1")
    subprocess.run(["skopeo", "copy", "--all", "--quiet", "--dest-tls-verify=false", f"oci:{tmp_path / 'l'}:v1",
                    f"docker://{registry.host}/ns/index:v1"], check=True, capture_output=True)
    seen: list[ImageReference] = []
    with RegistryClient(registry.host, tls_verify=False) as client:
        def factory(ref: ImageReference):
            seen.append(ref)
            return RegistryImageSource(client, ref.repository)

        by_tag = open_catalog_image(f"{registry.host}/ns/index:v1", image_source_factory=factory, arch="arm64")
        by_digest = open_catalog_image(f"{registry.host}/ns/index@{index_digest}", image_source_factory=factory)
    local = open_catalog_image(f"oci://{tmp_path / 'l'}", arch="arm64")
    assert isinstance(by_tag, LoadedCatalog)
    assert by_tag.digest == by_digest.digest == local.digest == index_digest
    assert by_tag.manifest_digest == local.manifest_digest != by_digest.manifest_digest
    assert by_tag.catalog.packages == local.catalog.packages
    assert [r.tag for r in seen] == ["v1", None] and seen[1].digest == index_digest
