"""The rules the API server and OLM apply to the objects edgebuild writes, checked before writing.

A CRD's schema says little about names and nothing about how OLM uses a field, so the constraints
that break a device silently are stated here, each with its source:

- object names are DNS-1123 subdomains (at most 253 characters), namespaces DNS-1123 labels (at
  most 63): k8s.io/apimachinery `pkg/util/validation` (IsDNS1123Subdomain, IsDNS1123Label);
- a CatalogSource's name is also the name of its Service and the value of the `olm.catalogSource`
  pod label, so it must be a DNS-1123 label: operator-framework/operator-lifecycle-manager
  `pkg/controller/registry/reconciler` (Service and pod of a grpc catalog);
- `spec.updateStrategy.registryPoll.interval` is decoded as a Go `time.Duration`
  (operator-framework/api `CatalogSourceSpec.UpdateStrategy.RegistryPoll.Interval *metav1.Duration`,
  whose JSON form is `time.ParseDuration`'s syntax): `parse_go_duration` below;
- a CatalogSource with `spec.address` is reached at that address even when `spec.image` is set
  (operator-framework/api `pkg/operators/v1alpha1/catalogsource_types.go`, `(*CatalogSource).Address`
  returns `spec.address` first): never on an embedded catalog;
- `spec.config` of a Subscription follows the Subscription CRD's `config` schema, carried in
  `schemas/subscription-config.json` (operator-framework/api `crds/operators.coreos.com_subscriptions.yaml`
  at 3048ccd, descriptions dropped); the API server prunes or, with strict field validation, rejects
  unknown fields, and rejects wrong types.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from .errors import RenderError

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HASH_LEN = 8


def is_dns1123_label(name: str) -> bool:
    return len(name) <= DNS1123_LABEL_MAX and bool(_LABEL.match(name))


def is_dns1123_subdomain(name: str) -> bool:
    return len(name) <= DNS1123_SUBDOMAIN_MAX and bool(_SUBDOMAIN.match(name))


def fit_name(name: str, limit: int = DNS1123_LABEL_MAX) -> str:
    """`name` if it fits in `limit`; else its start and `-` and 8 hex of its SHA-256, `limit` long at most.
    The suffix is a hash of the whole name, so two long names that share a start stay distinct and a
    re-render gives the same name."""
    if len(name) <= limit:
        return name
    suffix = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LEN]
    return f"{name[:limit - _HASH_LEN - 1].rstrip('-.')}-{suffix}"


def sanitized_subdomain(text: str) -> str:
    """A DNS-1123 subdomain for `text` (`Foo_Operator` -> `foo-operator`): lowercase, other characters
    become '-', runs of separators collapse, ends trimmed, fitted to 253. Unchanged when already valid."""
    if is_dns1123_subdomain(text):
        return text
    mapped = "".join(c if ("a" <= c <= "z" or "0" <= c <= "9" or c == ".") else "-" for c in text.lower())
    mapped = re.sub(r"-*\.[-.]*", ".", re.sub(r"-+", "-", mapped)).strip("-.")
    return fit_name(mapped or "x", DNS1123_SUBDOMAIN_MAX)


# ---------------------------------------------------------------------------------------------------
# Go durations (time.ParseDuration)

_UNITS_NS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
             "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_MAX_NS = (1 << 63) - 1
_COMPONENT = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


def parse_go_duration(text: str) -> int:
    """Nanoseconds of a Go duration string, by Go's `time.ParseDuration` rules: an optional sign, then
    one or more `<decimal><unit>` (units ns, us, µs, ms, s, m, h); "0" alone needs no unit. Days (`1d`)
    and spaces are not Go durations. Raises ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a string")
    s = text
    negative = s[:1] == "-"
    if s[:1] in "+-" and s:
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {text!r}: empty")
    total = 0
    pos = 0
    while pos < len(s):
        m = _COMPONENT.match(s, pos)
        assert m is not None
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise ValueError(f"invalid duration {text!r}: a number is expected at {s[pos:]!r}")
        if not unit:
            raise ValueError(f"invalid duration {text!r}: missing unit (ns, us, ms, s, m or h)")
        if unit not in _UNITS_NS:
            raise ValueError(f"invalid duration {text!r}: unknown unit {unit!r} (Go knows ns, us, ms, s, m, h; "
                             "write 24h for a day)")
        scale = _UNITS_NS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // 10 ** len(frac)
        total += value
        if total > _MAX_NS:
            raise ValueError(f"invalid duration {text!r}: overflows Go's time.Duration")
        pos = m.end()
    return -total if negative else total


def check_poll_interval(text: str) -> str | None:
    """None when `text` is a Go duration OLM can poll with, else the problem."""
    try:
        ns = parse_go_duration(text)
    except ValueError as exc:
        return str(exc)
    if ns <= 0:
        return f"interval {text!r} must be positive"
    return None


# ---------------------------------------------------------------------------------------------------
# Subscription spec.config against the CRD's schema

_SCHEMA_DIR = Path(__file__).with_name("schemas")


@cache
def subscription_config_schema() -> dict[str, Any]:
    return json.loads((_SCHEMA_DIR / "subscription-config.json").read_text(encoding="utf-8"))["schema"]


def check_subscription_config(config: Any) -> list[str]:
    """Problems of a Subscription `spec.config`, each `path: message`, as the API server would see them."""
    problems: list[str] = []
    _check(config, subscription_config_schema(), "config", problems)
    return problems


_TYPES: dict[str, tuple[type, ...]] = {"object": (dict,), "array": (list,), "string": (str,),
                                       "boolean": (bool,), "integer": (int,), "number": (int, float)}


def _type_ok(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES.get(kind, (object,)))


def _check(value: Any, schema: dict[str, Any], path: str, problems: list[str]) -> None:
    """The subset of OpenAPI v3 a structural CRD schema uses: type, properties (unknown fields are
    errors, with the nearest known name), required, items, additionalProperties, anyOf, enum, pattern."""
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok(value, "integer")):
            problems.append(f"{path}: must be an integer or a string, not {value!r}")
        return
    if "anyOf" in schema and not any(_type_ok(value, s.get("type", "")) for s in schema["anyOf"]):
        problems.append(f"{path}: must be one of {', '.join(s.get('type', '?') for s in schema['anyOf'])}")
        return
    kind = schema.get("type")
    if kind and not _type_ok(value, kind):
        hint = " (quote it in YAML)" if kind == "string" and isinstance(value, (int, float, bool)) else ""
        problems.append(f"{path}: must be a {kind}, not {type(value).__name__} {value!r}{hint}")
        return
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} is not one of {', '.join(map(str, schema['enum']))}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        problems.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        props = schema.get("properties")
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{path}: required field {name!r} is missing")
        for key, item in value.items():
            if props is not None and key in props:
                _check(item, props[key], f"{path}.{key}", problems)
            elif "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
                _check(item, schema["additionalProperties"], f"{path}.{key}", problems)
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                near = difflib.get_close_matches(str(key), list(props), n=1)
                problems.append(f"{path}: unknown field {key!r}" + (f", did you mean {near[0]!r}?" if near else
                                                                    f" (known: {', '.join(props)})"))
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], f"{path}[{i}]", problems)


# ---------------------------------------------------------------------------------------------------
# Objects

def object_problems(obj: dict[str, Any]) -> list[str]:
    """What the API server or OLM would refuse, or mishandle, in one object edgebuild is about to write."""
    kind = obj.get("kind", "?")
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    where = f"{kind} {name or '<unnamed>'}"
    problems: list[str] = []
    if kind in ("Namespace", "CatalogSource"):
        if not is_dns1123_label(name):
            why = "its Service and pod label carry the name" if kind == "CatalogSource" else "namespace names"
            problems.append(f"{where}: name must be a DNS-1123 label of at most {DNS1123_LABEL_MAX} "
                            f"characters ({why}); it has {len(name)}")
    elif not is_dns1123_subdomain(name):
        problems.append(f"{where}: name must be a DNS-1123 subdomain (lowercase, digits, '-', '.')")
    namespace = meta.get("namespace")
    if namespace is not None and not is_dns1123_label(str(namespace)):
        problems.append(f"{where}: namespace {namespace!r} is not a DNS-1123 label")
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > DNS1123_LABEL_MAX:
            problems.append(f"{where}: label {key} must be a string of at most {DNS1123_LABEL_MAX} characters")
    spec = obj.get("spec") or {}
    if kind == "CatalogSource":
        interval = ((spec.get("updateStrategy") or {}).get("registryPoll") or {}).get("interval")
        if interval is not None and (problem := check_poll_interval(interval)):
            problems.append(f"{where}: spec.updateStrategy.registryPoll.interval: {problem}")
        if spec.get("address") and spec.get("image"):
            problems.append(f"{where}: spec.address and spec.image are both set; OLM would connect to the address")
    if kind == "OperatorGroup":
        for target in spec.get("targetNamespaces") or []:
            if not is_dns1123_label(str(target)):
                problems.append(f"{where}: targetNamespaces: {target!r} is not a namespace name")
    if kind == "Subscription" and "config" in spec:
        problems += [f"{where}: spec.{p}" for p in check_subscription_config(spec["config"])]
    return problems


class InvalidManifest(RenderError):
    """An object edgebuild would write breaks a rule above and cannot be fixed without the user
    (exit code 2: the inputs are invalid). The message names the option the value came from."""

    exit_code = 2


def checked(obj: dict[str, Any], origin: str) -> dict[str, Any]:
    """`obj`, or InvalidManifest listing its problems; `origin` names where its values came from."""
    problems = object_problems(obj)
    if problems:
        raise InvalidManifest("refusing to write an object the API server or OLM would not accept:\n  "
                              + "\n  ".join(problems), f"fix {origin}")
    return obj
