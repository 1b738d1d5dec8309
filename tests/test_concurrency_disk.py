"""Problem 2 of issue 12: two `mirror --to file://DIR` at once into one DIR lose nothing.

Two real CLI processes mirror different image sets (sharing a base layer) from a real registry
into the same directory, three rounds. Both exit 0, the second says it waits for the first (one
writer per DIR: a lock on the directory), and index.json names every image of both runs, each
read back and copied out by skopeo.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.disk_mirror_support import index_names, leftovers, push_images, verify_disk_images, write_isc
from tests.hostile_support import cli_env, start_cli

pytestmark = pytest.mark.usefixtures("isolated_auth_env")


def test_two_concurrent_disk_mirrors_keep_both_runs_images(registry, tmp_path: Path) -> None:
    require_tool("skopeo")
    refs_a = push_images(registry.host, tmp_path / "a", ["a1", "a2", "a3"], (1_500_000, 300_000))
    refs_b = push_images(registry.host, tmp_path / "b", ["b1", "b2", "b3"], (1_500_000, 300_000))
    isc_a, isc_b = write_isc(tmp_path / "a.yaml", refs_a), write_isc(tmp_path / "b.yaml", refs_b)
    waited = 0
    for round_ in range(3):
        disk = tmp_path / f"disk{round_}"
        env = cli_env(tmp_path / "cache")
        runs = [start_cli(["mirror", "-c", str(isc), "--to", f"file://{disk}", "--src-tls-verify=false"], env=env)
                for isc in (isc_a, isc_b)]
        outputs = [run.communicate(timeout=300) for run in runs]
        for run, (_, err) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, err
        waited += sum("waiting for another edgebuild run that is writing this disk copy" in err for _, err in outputs)
        assert index_names(disk) == {r.split("/", 1)[1] for r in refs_a + refs_b}, f"round {round_}"
        assert leftovers(disk) == []
        verify_disk_images(disk, refs_a + refs_b, tmp_path / f"check{round_}")
    assert waited >= 1, "the runs overlapped, so one of them waited for the other's lock at least once"
