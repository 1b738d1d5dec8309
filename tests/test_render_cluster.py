"""Cluster resources named and shaped as oc-mirror writes them: ICSP + catalogSource-*.yaml for
v1alpha2 runs, IDMS/ITMS + cs-*.yaml for v2alpha1 runs."""

from __future__ import annotations

import pytest
import yaml

from edgebuild.errors import ConfigError
from edgebuild.reference import MirrorTarget
from edgebuild.render import RenderOptions, render_outputs
from edgebuild.render.cluster import ICSP_SIZE_LIMIT, _icsps
from edgebuild.render.mirrors import MirrorRule
from edgebuild.render.names import catalog_source_name_v1, catalog_source_name_v2
from edgebuild.render.yamlio import dump
from tests.test_render_support import API_V2, sample_config, sample_plan

MIRROR = MirrorTarget.parse("mirror.example.com:8443/edge")


def test_v1_run_writes_icsp_and_catalog_source(tmp_path):
    out = tmp_path / "out"
    render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(), out)
    files = sorted(p.name for p in (out / "cluster-resources").iterdir())
    assert files == ["catalogSource-cs-redhat-operator-index.yaml", "imageContentSourcePolicy.yaml"]
    text = (out / "cluster-resources/imageContentSourcePolicy.yaml").read_text()
    assert text.startswith("---\n")
    icsps = list(yaml.safe_load_all(text))
    assert [i["metadata"]["name"] for i in icsps] == ["generic-0", "operator-0"]
    operator = icsps[1]
    assert operator["apiVersion"] == "operator.openshift.io/v1alpha1" and operator["kind"] == "ImageContentSourcePolicy"
    assert operator["metadata"]["labels"] == {"operators.openshift.org/catalog": "true"}
    assert operator["spec"]["repositoryDigestMirrors"] == [
        {"source": "registry.example.com/amq7", "mirrors": ["mirror.example.com:8443/edge/amq7"]},
        {"source": "registry.example.com/storage", "mirrors": ["mirror.example.com:8443/edge/storage"]}]
    assert "labels" not in icsps[0]["metadata"]
    assert "redhat-operator-index" not in text, "catalog images never go into an ICSP"
    cs = yaml.safe_load((out / "cluster-resources/catalogSource-cs-redhat-operator-index.yaml").read_text())
    assert cs == {"apiVersion": "operators.coreos.com/v1alpha1", "kind": "CatalogSource",
                  "metadata": {"name": "cs-redhat-operator-index", "namespace": "openshift-marketplace"},
                  "spec": {"sourceType": "grpc",
                           "image": "mirror.example.com:8443/edge/redhat/redhat-operator-index:v4.15"}}


def test_v2_run_writes_idms_itms_and_catalog_source(tmp_path):
    out = tmp_path / "out"
    render_outputs(sample_plan(MIRROR, api_version=API_V2), sample_config(API_V2), RenderOptions(), out)
    files = sorted(p.name for p in (out / "cluster-resources").iterdir())
    assert files == ["cs-redhat-operator-index-v4-15.yaml", "idms-oc-mirror.yaml", "itms-oc-mirror.yaml"]
    idms = list(yaml.safe_load_all((out / "cluster-resources/idms-oc-mirror.yaml").read_text()))
    assert [(d["kind"], d["metadata"]["name"]) for d in idms] == [("ImageDigestMirrorSet", "idms-operator-0")]
    assert idms[0]["apiVersion"] == "config.openshift.io/v1"
    assert idms[0]["spec"]["imageDigestMirrors"][0] == {"source": "registry.example.com/amq7",
                                                        "mirrors": ["mirror.example.com:8443/edge/amq7"]}
    itms = list(yaml.safe_load_all((out / "cluster-resources/itms-oc-mirror.yaml").read_text()))
    assert [(d["kind"], d["metadata"]["name"]) for d in itms] == [("ImageTagMirrorSet", "itms-generic-0")]
    assert itms[0]["spec"]["imageTagMirrors"] == [{"source": "quay.io/edgebuild",
                                                   "mirrors": ["mirror.example.com:8443/edge/edgebuild"]}]
    cs = yaml.safe_load((out / "cluster-resources/cs-redhat-operator-index-v4-15.yaml").read_text())
    assert cs["metadata"]["name"] == "cs-redhat-operator-index-v4-15"
    assert cs["spec"] == {"sourceType": "grpc",
                          "image": "mirror.example.com:8443/edge/redhat/redhat-operator-index:v4.15"}


def test_catalog_source_names():
    assert catalog_source_name_v1("registry.redhat.io/redhat/redhat-operator-index:v4.15") == "cs-redhat-operator-index"
    assert catalog_source_name_v2("m:5000/redhat/redhat-operator-index:v4.15") == "cs-redhat-operator-index-v4-15"
    assert catalog_source_name_v2("m:5000/r/certified-operator-index:v4.15.0-20240101") == \
        "cs-certified-operator-index-v4-15-0-2024"
    assert catalog_source_name_v2("m:5000/r/index@sha256:7c4ef7434c97" + "0" * 52) == "cs-index-7c4ef7434c97"


def test_icsp_is_split_at_the_size_limit_with_counted_names():
    rules = [MirrorRule(f"registry.example.com/ns{i:05d}/{'x' * 500}", f"m:5000/ns{i:05d}/{'x' * 500}", "digest",
                        "operator") for i in range(250)]
    icsps = _icsps(rules)
    assert [i["metadata"]["name"] for i in icsps] == ["operator-0", "operator-1"]
    assert sum(len(i["spec"]["repositoryDigestMirrors"]) for i in icsps) == 250
    assert all(len(dump(i).encode()) <= ICSP_SIZE_LIMIT for i in icsps)
    assert len(dump(icsps[0]).encode()) > ICSP_SIZE_LIMIT - 1000, "chunks are filled up to the limit"


def test_catalog_source_template_v2(tmp_path):
    template = tmp_path / "cs-template.yaml"
    template.write_text(yaml.safe_dump({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "CatalogSource",
                                        "metadata": {"name": "ignored", "namespace": "ignored"},
                                        "spec": {"displayName": "Edge operators", "priority": 10,
                                                 "updateStrategy": {"registryPoll": {"interval": "30m"}}}}))
    plan = sample_plan(MIRROR, api_version=API_V2)
    plan.operators[0].spec.target_catalog_source_template = str(template)
    out = tmp_path / "out"
    render_outputs(plan, sample_config(API_V2), RenderOptions(), out)
    cs = yaml.safe_load((out / "cluster-resources/cs-redhat-operator-index-v4-15.yaml").read_text())
    assert cs["metadata"]["name"] == "cs-redhat-operator-index-v4-15"
    assert cs["metadata"]["namespace"] == "openshift-marketplace"
    assert cs["spec"]["displayName"] == "Edge operators" and cs["spec"]["priority"] == 10
    assert cs["spec"]["updateStrategy"] == {"registryPoll": {"interval": "30m"}}
    device = yaml.safe_load((out / "files/etc/microshift/manifests.d/050-cs-redhat-operator-index-v4-15/"
                                   "catalogsource.yaml").read_text())
    assert device["spec"]["displayName"] == "Edge operators"
    assert "updateStrategy" not in device["spec"], "an offline device does not poll unless asked"
    assert "@sha256:" in device["spec"]["image"]


def test_bad_catalog_source_template_is_an_error(tmp_path):
    template = tmp_path / "cs-template.yaml"
    template.write_text("apiVersion: v1\nkind: ConfigMap\nspec: {configMap: x}\n")
    plan = sample_plan(MIRROR, api_version=API_V2)
    plan.operators[0].spec.target_catalog_source_template = str(template)
    with pytest.raises(ConfigError, match="kind must be CatalogSource.*spec.configMap must not be set") as info:
        render_outputs(plan, sample_config(API_V2), RenderOptions(), tmp_path / "out")
    assert info.value.exit_code == 2 and info.value.file == str(template)
    assert not (tmp_path / "out").exists()
