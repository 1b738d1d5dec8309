"""Cluster resources for OpenShift users, named and shaped as oc-mirror writes them.

v1alpha2 runs (oc-mirror v1): `imageContentSourcePolicy.yaml` with ICSPs `generic-0`,
`operator-0` (label `operators.openshift.org/catalog: "true"`), split at 250000 bytes, and
`catalogSource-cs-<repo>.yaml` whose image prefers the tag. v2alpha1 runs (oc-mirror v2):
`idms-oc-mirror.yaml` / `itms-oc-mirror.yaml` with one object per category
(`idms-operator-0`, …) and `cs-<repo>-<suffix>.yaml`. Catalog images never appear in mirror sets.

Deliberate differences: oc-mirror v1 names every split ICSP chunk `…-0` (a counter re-declared in
its loop) and orders entries by map iteration; here chunks count up and entries are sorted, so
`oc apply` keeps every chunk and re-renders are byte-stable. Annotations say `createdBy: edgebuild`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..plan import CatalogPlan, Plan
from ..reference import ImageReference
from .errors import RenderError
from .mirrors import MirrorRule, category_of, scopes, unique_rules
from .names import catalog_source_name_v1, catalog_source_name_v2, unique
from .yamlio import dump, dump_all

ICSP_SIZE_LIMIT = 250000
MARKETPLACE = "openshift-marketplace"
_ANNOTATIONS = {"createdBy": "edgebuild"}


@dataclass(slots=True)
class CatalogSourceSpec:
    """One catalog's CatalogSource as both the cluster and the device get it."""

    name: str
    catalog: CatalogPlan
    cluster_image: str  # the mirror reference OpenShift gets (by tag, as oc-mirror writes it)
    template: dict[str, Any] | None = None


def mirror_rules(plan: Plan, semantics: str) -> tuple[list[MirrorRule], list[str]]:
    """Rules for the cluster's mirror sets, and warnings for images left out."""
    rules: list[MirrorRule] = []
    warnings: list[str] = []
    for img in plan.images:
        if img.type == "catalog" or not img.destination:
            continue
        src = ImageReference.parse(img.source)
        dst = ImageReference.parse(img.destination)
        source_scope, mirror_scope = scopes(src, dst)
        category = category_of(img.type)
        if semantics == "v1":
            if not (img.digest or src.digest):
                warnings.append(f"{img.source}: no digest known, left out of the ImageContentSourcePolicy "
                                "(as oc-mirror v1 does); mirror the image first")
                continue
            rules.append(MirrorRule(source_scope, mirror_scope, "digest", category))
        else:
            if src.digest:
                rules.append(MirrorRule(source_scope, mirror_scope, "digest", category))
            if src.tag:
                rules.append(MirrorRule(source_scope, mirror_scope, "tag", category))
    return unique_rules(rules), warnings


def catalog_sources(plan: Plan) -> list[CatalogSourceSpec]:
    """CatalogSource names per catalog, unique within the run."""
    taken: set[str] = set()
    out: list[CatalogSourceSpec] = []
    for cplan in plan.operators:
        if cplan.selection is None or not cplan.destination:
            continue
        if plan.semantics == "v1":
            base = catalog_source_name_v1(cplan.spec.catalog) if not cplan.spec.is_oci else \
                catalog_source_name_v1(cplan.destination)
        else:
            base = catalog_source_name_v2(cplan.destination)
        template = _load_template(cplan.spec.target_catalog_source_template) if plan.semantics == "v2" else None
        out.append(CatalogSourceSpec(unique(base, taken), cplan, cplan.destination, template))
    return out


def catalog_source_object(spec: CatalogSourceSpec, image: str) -> dict[str, Any]:
    """A grpc CatalogSource in openshift-marketplace for `image`; a v2 template's fields are kept."""
    if spec.template is not None:
        obj = yaml.safe_load(yaml.safe_dump(spec.template))
        obj.setdefault("metadata", {})
        obj["metadata"]["name"] = spec.name
        obj["metadata"]["namespace"] = MARKETPLACE
        obj.setdefault("spec", {})
        obj["spec"]["sourceType"] = "grpc"
        obj["spec"]["image"] = image
        return obj
    return {
        "apiVersion": "operators.coreos.com/v1alpha1",
        "kind": "CatalogSource",
        "metadata": {"name": spec.name, "namespace": MARKETPLACE},
        "spec": {"sourceType": "grpc", "image": image},
    }


def render_cluster_resources(plan: Plan, sources: list[CatalogSourceSpec]) -> tuple[dict[str, str], list[str]]:
    """{file name: YAML text} of cluster-resources/, and warnings."""
    rules, warnings = mirror_rules(plan, plan.semantics)
    files: dict[str, str] = {}
    if plan.semantics == "v1":
        icsps = _icsps(rules)
        if icsps:
            files["imageContentSourcePolicy.yaml"] = dump_all(icsps)
        for spec in sources:
            files[f"catalogSource-{spec.name}.yaml"] = dump(catalog_source_object(spec, spec.cluster_image))
    else:
        idms = _mirror_sets(rules, "digest", "ImageDigestMirrorSet", "idms", "imageDigestMirrors")
        itms = _mirror_sets(rules, "tag", "ImageTagMirrorSet", "itms", "imageTagMirrors")
        if idms:
            files["idms-oc-mirror.yaml"] = dump_all(idms)
        if itms:
            files["itms-oc-mirror.yaml"] = dump_all(itms)
        for spec in sources:
            obj = catalog_source_object(spec, spec.cluster_image)
            obj.setdefault("metadata", {}).setdefault("annotations", {}).update(_ANNOTATIONS)
            files[f"{spec.name}.yaml"] = dump(obj)
    return files, warnings


def _grouped(rules: list[MirrorRule], pull: str) -> dict[str, dict[str, list[str]]]:
    """category -> source -> mirrors (in rule order)."""
    out: dict[str, dict[str, list[str]]] = {}
    for rule in rules:
        if rule.pull != pull:
            continue
        mirrors = out.setdefault(rule.category, {}).setdefault(rule.source, [])
        if rule.mirror not in mirrors:
            mirrors.append(rule.mirror)
    return out


def _icsps(rules: list[MirrorRule]) -> list[dict[str, Any]]:
    """ICSPs per category, each at most ICSP_SIZE_LIMIT bytes of YAML.

    Block-style list items serialize independently, so a chunk's size is the size with its first
    entry plus the size of each further entry: linear in the number of entries (dumping the whole
    chunk after every entry took minutes for a few thousand), and checked exactly once per chunk.
    """
    out: list[dict[str, Any]] = []
    for category, sources in sorted(_grouped(rules, "digest").items()):
        count = 0
        current = _icsp(category, count)
        size = 0
        for source in sorted(sources):
            entry = {"source": source, "mirrors": sources[source]}
            single = _size(_icsp(category, count, [entry]))
            if single > ICSP_SIZE_LIMIT:
                raise RenderError(f"repository digest mirror for {source!r} cannot fit into an "
                                  f"ImageContentSourcePolicy of {ICSP_SIZE_LIMIT} bytes")
            cost = _size(_icsp(category, count, [entry, entry])) - single
            entries = current["spec"]["repositoryDigestMirrors"]
            if entries and size + cost > ICSP_SIZE_LIMIT:
                out.append(current)
                count += 1
                current = _icsp(category, count)
                entries = current["spec"]["repositoryDigestMirrors"]
            size = size + cost if entries else _size(_icsp(category, count, [entry]))
            entries.append(entry)
        out.append(current)
    for icsp in out:
        assert _size(icsp) <= ICSP_SIZE_LIMIT, icsp["metadata"]["name"]
    return sorted(out, key=lambda o: o["metadata"]["name"])


def _size(obj: dict[str, Any]) -> int:
    return len(dump(obj).encode())


def _icsp(category: str, count: int, entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": f"{category}-{count}"}
    if category == "operator":
        metadata["labels"] = {"operators.openshift.org/catalog": "true"}
    return {"apiVersion": "operator.openshift.io/v1alpha1", "kind": "ImageContentSourcePolicy",
            "metadata": metadata, "spec": {"repositoryDigestMirrors": list(entries or [])}}


def _mirror_sets(rules: list[MirrorRule], pull: str, kind: str, prefix: str, key: str) -> list[dict[str, Any]]:
    out = []
    for category, sources in sorted(_grouped(rules, pull).items()):
        out.append({
            "apiVersion": "config.openshift.io/v1",
            "kind": kind,
            "metadata": {"name": f"{prefix}-{category}-0", "annotations": dict(_ANNOTATIONS)},
            "spec": {key: [{"source": s, "mirrors": sources[s]} for s in sorted(sources)]},
        })
    return out


def _load_template(path: str | None) -> dict[str, Any] | None:
    """oc-mirror v2's targetCatalogSourceTemplate, checked by oc-mirror's rules. oc-mirror logs an
    unusable template and falls back to the default; here it is an error, because a CatalogSource
    silently different from the one asked for is found only on the cluster."""
    if not path:
        return None
    try:
        obj = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RenderError(f"targetCatalogSourceTemplate {path}: cannot read it: {exc}") from None
    problems = []
    if not isinstance(obj, dict):
        problems.append("not a YAML mapping")
    else:
        if obj.get("apiVersion") != "operators.coreos.com/v1alpha1":
            problems.append(f"apiVersion must be operators.coreos.com/v1alpha1, not {obj.get('apiVersion')!r}")
        if obj.get("kind") != "CatalogSource":
            problems.append(f"kind must be CatalogSource, not {obj.get('kind')!r}")
        spec = obj.get("spec") or {}
        if spec.get("sourceType") not in (None, "", "grpc"):
            problems.append("spec.sourceType must be grpc")
        if spec.get("configMap"):
            problems.append("spec.configMap must not be set")
    if problems:
        raise RenderError(f"targetCatalogSourceTemplate {path}: " + "; ".join(problems))
    return obj
