#!/usr/bin/env python3
"""10,000 generated configurations through `edgebuild plan` (the generator of tests/config_fuzz.py).

The suite runs 300 of them per CI run (tests/test_fuzz_config.py); this runs many more and prints
the counts: exit codes, contract violations (traceback, other exit code, exit 2 without
FILE:LINE) with the first few cases that broke it, and the slowest case.

    python3 bench/fuzz_config.py [--cases 10000] [--seed 0] [--progress 500]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.config_fuzz import NO_NETWORK, generate, run_case  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", type=int, default=500, help="print the counts so far every N cases (0: never)")
    args = parser.parse_args()
    os.environ.update(NO_NETWORK)
    codes: collections.Counter[object] = collections.Counter()
    problems: list[str] = []
    slowest = (0.0, -1)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edgebuild-fuzz-") as tmp:
        os.environ["EDGEBUILD_CACHE_DIR"] = str(Path(tmp) / "cache")
        for case in range(args.seed, args.seed + args.cases):
            t0 = time.monotonic()
            outcome = run_case(generate(case), Path(tmp))
            slowest = max(slowest, (time.monotonic() - t0, case))
            codes[outcome.code] += 1
            if outcome.problem:
                problems.append(f"case {case}: {outcome.problem.splitlines()[-1][:300]}")
            done = case - args.seed + 1
            if args.progress and done % args.progress == 0:  # partial counts survive an interrupted run
                print(f"after {done} cases: " + ", ".join(f"exit {c}: {n}" for c, n in sorted(codes.items(), key=str))
                      + f"; violations {len(problems)}", flush=True)
    elapsed = time.monotonic() - start
    print(f"cases: {args.cases} (seeds {args.seed}..{args.seed + args.cases - 1}) in {elapsed:.0f} s")
    print("exit codes: " + ", ".join(f"{code}: {n}" for code, n in sorted(codes.items(), key=str)))
    print(f"contract violations: {len(problems)}")
    for line in problems[:10]:
        print("  " + line)
    print(f"slowest case: {slowest[1]} ({slowest[0]:.2f} s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
