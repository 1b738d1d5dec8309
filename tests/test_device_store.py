"""The device image store against real containers-storage: which stored name makes which reference
resolve by containers/image's lookup (CRI-O's), the boot-time second name from a read-only additional
store, and the rule `resolves_by_rule` that the bpcheck assertions use, checked against skopeo."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from edgebuild.device_store import (
    DeviceStore,
    add_names,
    read_store,
    resolve,
    resolve_all,
    resolves_by_rule,
    store_images,
    usable_driver,
)
from tests.conftest import require_tool
from tests.ocibuild import OciLayout

A = "quay.io/team/app"
B = "registry.example.com/mirror/app"


@pytest.fixture
def image(tmp_path: Path) -> tuple[str, str]:
    """(oci: source, manifest digest) of one small image."""
    require_tool("skopeo")
    layout = OciLayout.create(tmp_path / "layout")
    desc = layout.add_image([{"etc/hello.txt": b"hello\n"}])
    layout.tag(desc, "v1")
    return f"oci:{layout.root}:v1", desc["digest"]


def _store(tmp_path: Path, name: str, **kw) -> DeviceStore:
    return DeviceStore(tmp_path / name / "root", tmp_path / name / "run", usable_driver(tmp_path), **kw)


def test_overlay_is_usable_here_as_root(tmp_path: Path):
    require_tool("skopeo")
    if os.geteuid() != 0:
        pytest.skip("overlay in containers-storage needs root here")
    assert usable_driver(tmp_path) == "overlay"


@pytest.mark.parametrize("stored, resolves, does_not", [
    # A tag name: the tag and every digest reference of that repository resolve.
    (f"{A}:v1", [f"{A}:v1", f"{A}@{{D}}", f"{A}:v1@{{D}}"], [f"{B}@{{D}}", f"{A}:v2", f"{A}"]),
    # A digest name: only the digest resolves, not the tag the image was pushed with.
    (f"{A}@{{D}}", [f"{A}@{{D}}"], [f"{A}:v1", f"{B}@{{D}}"]),
])
def test_which_stored_name_makes_which_reference_resolve(tmp_path: Path, image, stored, resolves, does_not):
    source, digest = image
    store = _store(tmp_path, "s")
    store_images(store, [(source, stored.format(D=digest))])
    listed = [(n, digest) for n in read_store(store.root, store.driver).names.popitem()[1]]
    for ref in resolves:
        ref = ref.format(D=digest)
        assert resolve(store, ref).ok, ref
        assert resolves_by_rule(ref, listed), ref
    for ref in does_not:
        ref = ref.format(D=digest)
        result = resolve(store, ref)
        assert not result.ok and ("does not resolve" in result.detail or "identifier is not an image" in
                                  result.detail), (ref, result.detail)
        assert not resolves_by_rule(ref, listed), ref


def test_a_second_repository_is_added_at_boot_without_copying_layers(tmp_path: Path, image):
    """What the boot-time unit does on the device: the embedded store is read-only (here a read-only bind
    mount), the new name lands in /var/lib/containers/storage, layers are reused, and `B@D` resolves."""
    require_tool("unshare")
    source, digest = image
    embedded = _store(tmp_path, "usr-share")
    store_images(embedded, [(source, f"{A}:v1")])
    runtime = _store(tmp_path, "var-lib", additional=(embedded.root,))
    before = json.loads((embedded.root / f"{embedded.driver}-images/images.json").read_text())
    assert not resolve(runtime, f"{B}@{digest}").ok
    script = (f"mount --bind -o ro {embedded.root} {embedded.root} && mount -o remount,bind,ro {embedded.root} && "
              f"skopeo copy --quiet {runtime.ref(f'{A}@{digest}')} {runtime.ref(f'{B}:sha256-x')}")
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], check=False,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = resolve_all(runtime, [f"{B}@{digest}", f"{A}@{digest}", f"{A}:v1"])
    assert all(r.ok for r in found.values()), found
    assert json.loads((embedded.root / f"{embedded.driver}-images/images.json").read_text()) == before
    layers = runtime.root / f"{runtime.driver}-layers" / "layers.json"  # no layer of its own: all reused
    assert not layers.exists() or json.loads(layers.read_text() or "[]") == []


def test_add_names_refuses_a_digest_name_as_containers_image_does(tmp_path: Path, image):
    from edgebuild.errors import EdgebuildError
    source, digest = image
    embedded = _store(tmp_path, "usr-share")
    store_images(embedded, [(source, f"{A}:v1")])
    runtime = _store(tmp_path, "var-lib", additional=(embedded.root,))
    with pytest.raises(EdgebuildError, match="cannot add the name"):
        add_names(runtime, [(f"{A}@{digest}", f"{B}@{digest}")])
    add_names(runtime, [(f"{A}@{digest}", f"{B}:sha256-{digest[7:]}")])
    assert resolve(runtime, f"{B}@{digest}").ok


def test_a_failed_copy_names_source_and_name(tmp_path: Path):
    from edgebuild.errors import EdgebuildError
    require_tool("skopeo")
    with pytest.raises(EdgebuildError, match=r"cannot store oci:/nonexistent:x as quay.io/a/b:1"):
        store_images(_store(tmp_path, "s"), [("oci:/nonexistent:x", "quay.io/a/b:1")])
