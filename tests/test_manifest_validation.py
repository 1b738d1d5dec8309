"""Manifests the API server and OLM accept (issue 15, one test per numbered problem) and the IDMS/ITMS
mirror names of a destination without a registry host (issue 14, point 4).

Every render below writes under tmp_path, so tests/crd_schemas.py validates its objects against the
real CRD schemas at teardown as well (when ../shared is present)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from edgebuild.cli import main
from edgebuild.errors import ConfigError
from edgebuild.plan import PlanImage, image_destination
from edgebuild.reference import ImageReference, MirrorTarget
from edgebuild.render import RenderOptions, render_outputs
from edgebuild.render.cluster import ICSP_SIZE_LIMIT
from edgebuild.render.names import catalog_source_name_v1, catalog_source_name_v2, unique
from edgebuild.render.validate import InvalidManifest, check_subscription_config, parse_go_duration
from edgebuild.render.yamlio import dump
from tests import crd_schemas
from tests import test_render_support as support
from tests.conftest import require_shared, require_tool
from tests.test_render_support import API_V1, API_V2, fake_digest, sample_config, sample_plan

MIRROR = MirrorTarget.parse("mirror.example.com:8443/edge")
MANIFESTS = "files/etc/microshift/manifests.d"
LONG_CATALOG = ("registry.example.com/redhat/" + "edge-operators-for-the-factory-floor-and-the-retail-stores-index"
                + ":v4.15")


def render(tmp_path: Path, api: str = API_V1, plan=None, mirror: MirrorTarget = MIRROR, **options):
    out = tmp_path / "out"
    result = render_outputs(plan or sample_plan(mirror, api_version=api), sample_config(api),
                            RenderOptions(**options), out)
    return out, result


def device_objects(out: Path) -> dict[str, list[dict]]:
    """The objects of every manifests directory, as `kubectl kustomize` builds them."""
    kubectl = require_tool("kubectl")
    kinds: dict[str, list[dict]] = {}
    for directory in sorted((out / MANIFESTS).iterdir()):
        built = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
        assert built.returncode == 0, built.stderr
        for doc in yaml.safe_load_all(built.stdout):
            kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


def subscription_config(tmp_path: Path, packages: dict) -> Path:
    path = tmp_path / "subs.yaml"
    path.write_text(yaml.safe_dump({"packages": packages}))
    return path


# 1 -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("api", [API_V1, API_V2])
def test_1_long_catalog_source_names_are_fitted_to_63_with_a_stable_hash(tmp_path, monkeypatch, api):
    monkeypatch.setattr(support, "CATALOG", LONG_CATALOG)
    out, _ = render(tmp_path, api)
    [directory] = (out / MANIFESTS).iterdir()
    name = directory.name.removeprefix("050-")
    assert len(name) == 63 and crd_schemas._LABEL.match(name)
    expected = catalog_source_name_v1(LONG_CATALOG) if api == API_V1 else \
        catalog_source_name_v2(f"{MIRROR}/redhat/{LONG_CATALOG.split('/', 2)[2]}")
    assert name == expected
    assert name.startswith("cs-edge-operators-for-the-factory-floor-and-")
    kinds = device_objects(out)
    assert [c["metadata"]["name"] for c in kinds["CatalogSource"]] == [name]
    assert {s["spec"]["source"] for s in kinds["Subscription"]} == {name}
    # The same name on a re-render, and a duplicate stays within 63 (oc-mirror v1 made it 65).
    assert catalog_source_name_v1(LONG_CATALOG) == catalog_source_name_v1(LONG_CATALOG)
    taken = {name}
    second = unique(name, taken)
    assert second != name and len(second) <= 63 and second.endswith("-1")


# 2 -----------------------------------------------------------------------------------------------

def test_2_poll_interval_must_be_a_go_duration(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["render", "-c", "isc.yaml", "--mirror", "m.example:5000", "-o", str(tmp_path / "out"),
              "--catalog-poll-interval", "1d"])
    assert info.value.code == 2
    assert "--catalog-poll-interval: invalid duration '1d': unknown unit 'd'" in capsys.readouterr().err
    with pytest.raises(InvalidManifest, match="--catalog-poll-interval: invalid duration '1 h'") as err:
        render(tmp_path, catalog_poll_interval="1 h")
    assert err.value.exit_code == 2 and not (tmp_path / "out").exists()


def test_2_digest_pinned_cluster_catalog_gets_no_poll_interval(tmp_path):
    plan = sample_plan(MIRROR, api_version=API_V2)
    digest = fake_digest("catalog")
    pinned = f"{ImageReference.parse(plan.operators[0].destination).name}@{digest}"
    plan.operators[0].destination = pinned
    out, result = render(tmp_path, API_V2, plan=plan, catalog_poll_interval="30m")
    [cs_file] = (out / "cluster-resources").glob("cs-*.yaml")
    cluster = yaml.safe_load(cs_file.read_text())
    assert cluster["spec"]["image"] == pinned and "updateStrategy" not in cluster["spec"]
    assert any(w.startswith("--catalog-poll-interval 30m: not written to the cluster CatalogSource")
               and "pinned by digest" in w for w in result.warnings)


@pytest.mark.parametrize("text, ns", [
    ("0", 0), ("24h", 86_400 * 10**9), ("1h30m", 5_400 * 10**9), ("1.5h", 5_400 * 10**9), (".5s", 5 * 10**8),
    ("1.s", 10**9), ("300ms", 3 * 10**8), ("2us", 2000), ("2\u00b5s", 2000), ("2\u03bcs", 2000), ("-1m", -60 * 10**9),
    ("+5s", 5 * 10**9), ("1h1m1s1ms1us1ns", 3_661_001_001_001), ("2562047h47m16.854775807s", (1 << 63) - 1),
])
def test_go_durations_parse_as_time_ParseDuration(text, ns):
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize("text", ["", "1", "1d", "1w", "h", ".s", "1 h", "1h ", "--1s", "1e3s",
                                  "2562047h47m16.854775808s", "1H"])
def test_what_time_ParseDuration_refuses(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_go_duration(text)


# 3 -----------------------------------------------------------------------------------------------

def test_3_subscription_names_are_sanitised_and_spec_name_keeps_the_package(tmp_path):
    plan = sample_plan(MIRROR)
    selection = plan.operators[0].selection
    for packages in (selection.packages, selection.catalog.packages):
        packages["Foo_Operator"] = packages.pop("amq-broker-rhel8")
    out, _ = render(tmp_path, plan=plan)
    directory = next((out / MANIFESTS).iterdir())
    assert (directory / "subscription-foo-operator.yaml").is_file()
    subs = {s["spec"]["name"]: s for s in device_objects(out)["Subscription"]}
    assert subs["Foo_Operator"]["metadata"] == {"name": "foo-operator", "namespace": "openshift-operators"}


# 4 -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config, message", [
    ({"env": [{"name": "REPLICAS", "value": 1}]},
     "env[0].value: must be a string, not int 1 (quote it in YAML)"),
    ({"nodeSelecter": {"node-role.kubernetes.io/worker": ""}},
     "unknown field 'nodeSelecter', did you mean 'nodeSelector'?"),
    ({"resources": {"limits": {"memory": [1]}}}, "resources.limits.memory: must be an integer or a string"),
    ({"tolerations": [{"key": "k", "tolerationSeconds": "60"}]}, "tolerations[0].tolerationSeconds: must be a integer"),
])
def test_4_subscription_config_is_checked_against_the_crd_schema(tmp_path, config, message):
    path = subscription_config(tmp_path, {"amq-broker-rhel8": {"config": config}})
    with pytest.raises(ConfigError) as info:
        render(tmp_path, subscription_config=path)
    error = info.value
    assert error.exit_code == 2 and error.file == str(path) and error.field == "packages.amq-broker-rhel8.config"
    assert message in str(error)
    assert not (tmp_path / "out").exists()


def test_4_the_carried_schema_is_the_crds_and_agrees_with_jsonschema():
    shared = require_shared()
    import json

    carried = json.loads(Path("edgebuild/render/schemas/subscription-config.json").read_text())
    assert carried["schema"] == crd_schemas.subscription_config_schema(shared / "schemas" / "crds")
    assert "3048ccd" in carried["source"]
    good = {"env": [{"name": "A", "value": "1"}], "nodeSelector": {"a": "b"},
            "resources": {"limits": {"cpu": "500m", "memory": 1024}}, "tolerations": [{"operator": "Exists"}]}
    for config, valid in [(good, True), ({"env": [{"name": "A", "value": 1}]}, False), ({"nodeSelecter": {}}, False),
                          ({"volumes": [{"name": "v", "emptyDir": {"sizeLimt": "1Gi"}}]}, False)]:
        sub = {"apiVersion": "operators.coreos.com/v1alpha1", "kind": "Subscription",
               "metadata": {"name": "s", "namespace": "n"},
               "spec": {"name": "p", "source": "cs", "sourceNamespace": "openshift-marketplace", "config": config}}
        assert (crd_schemas.object_problems(sub) == []) is valid, config
        assert (check_subscription_config(config) == []) is valid, config


# 5 -----------------------------------------------------------------------------------------------

def test_5_olm_namespace_uses_microshifts_olm_operators_group(tmp_path):
    olm_namespace = {"local-storage-operator": {"namespace": "openshift-operator-lifecycle-manager"}}
    path = subscription_config(tmp_path, olm_namespace)
    out, _ = render(tmp_path, subscription_config=path)
    kinds = device_objects(out)
    local = next(s for s in kinds["Subscription"] if s["spec"]["name"] == "local-storage-operator")
    assert local["metadata"]["namespace"] == "openshift-operator-lifecycle-manager"
    assert "OperatorGroup" not in kinds and "Namespace" not in kinds


def test_5_all_namespaces_only_operator_is_refused_beside_olm_operators(tmp_path):
    plan = sample_plan(MIRROR)
    bundle = plan.operators[0].selection.catalog.packages["amq-broker-rhel8"].bundles["amq-broker-operator.v7.11.1"]
    bundle.install_modes = {"OwnNamespace": False, "SingleNamespace": False, "MultiNamespace": False,
                            "AllNamespaces": True}
    path = subscription_config(tmp_path, {"amq-broker-rhel8": {"namespace": "openshift-operator-lifecycle-manager"}})
    with pytest.raises(InvalidManifest) as info:
        render(tmp_path, plan=plan, subscription_config=path)
    assert info.value.exit_code == 2
    assert ("amq-broker-rhel8: cannot subscribe in openshift-operator-lifecycle-manager: its CSV does not support "
            "OwnNamespace") in str(info.value)
    assert "MicroShift's OperatorGroup olm-operators" in str(info.value)
    assert not (tmp_path / "out").exists()


# 6 -----------------------------------------------------------------------------------------------

def test_6_target_namespaces_are_created(tmp_path):
    path = subscription_config(tmp_path, {"local-storage-operator": {"targetNamespaces": ["storage-users"]}})
    out, _ = render(tmp_path, subscription_config=path)
    directory = next((out / MANIFESTS).iterdir())
    assert (directory / "namespace-storage-users.yaml").is_file()
    kinds = device_objects(out)
    assert sorted(n["metadata"]["name"] for n in kinds["Namespace"]) == ["local-storage-operator", "storage-users"]
    [group] = kinds["OperatorGroup"]
    assert group["spec"] == {"targetNamespaces": ["storage-users"]}
    # A namespace MicroShift has already is not written again.
    path = subscription_config(tmp_path, {"local-storage-operator": {"targetNamespaces": ["default"]}})
    out2 = tmp_path / "out2"
    render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(subscription_config=path), out2)
    assert sorted(p.name for p in next((out2 / MANIFESTS).iterdir()).glob("namespace-*")) == \
        ["namespace-local-storage-operator.yaml"]


# 7 -----------------------------------------------------------------------------------------------

def _template_plan(tmp_path: Path, spec: dict):
    template = tmp_path / "cs-template.yaml"
    template.write_text(yaml.safe_dump({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "CatalogSource",
                                        "metadata": {"name": "x"}, "spec": spec}))
    plan = sample_plan(MIRROR, api_version=API_V2)
    plan.operators[0].spec.target_catalog_source_template = str(template)
    return plan, template


def test_7_template_with_spec_address_is_refused(tmp_path):
    plan, template = _template_plan(tmp_path, {"address": "catalog.example.com:50051", "displayName": "x"})
    with pytest.raises(ConfigError) as info:
        render(tmp_path, API_V2, plan=plan)
    assert info.value.exit_code == 2 and info.value.file == str(template)
    assert "spec.address 'catalog.example.com:50051' must not be set" in str(info.value)
    assert "OLM connects to spec.address whenever it is set" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_7_template_secrets_and_security_context_are_examined(tmp_path):
    plan, _ = _template_plan(tmp_path, {"grpcPodConfig": {"securityContextConfig": "strict"}})
    with pytest.raises(ConfigError, match="securityContextConfig 'strict' must be legacy or restricted"):
        render(tmp_path, API_V2, plan=plan)
    plan, _ = _template_plan(tmp_path, {"secrets": ["mirror-pull"],
                                        "grpcPodConfig": {"securityContextConfig": "legacy"}})
    out, result = render(tmp_path, API_V2, plan=plan)
    [cluster_file] = (out / "cluster-resources").glob("cs-*.yaml")
    assert yaml.safe_load(cluster_file.read_text())["spec"]["secrets"] == ["mirror-pull"]
    [device] = device_objects(out)["CatalogSource"]
    assert "secrets" not in device["spec"] and device["spec"]["grpcPodConfig"] == {"securityContextConfig": "legacy"}
    assert any("spec.secrets not written to the device CatalogSource" in w for w in result.warnings)


# 8 -----------------------------------------------------------------------------------------------

def test_8_idms_and_itms_are_split_under_the_apply_limit_with_counted_names(tmp_path):
    plan = sample_plan(MIRROR, api_version=API_V2)
    for i in range(2500):
        for source in (f"registry.example.com/team{i:04d}{'-a-long-team-name' * 3}/operand@{fake_digest(str(i))}",
                       f"quay.io/team{i:04d}{'-a-long-team-name' * 3}/app:1.0"):
            ref = ImageReference.parse(source)
            destination, tag = image_destination(ref, "v2", MIRROR)
            plan.images.append(PlanImage(source, "related" if ref.digest else "additional", destination, tag,
                                         ref.digest or fake_digest(source)))
    out, _ = render(tmp_path, API_V2, plan=plan)
    for file, kind, key in [("idms-oc-mirror.yaml", "ImageDigestMirrorSet", "imageDigestMirrors"),
                            ("itms-oc-mirror.yaml", "ImageTagMirrorSet", "imageTagMirrors")]:
        text = (out / "cluster-resources" / file).read_text()
        docs = list(yaml.safe_load_all(text))
        assert len(text.encode()) > 262_144, "the whole set would be refused by client-side apply"
        category = "operator" if kind == "ImageDigestMirrorSet" else "generic"
        names = [d["metadata"]["name"] for d in docs if category in d["metadata"]["name"]]
        assert len(names) >= 2 and names == [f"{file[:4]}-{category}-{n}" for n in range(len(names))]
        assert all(d["kind"] == kind and len(dump(d).encode()) <= ICSP_SIZE_LIMIT for d in docs)
        sources = [e["source"] for d in docs for e in d["spec"][key]]
        assert len(sources) == len(set(sources)) and sum(s.split("/")[1].startswith("team") for s in sources) == 2500


# 9 -----------------------------------------------------------------------------------------------

def test_9_manual_approval_in_openshift_operators_warns_that_every_operator_there_waits(tmp_path):
    path = subscription_config(tmp_path, {"amq-broker-rhel8": {"installPlanApproval": "Manual"}})
    _, result = render(tmp_path, subscription_config=path)
    [warning] = [w for w in result.warnings if "installPlanApproval Manual" in w]
    assert warning.startswith("amq-broker-rhel8: installPlanApproval Manual in openshift-operators: OLM resolves "
                              "one InstallPlan for all the Subscriptions of a namespace")
    assert "every AllNamespaces operator" in warning and "packages.amq-broker-rhel8.namespace" in warning
    path = subscription_config(tmp_path, {"amq-broker-rhel8": {"installPlanApproval": "Manual", "namespace": "amq"}})
    alone = render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(subscription_config=path),
                           tmp_path / "alone")
    assert not [w for w in alone.warnings if "installPlanApproval" in w], "alone in its namespace: nobody waits"


# issue 14, point 4 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("api", [API_V1, API_V2])
def test_mirror_without_registry_host_is_written_as_given(tmp_path, api):
    """oc-mirror v2 (internal/pkg/image.ParseRef + clusterresources.namespaceScope) takes the first
    component as the domain without normalising: `myregistry/mynamespace/amq7`, not docker.io/…"""
    mirror = MirrorTarget.parse("docker://myregistry/mynamespace")
    out, _ = render(tmp_path, api, mirror=mirror)
    mirrors = []
    for path in (out / "cluster-resources").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            for key in ("repositoryDigestMirrors", "imageDigestMirrors", "imageTagMirrors"):
                mirrors += [m for e in doc["spec"].get(key, []) for m in e["mirrors"]]
    assert "myregistry/mynamespace/amq7" in mirrors and "myregistry/mynamespace/edgebuild" in mirrors
    assert not [m for m in mirrors if m.startswith("docker.io/")]


# the suite's own validator has teeth -----------------------------------------------------------------

def test_the_suite_validator_refuses_what_the_server_and_olm_refuse(tmp_path):
    require_shared()
    cs = {"apiVersion": "operators.coreos.com/v1alpha1", "kind": "CatalogSource",
          "metadata": {"name": "cs-" + "x" * 62, "namespace": "openshift-marketplace"},
          "spec": {"sourceType": "grpc", "image": "m/x@sha256:" + "0" * 64, "address": "a:1",
                   "updateStrategy": {"registryPoll": {"interval": "1d"}}, "priorty": 1}}
    problems = "\n".join(crd_schemas.object_problems(cs))
    for expected in ("DNS-1123 label of at most 63", "'1d' is not a Go duration", "spec.address beside spec.image",
                     "'priorty' was unexpected"):
        assert expected in problems
    out = tmp_path / "fake-out"
    directory = out / MANIFESTS / "050-x"
    directory.mkdir(parents=True)
    (directory / "og.yaml").write_text(yaml.safe_dump({
        "apiVersion": "operators.coreos.com/v1", "kind": "OperatorGroup",
        "metadata": {"name": "mine", "namespace": "openshift-operators"}, "spec": {"targetNamespaces": ["nowhere"]}}))
    problems = "\n".join(crd_schemas.output_problems(out, count=False))
    assert "namespace openshift-operators has 2 OperatorGroups (global-operators, mine)" in problems
    assert "targetNamespaces ['nowhere'] are never created" in problems
