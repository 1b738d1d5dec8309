"""Running the real CLI in a subprocess for the hostile-input, kill and concurrency tests.

A subprocess, not main(): a traceback, a hang or a crash of the interpreter must show as such,
and kills need a process of their own. The worktree's package is run (`python3 -m edgebuild` with
the repository root as working directory).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
V2 = "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\n"
V1 = "apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\n"


def cli_env(cache: Path | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("EDGEBUILD_TEST_PAUSE_AT", None)
    env.pop("EDGEBUILD_CATALOG_LIMITS", None)
    if cache is not None:
        env["EDGEBUILD_CACHE_DIR"] = str(cache)
    env.update(extra)
    return env


def run_cli(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 120,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgebuild", *args], cwd=ROOT, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout, input=stdin)


def start_cli(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "edgebuild", *args], cwd=ROOT, env=env or cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    """Exit `code`, an `error:` line, every word in stderr, and no Python traceback."""
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "error: " in result.stderr, result.stderr[-2000:]
    for word in words:
        assert word in result.stderr, (word, result.stderr[-2000:])


def files_under(path: Path) -> list[str]:
    """Every file (not directory) below `path`, relative; [] when it does not exist."""
    if not path.exists():
        return []
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if not p.is_dir())
