"""`edgebuild init`: a commented starting ImageSetConfiguration, like `oc mirror init`."""

from __future__ import annotations

import json

DEFAULT_CATALOG = "registry.redhat.io/redhat/redhat-operator-index:v4.17"


def _q(value: str) -> str:
    """A YAML-safe scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def initial_config(api_version: str = "v1alpha2", catalog: str | None = None, package: str | None = None,
                   channel: str | None = None) -> str:
    catalog = catalog or DEFAULT_CATALOG
    lines = [
        "# ImageSetConfiguration for edgebuild (the oc-mirror format).",
        "# apiVersion picks the selection rules:",
        "#   mirror.openshift.io/v1alpha2  oc-mirror v1: heads of channels plus dependencies (olm.package.required,",
        "#                                 olm.gvk.required); a package minVersion means that exact version plus",
        "#                                 the upgrade path to the channel head",
        "#   mirror.openshift.io/v2alpha1  oc-mirror v2: heads or ranges, no dependencies (list them yourself)",
        f"apiVersion: mirror.openshift.io/{api_version}",
        "kind: ImageSetConfiguration",
    ]
    if api_version == "v1alpha2":
        lines += [
            "# Where earlier runs are remembered, so a run mirrors only what is new (optional).",
            "# storageConfig:",
            "#   local:",
            "#     path: ./edgebuild-metadata",
        ]
    lines += [
        "mirror:",
        "  operators:",
        f"  - catalog: {_q(catalog)}",
        "    # full: false              # true: every bundle of every channel (or of the listed packages)",
        "    # targetCatalog: my-ns/my-catalog   # path of the catalog image in the mirror",
    ]
    if package:
        lines += [
            "    packages:",
            f"    - name: {_q(package)}",
        ]
        if channel:
            lines += [
                "      channels:",
                f"      - name: {_q(channel)}",
                "        # minVersion: 1.2.3   # keep from this version to the channel head",
                "        # maxVersion: 1.4.0",
            ]
        else:
            lines += [
                "      # channels:             # omit to take the head of every channel",
                "      # - name: stable",
                "      # defaultChannel: stable",
            ]
    else:
        lines += [
            "    packages:                  # omit 'packages' to take the heads of the whole catalog",
            "    - name: \"my-operator\"      # 'edgebuild list operators --catalog REF' lists them",
            "      # channels:",
            "      # - name: stable",
        ]
    lines += [
        "  # Images the device needs besides operators (referenced by digest where you can).",
        "  additionalImages: []",
        "  # - name: registry.example.com/team/app@sha256:<digest>",
        "  # Regular expressions: matching images are left out.",
        "  blockedImages: []",
        "  # - name: \".*-ppc64le\"",
        "",
    ]
    return "\n".join(lines)
