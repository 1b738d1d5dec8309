"""Delta archives (mirror_seqN) across the air gap, with real registries and skopeo.

Run 1 mirrors three images to disk (sequence 1 = everything), the configuration gains an image,
run 2 writes sequence 2 with only the new blobs. Only sequence 2 is carried to a fresh directory:
pushed to a registry that got sequence 1, every image verifies; pushed to an empty registry, the
push fails naming the blob and the sequence to push first, and nothing is tagged.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import threading
from pathlib import Path

import pytest

from edgebuild.cli import main
from edgebuild.errors import RegistryError
from edgebuild.registry import layout as layout_module
from edgebuild.registry.archive import RECORD, find_archives
from edgebuild.registry.manifest import sha256_digest
from edgebuild.registry.mirror import MirrorOptions, mirror_from_disk, mirror_to_disk
from tests.registry_images import Layout, inspect_raw, make_layer, multiarch_image, push, simple_image, skopeo
from tests.test_mirror_registry import make_plan

pytestmark = pytest.mark.usefixtures("isolated_auth_env")
OPTS = dict(src_tls_verify=False, dest_tls_verify=False, quiet=True)
SIZE = 0.0002  # 200 kB archives: the 200 kB base layer alone overflows one, so sequences have several parts
METADATA = {"oci-layout", "index.json", "edgebuild/images.json", "edgebuild/plan.json", RECORD}


@pytest.fixture
def sources(registry, tmp_path: Path) -> list[str]:
    """a, b and c share a base layer; m is an amd64+arm64 index. c, the image run 2 adds, has a layer
    over the archive limit (an archive of its own)."""
    layout = Layout(tmp_path / "src-layout")
    base = [make_layer("base", 200_000)]
    refs = []
    for name in ("a", "b", "c"):
        simple_image(layout, name, (250_000 if name == "c" else 30_000,), base=base)
        refs.append(f"{registry.host}/ns/{name}:v1")
        push(layout, name, refs[-1])
    multiarch_image(layout, "m")
    refs.append(f"{registry.host}/ns/m:v1")
    push(layout, "m", refs[-1])
    return refs


def blob_members(archive: Path) -> set[str]:
    with tarfile.open(archive) as tar:
        return {"sha256:" + m.name.rsplit("/", 1)[1] for m in tar if m.name.startswith("blobs/sha256/")}


def all_members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def layout_blobs(disk: Path) -> set[str]:
    return {f"sha256:{p.name}" for p in (disk / "blobs" / "sha256").iterdir() if not p.name.startswith(".")}


def image_blobs(ref: str) -> set[str]:
    """Manifest, config and layers of a single-arch image, read from the registry with skopeo."""
    raw = inspect_raw(ref)
    manifest = json.loads(raw)
    return {sha256_digest(raw), manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}


def checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def carry(archives: list[str], to: Path) -> Path:
    """Copy archives to a directory of their own, as a USB stick across the air gap would."""
    to.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        shutil.copy(archive, to / Path(archive).name)
    return to


@pytest.fixture
def two_sequences(sources, tmp_path: Path) -> dict:
    """Run 1 with a, b, m; run 2 adds c. Returns the disk dir, both runs' archives and blob sets."""
    old, added = [s for s in sources if "/ns/c:" not in s], [s for s in sources if "/ns/c:" in s]
    disk = tmp_path / "disk"
    first = mirror_to_disk(make_plan(old), f"file://{disk}", MirrorOptions(**OPTS, archive_size_gb=SIZE))
    blobs1 = layout_blobs(disk)
    sums1 = {a: checksum(Path(a)) for a in first.archives}
    second = mirror_to_disk(make_plan(old + added), disk, MirrorOptions(**OPTS, archive_size_gb=SIZE))
    return {"disk": disk, "first": first, "second": second, "blobs1": blobs1, "blobs2": layout_blobs(disk),
            "sums1": sums1, "old": old, "added": added[0]}


def test_second_sequence_holds_only_the_new_blobs(two_sequences) -> None:
    run = two_sequences
    first, second, disk = run["first"], run["second"], run["disk"]
    assert first.archive_sequence == 1 and second.archive_sequence == 2
    assert len(first.archives) >= 2 and all("mirror_seq1_" in a for a in first.archives)
    assert len(second.archives) == 2 and all("mirror_seq2_" in a for a in second.archives)
    # sequence 1 is everything the layout held after run 1, and is left exactly as it was
    assert set().union(*(blob_members(Path(a)) for a in first.archives)) == run["blobs1"]
    assert {a: checksum(Path(a)) for a in first.archives} == run["sums1"]
    # sequence 2: only c's manifest, config and own layer (its base layer went with sequence 1)
    new = run["blobs2"] - run["blobs1"]
    assert new == image_blobs(run["added"]) - run["blobs1"] and len(new) == 3
    members2 = [blob_members(Path(a)) for a in second.archives]
    assert set().union(*members2) == new and sum(map(len, members2)) == len(new)
    # blobs first, the metadata (with the record) in the last archive only
    last = all_members(Path(second.archives[-1]))
    assert METADATA <= set(last)
    for archive in second.archives[:-1]:
        assert not METADATA & set(all_members(Path(archive)))
    record = json.loads((disk / RECORD).read_text())
    assert [s["sequence"] for s in record["sequences"]] == [1, 2]
    assert record["sequences"][1]["archives"] == [Path(a).name for a in second.archives]
    assert {d for d, e in record["blobs"].items() if e["sequence"] == 2} == new
    base = next(d for d in image_blobs(run["added"]) if record["blobs"][d]["sequence"] == 1
                and len(record["blobs"][d]["repositories"]) == 3)
    assert record["blobs"][base]["repositories"] == ["ns/a", "ns/b", "ns/c"]
    assert not list((disk / "archives").glob("*.part"))

    # a third run with nothing new writes no sequence and leaves the others alone
    before = sorted(p.name for p in (disk / "archives").iterdir())
    third = mirror_to_disk(make_plan(run["old"] + [run["added"]]), disk, MirrorOptions(**OPTS, archive_size_gb=SIZE))
    assert third.archive_sequence == 0 and third.archives == []
    assert sorted(p.name for p in (disk / "archives").iterdir()) == before


def test_only_the_second_sequence_pushed_to_a_registry_that_got_the_first(two_sequences, registry2,
                                                                          tmp_path: Path) -> None:
    run = two_sequences
    target = f"docker://{registry2.host}/restored"
    seq1 = carry(run["first"].archives, tmp_path / "usb1")
    assert len(mirror_from_disk(f"file://{seq1}", target, MirrorOptions(**OPTS)).copied) == 3
    seq2 = carry(run["second"].archives, tmp_path / "usb2")
    report = mirror_from_disk(f"file://{seq2}", target, MirrorOptions(**OPTS))
    assert [r.key for r in report.copied] == [run["added"]]
    assert len(report.present) == 3
    assert report.blobs.get("mounted", 0) >= 1  # c's base layer: mounted from ns/a or ns/b, not carried
    for ref in run["old"] + [run["added"]]:
        dest = f"{registry2.host}/restored/{ref.split('/', 1)[1]}"
        assert inspect_raw(dest) == inspect_raw(ref)
    skopeo("copy", "--all", "--quiet", "--src-tls-verify=false",
           f"docker://{registry2.host}/restored/ns/c:v1", f"oci:{tmp_path / 'check'}:c")
    # the blobs were read inside the tar archives: only the metadata was written beside them
    assert not (seq2 / "unpacked" / "blobs").exists()
    assert sorted(p.name for p in (seq2 / "unpacked").rglob("*") if p.is_file()) == \
        ["archives.json", "images.json", "index.json", "oci-layout", "plan.json"]


def test_second_sequence_alone_into_an_empty_registry_fails_and_tags_nothing(two_sequences, registry_factory,
                                                                             tmp_path: Path, capsys) -> None:
    run = two_sequences
    empty = registry_factory("empty")
    seq2 = carry(run["second"].archives, tmp_path / "usb2")
    with pytest.raises(RegistryError) as info:
        mirror_from_disk(f"file://{seq2}", f"docker://{empty.host}", MirrorOptions(**OPTS))
    text = str(info.value)
    assert info.value.exit_code == 1
    assert "4 of 4 images failed" in text
    assert "push mirror_seq1 first" in text
    record = json.loads((run["disk"] / RECORD).read_text())
    base = next(d for d in image_blobs(run["added"]) if record["blobs"][d]["sequence"] == 1
                and "ns/c" in record["blobs"][d]["repositories"] and d != sha256_digest(inspect_raw(run["added"])))
    c_line = next(line for line in text.splitlines() if "/ns/c:v1:" in line)
    assert f"blob {base} is in archive sequence mirror_seq1" in c_line
    for ref in run["old"] + [run["added"]]:
        assert skopeo("inspect", "--raw", "--tls-verify=false",
                      f"docker://{empty.host}/{ref.split('/', 1)[1]}", check=False).returncode != 0
    # the same through the CLI: exit 1 and the message on stderr
    config = tmp_path / "isc.yaml"
    config.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                      "  additionalImages:\n  - name: quay.io/example/a:v1\n")
    capsys.readouterr()
    assert main(["mirror", "-c", str(config), "--from", f"file://{seq2}", "--to", f"docker://{empty.host}",
                 "--dest-tls-verify=false", "-q"]) == 1
    assert "push mirror_seq1 first" in capsys.readouterr().err


def test_both_sequences_in_one_directory_into_an_empty_registry(two_sequences, registry_factory,
                                                                tmp_path: Path) -> None:
    run = two_sequences
    empty = registry_factory("empty")
    both = carry(run["second"].archives + run["first"].archives, tmp_path / "usb")
    report = mirror_from_disk(f"file://{both}", f"docker://{empty.host}/all", MirrorOptions(**OPTS))
    assert len(report.copied) == 4
    for ref in run["old"] + [run["added"]]:
        assert inspect_raw(f"{empty.host}/all/{ref.split('/', 1)[1]}") == inspect_raw(ref)


def test_whole_layout_archives_of_earlier_versions_still_push(two_sequences, registry_factory,
                                                              tmp_path: Path) -> None:
    """mirror_NNNNNN.tar (before sequences existed) is read as a complete copy."""
    run = two_sequences
    empty = registry_factory("empty")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for n, archive in enumerate(run["first"].archives, 1):
        shutil.copy(archive, legacy / f"mirror_{n:06d}.tar")
    report = mirror_from_disk(f"file://{legacy}", f"docker://{empty.host}", MirrorOptions(**OPTS))
    assert len(report.copied) == 3


def test_incomplete_sequence_is_refused_and_a_rerun_rewrites_it(two_sequences, tmp_path: Path) -> None:
    run = two_sequences
    carried = carry(run["second"].archives[:-1], tmp_path / "partial")  # the last one, with the metadata, is left
    with pytest.raises(RegistryError, match="sequence 2 is incomplete"):
        mirror_from_disk(f"file://{carried}", "docker://127.0.0.1:1", MirrorOptions(**OPTS))
    carried = carry(run["second"].archives[-1:], tmp_path / "first-part-missing")
    with pytest.raises(RegistryError, match=r"sequence 2 is incomplete: mirror_seq2_000001.tar is missing"):
        mirror_from_disk(f"file://{carried}", "docker://127.0.0.1:1", MirrorOptions(**OPTS))

    # a run that stopped while writing sequence 2 (the record not yet saved, its last part not written):
    # the next run removes the orphaned parts and writes sequence 2 again
    disk = run["disk"]
    record = json.loads((disk / RECORD).read_text())
    record["sequences"] = record["sequences"][:1]
    record["blobs"] = {d: e for d, e in record["blobs"].items() if e["sequence"] == 1}
    (disk / RECORD).write_text(json.dumps(record))
    Path(run["second"].archives[-1]).unlink()
    (disk / "archives" / "mirror_seq2_000099.tar.part").write_bytes(b"half")
    again = mirror_to_disk(make_plan(run["old"] + [run["added"]]), disk, MirrorOptions(**OPTS, archive_size_gb=SIZE))
    assert again.archive_sequence == 2
    assert set().union(*(blob_members(Path(a)) for a in again.archives)) == run["blobs2"] - run["blobs1"]
    assert sorted(a.path.name for a in find_archives(disk) if a.sequence == 2) == \
        sorted(Path(a).name for a in again.archives)
    assert not list((disk / "archives").glob("*.part"))

    # a run that wrote sequence 2 completely but stopped before saving the record adopts it
    (disk / RECORD).write_text(json.dumps(record))
    adopted = mirror_to_disk(make_plan(run["old"] + [run["added"]]), disk, MirrorOptions(**OPTS, archive_size_gb=SIZE))
    assert adopted.archive_sequence == 0
    assert [s["sequence"] for s in json.loads((disk / RECORD).read_text())["sequences"]] == [1, 2]


def test_archives_of_another_disk_copy_are_not_mixed_in(two_sequences, sources, tmp_path: Path) -> None:
    run = two_sequences
    other = mirror_to_disk(make_plan(run["old"]), tmp_path / "other", MirrorOptions(**OPTS, archive_size_gb=SIZE))
    mirror_to_disk(make_plan(run["old"] + [run["added"]]), tmp_path / "other",
                   MirrorOptions(**OPTS, archive_size_gb=SIZE))
    mixed = carry(other.archives + run["second"].archives, tmp_path / "mixed")
    with pytest.raises(RegistryError, match="come from different disk copies"):
        mirror_from_disk(f"file://{mixed}", "docker://127.0.0.1:1", MirrorOptions(**OPTS))


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink", "hardlink", "device"])
def test_unsafe_members_are_refused(tmp_path: Path, kind: str) -> None:
    member = tarfile.TarInfo({"parent": "../evil", "absolute": "/tmp/evil"}.get(kind, "index.json"))
    data = b"x"
    if kind == "symlink":
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink":
        member.type, member.linkname = tarfile.LNKTYPE, "/etc/passwd"
    elif kind == "device":
        member.type = tarfile.CHRTYPE
    member.size = len(data) if member.isfile() else 0
    carried = tmp_path / "usb"
    carried.mkdir()
    _tar_with(carried / "mirror_seq1_000001.tar", member, data)
    with pytest.raises(RegistryError, match="refusing unsafe member"):
        mirror_from_disk(f"file://{carried}", "docker://127.0.0.1:1", MirrorOptions(**OPTS))
    assert not (tmp_path / "evil").exists()
    assert not (carried / "unpacked" / "index.json").exists()


def test_disk_writes_are_fsynced_before_rename_and_the_directory_after(sources, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every blob and metadata file is fsync'ed under its temporary name, then renamed, then its
    directory is fsync'ed: a power cut cannot leave a renamed but empty file."""
    events: list[tuple[int, str, str]] = []  # (thread, what, path): blobs are written by several threads
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append((threading.get_ident(), "fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append((threading.get_ident(), "rename", f"{src}>{dst}"))
        real_replace(src, dst)
    monkeypatch.setattr(layout_module.os, "fsync", fsync)
    monkeypatch.setattr(layout_module.os, "replace", replace)
    disk = tmp_path / "disk"
    mirror_to_disk(make_plan(sources), disk, MirrorOptions(**OPTS))
    targets = set()
    for thread in {e[0] for e in events}:
        mine = [e[1:] for e in events if e[0] == thread]
        for i, (what, arg) in enumerate(mine):
            if what != "rename":
                continue
            src, dst = arg.split(">")
            targets.add(Path(dst))
            assert mine[i - 1] == ("fsync", src), f"{dst} renamed without an fsync of its data first"
            assert mine[i + 1] == ("fsync", str(Path(dst).parent)), f"{dst}: directory not fsync'ed after"
    assert {disk / "blobs" / "sha256" / d[7:] for d in layout_blobs(disk)} <= targets
    assert {disk / "index.json", disk / "edgebuild" / "images.json", disk / "edgebuild" / "plan.json"} <= targets
