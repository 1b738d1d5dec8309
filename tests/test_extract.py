"""Safe unpacking of catalog layers: whiteouts in order, only the catalog directory, unsafe input refused."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from edgebuild.catalog.extract import LayerBlob, extract_configs
from edgebuild.errors import CatalogError
from tests.ocibuild import Entry, gzip_bytes, sha256_digest, tar_bytes


def layer(entries, *, compress: bool = True, media_type: str | None = None) -> LayerBlob:
    blob = gzip_bytes(tar_bytes(entries)) if compress else tar_bytes(entries)
    media = media_type or ("application/vnd.oci.image.layer.v1.tar+gzip" if compress
                           else "application/vnd.oci.image.layer.v1.tar")
    return raw_layer(blob, media)


def raw_layer(blob: bytes, media_type: str = "application/vnd.oci.image.layer.v1.tar+gzip",
              digest: str | None = None, size: int | None = None) -> LayerBlob:
    return LayerBlob(digest or sha256_digest(blob), media_type, lambda: io.BytesIO(blob),
                     len(blob) if size is None else size)


def tree(root: Path) -> dict[str, str]:
    """Relative path -> content (files) or '-> target' (symlinks), for comparing results."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + str(p.readlink())
        elif p.is_file():
            out[rel] = p.read_text()
    return out


@pytest.fixture()
def target(tmp_path: Path) -> Path:
    return tmp_path / "sandbox" / "rootfs"


def assert_refused(layers, target: Path, match: str) -> None:
    with pytest.raises(CatalogError, match=match):
        extract_configs(layers, target, "/configs")
    assert not target.exists(), "a failed extraction must leave nothing behind"
    assert sorted(p.name for p in target.parent.parent.rglob("*")) == ["sandbox"], "nothing written beside the target"


def test_keeps_only_catalog_directory_from_gzip_and_plain_layers(target: Path) -> None:
    base = layer({"etc/passwd": b"root", "bin/opm": b"ELF", "configs/a/catalog.json": b"A1"})
    top = layer({"configs/b/catalog.yaml": b"B", "configs/a/catalog.json": b"A2"}, compress=False)
    out = extract_configs([base, top], target, "/configs")
    assert out == target / "configs"
    assert tree(target) == {"configs/a/catalog.json": "A2", "configs/b/catalog.yaml": "B"}


def test_label_directory_other_than_configs(target: Path) -> None:
    out = extract_configs([layer({"srv/fbc/p/c.json": b"x", "configs/ignored.json": b"y"})], target, "/srv/fbc/")
    assert tree(out) == {"p/c.json": "x"}


def test_whiteout_hides_a_lower_layer_file(target: Path) -> None:
    lower = layer({"configs/a/catalog.json": b"A", "configs/b/catalog.json": b"B"})
    upper = layer({"configs/a/.wh.catalog.json": b""})
    extract_configs([lower, upper], target, "/configs")
    assert tree(target) == {"configs/b/catalog.json": "B"}
    assert (target / "configs" / "a").is_dir()


def test_whiteout_of_catalog_dir_then_new_content_like_oc_mirror_rebuild(target: Path) -> None:
    original = layer({"configs/old/catalog.json": b"OLD", "configs/keep/catalog.json": b"K"})
    whiteout = layer({".wh.configs": b""})
    rebuilt = layer({"configs/index/index.json": b"NEW"})
    extract_configs([original, whiteout, rebuilt], target, "/configs")
    assert tree(target) == {"configs/index/index.json": "NEW"}


def test_opaque_whiteout_hides_lower_children_but_keeps_its_own_layer(target: Path) -> None:
    lower = layer({"configs/a/x.json": b"lower-a", "configs/b/y.json": b"lower-b"})
    # the marker comes after one entry of the same layer and before another: both stay
    upper = layer([Entry("configs/c/z.json", b"upper-c"), Entry("configs/.wh..wh..opq"),
                   Entry("configs/d.json", b"upper-d")])
    extract_configs([lower, upper], target, "/configs")
    assert tree(target) == {"configs/c/z.json": "upper-c", "configs/d.json": "upper-d"}


def test_opaque_whiteout_in_a_rewritten_subdirectory(target: Path) -> None:
    lower = layer({"configs/a/old.json": b"old", "configs/b.json": b"b"})
    upper = layer([Entry("configs/a/new.json", b"new"), Entry("configs/a/.wh..wh..opq")])
    extract_configs([lower, upper], target, "/configs")
    assert tree(target) == {"configs/a/new.json": "new", "configs/b.json": "b"}


def test_whiteouts_apply_in_layer_order(target: Path) -> None:
    one = layer({"configs/p.json": b"1"})
    two = layer({"configs/.wh.p.json": b""})
    three = layer({"configs/p.json": b"3"})
    extract_configs([one, two, three], target, "/configs")
    assert tree(target) == {"configs/p.json": "3"}


def test_symlink_inside_catalog_is_kept_relative(target: Path) -> None:
    lay = layer([Entry("configs/real/catalog.json", b"R"),
                 Entry("configs/alias.json", type=tarfile.SYMTYPE, linkname="/configs/real/catalog.json")])
    extract_configs([lay], target, "/configs")
    link = target / "configs" / "alias.json"
    assert link.is_symlink() and not link.readlink().is_absolute()
    assert link.read_text() == "R"


def test_hardlink_inside_catalog_becomes_a_copy(target: Path) -> None:
    lay = layer([Entry("configs/a.json", b"A"),
                 Entry("configs/b.json", type=tarfile.LNKTYPE, linkname="configs/a.json")])
    extract_configs([lay], target, "/configs")
    assert tree(target) == {"configs/a.json": "A", "configs/b.json": "A"}
    assert (target / "configs/a.json").stat().st_ino != (target / "configs/b.json").stat().st_ino


def test_file_modes_are_not_taken_from_the_image(target: Path) -> None:
    extract_configs([layer([Entry("configs/x.json", b"{}", mode=0o4777)])], target, "/configs")
    assert (target / "configs/x.json").stat().st_mode & 0o7777 == 0o644


def test_replacing_a_symlinked_directory_never_writes_through_it(tmp_path: Path, target: Path) -> None:
    lower = layer([Entry("configs/real", type=tarfile.DIRTYPE),
                   Entry("configs/d", type=tarfile.SYMTYPE, linkname="real")])
    upper = layer({"configs/d/x.json": b"X"})
    extract_configs([lower, upper], target, "/configs")
    assert not (target / "configs/d").is_symlink()
    assert tree(target) == {"configs/d/x.json": "X"}


@pytest.mark.parametrize("name", ["configs/a/.wh...", "configs/.wh..", "configs/a/.wh.", ".wh..."])
def test_whiteouts_naming_dot_entries_are_refused(target: Path, name: str) -> None:
    """`.wh...` would hide `..` (the parent: configs/a/.wh... emptied the whole catalog directory)."""
    lower = layer({"configs/a/x.json": b"x", "configs/b.json": b"b"})
    assert_refused([lower, layer([Entry(name)])], target, r"unsafe entry .*a whiteout must name an entry")


@pytest.mark.parametrize("name", ["../evil.json", "configs/../../evil.json", "configs/a/../../../evil.json"])
def test_parent_paths_are_refused(target: Path, name: str) -> None:
    assert_refused([layer([Entry(name, b"x")])], target, r"'\.\.' path components are not allowed")


@pytest.mark.parametrize("name", ["/etc/evil", "/configs/x.json"])
def test_absolute_paths_are_refused(target: Path, name: str) -> None:
    assert_refused([layer([Entry(name, b"x")])], target, "absolute paths are not allowed")


@pytest.mark.parametrize("linkname", ["/etc/passwd", "../../../../etc/passwd", "../etc/passwd", "../../.."])
def test_symlinks_pointing_out_are_refused(target: Path, linkname: str) -> None:
    lay = layer([Entry("configs/a", type=tarfile.SYMTYPE, linkname=linkname)])
    assert_refused([lay], target, "link target .* leads outside the (image root|catalog directory)")


@pytest.mark.parametrize("linkname", ["/etc/passwd", "../etc/passwd", "etc/passwd", "configs/../../x"])
def test_hardlinks_pointing_out_are_refused(target: Path, linkname: str) -> None:
    lay = layer([Entry("etc/passwd", b"root"), Entry("configs/a", type=tarfile.LNKTYPE, linkname=linkname)])
    assert_refused([lay], target, "leads outside")


def test_hardlink_to_missing_file_is_refused(target: Path) -> None:
    lay = layer([Entry("configs/a", type=tarfile.LNKTYPE, linkname="configs/nothing")])
    assert_refused([lay], target, "not a file unpacked before it")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_and_fifo_files_are_refused(target: Path, kind: bytes) -> None:
    assert_refused([layer([Entry("configs/dev", type=kind)])], target, "device and fifo files are not allowed")


def test_digest_mismatch_is_refused(target: Path) -> None:
    blob = gzip_bytes(tar_bytes({"configs/a.json": b"A"}))
    other = sha256_digest(b"something else")
    assert_refused([raw_layer(blob, digest=other)], target, f"layer {other}: content digest is sha256:")


def test_size_mismatch_is_refused(target: Path) -> None:
    blob = gzip_bytes(tar_bytes({"configs/a.json": b"A"}))
    assert_refused([raw_layer(blob, size=len(blob) + 1)], target, "bytes read, the manifest says")


def test_truncated_gzip_is_refused(target: Path) -> None:
    blob = gzip_bytes(tar_bytes({"configs/a.json": b"A" * 5000}))[:-20]
    assert_refused([raw_layer(blob)], target, "broken blob")


def test_truncated_plain_tar_is_refused(target: Path) -> None:
    blob = tar_bytes({"configs/a.json": b"A" * 5000})[:3000]
    assert_refused([raw_layer(blob, "application/vnd.oci.image.layer.v1.tar")], target, "broken blob")


def test_corrupt_gzip_data_is_refused(target: Path) -> None:
    good = gzip_bytes(tar_bytes({"configs/a.json": bytes(range(256)) * 40}))
    bad = good[:40] + bytes(b ^ 0xFF for b in good[40:80]) + good[80:]
    assert_refused([raw_layer(bad)], target, "broken blob")


def test_a_bad_upper_layer_removes_what_lower_layers_wrote(target: Path) -> None:
    good = layer({"configs/a.json": b"A"})
    assert_refused([good, layer([Entry("../evil", b"x")])], target, "not allowed")


def test_zstd_layer_fails_clearly_by_magic(target: Path) -> None:
    blob = b"\x28\xb5\x2f\xfd" + b"\x00" * 32
    assert_refused([raw_layer(blob, "application/vnd.oci.image.layer.v1.tar")], target,
                   "zstd-compressed .* only uncompressed and gzip layers")


def test_zstd_layer_fails_clearly_by_media_type(target: Path) -> None:
    assert_refused([raw_layer(b"whatever", "application/vnd.oci.image.layer.v1.tar+zstd")], target, "zstd")


def test_existing_target_is_not_reused(target: Path) -> None:
    target.mkdir(parents=True)
    with pytest.raises(CatalogError, match="already exists"):
        extract_configs([layer({"configs/a.json": b"A"})], target, "/configs")


@pytest.mark.parametrize("label", ["/", "..", "../x", ""])
def test_label_outside_image_is_refused(target: Path, label: str) -> None:
    with pytest.raises(CatalogError, match="is not a directory inside the image"):
        extract_configs([layer({"configs/a.json": b"A"})], target, label)
