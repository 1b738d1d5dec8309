"""Every object a test renders is validated as the API server and OLM would: against the real CRD
schemas in ../shared/schemas/crds/ (jsonschema) and the limits crds/SOURCE.md lists, which a schema
does not state (DNS-1123 names, a CatalogSource name is a 63-character label, the poll interval is a
Go duration, one OperatorGroup per namespace counting MicroShift's own, target namespaces exist).

A pytest plugin (registered in conftest.py): after each test, every render output under the test's
`tmp_path` (a directory holding plan.json and blueprint.toml) is validated; a problem fails the test
at teardown. The per-kind count is printed at the end of the run. Without ../shared the check is
skipped (a clean clone has no schemas), and the dedicated tests in test_manifest_validation.py skip.

The checks here are written independently of edgebuild/render/validate.py (the product's own), so
the suite does not grade the product with the product's code.

`python3 -m tests.crd_schemas OUTDIR...` validates outputs written elsewhere (e.g. the quickstart's).
"""

from __future__ import annotations

import copy
import re
import sys
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SHARED

CRD_DIR = SHARED / "schemas" / "crds"
MANIFESTS = "files/etc/microshift/manifests.d"
# MicroShift's microshift-olm (openshift/microshift assets/optional/operator-lifecycle-manager):
# 0000_50_olm_00-namespace.yaml creates these namespaces, 0000_50_olm_13-operatorgroup-default.yaml the groups.
BUILTIN_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease", "openshift-operators",
                      "openshift-operator-lifecycle-manager", "openshift-marketplace"}
BUILTIN_OPERATOR_GROUPS = {"openshift-operators": "global-operators",
                           "openshift-operator-lifecycle-manager": "olm-operators"}
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_GO_DURATION = re.compile(r"^[-+]?(0|((\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)$")
_OBJECT_META = {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
    "name": {"type": "string"}, "namespace": {"type": "string"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}}

VALIDATED: Counter[str] = Counter()


def available() -> bool:
    return CRD_DIR.is_dir()


def strict(schema: Any) -> Any:
    """The schema as strict field validation applies it: an object listing `properties` (and not
    preserving unknown fields) refuses any other field, where the server would prune or reject it."""
    if isinstance(schema, dict):
        out = {k: (strict(v) if k != "properties" else {pk: strict(pv) for pk, pv in v.items()})
               for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    return schema


@cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the served version's openAPIV3Schema, strict, with ObjectMeta filled in."""
    out = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served", True):
                continue
            schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            schema["properties"]["metadata"] = _OBJECT_META
            schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
            out[(f"{group}/{version['name']}", kind)] = schema
    return out


def subscription_config_schema(crd_dir: Path = CRD_DIR) -> dict[str, Any]:
    """The Subscription CRD's `spec.config` schema without descriptions: what edgebuild carries in
    edgebuild/render/schemas/subscription-config.json (a test compares the two)."""
    crd = yaml.safe_load((crd_dir / "operators.coreos.com_subscriptions.yaml").read_text())
    [version] = [v for v in crd["spec"]["versions"] if v.get("storage")]
    config = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["config"]

    def drop(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (drop(v) if k != "properties" else {pk: drop(pv) for pk, pv in v.items()})
                    for k, v in node.items() if k not in ("description", "default")}
        if isinstance(node, list):
            return [drop(n) for n in node]
        return node
    return drop(config)


def object_problems(obj: dict[str, Any]) -> list[str]:
    """Schema errors and SOURCE.md limits of one object."""
    import jsonschema

    kind, api = obj.get("kind"), obj.get("apiVersion")
    name = str((obj.get("metadata") or {}).get("name", ""))
    where = f"{kind} {name}"
    problems: list[str] = []
    if (api, kind) == ("v1", "Namespace"):
        if not _LABEL.match(name):
            problems.append(f"{where}: namespace name is not a DNS-1123 label")
        return problems
    schema = schemas().get((api, kind))
    if schema is None:
        return [f"{where}: no CRD schema for {api} {kind} in {CRD_DIR}"]
    for error in jsonschema.Draft7Validator(schema).iter_errors(obj):
        problems.append(f"{where}: {'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}")
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        problems.append(f"{where}: name is not a DNS-1123 subdomain")
    namespace = (obj.get("metadata") or {}).get("namespace")
    if namespace is not None and not _LABEL.match(namespace):
        problems.append(f"{where}: namespace {namespace!r} is not a DNS-1123 label")
    spec = obj.get("spec") or {}
    if kind == "CatalogSource":
        if not _LABEL.match(name):
            problems.append(f"{where}: a CatalogSource name is its Service name and a pod label: "
                            f"DNS-1123 label of at most 63 characters ({len(name)})")
        interval = ((spec.get("updateStrategy") or {}).get("registryPoll") or {}).get("interval")
        if interval is not None and not _GO_DURATION.match(interval):
            problems.append(f"{where}: registryPoll.interval {interval!r} is not a Go duration")
        if spec.get("image") and spec.get("address"):
            problems.append(f"{where}: spec.address beside spec.image (OLM connects to the address)")
    return problems


def _documents(path: Path) -> Iterator[dict[str, Any]]:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            yield doc


def output_problems(out: Path, count: bool = True) -> list[str]:
    """Every object of one render output, plus the device-wide OLM rules across its manifests dirs
    (MicroShift applies manifests.d/* in lexical order)."""
    problems: list[str] = []
    files = sorted((out / "cluster-resources").glob("*.yaml"))
    manifest_dirs = sorted(p for p in (out / MANIFESTS).glob("*") if p.is_dir())
    for directory in manifest_dirs:
        files += sorted(p for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
    namespaces = set(BUILTIN_NAMESPACES)
    groups: dict[str, list[str]] = {ns: [g] for ns, g in BUILTIN_OPERATOR_GROUPS.items()}
    device_objects: list[dict[str, Any]] = []
    for path in files:
        for obj in _documents(path):
            problems += [f"{path.relative_to(out)}: {p}" for p in object_problems(obj)]
            if count:
                VALIDATED[obj.get("kind", "?")] += 1
            if MANIFESTS in str(path):
                device_objects.append(obj)
    for obj in sorted(device_objects, key=lambda o: o["kind"] != "Namespace"):
        if obj["kind"] == "Namespace":
            namespaces.add(obj["metadata"]["name"])
    for obj in device_objects:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        if obj["kind"] == "OperatorGroup":
            groups.setdefault(meta["namespace"], []).append(meta["name"])
            missing = [t for t in spec.get("targetNamespaces") or [] if t not in namespaces]
            if missing:
                problems.append(f"OperatorGroup {meta['name']}: targetNamespaces {missing} are never created")
        if obj["kind"] in ("Subscription", "OperatorGroup") and meta["namespace"] not in namespaces:
            problems.append(f"{obj['kind']} {meta['name']}: namespace {meta['namespace']} is never created")
    for namespace, names in groups.items():
        if len(names) > 1:
            problems.append(f"namespace {namespace} has {len(names)} OperatorGroups ({', '.join(names)}); "
                            "OLM installs nothing there")
    subscribed = {o["metadata"]["namespace"] for o in device_objects if o["kind"] == "Subscription"}
    problems += [f"namespace {ns} has Subscriptions but no OperatorGroup" for ns in sorted(subscribed - set(groups))]
    return problems


def render_outputs_under(root: Path) -> list[Path]:
    """Render outputs (plan.json beside blueprint.toml) at most three levels under `root`."""
    found = []
    for pattern in ("plan.json", "*/plan.json", "*/*/plan.json", "*/*/*/plan.json"):
        found += [p.parent for p in root.glob(pattern) if (p.parent / "blueprint.toml").is_file()]
    return sorted(set(found))


@pytest.fixture(autouse=True)
def _validate_rendered_outputs(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    tmp = request.node.funcargs.get("tmp_path") if hasattr(request.node, "funcargs") else None
    if tmp is None or not available():
        return
    problems = [f"{out}: {p}" for out in render_outputs_under(Path(tmp)) for p in output_problems(out)]
    if problems:
        pytest.fail("rendered objects the API server or OLM would refuse:\n  " + "\n  ".join(problems),
                    pytrace=False)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if VALIDATED:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(VALIDATED.items()))
        terminalreporter.write_line(f"CRD-validated rendered objects: {sum(VALIDATED.values())} ({kinds})")


def main(argv: list[str]) -> int:
    problems = [f"{out}: {p}" for out in map(Path, argv) for p in output_problems(out)]
    print("\n".join(problems) or f"valid: {dict(VALIDATED)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
