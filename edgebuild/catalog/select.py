"""Bundle selection entry point: dispatches to oc-mirror v1 or v2 rules by the config's apiVersion."""

from __future__ import annotations

from typing import Any

from ..config import OperatorSpec, Semantics
from .model import Catalog
from .selection import Selection


def select(catalog: Catalog, spec: OperatorSpec, semantics: Semantics, previous: Any = None) -> Selection:
    """Select bundles of `catalog` for one `mirror.operators[]` entry.

    `previous` is the state of an earlier run (oc-mirror v1 incremental mirroring with a
    storageConfig); v2 semantics ignore it, as oc-mirror v2 re-filters from scratch every run.
    Raises SelectionError when oc-mirror would fail.
    """
    if semantics == "v1":
        from .select_v1 import select_v1
        return select_v1(catalog, spec, previous=previous)
    from .select_v2 import select_v2
    return select_v2(catalog, spec)
