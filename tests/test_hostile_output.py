"""Problem 3 of issue 12 (the output directory): mount points, a full disk, a read-only filesystem.

Real filesystems: a tmpfs mounted for the test (root can; elsewhere the test skips), so the
failures are the kernel's own ENOSPC and EROFS, not injected ones.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edgebuild.errors import UsageError
from edgebuild.reference import MirrorTarget
from edgebuild.render import RenderError, RenderOptions, render_outputs
from tests.test_render_support import sample_config, sample_plan

MIRROR = MirrorTarget.parse("mirror.example.com:8443/edge")


@contextmanager
def tmpfs(path: Path, size: str = "4m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "edgebuild-test", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def render(out: Path, version: str = "1.0.0") -> None:
    render_outputs(sample_plan(MIRROR), sample_config(), RenderOptions(blueprint_version=version), out)


def test_a_mount_point_is_refused_and_kept(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt") as mnt:
        (mnt / "mine.txt").write_text("x")
        with pytest.raises(UsageError, match=r"is a mount point: edgebuild swaps OUTDIR in whole by a rename") as info:
            render(mnt)
        assert info.value.exit_code == 2 and f"-o {mnt / 'edgebuild'}" in str(info.value)
        assert sorted(p.name for p in mnt.iterdir()) == ["mine.txt"]
        render(mnt / "edgebuild")  # the way out the hint gives
        render(mnt / "edgebuild", "2.0.0")
        assert sorted(p.name for p in mnt.iterdir()) == ["edgebuild", "mine.txt"]


def test_a_full_disk_is_one_line_and_leaves_the_old_output(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt", size="256k") as mnt:
        out = mnt / "out"
        render(out)
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        stat = os.statvfs(mnt)
        (mnt / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 3 * stat.f_frsize))
        with pytest.raises(RenderError, match=r"cannot write the output .*: No space left on device.*nothing was "
                                              r"changed") as info:
            render(out, "2.0.0")
        assert info.value.exit_code == 1 and "\n" not in info.value.message
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
        assert sorted(p.name for p in mnt.iterdir()) == ["filler", "out"]


def test_a_read_only_filesystem_is_one_line(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt") as mnt:
        render(mnt / "out")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with pytest.raises(RenderError, match="cannot write the output .*: Read-only file system") as info:
            render(mnt / "out", "2.0.0")
        assert info.value.exit_code == 1
        with pytest.raises(RenderError, match="Read-only file system"):
            render(mnt / "new")
        assert sorted(p.name for p in mnt.iterdir()) == ["out"]


def test_files_the_user_added_are_named_and_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(out)
    (out / "files" / "etc" / "notes.txt").write_text("mine")
    (out / "README.local").write_text("mine")
    with pytest.raises(UsageError, match=r"holds files an earlier render did not write: README.local, "
                                         r"files/etc/notes.txt; replacing the output would delete them"):
        render(out, "2.0.0")
    assert (out / "README.local").read_text() == "mine"
    (out / "README.local").unlink()
    (out / "files" / "etc" / "notes.txt").unlink()
    render(out, "2.0.0")
