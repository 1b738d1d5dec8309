"""Problem 1 of issue 12: a hostile catalog image cannot fill the disk.

Crafted layers (a 10 GiB sparse member in a tiny layer, a gzip of 1 GiB of zeros, 3000 nested
directories) are put in real OCI layouts and a real registry image, and loaded by the real CLI:
each is refused with the limit and the option named, exit 1, and nothing is left in the cache.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from tests.conftest import require_shared, require_tool
from tests.hostile_support import V2, assert_clean_failure, cli_env, files_under, run_cli
from tests.ocibuild import CATALOG_LABEL, OCI_LAYER_GZIP, Layer, OciLayout, fbc_files, tar_bytes

GIB = 1 << 30


def sparse_layer(tmp_path: Path, size: int = 10 * GIB) -> bytes:
    """A GNU tar (gzip) holding configs/big.json: `size` bytes of holes, about 1.5 KB on the wire."""
    require_tool("tar")
    src = tmp_path / "sparse-src"
    (src / "configs").mkdir(parents=True)
    with open(src / "configs" / "big.json", "wb") as fh:
        fh.truncate(size)
    out = subprocess.run(["tar", "-cSzf", "-", "-C", str(src), "configs"], check=True, capture_output=True).stdout
    shutil.rmtree(src)
    return out


def zero_bomb(name: str, size: int) -> bytes:
    """A gzip tar whose one member `name` is `size` zero bytes, compressed as it is generated (~1/1000)."""
    info = tarfile.TarInfo(name)
    info.size = size
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [gz.compress(info.tobuf(format=tarfile.GNU_FORMAT))]
    chunk = bytes(1 << 20)
    for _ in range(size // len(chunk)):
        parts.append(gz.compress(chunk))
    parts.append(gz.compress(bytes(-size % 512) + bytes(1024)))
    parts.append(gz.flush())
    return b"".join(parts)


def deep_layer(depth: int) -> bytes:
    name = "configs/" + "/".join(["d"] * depth) + "/catalog.json"
    return tar_bytes({name: b'{"schema":"olm.package","name":"p"}\n'})


def layout_with(root: Path, layers: list[Layer]) -> Path:
    layout = OciLayout.create(root)
    layout.tag(layout.add_image(layers, labels={CATALOG_LABEL: "/configs"}), "latest")
    return root


def plan_catalog(tmp_path: Path, catalog: str, *extra: str, **env: str):
    isc = tmp_path / "isc.yaml"
    isc.write_text(V2 + f"mirror:\n  operators:\n  - catalog: {catalog}\n    packages:\n    - name: p\n")
    return run_cli(["plan", "-c", str(isc), *extra], env=cli_env(tmp_path / "cache", **env))


def test_sparse_10_gib_member_is_refused_before_a_byte_is_written(tmp_path: Path) -> None:
    blob = sparse_layer(tmp_path)
    assert len(blob) < 4096, len(blob)
    root = layout_with(tmp_path / "l", [Layer(blob, gzip=False, media_type=OCI_LAYER_GZIP)])
    result = plan_catalog(tmp_path, f"oci://{root}")
    assert_clean_failure(result, 1, "file 'configs/big.json' is 10.0 GiB, over the file-bytes limit of 2.0 GiB",
                         "--catalog-limit file-bytes=VALUE", "EDGEBUILD_CATALOG_LIMITS")
    assert files_under(tmp_path / "cache") == []


def test_gzip_bomb_is_refused_by_its_expansion_ratio(tmp_path: Path) -> None:
    bomb = zero_bomb("configs/zeros.json", GIB)
    assert len(bomb) < 2 << 20
    root = layout_with(tmp_path / "l", [Layer(bomb, gzip=False, media_type=OCI_LAYER_GZIP)])
    result = plan_catalog(tmp_path, f"oci://{root}")
    assert_clean_failure(result, 1, "over the ratio limit of 500:1", "--catalog-limit ratio=VALUE")
    assert files_under(tmp_path / "cache") == []
    # outside the catalog directory nothing is written, but the decompression itself is bounded too
    root2 = layout_with(tmp_path / "l2", [Layer(zero_bomb("usr/zeros", GIB), gzip=False, media_type=OCI_LAYER_GZIP)])
    assert_clean_failure(plan_catalog(tmp_path, f"oci://{root2}"), 1, "over the ratio limit")
    # with the ratio raised, the total-bytes limit still holds, and the option names it
    result = plan_catalog(tmp_path, f"oci://{root}", "--catalog-limit", "ratio=100000",
                          "--catalog-limit", "total-bytes=100M")
    assert_clean_failure(result, 1, "over the total-bytes limit of 100.0 MiB", "--catalog-limit total-bytes=VALUE")
    assert files_under(tmp_path / "cache") == []


def test_limits_from_the_environment_and_bad_settings(tmp_path: Path) -> None:
    root = layout_with(tmp_path / "l", [fbc_demo()])
    result = plan_catalog(tmp_path, f"oci://{root}", EDGEBUILD_CATALOG_LIMITS="total-bytes=100")
    assert_clean_failure(result, 1, "brings the catalog past 100 bytes", "over the total-bytes limit of 100 bytes")
    assert files_under(tmp_path / "cache") == []
    two = layout_with(tmp_path / "l2", [Layer(tar_bytes({"configs/a.json": b"{}", "configs/b.json": b"{}"}))])
    result = plan_catalog(tmp_path, f"oci://{two}", EDGEBUILD_CATALOG_LIMITS="entries=1")
    assert_clean_failure(result, 1, "more than 1 entries", "over the entries limit of 1")
    assert files_under(tmp_path / "cache") == []
    result = plan_catalog(tmp_path, f"oci://{root}", "--catalog-limit", "bytes=1")
    assert_clean_failure(result, 2, "--catalog-limit: 'bytes=1' is not NAME=VALUE", "total-bytes")
    result = plan_catalog(tmp_path, f"oci://{root}", EDGEBUILD_CATALOG_LIMITS="depth=-3")
    assert_clean_failure(result, 2, "EDGEBUILD_CATALOG_LIMITS: depth='-3' is not a positive number")


def fbc_demo() -> Layer:
    blobs = (b'{"schema":"olm.package","name":"p","defaultChannel":"stable"}\n'
             b'{"schema":"olm.channel","name":"stable","package":"p","entries":[{"name":"p.v1.0.0"}]}\n'
             b'{"schema":"olm.bundle","name":"p.v1.0.0","package":"p","image":"quay.io/p/b@sha256:' + b"a" * 64
             + b'","properties":[{"type":"olm.package","value":{"packageName":"p","version":"1.0.0"}}]}\n')
    return Layer(tar_bytes({"configs/p/catalog.json": blobs}))


def test_3000_nested_directories_are_refused_without_recursion(tmp_path: Path) -> None:
    root = layout_with(tmp_path / "l", [Layer(deep_layer(3000))])
    result = plan_catalog(tmp_path, f"oci://{root}")
    assert_clean_failure(result, 1, "directories deep, over the depth limit of 64", "--catalog-limit depth=VALUE")
    assert "RecursionError" not in result.stderr
    assert files_under(tmp_path / "cache") == []


def test_a_catalog_directory_nested_1500_deep_on_disk_is_walked_without_recursion(tmp_path: Path) -> None:
    """--catalog-content DIR: the directory walk keeps its own stack (os.walk of Python 3.11 recurses,
    and fails past about 1000 levels)."""
    import os

    from edgebuild.catalog.loader import iter_catalog_files
    depth = 1500
    top = tmp_path / "fbc"
    levels = [str(top)]
    for _ in range(depth):  # os.makedirs and Path.mkdir(parents=True) recurse too: one level at a time
        levels.append(levels[-1] + "/d")
    for level in levels:
        os.mkdir(level)
    bottom = Path(levels[-1])
    (bottom / "catalog.json").write_text("{}\n")
    try:
        assert [str(p) for p in iter_catalog_files(top)] == [levels[-1] + "/catalog.json"]
    finally:  # shutil.rmtree of Python 3.11 recurses as well: remove bottom-up
        os.unlink(levels[-1] + "/catalog.json")
        for level in reversed(levels):
            os.rmdir(level)


def test_deep_json_and_yaml_in_a_catalog_are_errors_with_the_file(tmp_path: Path) -> None:
    from edgebuild.catalog.loader import load_catalog_dir
    from edgebuild.errors import CatalogError
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "catalog.json").write_text('{"schema":"olm.package","name":"p","x":' + "[" * 100_000
                                                 + "]" * 100_000 + "}\n")
    with pytest.raises(CatalogError, match=r"catalog.json:1: JSON nested deeper than"):
        load_catalog_dir(tmp_path / "a")
    (tmp_path / "b").mkdir()  # YAML: composed with an explicit stack, so deep nesting is only data...
    (tmp_path / "b" / "catalog.yaml").write_text("schema: olm.package\nname: p\nx: " + "[" * 100_000
                                                 + "]" * 100_000 + "\n")
    try:
        catalog = load_catalog_dir(tmp_path / "b")
    except CatalogError as exc:  # ...unless PyYAML's scanner has a depth limit (6.0.4's libyaml does)
        assert "catalog.yaml: invalid YAML" in str(exc) and "nesting depth" in str(exc) and "line 3" in str(exc)
    else:
        assert "p" in catalog.packages


def test_sparse_member_in_a_real_registry_image(tmp_path: Path, registry) -> None:
    require_tool("skopeo")
    root = layout_with(tmp_path / "l", [Layer(sparse_layer(tmp_path), gzip=False, media_type=OCI_LAYER_GZIP)])
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{root}:latest",
                    f"docker://{registry.host}/hostile/sparse:1"], check=True, capture_output=True)
    result = plan_catalog(tmp_path, f"{registry.host}/hostile/sparse:1", "--src-tls-verify=false")
    assert_clean_failure(result, 1, "over the file-bytes limit of 2.0 GiB", "--catalog-limit file-bytes=VALUE")
    assert files_under(tmp_path / "cache") == []


def test_the_real_catalog_unpacks_well_inside_the_defaults(tmp_path: Path) -> None:
    shared = require_shared()
    files = fbc_files(shared / "catalogs" / "community-operators-v4.17")
    root = OciLayout.create(tmp_path / "l")
    root.tag(root.add_image([files], labels={CATALOG_LABEL: "/configs"}), "latest")
    isc = tmp_path / "isc.yaml"
    isc.write_text(V2 + f"mirror:\n  operators:\n  - catalog: oci://{tmp_path / 'l'}\n    packages:\n"
                   "    - name: kube-green\n")
    result = run_cli(["plan", "-c", str(isc), "--format", "json"], env=cli_env(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr[-2000:]
