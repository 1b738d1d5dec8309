"""Render what the device and the cluster need: the CRI-O mirror drop-in, MicroShift OLM manifests,
cluster resources (ICSP/IDMS/ITMS, CatalogSource) and the osbuild blueprints.

The names below are loaded on first use, so `mirror` (which only reads release-info files from
here) does not pay for Jinja2 and the blueprint templates at start-up."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"BlueprintError": ".errors", "RenderError": ".errors", "RenderOptions": ".options",
          "RenderResult": ".options", "convert_file": ".convert", "render_outputs": ".output"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
