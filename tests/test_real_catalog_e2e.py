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


def _in_range(blobs: list[dict], packages: dict[str, str | None]) -> list[dict]:
    """The bundle blobs at or above their package's minVersion (the ones a selection may keep)."""
    from edgebuild.semver import Version

    def version(blob: dict) -> Version | None:
        value = next((p["value"]["version"] for p in blob.get("properties") or [] if p["type"] == "olm.package"), None)
        return Version.try_parse(value, lenient=True)
    out = []
    for blob in blobs:
        if blob.get("schema") != "olm.bundle":
            continue
        floor = packages.get(blob.get("package"))
        v = version(blob)
        if floor is None or (v is not None and not v < Version.parse(floor)):
            out.append(blob)
    return out


def synthesize_upstream(shared_dir: Path, upstream_host: str, workdir: Path, packages: dict[str, str | None],
                        payload_bytes: int = 0, workers: int = 4) -> dict:
    """Real catalog packages with every image reference rewritten to `upstream_host`, where a generated
    image per reference is pushed (its content: the original reference, plus `payload_bytes` of random
    uncompressed data when a realistic size is wanted). {packages: minVersion or None} selects them.
    Returns {"config", "rewritten", "host", "catalog"}."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from tests.ocibuild import Layer, gzip_bytes, tar_bytes

    blobs = [b for name in packages
             for b in iter_dir_blobs(shared_dir / "catalogs" / "community-operators-v4.17" / name)]
    layout = OciLayout.create(workdir / "images")
    rewritten: dict[str, str] = {}
    pushes = []
    heavy = _references(_in_range(blobs, packages)) if payload_bytes else set()
    for ref_text in sorted(_references(blobs)):
        ref = ImageReference.parse(ref_text)
        layers: list = [{"etc/original-reference": ref_text.encode()}]
        if ref_text in heavy:  # gzip level 1: the registry keeps digests of compressed layers only
            layers.append(Layer(gzip_bytes(tar_bytes({"payload": os.urandom(payload_bytes)}), 1),
                                gzip=False, media_type="application/vnd.oci.image.layer.v1.tar+gzip"))
        desc = layout.add_image(layers)
        name = f"img-{len(rewritten)}"
        layout.tag(desc, name)
        repository = f"{upstream_host}/{ref.repository}"
        pushes.append((name, f"{repository}:{ref.tag or name}"))
        rewritten[ref_text] = f"{repository}:{ref.tag}" if ref.tag and not ref.digest else \
            f"{repository}@{desc['digest']}"

    def push(item: tuple[str, str]) -> None:
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout.root}:{item[0]}",
                        f"docker://{item[1]}"], check=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(push, pushes))
    text = "".join(json.dumps(b) + "\n" for b in blobs)
    for old, new in sorted(rewritten.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(json.dumps(old), json.dumps(new))
    catalog_layout = workdir / "catalog"
    write_catalog_layout(catalog_layout, {"configs/catalog.json": text.encode()}, ref_name="v4.17")
    catalog = f"{upstream_host}/community/community-operator-index:v4.17"
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{catalog_layout}:v4.17",
                    f"docker://{catalog}"], check=True)
    config = workdir / "isc.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "mirror.openshift.io/v1alpha2", "kind": "ImageSetConfiguration",
        "mirror": {"operators": [{"catalog": catalog, "packages": [
            {"name": name, **({"minVersion": mv} if mv else {})} for name, mv in packages.items()]}]}}))
    return {"config": config, "rewritten": rewritten, "host": upstream_host, "catalog": catalog}


# The three-operator set of issue 9: version ranges whose bundles the device never installs.
THREE_OPERATORS = {"rabbitmq-cluster-operator": "2.20.0", "sailoperator": "1.30.0", "kube-green": "0.6.0"}


@pytest.fixture
def kube_green_upstream(shared_dir: Path, registry_factory, tmp_path: Path) -> dict:
    require_tool("skopeo")
    return synthesize_upstream(shared_dir, registry_factory("upstream").host, tmp_path, {"kube-green": None})


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


def _embed_line(text: str, mode: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"--embed {mode}:"))


def test_three_operators_embed_what_the_device_installs(shared_dir: Path, registry_factory, tmp_path: Path, capsys):
    """rabbitmq-cluster-operator, sailoperator and kube-green with minVersion: `--embed installed` embeds the
    head bundles and their related images (plus the catalog); `--embed all` every selected image. Both verify."""
    require_tool("skopeo")
    upstream = synthesize_upstream(shared_dir, registry_factory("upstream").host, tmp_path / "up", THREE_OPERATORS)
    mirror = registry_factory("mirror")
    common = ["-c", str(upstream["config"]), "--to", f"docker://{mirror.host}/edge", "--src-tls-verify=false",
              "--dest-tls-verify=false", "--insecure-mirror", "-q"]
    figures = {}
    for mode in ("installed", "all"):
        out = tmp_path / f"out-{mode}"
        rc = main(["build", *common, "-o", str(out), "--embed", mode])
        text = capsys.readouterr().out
        assert rc == 0, text
        assert "verify: ok" in text
        images = json.loads((out / "images.json").read_text())
        embedded = [i for i in images if i["embedded"]]
        figures[mode] = (len(embedded), sum(i["bytes"] for i in embedded),
                         len(images) - len(embedded), sum(i["bytes"] for i in images if not i["embedded"]))
        assert all(isinstance(i["bytes"], int) for i in images)
        blueprint = tomlkit.parse((out / "blueprint.toml").read_text()).unwrap()
        assert len(blueprint["containers"]) <= len(embedded)  # one entry per image
        line = _embed_line(text, mode)
        assert f"embedded: {figures[mode][0]} image(s)" in line and f"left to the mirror: {figures[mode][2]}" in line
        if mode == "installed":
            heads = {yaml.safe_load(p.read_text())["spec"]["startingCSV"]
                     for p in out.glob("files/etc/microshift/manifests.d/*/subscription-*.yaml")}
            assert heads == {"rabbitmq-cluster-operator.v2.20.1", "sailoperator.v1.30.3", "kube-green.v0.7.1"}
            left = [i for i in images if not i["embedded"]]
            assert left and all(i["type"] in ("bundle", "related") for i in left)
            # what the device will not run stays reachable through the drop-in
            assert f"mirror  {left[0]['deviceReference']}" in text
    assert figures["all"][2] == 0 and figures["installed"][0] < figures["all"][0]
    with capsys.disabled():
        for mode, (n, nbytes, m, mbytes) in figures.items():
            print(f"\n--embed {mode}: embedded {n} images, {nbytes} bytes; left to the mirror {m}, {mbytes} bytes")
