#!/usr/bin/env python3
"""Cost of composing catalog YAML with an explicit stack (edgebuild/yamlnodes.py) against libyaml's
recursive composer, loading the real community-operators v4.17 catalog with each, alternately.

    python3 bench/compose_cost.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REAL = REPO.parent / "shared" / "catalogs" / "community-operators-v4.17"

import edgebuild.catalog.loader as loader_module  # noqa: E402


def recursive_compose(loader: Any) -> Iterator[Any]:
    """What the loader did before: libyaml's composer (recursive in C)."""
    while loader.check_node():
        yield loader.get_node()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    stack_compose = loader_module.compose_documents
    times: dict[str, list[float]] = {}
    for _ in range(args.runs):
        variants = (("libyaml composer (before)", recursive_compose), ("stack composer (now)", stack_compose))
        for name, compose in variants:
            loader_module.compose_documents = compose
            start = time.perf_counter()
            loader_module.load_catalog_dir(REAL)
            times.setdefault(name, []).append(time.perf_counter() - start)
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.2f} s of {len(values)} runs "
              f"({', '.join(f'{v:.2f}' for v in values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
