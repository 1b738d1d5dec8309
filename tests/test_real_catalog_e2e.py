"""A real catalog end to end: kube-green from ../shared/catalogs/community-operators-v4.17, with every
image reference rewritten to a local "upstream" registry holding a small generated image per reference,
packed as a catalog image, then `edgebuild build` (select, mirror, rebuild the catalog, render, verify).

kube-green's head v0.7.1 names its operator image by tag (docker.io/kubegreen/kube-green:0.7.1), as
many community operators do: OLM on the device asks for that tag, so it must be embedded under it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import tomlkit
import yaml

from edgebuild.catalog.loader import iter_dir_blobs
from edgebuild.cli import main
from edgebuild.reference import ImageReference
from tests.conftest import require_tool
from tests.ocibuild import OciLayout, write_catalog_layout

pytestmark = pytest.mark.slow


def _references(blobs: list[dict]) -> set[str]:
    refs = set()
    for blob in blobs:
        if blob.get("schema") == "olm.bundle":
            refs.add(blob["image"])
            refs.update(r["image"] for r in blob.get("relatedImages") or [] if r.get("image"))
    return refs


@pytest.fixture
def kube_green_upstream(shared_dir: Path, registry_factory, tmp_path: Path) -> dict:
    require_tool("skopeo")
    upstream = registry_factory("upstream")
    blobs = list(iter_dir_blobs(shared_dir / "catalogs" / "community-operators-v4.17" / "kube-green"))
    layout = OciLayout.create(tmp_path / "images")
    rewritten: dict[str, str] = {}
    for ref_text in sorted(_references(blobs)):
        ref = ImageReference.parse(ref_text)
        desc = layout.add_image([{"etc/original-reference": ref_text.encode()}])
        name = f"img-{len(rewritten)}"
        layout.tag(desc, name)
        repository = f"{upstream.host}/{ref.repository}"
        tag = ref.tag or "pushed"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout.root}:{name}",
                        f"docker://{repository}:{tag}"], check=True)
        rewritten[ref_text] = f"{repository}:{ref.tag}" if ref.tag and not ref.digest else \
            f"{repository}@{desc['digest']}"
    text = "".join(json.dumps(b) + "\n" for b in blobs)
    for old, new in sorted(rewritten.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(json.dumps(old), json.dumps(new))
    catalog_layout = tmp_path / "catalog"
    write_catalog_layout(catalog_layout, {"configs/kube-green/catalog.json": text.encode()}, ref_name="v4.17")
    catalog = f"{upstream.host}/community/community-operator-index:v4.17"
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{catalog_layout}:v4.17",
                    f"docker://{catalog}"], check=True)
    config = tmp_path / "isc.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "mirror.openshift.io/v1alpha2", "kind": "ImageSetConfiguration",
        "mirror": {"operators": [{"catalog": catalog, "packages": [{"name": "kube-green"}]}]}}))
    return {"config": config, "rewritten": rewritten, "host": upstream.host}


def test_real_catalog_builds_and_every_needed_image_is_embedded(kube_green_upstream: dict, registry_factory,
                                                                 tmp_path: Path, capsys):
    mirror = registry_factory("mirror")
    out = tmp_path / "out"
    rc = main(["build", "-c", str(kube_green_upstream["config"]), "--to", f"docker://{mirror.host}/edge",
               "-o", str(out), "--src-tls-verify=false", "--dest-tls-verify=false", "--insecure-mirror", "-q"])
    text = capsys.readouterr().out
    assert rc == 0, text
    rewritten = kube_green_upstream["rewritten"]
    head_bundle = rewritten["quay.io/community-operator-pipeline-prod/kube-green@"
                           "sha256:6a3babd5a11f00ce3786a1a2c7f7543ee72b4fe41d10a4e184a566da36b75bd0"]
    operator_by_tag = rewritten["docker.io/kubegreen/kube-green:0.7.1"]
    assert operator_by_tag.endswith(":0.7.1")

    plan = json.loads((out / "plan.json").read_text())
    assert plan["operators"][0]["packages"] == {
        "kube-green": {"defaultChannel": "alpha", "channels": {"alpha": ["kube-green.v0.7.1"]}}}
    assert sorted(i["source"] for i in plan["images"] if i["type"] != "catalog") == sorted(
        [head_bundle, operator_by_tag])
    # Found offline by exactly what the device asks for: the bundle by digest, the operator by its tag,
    # the catalog by the CatalogSource's mirror digest.
    assert f"found   {head_bundle}" in text and f"found   {operator_by_tag}" in text
    assert "verify: ok" in text
    blueprint = tomlkit.parse((out / "blueprint.toml").read_text()).unwrap()
    names = {c["name"] for c in blueprint["containers"]}
    assert {head_bundle, operator_by_tag} <= names
    assert all("@sha256:" in c["source"] for c in blueprint["containers"])  # pulled by digest
    # kube-green supports AllNamespaces only: subscribed in openshift-operators, no OperatorGroup added.
    manifests = next(out.glob("files/etc/microshift/manifests.d/050-*"))
    assert sorted(p.name for p in manifests.iterdir()) == ["catalogsource.yaml", "kustomization.yaml",
                                                           "subscription-kube-green.yaml"]
    subscription = yaml.safe_load((manifests / "subscription-kube-green.yaml").read_text())
    assert subscription["metadata"]["namespace"] == "openshift-operators"
    assert subscription["spec"]["startingCSV"] == "kube-green.v0.7.1"
