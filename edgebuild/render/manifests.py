"""MicroShift manifests: one kustomize directory per catalog under /etc/microshift/manifests.d.

MicroShift applies `/etc/microshift/manifests.d/*` in lexical order at start-up, after its own
OLM manifests. Each directory holds the catalog's CatalogSource (grpc, `spec.image` exactly the
reference the catalog image is embedded under, so no pull happens) and one Subscription per
package on the package's default channel, pinned with `startingCSV` to that channel's head.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..catalog.model import ChannelEntry
from ..catalog.selection import Selection
from ..semver import Version
from .cluster import CatalogSourceSpec, catalog_source_object
from .errors import RenderError
from .subscriptions import (
    GLOBAL_NAMESPACE,
    MICROSHIFT_NAMESPACES,
    PackageOverride,
    Placement,
    SubscriptionConfig,
    place,
)
from .validate import (
    DNS1123_SUBDOMAIN_MAX,
    InvalidManifest,
    check_poll_interval,
    checked,
    fit_name,
    sanitized_subdomain,
)
from .yamlio import dump

MANIFEST_PREFIX = "050"

try:  # written alongside this module by another engineer; same rule either way
    from ..catalog.graph import channel_heads
except ImportError:  # pragma: no cover - fallback until graph.py exists
    def channel_heads(entries: list[ChannelEntry]) -> list[str]:  # type: ignore[misc]
        names = {e.name for e in entries}
        replaced = {e.replaces for e in entries if e.replaces} | {s for e in entries for s in e.skips}
        return sorted(names - replaced)


@dataclass(slots=True)
class ManifestDir:
    """A kustomize directory: its name under manifests.d and {file name: YAML text}."""

    name: str
    files: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SubscriptionChoice:
    package: str
    channel: str
    starting_csv: str
    placement: Placement
    approval: str
    config: dict[str, Any] | None


def choose_subscription(selection: Selection, package: str,
                        override: PackageOverride) -> tuple[SubscriptionChoice, list[str]]:
    """Channel = the selection's default channel; startingCSV = its head among the kept entries."""
    selected = selection.packages[package]
    channel = selected.default_channel
    entries = selected.channels.get(channel)
    if not entries:
        raise RenderError(f"{package}: default channel {channel!r} has no selected bundles "
                          f"(kept channels: {', '.join(sorted(selected.channels)) or 'none'})",
                          "select the default channel or set defaultChannel for the package "
                          "in the ImageSetConfiguration")
    warnings: list[str] = []
    heads = channel_heads(entries)
    head = heads[0]
    if len(heads) > 1:
        def version_of(name: str) -> Version:
            bundle = selection.catalog.bundle(package, name)
            return Version.try_parse(bundle.version if bundle else None, lenient=True) or Version.parse("0.0.0")
        head = max(heads, key=version_of)
        warnings.append(f"{package}: channel {channel} has several heads ({', '.join(heads)}); "
                        f"startingCSV is the highest version, {head}")
    bundle = selection.catalog.bundle(package, head)
    placement, place_warnings = place(package, bundle.install_modes if bundle else None, override)
    warnings.extend(place_warnings)
    return SubscriptionChoice(package, channel, head, placement, override.approval or "Automatic",
                              override.config), warnings


class NamespaceLedger:
    """What the manifests directories written so far create on the device (MicroShift applies them in
    lexical order, after its own): Namespaces, OperatorGroups, and who is subscribed where."""

    def __init__(self) -> None:
        self._targets: dict[str, tuple[list[str] | None, str]] = {}
        self._created: set[str] = set(MICROSHIFT_NAMESPACES)
        self._subscriptions: dict[str, dict[str, str]] = {}  # namespace -> {package: approval}
        self._names: dict[str, set[str]] = {}  # namespace -> Subscription names
        self._warned: set[str] = set()

    def claim(self, placement: Placement, package: str) -> bool:
        """True when this is the first use (the caller writes Namespace and OperatorGroup)."""
        known = self._targets.get(placement.namespace)
        if known is None:
            self._targets[placement.namespace] = (placement.target_namespaces, package)
            return True
        if known[0] != placement.target_namespaces:
            raise InvalidManifest(f"{package} and {known[1]} share namespace {placement.namespace} but need different "
                                  f"OperatorGroups (targetNamespaces {placement.target_namespaces} vs {known[0]}); "
                                  "OLM allows one OperatorGroup per namespace",
                                  "give one of them another namespace in --subscription-config")
        return False

    def to_create(self, namespaces: list[str]) -> list[str]:
        """The namespaces among these that nothing creates yet; from now on they are created."""
        new = [ns for ns in dict.fromkeys(namespaces) if ns not in self._created]
        self._created.update(new)
        return new

    def subscription_name(self, namespace: str, package: str) -> str:
        """A Subscription name the API server accepts (`Foo_Operator` -> `foo-operator`), unique in
        its namespace: a sanitised name that collides gets a hash of the package name."""
        names = self._names.setdefault(namespace, set())
        name = sanitized_subdomain(package)
        if name in names:
            name = fit_name(f"{name}-{hashlib.sha256(package.encode()).hexdigest()[:8]}", DNS1123_SUBDOMAIN_MAX)
        names.add(name)
        return name

    def subscribe(self, namespace: str, package: str, approval: str) -> list[str]:
        """Record a Subscription; warn when a Manual one holds up others (OLM makes one InstallPlan per
        namespace for all its Subscriptions, so one that needs approval makes all of them wait)."""
        subs = self._subscriptions.setdefault(namespace, {})
        subs[package] = approval
        manual = sorted(p for p, a in subs.items() if a == "Manual")
        shared = namespace == GLOBAL_NAMESPACE or len(subs) > 1
        if not manual or not shared or namespace in self._warned:
            return []
        self._warned.add(namespace)
        others = sorted(set(subs) - set(manual))
        waiting = (", ".join(others) + " and any operator subscribed there later") if others else \
            "any operator subscribed there later, including every AllNamespaces operator"
        return [f"{', '.join(manual)}: installPlanApproval Manual in {namespace}: OLM resolves one InstallPlan "
                f"for all the Subscriptions of a namespace, so {waiting} waits until that InstallPlan is approved "
                f"by hand; give {manual[0]} a namespace of its own in --subscription-config "
                f"(packages.{manual[0]}.namespace)"]


def render_catalog_dir(source: CatalogSourceSpec, device_image: str, config: SubscriptionConfig,
                       ledger: NamespaceLedger, poll_interval: str | None,
                       subscribed: set[tuple[str, str]]) -> tuple[ManifestDir, list[str]]:
    """The manifests directory of one catalog; every object checked before it is written."""
    selection = source.catalog.selection
    assert selection is not None
    warnings: list[str] = []
    directory = ManifestDir(f"{MANIFEST_PREFIX}-{source.name}")
    namespaces: list[str] = []
    subscriptions: list[str] = []
    origin = f"--subscription-config {config.path}" if config.path else "--subscription-config"
    for package in sorted(selection.packages):
        choice, w = choose_subscription(selection, package, config.packages.get(package, PackageOverride()))
        warnings.extend(w)
        key = (choice.placement.namespace, package)
        if key in subscribed:
            raise RenderError(f"{package} is selected from two catalogs into namespace {key[0]}; "
                              "OLM allows one Subscription per package and namespace",
                              "remove it from one catalog or give it another namespace in --subscription-config")
        subscribed.add(key)
        placement = choice.placement
        if placement.operator_group and ledger.claim(placement, package):
            ns = placement.namespace
            for created in ledger.to_create([ns, *(placement.target_namespaces or [])]):
                directory.files[f"namespace-{created}.yaml"] = dump(checked(_namespace(created), origin))
                namespaces.append(f"namespace-{created}.yaml")
            directory.files[f"operatorgroup-{ns}.yaml"] = dump(checked(_operator_group(placement), origin))
            namespaces.append(f"operatorgroup-{ns}.yaml")
        elif not placement.operator_group:
            ledger.to_create([placement.namespace])
        name = ledger.subscription_name(placement.namespace, package)
        warnings += ledger.subscribe(placement.namespace, package, choice.approval)
        file_name = f"subscription-{name}.yaml"
        directory.files[file_name] = dump(checked(_subscription(choice, source.name, name), origin))
        subscriptions.append(file_name)
    catalog_source = _device_catalog_source(source, device_image, poll_interval, warnings)
    directory.files["catalogsource.yaml"] = dump(checked(catalog_source, "the catalog's targetCatalogSourceTemplate"))
    resources = namespaces + ["catalogsource.yaml"] + subscriptions
    directory.files["kustomization.yaml"] = dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    })
    return directory, warnings


def check_poll_interval_option(poll_interval: str | None) -> None:
    """--catalog-poll-interval is written as `registryPoll.interval`, which OLM decodes as a Go duration."""
    if poll_interval is not None and (problem := check_poll_interval(poll_interval)):
        raise InvalidManifest(f"--catalog-poll-interval: {problem}: OLM decodes "
                              "spec.updateStrategy.registryPoll.interval as a Go duration and cannot read the "
                              "CatalogSource otherwise", "write a Go duration such as 30m, 12h or 24h")


def _device_catalog_source(source: CatalogSourceSpec, image: str, poll_interval: str | None,
                           warnings: list[str]) -> dict[str, Any]:
    """The device's CatalogSource: the embedded image by digest, so it never polls; a template's pull
    secrets are not carried (nothing is pulled)."""
    check_poll_interval_option(poll_interval)
    obj = catalog_source_object(source, image)
    spec = obj["spec"]
    spec.setdefault("displayName", f"{source.catalog.catalog} (mirrored by edgebuild)")
    spec.setdefault("publisher", "edgebuild")
    spec.setdefault("grpcPodConfig", {}).setdefault("securityContextConfig", "restricted")
    template_poll = spec.pop("updateStrategy", None)
    if poll_interval or template_poll:
        asked = f"--catalog-poll-interval {poll_interval}" if poll_interval else \
            "the targetCatalogSourceTemplate's updateStrategy"
        warnings.append(f"{asked}: not written to the device CatalogSource {source.name}: its image is embedded "
                        f"and pinned by digest ({image}), so polling could never find a newer catalog; the "
                        "cluster CatalogSource in cluster-resources/ gets it when its image is a tag")
    if spec.pop("secrets", None):
        warnings.append(f"targetCatalogSourceTemplate of {source.catalog.catalog}: spec.secrets not written to the "
                        f"device CatalogSource {source.name}: its image is embedded, nothing is pulled, and those "
                        "secrets do not exist on the device (the cluster CatalogSource keeps them)")
    priority_class = spec["grpcPodConfig"].get("priorityClassName")
    if priority_class and priority_class not in ("system-cluster-critical", "system-node-critical"):
        warnings.append(f"targetCatalogSourceTemplate of {source.catalog.catalog}: grpcPodConfig.priorityClassName "
                        f"{priority_class!r} must exist on the device or the catalog pod is never created; "
                        "MicroShift has only system-cluster-critical and system-node-critical")
    return obj


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _operator_group(placement: Placement) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if placement.target_namespaces is not None:
        spec["targetNamespaces"] = list(placement.target_namespaces)
    return {"apiVersion": "operators.coreos.com/v1", "kind": "OperatorGroup",
            "metadata": {"name": placement.namespace, "namespace": placement.namespace}, "spec": spec}


def _subscription(choice: SubscriptionChoice, source_name: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": choice.package,
        "channel": choice.channel,
        "source": source_name,
        "sourceNamespace": "openshift-marketplace",
        "installPlanApproval": choice.approval,
        "startingCSV": choice.starting_csv,
    }
    if choice.config:
        spec["config"] = choice.config
    return {"apiVersion": "operators.coreos.com/v1alpha1", "kind": "Subscription",
            "metadata": {"name": name, "namespace": choice.placement.namespace}, "spec": spec}
