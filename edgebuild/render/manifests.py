"""MicroShift manifests: one kustomize directory per catalog under /etc/microshift/manifests.d.

MicroShift applies `/etc/microshift/manifests.d/*` in lexical order at start-up, after its own
OLM manifests. Each directory holds the catalog's CatalogSource (grpc, `spec.image` exactly the
reference the catalog image is embedded under, so no pull happens) and one Subscription per
package on the package's default channel, pinned with `startingCSV` to that channel's head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..catalog.model import ChannelEntry
from ..catalog.selection import Selection
from ..semver import Version
from .cluster import CatalogSourceSpec, catalog_source_object
from .errors import RenderError
from .subscriptions import Placement, SubscriptionConfig, PackageOverride, place
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


def choose_subscription(selection: Selection, package: str, override: PackageOverride) -> tuple[SubscriptionChoice, list[str]]:
    """Channel = the selection's default channel; startingCSV = its head among the kept entries."""
    selected = selection.packages[package]
    channel = selected.default_channel
    entries = selected.channels.get(channel)
    if not entries:
        raise RenderError(f"{package}: default channel {channel!r} has no selected bundles "
                          f"(kept channels: {', '.join(sorted(selected.channels)) or 'none'})",
                          "select the default channel or set defaultChannel for the package in the ImageSetConfiguration")
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
    """Namespaces created so far across catalogs: one Namespace and one OperatorGroup each."""

    def __init__(self) -> None:
        self._targets: dict[str, tuple[list[str] | None, str]] = {}

    def claim(self, placement: Placement, package: str) -> bool:
        """True when this is the first use (the caller writes Namespace and OperatorGroup)."""
        known = self._targets.get(placement.namespace)
        if known is None:
            self._targets[placement.namespace] = (placement.target_namespaces, package)
            return True
        if known[0] != placement.target_namespaces:
            raise RenderError(f"{package} and {known[1]} share namespace {placement.namespace} but need different "
                              f"OperatorGroups (targetNamespaces {placement.target_namespaces} vs {known[0]})",
                              "give one of them another namespace in --subscription-config")
        return False


def render_catalog_dir(source: CatalogSourceSpec, device_image: str, config: SubscriptionConfig,
                       ledger: NamespaceLedger, poll_interval: str | None,
                       subscribed: set[tuple[str, str]]) -> tuple[ManifestDir, list[str]]:
    """The manifests directory of one catalog."""
    selection = source.catalog.selection
    assert selection is not None
    warnings: list[str] = []
    directory = ManifestDir(f"{MANIFEST_PREFIX}-{source.name}")
    namespaces: list[str] = []
    subscriptions: list[str] = []
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
            directory.files[f"namespace-{ns}.yaml"] = dump(_namespace(ns))
            directory.files[f"operatorgroup-{ns}.yaml"] = dump(_operator_group(placement))
            namespaces += [f"namespace-{ns}.yaml", f"operatorgroup-{ns}.yaml"]
        name = f"subscription-{package}.yaml"
        directory.files[name] = dump(_subscription(choice, source.name))
        subscriptions.append(name)
    directory.files["catalogsource.yaml"] = dump(_device_catalog_source(source, device_image, poll_interval))
    resources = namespaces + ["catalogsource.yaml"] + subscriptions
    directory.files["kustomization.yaml"] = dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    })
    return directory, warnings


def _device_catalog_source(source: CatalogSourceSpec, image: str, poll_interval: str | None) -> dict[str, Any]:
    obj = catalog_source_object(source, image)
    spec = obj["spec"]
    spec.setdefault("displayName", f"{source.catalog.catalog} (mirrored by edgebuild)")
    spec.setdefault("publisher", "edgebuild")
    spec.setdefault("grpcPodConfig", {"securityContextConfig": "restricted"})
    if poll_interval:
        spec["updateStrategy"] = {"registryPoll": {"interval": poll_interval}}
    else:
        spec.pop("updateStrategy", None)
    return obj


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _operator_group(placement: Placement) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if placement.target_namespaces is not None:
        spec["targetNamespaces"] = list(placement.target_namespaces)
    return {"apiVersion": "operators.coreos.com/v1", "kind": "OperatorGroup",
            "metadata": {"name": placement.namespace, "namespace": placement.namespace}, "spec": spec}


def _subscription(choice: SubscriptionChoice, source_name: str) -> dict[str, Any]:
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
            "metadata": {"name": choice.package, "namespace": choice.placement.namespace}, "spec": spec}
