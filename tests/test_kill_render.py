"""Problem 3 of issue 12 (render side): a SIGKILL anywhere in render never leaves OUTDIR missing.

Render runs in a subprocess (the real render_outputs on the sample plan) and is killed at each
named step of its swap (EDGEBUILD_TEST_PAUSE_AT: the run stops there and says so), and at random
moments of repeated renders. After each kill OUTDIR is the old output or the complete new one,
byte for byte; the next run leaves no `.OUT.*` behind. The two-rename fallback (forced with
EDGEBUILD_TEST_NO_EXCHANGE, as on a filesystem without RENAME_EXCHANGE) has its one window, which
the next run repairs by putting the old output back.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from edgebuild.reference import MirrorTarget
from edgebuild.render import RenderOptions, render_outputs
from tests.hostile_support import ROOT
from tests.test_render_support import sample_config, sample_plan

MIRROR = MirrorTarget.parse("mirror.example.com:8443/edge")
RENDER = ("import sys; from pathlib import Path; from edgebuild.render import RenderOptions, render_outputs; "
          "from edgebuild.reference import MirrorTarget; from tests.test_render_support import sample_config, "
          "sample_plan; m = MirrorTarget.parse('mirror.example.com:8443/edge'); "
          "[render_outputs(sample_plan(m), sample_config(), RenderOptions(blueprint_version=v), Path(sys.argv[1])) "
          "for v in sys.argv[2:]]")


def tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def render(out: Path, version: str) -> None:
    render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(blueprint_version=version), out)


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    base = tmp_path_factory.mktemp("refs")
    out = {}
    for version in ("1.0.0", "2.0.0", "3.0.0"):
        render(base / version, version)
        out[version] = tree(base / version)
    return out


def start(out: Path, *versions: str, **env: str) -> subprocess.Popen[str]:
    full = {**os.environ, **env}
    return subprocess.Popen([sys.executable, "-c", RENDER, str(out), *versions], cwd=ROOT, env=full,
                            stderr=subprocess.PIPE, text=True)


def kill_when_paused(proc: subprocess.Popen[str], step: str) -> None:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert f"paused at {step}" in line, line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def version_of(out: Path) -> str:
    return tomllib.loads((out / "blueprint.toml").read_text())["version"]


@pytest.mark.parametrize("step", ["render-staged", "render-before-exchange", "render-exchanged"])
def test_kill_at_each_step_of_the_swap(tmp_path: Path, references, step: str) -> None:
    out = tmp_path / "out"
    render(out, "1.0.0")
    kill_when_paused(start(out, "2.0.0", EDGEBUILD_TEST_PAUSE_AT=step), step)
    expected = "2.0.0" if step == "render-exchanged" else "1.0.0"
    assert tree(out) == references[expected], "OUTDIR is the old or the complete new output"
    if step != "render-exchanged":
        assert any(p.name.startswith(".out.new-") for p in tmp_path.iterdir()), "the killed run left its staging"
    render(out, "3.0.0")
    assert tree(out) == references["3.0.0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "the next run removed the leftovers"


def test_fallback_without_exchange_is_repaired_by_the_next_run(tmp_path: Path, references) -> None:
    out = tmp_path / "out"
    render(out, "1.0.0")
    kill_when_paused(start(out, "2.0.0", EDGEBUILD_TEST_PAUSE_AT="render-old-moved", EDGEBUILD_TEST_NO_EXCHANGE="1"),
                     "render-old-moved")
    assert not out.exists(), "the two-rename fallback has this one window"
    assert any(p.name.startswith(".out.old-") for p in tmp_path.iterdir())
    # the next run first puts the old output back, then replaces it as usual
    proc = start(out, "3.0.0", EDGEBUILD_TEST_NO_EXCHANGE="1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert tree(out) == references["3.0.0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_kill_at_random_moments_of_repeated_renders(tmp_path: Path, references) -> None:
    out = tmp_path / "out"
    render(out, "1.0.0")
    rng = random.Random(12)
    for _ in range(12):
        proc = start(out, *(["2.0.0", "1.0.0"] * 15))
        time.sleep(rng.uniform(0.3, 2.0))  # past the interpreter start, somewhere in the renders
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert tree(out) in (references["1.0.0"], references["2.0.0"])
    render(out, "3.0.0")
    assert tree(out) == references["3.0.0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
