"""Operating-system errors are errors, not tracebacks: a read-only file system, a full disk, a path
the user may not write, a reader that closed the pipe. Each gives exit 1 and one line naming the
path the user gave and the cause, printed once, and leaves nothing half-written.

Read-only and full file systems are real tmpfs mounts (root only; the test skips elsewhere)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebuild.cli import main
from tests.test_render_support import push, write_oci_image

REPO = Path(__file__).resolve().parents[1]
ICSP = """apiVersion: operator.openshift.io/v1alpha1
kind: ImageContentSourcePolicy
metadata: {name: generic-0}
spec:
  repositoryDigestMirrors:
  - mirrors: [mirror.example:5000/team]
    source: quay.io/team
"""


def _mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """{'ro': a read-only file system, 'full': a 64 KiB one filled up}, unmounted afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("tmpfs mounts need root")
    made: list[Path] = []
    try:
        for name, options in (("ro", "ro,size=1m"), ("full", "size=64k")):
            _mount_tmpfs(tmp_path / name, options)
            made.append(tmp_path / name)
        filler = tmp_path / "full" / "filler"
        with filler.open("wb") as fh:
            try:
                fh.write(b"\0" * 128 * 1024)
                fh.flush()
            except OSError:
                pass
        yield {"ro": tmp_path / "ro", "full": tmp_path / "full"}
    finally:
        for path in made:
            subprocess.run(["umount", str(path)], check=False)


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_convert_into_a_read_only_file_system(mounts, tmp_path: Path, capsys):
    icsp = tmp_path / "icsp.yaml"
    icsp.write_text(ICSP)
    target = mounts["ro"] / "999-mirror.conf"
    assert main(["convert", "icsp", str(icsp), "-o", str(target)]) == 1
    assert _one_error_line(capsys.readouterr().err) == (
        f"error: writing {target}: Read-only file system "
        "(the file system is read-only: choose a directory on a writable one)")


def test_convert_onto_a_full_disk_leaves_no_temporary_file(mounts, tmp_path: Path, capsys):
    icsp = tmp_path / "icsp.yaml"
    icsp.write_text(ICSP * 200)  # larger than what is left on the disk
    target = mounts["full"] / "999-mirror.conf"
    assert main(["convert", "icsp", str(icsp), "-o", str(target)]) == 1
    assert _one_error_line(capsys.readouterr().err) == (
        f"error: writing {target}: No space left on device (no space left on the device: free some space "
        "or choose another disk; nothing was left half-written)")
    assert sorted(p.name for p in mounts["full"].iterdir()) == ["filler"]


@pytest.mark.parametrize("where", ["ro", "full"])
def test_mirror_to_disk_on_a_broken_file_system(where, mounts, registry, tmp_path: Path, capsys):
    layout = tmp_path / "layout"
    write_oci_image(layout, "app", "x" * 200_000)
    push(registry.host, layout, "app", "team/app", "1")
    isc = tmp_path / "isc.yaml"
    isc.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                   f"  additionalImages:\n  - name: {registry.host}/team/app:1\n")
    disk = mounts[where] / "disk"
    code = main(["mirror", "-c", str(isc), "--to", f"file://{disk}", "--src-tls-verify=false", "-q"])
    err = capsys.readouterr().err
    assert code == 1, err
    line = _one_error_line(err)
    cause = "Read-only file system" if where == "ro" else "No space left on device"
    assert line.startswith(f"error: writing {disk}") and cause in line, line
    if where == "full":  # whatever was written is whole files; no temporary file is left behind
        assert not [p for p in mounts["full"].rglob("*") if p.name.endswith(".tmp")]


def test_a_disk_that_fills_up_while_blobs_are_written(registry, tmp_path: Path, capsys):
    """The metadata fits, the layer does not: the image fails with the disk's cause, not a traceback or
    an 'unexpected OSError', and no partial blob is left."""
    if os.geteuid() != 0:
        pytest.skip("tmpfs mounts need root")
    small = tmp_path / "small"
    _mount_tmpfs(small, "size=256k")
    try:
        layout = tmp_path / "layout"
        write_oci_image(layout, "app", os.urandom(400_000).hex())  # incompressible: ~400 KB gzip'ed
        push(registry.host, layout, "app", "team/app", "1")
        isc = tmp_path / "isc.yaml"
        isc.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                       f"  additionalImages:\n  - name: {registry.host}/team/app:1\n")
        disk = small / "disk"
        code = main(["mirror", "-c", str(isc), "--to", f"file://{disk}", "--src-tls-verify=false", "-q"])
        err = capsys.readouterr().err
        assert code == 1, err
        assert "Traceback" not in err and "unexpected" not in err, err
        assert (f"  {registry.host}/team/app:1: writing {disk}: No space left on device (no space left on the "
                "device: free some space or choose another disk; nothing was left half-written)") in err, err
        assert not [p for p in small.rglob("*") if p.name.endswith((".part", ".tmp"))]
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_a_closed_pipe_is_one_line_and_exit_1(tmp_path: Path):
    """`edgebuild list ... | head`: the reader went away before edgebuild wrote."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "index.json").write_text(
        '{"schema": "olm.package", "name": "p", "defaultChannel": "stable"}\n'
        '{"schema": "olm.channel", "package": "p", "name": "stable", "entries": [{"name": "p.v1"}]}\n'
        '{"schema": "olm.bundle", "package": "p", "name": "p.v1", "image": "quay.io/p/b@sha256:'
        + "1" * 64 + '", "properties": [{"type": "olm.package", "value": {"packageName": "p", "version": "1.0.0"}}]}\n')
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "edgebuild", "list", "operators", "--catalog", str(catalog),
                               "--format", "json"], stdout=write, stderr=subprocess.PIPE, text=True, cwd=REPO,
                              timeout=60)
    finally:
        os.close(write)
    assert done.returncode == 1
    assert done.stderr == ("error: standard output was closed by its reader (broken pipe); "
                           "the output is incomplete\n")


def test_permission_and_other_causes_name_the_users_path_and_the_fix():
    """EACCES cannot be produced for root on a real file system here, so the error is built as the
    kernel reports it: errno, strerror and the temporary file's name (which the message replaces)."""
    import errno

    from edgebuild.errors import FileSystemError
    exc = PermissionError(errno.EACCES, "Permission denied", "/srv/out/.x.conf.abc.tmp")
    assert str(FileSystemError.from_os_error(exc, "/srv/out/x.conf", "writing")) == (
        "writing /srv/out/x.conf: Permission denied (permission denied: choose a directory you may write to, "
        "or run as a user who may)")
    assert str(FileSystemError.from_os_error(OSError(errno.EIO, "Input/output error", "/dev/sdz"))) == (
        "/dev/sdz: Input/output error")
