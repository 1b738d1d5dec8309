"""Cluster resources for OpenShift users, named and shaped as oc-mirror writes them.

v1alpha2 runs (oc-mirror v1): `imageContentSourcePolicy.yaml` with ICSPs `generic-0`,
`operator-0` (label `operators.openshift.org/catalog: "true"`), split at 250000 bytes, and
`catalogSource-cs-<repo>.yaml` whose image prefers the tag. v2alpha1 runs (oc-mirror v2):
`idms-oc-mirror.yaml` / `itms-oc-mirror.yaml` with objects per category (`idms-operator-0`, …)
and `cs-<repo>-<suffix>.yaml`. Catalog images never appear in mirror sets.

Mirror scopes are written as the destination was given: `--to docker://myregistry/ns` gives
`myregistry/ns/…`, not `docker.io/myregistry/ns/…` (oc-mirror v2 `image.ParseRef` takes the first
path component as the domain, unnormalised, and `namespaceScope` joins it back;
internal/pkg/clusterresources/clusterresources.go).

Every object is split at 250000 bytes like oc-mirror v1's ICSPs (v1/pkg/cli/mirror/manifests.go:
`icspSizeLimit`, and `idmsSizeLimit` = 250000 beside it), under the 262144 bytes that client-side
`oc apply` can store in its last-applied-configuration annotation. oc-mirror v2 never splits
IDMS/ITMS (`generateIDMS` names the one object per category `idms-<category>-0`); here the parts
count up from it: `idms-operator-0`, `idms-operator-1`, … as v1's builders name theirs
(`<name>-<count>`).

Deliberate differences: oc-mirror v1 names every split ICSP chunk `…-0` (a counter re-declared in
its loop) and orders entries by map iteration; here chunks count up and entries are sorted, so
`oc apply` keeps every chunk and re-renders are byte-stable. Annotations say `createdBy: edgebuild`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..plan import CatalogPlan, Plan
from ..reference import DOCKER_HUB, ImageReference
from .errors import RenderError
from .mirrors import MirrorRule, category_of, scopes, unique_rules
from .names import catalog_source_name_v1, catalog_source_name_v2, unique
from .validate import check_poll_interval, checked, is_dns1123_subdomain
from .yamlio import dump, dump_all

ICSP_SIZE_LIMIT = 250000  # also the limit of each IDMS/ITMS part
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
        mirror_scope = _as_given(mirror_scope, img.destination)
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


def _as_given(scope: str, destination: str) -> str:
    """The scope without the `docker.io/` that parsing added to a destination whose first part is no
    host (`myregistry/ns/…`): oc-mirror writes the destination's own first component."""
    if scope.startswith(DOCKER_HUB + "/") and not destination.startswith(DOCKER_HUB + "/"):
        return scope[len(DOCKER_HUB) + 1:]
    return scope


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


def render_cluster_resources(plan: Plan, sources: list[CatalogSourceSpec],
                             poll_interval: str | None = None) -> tuple[dict[str, str], list[str]]:
    """{file name: YAML text} of cluster-resources/, and warnings. `poll_interval`
    (--catalog-poll-interval) goes on CatalogSources whose image is a tag: a digest never changes."""
    rules, warnings = mirror_rules(plan, plan.semantics)
    files: dict[str, str] = {}
    if plan.semantics == "v1":
        icsps = _icsps(rules)
        if icsps:
            files["imageContentSourcePolicy.yaml"] = dump_all(icsps)
        for spec in sources:
            obj = _cluster_catalog_source(spec, poll_interval, warnings)
            files[f"catalogSource-{spec.name}.yaml"] = dump(obj)
    else:
        idms = _mirror_sets(rules, "digest", "ImageDigestMirrorSet", "idms", "imageDigestMirrors")
        itms = _mirror_sets(rules, "tag", "ImageTagMirrorSet", "itms", "imageTagMirrors")
        if idms:
            files["idms-oc-mirror.yaml"] = dump_all(idms)
        if itms:
            files["itms-oc-mirror.yaml"] = dump_all(itms)
        for spec in sources:
            obj = _cluster_catalog_source(spec, poll_interval, warnings)
            obj.setdefault("metadata", {}).setdefault("annotations", {}).update(_ANNOTATIONS)
            files[f"{spec.name}.yaml"] = dump(obj)
    return files, warnings


def _cluster_catalog_source(spec: CatalogSourceSpec, poll_interval: str | None,
                            warnings: list[str]) -> dict[str, Any]:
    obj = catalog_source_object(spec, spec.cluster_image)
    if poll_interval:
        if ImageReference.parse(spec.cluster_image).tag:
            obj["spec"]["updateStrategy"] = {"registryPoll": {"interval": poll_interval}}
        else:
            warnings.append(f"--catalog-poll-interval {poll_interval}: not written to the cluster CatalogSource "
                            f"{spec.name}: its image {spec.cluster_image} is pinned by digest, so polling could "
                            "never find a newer catalog")
    return checked(obj, "--catalog-poll-interval or the catalog's targetCatalogSourceTemplate")


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
    """ICSPs per category, each at most ICSP_SIZE_LIMIT bytes of YAML."""
    out: list[dict[str, Any]] = []
    for category, sources in sorted(_grouped(rules, "digest").items()):
        out += _split(sources, functools.partial(_icsp, category), "repositoryDigestMirrors")
    return sorted(out, key=lambda o: o["metadata"]["name"])


def _split(sources: dict[str, list[str]], make: Callable[[int, list[dict[str, Any]]], dict[str, Any]],
           key: str) -> list[dict[str, Any]]:
    """Objects `make(count, entries)` holding every source's entry, each at most ICSP_SIZE_LIMIT bytes.

    Block-style list items serialize independently, so a part's size is the size with its first
    entry plus the size of each further entry: linear in the number of entries (dumping the whole
    part after every entry took minutes for a few thousand), and checked exactly once per part.
    """
    out: list[dict[str, Any]] = []
    count = 0
    current = make(count, [])
    size = 0
    for source in sorted(sources):
        entry = {"source": source, "mirrors": sources[source]}
        single = _size(make(count, [entry]))
        if single > ICSP_SIZE_LIMIT:
            raise RenderError(f"the mirror entry for {source!r} cannot fit into a {current['kind']} of "
                              f"{ICSP_SIZE_LIMIT} bytes")
        cost = _size(make(count, [entry, entry])) - single
        entries = current["spec"][key]
        if entries and size + cost > ICSP_SIZE_LIMIT:
            out.append(current)
            count += 1
            current = make(count, [])
            entries = current["spec"][key]
        size = size + cost if entries else _size(make(count, [entry]))
        entries.append(entry)
    out.append(current)
    for obj in out:
        assert _size(obj) <= ICSP_SIZE_LIMIT, obj["metadata"]["name"]
        checked(obj, "the mirror destination (--to/--mirror)")
    return out


def _size(obj: dict[str, Any]) -> int:
    return len(dump(obj).encode())


def _icsp(category: str, count: int, entries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": f"{category}-{count}"}
    if category == "operator":
        metadata["labels"] = {"operators.openshift.org/catalog": "true"}
    return {"apiVersion": "operator.openshift.io/v1alpha1", "kind": "ImageContentSourcePolicy",
            "metadata": metadata, "spec": {"repositoryDigestMirrors": list(entries or [])}}


def _mirror_sets(rules: list[MirrorRule], pull: str, kind: str, prefix: str, key: str) -> list[dict[str, Any]]:
    """IDMS or ITMS per category, split like ICSPs: `<prefix>-<category>-0`, `-1`, …"""
    out: list[dict[str, Any]] = []
    for category, sources in sorted(_grouped(rules, pull).items()):
        def make(count: int, entries: list[dict[str, Any]], category: str = category) -> dict[str, Any]:
            return {"apiVersion": "config.openshift.io/v1", "kind": kind,
                    "metadata": {"name": f"{prefix}-{category}-{count}", "annotations": dict(_ANNOTATIONS)},
                    "spec": {key: list(entries)}}
        out += _split(sources, make, key)
    return out


def _load_template(path: str | None) -> dict[str, Any] | None:
    """oc-mirror v2's targetCatalogSourceTemplate, checked by oc-mirror's rules
    (`catalogSourceContentFromTemplate`: apiVersion, kind, grpc, no configMap) and by what the
    embedded catalog needs: no `spec.address` (OLM would connect there, not to the pod it starts from
    `spec.image`: an endpoint an offline device cannot reach), a known `securityContextConfig`, pull
    secret names, a Go-duration poll interval. oc-mirror logs an unusable template and falls back
    to the default; here it is a configuration error (exit 2), because a CatalogSource silently
    different from the one asked for is found only on the cluster."""
    if not path:
        return None
    try:
        obj = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read it: {exc}", file=path, field="targetCatalogSourceTemplate") from None
    problems = []
    if not isinstance(obj, dict):
        problems.append("not a YAML mapping")
    else:
        if obj.get("apiVersion") != "operators.coreos.com/v1alpha1":
            problems.append(f"apiVersion must be operators.coreos.com/v1alpha1, not {obj.get('apiVersion')!r}")
        if obj.get("kind") != "CatalogSource":
            problems.append(f"kind must be CatalogSource, not {obj.get('kind')!r}")
        spec = obj.get("spec") or {}
        problems += _template_spec_problems(spec if isinstance(spec, dict) else {})
    if problems:
        raise ConfigError("targetCatalogSourceTemplate: " + "; ".join(problems), file=path,
                          hint="edgebuild sets metadata.name/namespace, spec.sourceType and spec.image; the "
                          "template gives the rest (displayName, priority, grpcPodConfig, updateStrategy, ...)")
    return obj


def _template_spec_problems(spec: dict[str, Any]) -> list[str]:
    problems = []
    if spec.get("sourceType") not in (None, "", "grpc"):
        problems.append("spec.sourceType must be grpc")
    if spec.get("configMap"):
        problems.append("spec.configMap must not be set")
    if spec.get("address"):
        problems.append(f"spec.address {spec['address']!r} must not be set: edgebuild sets spec.image to the "
                        "mirrored catalog, and OLM connects to spec.address whenever it is set, so the pod "
                        "started from the image would never be used (on a device: an endpoint it cannot reach)")
    context = (spec.get("grpcPodConfig") or {}).get("securityContextConfig")
    if context is not None and context not in ("legacy", "restricted"):
        problems.append(f"spec.grpcPodConfig.securityContextConfig {context!r} must be legacy or restricted")
    secrets = spec.get("secrets")
    if secrets is not None and (not isinstance(secrets, list)
                                or not all(isinstance(x, str) and is_dns1123_subdomain(x) for x in secrets)):
        problems.append("spec.secrets must be a list of Secret names (in openshift-marketplace)")
    interval = ((spec.get("updateStrategy") or {}).get("registryPoll") or {}).get("interval")
    if interval is not None and (problem := check_poll_interval(interval)):
        problems.append(f"spec.updateStrategy.registryPoll.interval: {problem} (OLM reads a Go duration)")
    return problems
