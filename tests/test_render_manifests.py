"""MicroShift manifests: every rendered directory builds with `kubectl kustomize`, and the objects
carry the catalog's embedded digest reference, the chosen channel and the pinned head."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from edgebuild.errors import ConfigError
from edgebuild.reference import MirrorTarget
from edgebuild.render import RenderError, RenderOptions, render_outputs
from edgebuild.render.manifests import choose_subscription
from edgebuild.render.subscriptions import PackageOverride, load_subscription_config
from tests.conftest import require_tool
from tests.test_render_support import ImageDigests, sample_catalog, sample_config, sample_plan, sample_selection

MIRROR = MirrorTarget.parse("mirror.example.com:8443/edge")
MANIFESTS = "files/etc/microshift/manifests.d"


def kustomize(directory: Path) -> list[dict]:
    kubectl = require_tool("kubectl")
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render(tmp_path: Path, api_version: str = "mirror.openshift.io/v1alpha2", **options) -> Path:
    out = tmp_path / "out"
    render_outputs(sample_plan(MIRROR, api_version=api_version), sample_config(api_version),
                   RenderOptions(**options), out)
    return out


def objects_by_kind(objects: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for obj in objects:
        out.setdefault(obj["kind"], []).append(obj)
    return out


def test_every_manifests_directory_builds_with_kustomize(tmp_path):
    out = render(tmp_path)
    dirs = sorted((out / MANIFESTS).iterdir())
    assert [d.name for d in dirs] == ["050-cs-redhat-operator-index"]
    kinds = objects_by_kind(kustomize(dirs[0]))
    assert sorted(kinds) == ["CatalogSource", "Namespace", "OperatorGroup", "Subscription"]

    catalog_source = kinds["CatalogSource"][0]
    digest = ImageDigests().catalog
    assert catalog_source["metadata"] == {"name": "cs-redhat-operator-index", "namespace": "openshift-marketplace"}
    assert catalog_source["spec"]["sourceType"] == "grpc"
    assert catalog_source["spec"]["image"] == f"mirror.example.com:8443/edge/redhat/redhat-operator-index@{digest}"
    assert "updateStrategy" not in catalog_source["spec"]
    # The CatalogSource image is exactly a [[containers]] name of the blueprint: no pull on the device.
    blueprint = tomllib.loads((out / "blueprint.toml").read_text())
    assert catalog_source["spec"]["image"] in {c["name"] for c in blueprint["containers"]}

    subs = {s["metadata"]["name"]: s for s in kinds["Subscription"]}
    broker = subs["amq-broker-rhel8"]
    assert broker["metadata"]["namespace"] == "openshift-operators"
    assert broker["spec"] == {"name": "amq-broker-rhel8", "channel": "7.11.x", "source": "cs-redhat-operator-index",
                              "sourceNamespace": "openshift-marketplace", "installPlanApproval": "Automatic",
                              "startingCSV": "amq-broker-operator.v7.11.1"}
    local = subs["local-storage-operator"]
    assert local["metadata"]["namespace"] == "local-storage-operator"
    assert local["spec"]["startingCSV"] == "local-storage-operator.v4.15.0"
    # OwnNamespace-only operator: its own Namespace and OperatorGroup; none added to openshift-operators.
    assert [n["metadata"]["name"] for n in kinds["Namespace"]] == ["local-storage-operator"]
    group = kinds["OperatorGroup"][0]
    assert group["metadata"] == {"name": "local-storage-operator", "namespace": "local-storage-operator"}
    assert group["spec"] == {"targetNamespaces": ["local-storage-operator"]}


def test_poll_interval_goes_to_the_cluster_catalog_source_not_the_digest_pinned_device_one(tmp_path):
    out = tmp_path / "out"
    result = render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(catalog_poll_interval="24h"), out)
    device = objects_by_kind(kustomize(out / MANIFESTS / "050-cs-redhat-operator-index"))["CatalogSource"][0]
    assert "updateStrategy" not in device["spec"] and "@sha256:" in device["spec"]["image"]
    cluster = yaml.safe_load((out / "cluster-resources/catalogSource-cs-redhat-operator-index.yaml").read_text())
    assert cluster["spec"]["updateStrategy"] == {"registryPoll": {"interval": "24h"}}
    assert cluster["spec"]["image"].endswith(":v4.15")
    [warning] = [w for w in result.warnings if "--catalog-poll-interval" in w]
    assert "not written to the device CatalogSource cs-redhat-operator-index" in warning
    assert "pinned by digest" in warning and "polling could never find a newer catalog" in warning


def test_v2_names_the_catalog_source_with_the_tag_suffix(tmp_path):
    out = render(tmp_path, api_version="mirror.openshift.io/v2alpha1")
    [directory] = (out / MANIFESTS).iterdir()
    assert directory.name == "050-cs-redhat-operator-index-v4-15"
    subs = objects_by_kind(kustomize(directory))["Subscription"]
    assert {s["spec"]["source"] for s in subs} == {"cs-redhat-operator-index-v4-15"}


def test_subscription_config_overrides_namespace_approval_and_config(tmp_path):
    config = tmp_path / "subs.yaml"
    config.write_text(yaml.safe_dump({"packages": {
        "amq-broker-rhel8": {"namespace": "amq-broker", "installPlanApproval": "Manual",
                             "config": {"env": [{"name": "LOG_LEVEL", "value": "debug"}]}}}}))
    out = render(tmp_path, subscription_config=config)
    kinds = objects_by_kind(kustomize(out / MANIFESTS / "050-cs-redhat-operator-index"))
    broker = next(s for s in kinds["Subscription"] if s["metadata"]["name"] == "amq-broker-rhel8")
    assert broker["metadata"]["namespace"] == "amq-broker"
    assert broker["spec"]["installPlanApproval"] == "Manual"
    assert broker["spec"]["config"] == {"env": [{"name": "LOG_LEVEL", "value": "debug"}]}
    groups = {g["metadata"]["namespace"]: g for g in kinds["OperatorGroup"]}
    assert groups["amq-broker"]["spec"] == {"targetNamespaces": ["amq-broker"]}
    assert sorted(n["metadata"]["name"] for n in kinds["Namespace"]) == ["amq-broker", "local-storage-operator"]


def test_operator_without_all_namespaces_is_refused_in_openshift_operators(tmp_path):
    config = tmp_path / "subs.yaml"
    config.write_text("packages:\n  local-storage-operator:\n    namespace: openshift-operators\n")
    with pytest.raises(RenderError, match="local-storage-operator: cannot subscribe in openshift-operators.*"
                                          "does not support AllNamespaces"):
        render(tmp_path, subscription_config=config)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, field", [
    ("packages:\n  p:\n    installPlanApproval: Sometimes\n", "packages.p.installPlanApproval"),
    ("packages:\n  p:\n    namespace: Not_A_Namespace\n", "packages.p.namespace"),
    ("packages:\n  p:\n    channel: stable\n", "packages.p"),
    ("packages:\n  p:\n    config: [1]\n", "packages.p.config"),
])
def test_subscription_config_errors_name_file_and_field(tmp_path, text, field):
    path = tmp_path / "subs.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_subscription_config(path)
    assert info.value.field == field and info.value.file == str(path)
    assert str(path) in str(info.value)


def test_several_heads_pick_the_highest_version_and_warn():
    digests = ImageDigests()
    catalog = sample_catalog(digests)
    selection = sample_selection(catalog)
    entries = selection.packages["amq-broker-rhel8"].channels["7.11.x"]
    entries[1].replaces = None  # both entries are now heads
    choice, warnings = choose_subscription(selection, "amq-broker-rhel8", PackageOverride())
    assert choice.starting_csv == "amq-broker-operator.v7.11.1"
    assert any("several heads" in w for w in warnings)


def test_unknown_install_modes_assume_all_namespaces_with_a_warning():
    catalog = sample_catalog(ImageDigests())
    catalog.packages["amq-broker-rhel8"].bundles["amq-broker-operator.v7.11.1"].install_modes = None
    choice, warnings = choose_subscription(sample_selection(catalog), "amq-broker-rhel8", PackageOverride())
    assert choice.placement.namespace == "openshift-operators" and not choice.placement.operator_group
    assert any("no installModes" in w for w in warnings)


def test_single_namespace_only_operator_needs_target_namespaces():
    catalog = sample_catalog(ImageDigests())
    bundle = catalog.packages["local-storage-operator"].bundles["local-storage-operator.v4.15.0"]
    bundle.install_modes = {"OwnNamespace": False, "SingleNamespace": True, "MultiNamespace": False,
                            "AllNamespaces": False}
    selection = sample_selection(catalog)
    with pytest.raises(RenderError, match="targetNamespaces"):
        choose_subscription(selection, "local-storage-operator", PackageOverride())
    choice, _ = choose_subscription(selection, "local-storage-operator",
                                    PackageOverride(target_namespaces=["storage-users"]))
    assert choice.placement.target_namespaces == ["storage-users"]


def test_real_catalog_install_modes_choose_the_namespaces(tmp_path):
    """Two real community-operators packages (../shared/catalogs): infinispan supports AllNamespaces,
    koku-metrics-operator only OwnNamespace; the plan comes from edgebuild.plan.build_plan."""
    import hashlib
    import shutil

    from edgebuild.catalog.loader import load_catalog_dir
    from edgebuild.config import parse_config
    from edgebuild.plan import build_plan
    from tests.conftest import require_shared

    source = require_shared() / "catalogs" / "community-operators-v4.17"
    catalog_dir = tmp_path / "catalog"
    for package in ("infinispan", "koku-metrics-operator"):
        shutil.copytree(source / package, catalog_dir / package)
    config = parse_config("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                          "  operators:\n  - catalog: quay.io/community/community-operators:v4.17\n"
                          "    packages:\n    - name: infinispan\n    - name: koku-metrics-operator\n")
    plan = build_plan(config, {"quay.io/community/community-operators:v4.17": load_catalog_dir(catalog_dir)}, MIRROR)
    assert plan.errors == []
    for image in plan.images:  # what mirroring records: the digest of every image
        image.digest = image.digest or "sha256:" + hashlib.sha256(image.source.encode()).hexdigest()
    out = tmp_path / "out"
    render_outputs(plan, config, RenderOptions(), out)
    [directory] = (out / MANIFESTS).iterdir()
    kinds = objects_by_kind(kustomize(directory))
    namespaces = {s["metadata"]["name"]: s["metadata"]["namespace"] for s in kinds["Subscription"]}
    assert namespaces == {"infinispan": "openshift-operators", "koku-metrics-operator": "koku-metrics-operator"}
    assert [g["metadata"]["namespace"] for g in kinds["OperatorGroup"]] == ["koku-metrics-operator"]
    selection = plan.operators[0].selection
    for sub in kinds["Subscription"]:
        package = selection.packages[sub["spec"]["name"]]
        assert sub["spec"]["channel"] == package.default_channel
        kept = {e.name for e in package.channels[package.default_channel]}
        assert sub["spec"]["startingCSV"] in kept
