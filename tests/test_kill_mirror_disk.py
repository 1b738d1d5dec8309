"""Problem 3 of issue 12 (disk copies): a killed `mirror --to file://DIR` leaves nothing the next
run does not clean up.

The real CLI mirrors from a real registry and is SIGKILLed with a blob half written
(EDGEBUILD_TEST_PAUSE_AT=layout-blob-partly-written: a `.part` file is there), and at random
moments of further runs. The next complete run removes every `.part`/`.tmp` leftover, and skopeo
reads and copies out every image.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.disk_mirror_support import index_names, leftovers, push_images, verify_disk_images, write_isc
from tests.hostile_support import cli_env, run_cli, start_cli

pytestmark = pytest.mark.usefixtures("isolated_auth_env")


def test_killed_disk_mirrors_are_cleaned_up_by_the_next_run(registry, tmp_path: Path) -> None:
    require_tool("skopeo")
    refs = push_images(registry.host, tmp_path / "src", ["k1", "k2", "k3", "k4"], (3_000_000, 500_000))
    isc = write_isc(tmp_path / "isc.yaml", refs)
    disk = tmp_path / "disk"
    args = ["mirror", "-c", str(isc), "--to", f"file://{disk}", "--src-tls-verify=false"]
    env = cli_env(tmp_path / "cache")

    paused = start_cli(args, env={**env, "EDGEBUILD_TEST_PAUSE_AT": "layout-blob-partly-written"})
    assert paused.stderr is not None
    while "paused at layout-blob-partly-written" not in (line := paused.stderr.readline()):
        assert line, "the run ended before pausing"
    paused.send_signal(signal.SIGKILL)
    paused.wait(timeout=30)
    assert [p for p in leftovers(disk) if p.endswith(".part")], "the kill left a partial blob"

    rng = random.Random(3)
    for _ in range(3):
        run = start_cli(args, env=env)
        time.sleep(rng.uniform(0.4, 1.5))
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)

    done = run_cli(args, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert leftovers(disk) == []
    assert index_names(disk) == {r.split("/", 1)[1] for r in refs}
    verify_disk_images(disk, refs, tmp_path / "check")
