"""Bounded, seeded fuzzing of the configuration reader through the CLI (issue 12).

300 generated configurations per run (tests/config_fuzz.py); bench/fuzz_config.py runs the same
generator for 10,000. Asserted: no traceback, exit code 0, 1 or 2, every exit 2 with FILE:LINE.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from tests.config_fuzz import NO_NETWORK, generate, run_case

CASES = 300
SEED = 1200


def test_generated_configurations_keep_the_cli_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in NO_NETWORK.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("EDGEBUILD_CACHE_DIR", str(tmp_path / "cache"))
    codes: collections.Counter[int | None] = collections.Counter()
    failures = []
    for case in range(SEED, SEED + CASES):
        outcome = run_case(generate(case), tmp_path)
        codes[outcome.code] += 1
        if outcome.problem:
            failures.append(f"case {case}: {outcome.problem}")
    assert not failures, "\n".join(failures[:5])
    assert codes[2] > CASES // 3, codes  # the generator does produce invalid configurations
    assert set(codes) <= {0, 1, 2}
