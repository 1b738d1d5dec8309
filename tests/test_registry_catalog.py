"""Catalog images from a registry (RegistryImageSource) and the filtered catalog rebuild (oc-mirror v1 style)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from edgebuild.catalog.model import ChannelEntry
from edgebuild.catalog.selection import SelectedPackage, Selection
from edgebuild.catalog.sources import open_catalog_image
from edgebuild.config import OperatorSpec
from edgebuild.plan import CatalogPlan, Plan, PlanImage
from edgebuild.registry.catalog_rebuild import CATALOG_LABEL, write_filtered_fbc
from edgebuild.registry.manifest import sha256_digest
from edgebuild.registry.mirror import MirrorOptions, mirror_from_disk, mirror_to_disk, mirror_to_registry
from edgebuild.registry.source import RegistrySourceFactory
from tests.registry_images import Layout, inspect_raw, make_layer, push, skopeo

pytestmark = pytest.mark.usefixtures("isolated_auth_env")
BIG_OBJECT = base64.b64encode(b'{"kind":"ClusterServiceVersion","spec":{}}' + b" " * 50_000).decode()


def fbc(package: str) -> bytes:
    blobs = [{"schema": "olm.package", "name": package, "defaultChannel": "stable"},
             {"schema": "olm.channel", "name": "stable", "package": package,
              "entries": [{"name": f"{package}.v1"}, {"name": f"{package}.v2", "replaces": f"{package}.v1"}]},
             {"schema": "olm.channel", "name": "fast", "package": package, "entries": [{"name": f"{package}.v2"}]}]
    for v in ("1", "2"):
        blobs.append({"schema": "olm.bundle", "name": f"{package}.v{v}", "package": package,
                      "image": f"registry.example/{package}/bundle:v{v}",
                      "properties": [{"type": "olm.package", "value": {"packageName": package, "version": f"{v}.0.0"}},
                                     {"type": "olm.bundle.object", "value": {"data": BIG_OBJECT}}],
                      "relatedImages": [{"name": "op", "image": f"registry.example/{package}/op:v{v}"}]})
    return b"\n".join(json.dumps(b).encode() for b in blobs)


@pytest.fixture
def catalog_refs(registry, tmp_path: Path) -> dict[str, str]:
    layout = Layout(tmp_path / "catalog-layout")
    base = make_layer("opm-binary", 100_000)
    content = make_layer("cat", 0, files={"configs/pkg-a/catalog.json": fbc("pkg-a"),
                                          "configs/pkg-b/catalog.json": fbc("pkg-b")})
    labels = {CATALOG_LABEL: "/configs"}
    layout.add_image([base, content], labels=labels, ref="single")
    children = [(layout.add_image([base, content], arch=arch, labels=labels), arch) for arch in ("amd64", "arm64")]
    layout.add_index(children, ref="multi")
    refs = {"single": f"{registry.host}/redhat/catalog:v4.15", "multi": f"{registry.host}/redhat/catalog-multi:v4.15"}
    push(layout, "single", refs["single"])
    push(layout, "multi", refs["multi"])
    return refs


def load(ref: str, workdir: Path):
    factory = RegistrySourceFactory(tls_verify=False)
    try:
        loaded = open_catalog_image(ref, image_source_factory=factory, workdir=workdir)
    finally:
        factory.close()
    assert loaded.fbc_dir is not None
    return loaded, loaded.fbc_dir


def keep_a_v2(catalog) -> Selection:
    return Selection(catalog, {"pkg-a": SelectedPackage("pkg-a", "stable", {
        "stable": [ChannelEntry("pkg-a.v2", replaces="pkg-a.v1")]})})


def catalog_plan(ref: str, selection: Selection, dest_host: str) -> Plan:
    dest = f"{dest_host}/redhat/{ref.rsplit('/', 1)[1].split(':')[0]}:v4.15"
    return Plan(api_version="mirror.openshift.io/v1alpha2",
                operators=[CatalogPlan(OperatorSpec(catalog=ref), selection, destination=dest)],
                images=[PlanImage(source=ref, type="catalog", destination=dest, destination_tag="v4.15")])


def layer_files(layout_dir: Path, manifest: dict, index: int) -> dict[str, bytes]:
    digest = manifest["layers"][index]["digest"]
    data = gzip.decompress((layout_dir / "blobs" / "sha256" / digest[7:]).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"") for m in tar}


def test_catalog_loads_from_registry(catalog_refs, tmp_path: Path) -> None:
    loaded, directory = load(catalog_refs["single"], tmp_path / "work")
    assert sorted(loaded.catalog.packages) == ["pkg-a", "pkg-b"]
    assert loaded.digest == sha256_digest(inspect_raw(catalog_refs["single"]))
    assert (directory / "pkg-a" / "catalog.json").is_file()


def test_filtered_fbc_keeps_only_selection_and_full_bundles(catalog_refs, tmp_path: Path) -> None:
    loaded, directory = load(catalog_refs["single"], tmp_path / "work")
    out = write_filtered_fbc(keep_a_v2(loaded.catalog), directory, tmp_path / "out" / "index.json")
    blobs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(b["schema"], b["name"]) for b in blobs] == [("olm.package", "pkg-a"), ("olm.channel", "stable"),
                                                        ("olm.bundle", "pkg-a.v2")]
    assert blobs[1]["entries"] == [{"name": "pkg-a.v2", "replaces": "pkg-a.v1"}]
    assert blobs[2]["properties"][1]["value"]["data"] == BIG_OBJECT  # dropped by the model, kept here
    assert not list((tmp_path / "out").glob(".*"))


@pytest.mark.parametrize("kind", ["single", "multi"])
def test_rebuilt_catalog_pushed_and_verified(kind, catalog_refs, registry2, tmp_path: Path) -> None:
    ref = catalog_refs[kind]
    loaded, directory = load(ref, tmp_path / "work")
    plan = catalog_plan(ref, keep_a_v2(loaded.catalog), registry2.host)
    report = mirror_to_registry(plan, f"docker://{registry2.host}",
                                MirrorOptions(src_tls_verify=False, dest_tls_verify=False, quiet=True,
                                              catalog_dirs={ref: str(directory)}, workdir=str(tmp_path)))
    dest = f"{registry2.host}/redhat/{ref.rsplit('/', 1)[1]}"
    raw = inspect_raw(dest)
    assert report.rebuilt[ref] == sha256_digest(raw) == plan.images[0].digest
    # skopeo pulls it (checking every digest); then the catalog code reads only the selection back
    skopeo("copy", "--all", "--quiet", "--src-tls-verify=false", f"docker://{dest}", f"oci:{tmp_path / 'pulled'}:cat")
    original = json.loads(inspect_raw(ref))
    manifests = [json.loads(raw)]
    if kind == "multi":
        assert [m["platform"] for m in manifests[0]["manifests"]] == [m["platform"] for m in original["manifests"]]
        manifests = [json.loads(inspect_raw(f"{dest.rsplit(':', 1)[0]}@{m['digest']}"))
                     for m in manifests[0]["manifests"]]
    for manifest in manifests:
        assert len(manifest["layers"]) == 4
        assert layer_files(tmp_path / "pulled", manifest, 2) == {".wh.configs": b""}
        files = layer_files(tmp_path / "pulled", manifest, 3)
        assert set(files) == {"configs", "configs/index", "configs/index/index.json"}
    again = mirror_to_registry(catalog_plan(ref, keep_a_v2(loaded.catalog), registry2.host), f"docker://{registry2.host}",
                               MirrorOptions(src_tls_verify=False, dest_tls_verify=False, quiet=True,
                                             catalog_dirs={ref: str(directory)}, workdir=str(tmp_path)))
    assert again.nothing_new and again.rebuilt[ref] == report.rebuilt[ref]  # deterministic rebuild, nothing pushed
    reread = open_catalog_image(f"oci://{tmp_path / 'pulled'}:cat", workdir=tmp_path / "reread")
    assert list(reread.catalog.packages) == ["pkg-a"]
    assert list(reread.catalog.packages["pkg-a"].bundles) == ["pkg-a.v2"]
    assert reread.labels[CATALOG_LABEL] == "/configs"


def test_rebuilt_catalog_to_disk_and_back(catalog_refs, registry2, tmp_path: Path) -> None:
    ref = catalog_refs["single"]
    loaded, directory = load(ref, tmp_path / "work")
    plan = catalog_plan(ref, keep_a_v2(loaded.catalog), "placeholder.invalid")
    plan.images[0].destination = None
    plan.operators[0].destination = None
    plan.images[0].destination_tag = "v4.15"
    opts = MirrorOptions(src_tls_verify=False, dest_tls_verify=False, quiet=True, catalog_dirs={ref: str(directory)})
    report = mirror_to_disk(plan, tmp_path / "disk", opts)
    digest = report.rebuilt[ref]
    assert not list((tmp_path / "disk" / "edgebuild").glob("edgebuild-catalog-*"))  # scratch removed
    mirror_from_disk(tmp_path / "disk", f"docker://{registry2.host}/m", opts)
    assert sha256_digest(inspect_raw(f"{registry2.host}/m/redhat/catalog:v4.15")) == digest


def test_plan_loads_every_catalog_of_the_configuration(catalog_refs, tmp_path: Path, monkeypatch, capsys) -> None:
    """Two catalog images on one registry, read together (concurrently, one client) into one plan."""
    from edgebuild.cli import main
    monkeypatch.setenv("EDGEBUILD_CACHE_DIR", str(tmp_path / "cache"))
    isc = tmp_path / "isc.yaml"
    isc.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  operators:\n"
                   f"  - catalog: {catalog_refs['single']}\n    packages:\n    - name: pkg-a\n"
                   f"  - catalog: {catalog_refs['multi']}\n    packages:\n    - name: pkg-b\n")
    assert main(["plan", "-c", str(isc), "--src-tls-verify=false", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    sources = {img["source"] for img in plan["images"]}
    assert {catalog_refs["single"], catalog_refs["multi"]} <= sources
    assert "registry.example/pkg-a/op:v2" in sources and "registry.example/pkg-b/op:v2" in sources
