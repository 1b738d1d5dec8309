#!/usr/bin/env python3
"""A/B of `edgebuild mirror` with nothing to copy (warm) between two installed edgebuilds, interleaved.

A warm run is a fraction of a second, so two builds are told apart only by many runs against one
destination that already holds everything: the operators profile of bench/mirror.py (generated and
cached under --workdir) is pushed to a source registry, copied once, then each python runs
`edgebuild mirror` --runs times, alternating. Prints the median and every run of each.

    python3 bench/warm_ab.py --python-a OLD/venv/bin/python --python-b NEW/venv/bin/python \\
        [--workdir /var/tmp/edgebuild-bench] [--runs 10]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import mirror as bench  # noqa: E402

from tests.registry_fixtures import RegistryServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python-a", required=True, help="python of the first edgebuild (e.g. a venv's)")
    parser.add_argument("--python-b", required=True, help="python of the second edgebuild")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/edgebuild-bench"))
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    root = bench.generate(args.workdir, "operators")
    refs = bench.layout_refs(root)
    src = RegistryServer(args.workdir / "reg-src")
    dst = RegistryServer(args.workdir / "reg-warm-ab")
    shutil.rmtree(dst.storage, ignore_errors=True)
    src.start()
    dst.start()
    try:
        if not (src.storage / "pushed-operators").exists():
            bench.push_layout(root, src)
            (src.storage / "pushed-operators").write_text("ok")
        target = f"docker://{dst.host}/mirror"
        bench.EDGEBUILD_PYTHON[0] = args.python_b
        print("filled:", bench.edgebuild_run(refs, src, target, args.workdir)[1]["summary"])
        times: dict[str, list[float]] = {"a": [], "b": []}
        for _ in range(args.runs):
            for key, python in (("a", args.python_a), ("b", args.python_b)):
                bench.EDGEBUILD_PYTHON[0] = python
                times[key].append(bench.edgebuild_run(refs, src, target, args.workdir)[0])
        for key, python in (("a", args.python_a), ("b", args.python_b)):
            runs = " ".join(f"{t:.2f}" for t in times[key])
            print(f"{key} ({python}): median {statistics.median(times[key]):.3f} s; runs {runs}")
    finally:
        src.stop()
        dst.stop()
        shutil.rmtree(dst.storage, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
