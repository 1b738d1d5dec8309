"""Where each operator is subscribed, and the `--subscription-config` file that overrides it.

microshift-olm ships two OperatorGroups (openshift/microshift
`assets/optional/operator-lifecycle-manager/0000_50_olm_13-operatorgroup-default.yaml`):
`global-operators` (AllNamespaces) in `openshift-operators` and `olm-operators` (targeting its own
namespace) in `openshift-operator-lifecycle-manager`. An operator whose CSV supports AllNamespaces is
subscribed in openshift-operators with nothing else. Any other operator gets its own Namespace and an
OperatorGroup targeting what its `installModes` allow; a second OperatorGroup is never added to a
namespace that has one (OLM then installs nothing there: "TooManyOperatorGroups").

The file format (YAML):

    packages:
      <package>:
        namespace: <name>                 # default: openshift-operators, or the package name
        installPlanApproval: Automatic|Manual
        targetNamespaces: [<ns>, ...]     # for Single/MultiNamespace operators
        config: {...}                     # Subscription spec.config (env, resources, nodeSelector, ...)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .names import is_dns_label, namespace_for_package
from .validate import InvalidManifest, check_subscription_config

GLOBAL_NAMESPACE = "openshift-operators"
OLM_NAMESPACE = "openshift-operator-lifecycle-manager"
# Namespaces a MicroShift with microshift-olm has before any manifests.d directory is applied: Kubernetes'
# own and those of 0000_50_olm_00-namespace.yaml (assets/optional/operator-lifecycle-manager).
MICROSHIFT_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease", GLOBAL_NAMESPACE,
                                   OLM_NAMESPACE, "openshift-marketplace"})
# namespace -> (OperatorGroup name, targetNamespaces; None = AllNamespaces), as microshift-olm ships them
BUILTIN_OPERATOR_GROUPS: dict[str, tuple[str, list[str] | None]] = {
    GLOBAL_NAMESPACE: ("global-operators", None),
    OLM_NAMESPACE: ("olm-operators", [OLM_NAMESPACE]),
}
_PACKAGE_KEYS = ("namespace", "installPlanApproval", "targetNamespaces", "config")
_APPROVALS = ("Automatic", "Manual")


@dataclass(slots=True)
class PackageOverride:
    namespace: str | None = None
    approval: str | None = None
    target_namespaces: list[str] | None = None
    config: dict[str, Any] | None = None


@dataclass(slots=True)
class SubscriptionConfig:
    packages: dict[str, PackageOverride] = field(default_factory=dict)
    path: str | None = None


def load_subscription_config(path: Path | None) -> SubscriptionConfig:
    """Read and check the file; every error names the file and the field."""
    if path is None:
        return SubscriptionConfig()
    where = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read subscription config: {exc.strerror}", file=where) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=where) from None
    if data is None:
        return SubscriptionConfig(path=where)
    if not isinstance(data, dict) or set(data) - {"packages"}:
        extra = sorted(set(data) - {"packages"}) if isinstance(data, dict) else []
        unknown_note = "; unknown " + ", ".join(extra) if extra else ""
        raise ConfigError(f"expected a mapping with only the key 'packages'{unknown_note}",
                          file=where, hint="write packages: {<package>: {namespace: ..., installPlanApproval: ...}}")
    packages = data.get("packages") or {}
    if not isinstance(packages, dict):
        raise ConfigError("must map package names to settings", file=where, field="packages")
    out = SubscriptionConfig(path=where)
    for name, raw in packages.items():
        fld = f"packages.{name}"
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError("must be a mapping", file=where, field=fld)
        unknown = sorted(set(raw) - set(_PACKAGE_KEYS))
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(unknown)}", file=where, field=fld,
                              hint=f"allowed keys: {', '.join(_PACKAGE_KEYS)}")
        override = PackageOverride()
        ns = raw.get("namespace")
        if ns is not None:
            if not isinstance(ns, str) or not is_dns_label(ns):
                raise ConfigError(f"{ns!r} is not a namespace name (DNS-1123 label)", file=where,
                                  field=f"{fld}.namespace")
            override.namespace = ns
        approval = raw.get("installPlanApproval")
        if approval is not None:
            if approval not in _APPROVALS:
                raise ConfigError(f"{approval!r} is not one of {', '.join(_APPROVALS)}", file=where,
                                  field=f"{fld}.installPlanApproval")
            override.approval = approval
        targets = raw.get("targetNamespaces")
        if targets is not None:
            names_ok = isinstance(targets, list) and all(isinstance(t, str) and is_dns_label(t) for t in targets)
            if not targets or not names_ok:
                raise ConfigError("must be a non-empty list of namespace names", file=where,
                                  field=f"{fld}.targetNamespaces")
            override.target_namespaces = list(targets)
        config = raw.get("config")
        if config is not None:
            if not isinstance(config, dict):
                raise ConfigError("must be a mapping (Subscription spec.config)", file=where, field=f"{fld}.config")
            problems = check_subscription_config(config)
            if problems:
                raise ConfigError("not a valid Subscription spec.config (the Subscription CRD's schema): "
                                  + "; ".join(p.removeprefix("config") for p in problems), file=where,
                                  field=f"{fld}.config", hint="the API server would reject the Subscription or "
                                  "drop the field; fields: affinity, annotations, env, envFrom, nodeSelector, "
                                  "resources, selector, tolerations, volumeMounts, volumes")
            override.config = config
        out.packages[str(name)] = override
    return out


@dataclass(slots=True)
class Placement:
    """Namespace of a Subscription; `target_namespaces` is None for an AllNamespaces OperatorGroup.
    `operator_group` is False in openshift-operators, which has one already."""

    namespace: str
    operator_group: bool
    target_namespaces: list[str] | None


def _supported(modes: dict[str, bool] | None, mode: str) -> bool:
    return modes is None or bool(modes.get(mode))


def place(package: str, modes: dict[str, bool] | None, override: PackageOverride) -> tuple[Placement, list[str]]:
    """Decide the namespace and OperatorGroup of one operator from its CSV installModes."""
    warnings: list[str] = []
    if modes is None:
        warnings.append(f"{package}: the catalog gives no installModes for the selected bundle; assuming "
                        "AllNamespaces (set namespace/targetNamespaces in --subscription-config if that is wrong)")
    supported = sorted(m for m, ok in (modes or {}).items() if ok)
    all_ok = _supported(modes, "AllNamespaces")
    namespace = override.namespace or (GLOBAL_NAMESPACE if all_ok else namespace_for_package(package))
    if namespace in BUILTIN_OPERATOR_GROUPS:
        return _builtin_placement(package, namespace, modes, supported, override), warnings
    targets = override.target_namespaces
    if targets is not None:
        if len(targets) == 1 and targets[0] == namespace:
            needed = "OwnNamespace"
        elif len(targets) == 1:
            needed = "SingleNamespace"
        else:
            needed = "MultiNamespace"
        if not _supported(modes, needed):
            raise InvalidManifest(f"{package}: targetNamespaces {targets} need install mode {needed}, which its CSV "
                              f"does not support (installModes: {', '.join(supported) or 'none'})",
                              "change targetNamespaces in --subscription-config")
        return Placement(namespace, True, targets), warnings
    if _supported(modes, "OwnNamespace"):
        return Placement(namespace, True, [namespace]), warnings
    if all_ok:
        return Placement(namespace, True, None), warnings
    raise InvalidManifest(f"{package}: its CSV supports only {', '.join(supported) or 'no install mode'}, so edgebuild "
                      "cannot choose the namespaces it watches",
                      f"set packages.{package}.targetNamespaces (and namespace) in --subscription-config")


def _builtin_placement(package: str, namespace: str, modes: dict[str, bool] | None, supported: list[str],
                       override: PackageOverride) -> Placement:
    """A namespace that has MicroShift's own OperatorGroup: the operator must fit that group, and none is added."""
    group, targets = BUILTIN_OPERATOR_GROUPS[namespace]
    needed = "AllNamespaces" if targets is None else "OwnNamespace"
    if not _supported(modes, needed):
        raise InvalidManifest(
            f"{package}: cannot subscribe in {namespace}: its CSV does not support {needed} "
            f"(installModes: {', '.join(supported) or 'none'}) and {namespace} already has MicroShift's "
            f"OperatorGroup {group} ({needed}); a second OperatorGroup there would stop OLM installing anything",
            "set another namespace for this package in --subscription-config")
    if override.target_namespaces is not None and override.target_namespaces != (targets or []):
        raise InvalidManifest(f"{package}: targetNamespaces cannot be set in {namespace}: MicroShift's OperatorGroup "
                          f"{group} decides them ({'all namespaces' if targets is None else targets})",
                          "choose another namespace for this package in --subscription-config")
    return Placement(namespace, False, targets)
