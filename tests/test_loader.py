"""Catalog loading: JSON streams read incrementally, YAML with timestamps as text, located errors."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from edgebuild.catalog import loader
from edgebuild.catalog.loader import iter_json_file, iter_yaml_stream, load_catalog_dir
from edgebuild.errors import CatalogError

PACKAGE = {"schema": "olm.package", "name": "demo", "defaultChannel": "stable"}
CHANNEL = {"schema": "olm.channel", "package": "demo", "name": "stable",
           "entries": [{"name": "demo.v1.0.0"}, {"name": "demo.v1.1.0", "replaces": "demo.v1.0.0", "skips": ["x"]}]}


def bundle(version: str, **extra) -> dict:
    return {"schema": "olm.bundle", "package": "demo", "name": f"demo.v{version}", "image": f"quay.io/demo/b:{version}",
            "properties": [{"type": "olm.package", "value": {"packageName": "demo", "version": version}}],
            "relatedImages": [{"name": "op", "image": f"quay.io/demo/op:{version}"}], **extra}


def json_stream(blobs: list[dict], indent: int | None = 4) -> str:
    """What `opm render`/`declcfg.WriteJSON` writes: indented objects one after another."""
    return "".join(json.dumps(b, indent=indent) + "\n" for b in blobs)


def test_yaml_timestamps_stay_strings(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "catalog.yaml").write_text(
        "---\nschema: olm.package\nname: demo\ndefaultChannel: stable\n"
        "---\nschema: example.custom\nname: note\ncreatedAt: 2024-01-02T03:04:05Z\nday: 2024-01-02\n")
    catalog = load_catalog_dir(tmp_path)
    note = catalog.others[0]
    assert note["createdAt"] == "2024-01-02T03:04:05Z"
    assert note["day"] == "2024-01-02"
    docs = list(iter_yaml_stream(io.StringIO("createdAt: 2024-01-02T03:04:05Z\n"), "s"))
    assert docs == [{"createdAt": "2024-01-02T03:04:05Z"}]


def test_json_and_yaml_give_the_same_catalog(tmp_path: Path) -> None:
    import yaml
    blobs = [PACKAGE, CHANNEL, bundle("1.0.0"), bundle("1.1.0")]
    (tmp_path / "j").mkdir()
    (tmp_path / "y").mkdir()
    (tmp_path / "j" / "catalog.json").write_text(json_stream(blobs))
    (tmp_path / "y" / "catalog.yaml").write_text(yaml.safe_dump_all(blobs))
    from_json, from_yaml = load_catalog_dir(tmp_path / "j"), load_catalog_dir(tmp_path / "y")
    assert from_json.packages == from_yaml.packages
    pkg = from_json.packages["demo"]
    assert pkg.default_channel == "stable"
    assert [e.name for e in pkg.channels["stable"].entries] == ["demo.v1.0.0", "demo.v1.1.0"]
    assert pkg.bundles["demo.v1.1.0"].version == "1.1.0"
    assert pkg.bundles["demo.v1.1.0"].related_images[0].image == "quay.io/demo/op:1.1.0"


def test_json_stream_compact_and_without_separators(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("".join(json.dumps(b, separators=(",", ":")) for b in [bundle("1.0.0"), PACKAGE]))
    catalog = load_catalog_dir(tmp_path)
    assert catalog.packages["demo"].default_channel == "stable"  # a bundle may precede its package
    assert set(catalog.packages["demo"].bundles) == {"demo.v1.0.0"}


def test_json_is_read_incrementally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first blob arrives after reading one small chunk, not the whole file."""
    monkeypatch.setattr(loader, "_READ_CHARS", 4096)
    path = tmp_path / "big.json"
    path.write_text(json_stream([bundle(f"1.0.{i}") for i in range(2000)]))
    with path.open("rb") as fh:
        blobs = iter_json_file(fh, str(path))
        line, first = next(blobs)
        assert (line, first["name"]) == (1, "demo.v1.0.0")
        assert fh.tell() <= 4096 < path.stat().st_size
        rest = list(blobs)
    assert len(rest) == 1999 and rest[-1][1]["name"] == "demo.v1.0.1999"


def test_blob_larger_than_the_read_buffer_and_multibyte_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "_READ_CHARS", 64)
    big = bundle("2.0.0", description="é€😀" * 5000)
    path = tmp_path / "c.json"
    path.write_text(json_stream([PACKAGE, big, CHANNEL]), encoding="utf-8")
    with path.open("rb") as fh:
        got = list(iter_json_file(fh, "c.json"))
    assert [b for _, b in got] == [PACKAGE, big, CHANNEL]
    text = path.read_text()
    # each blob starts on the line before its first key ("schema")
    assert [line for line, _ in got] == [text[:text.index(s)].count("\n")
                                        for s in ('"olm.package"', '"olm.bundle"', '"olm.channel"')]
    assert [line for line, _ in got] == [1, 6, 28]


def test_bad_blob_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    bad_channel = {"schema": "olm.channel", "package": "demo", "entries": []}  # no name
    path = tmp_path / "demo" / "catalog.json"
    path.write_text(json_stream([PACKAGE, bad_channel]))
    with pytest.raises(CatalogError, match=rf"{path}:6: olm.channel blob without a 'name'") as info:
        load_catalog_dir(tmp_path)
    assert info.value.exit_code == 1


@pytest.mark.parametrize("blob,message", [
    ({**bundle("1.0.0"), "properties": "nope"}, "'properties' must be a list, found str"),
    ({**bundle("1.0.0"), "properties": ["nope"]}, "a property is not a mapping"),
    ({**CHANNEL, "entries": ["demo.v1"]}, "an entry is not a mapping"),
    ({**bundle("1.0.0"), "relatedImages": {"a": 1}}, "'relatedImages' must be a list"),
    ({"name": "x"}, "blob without a 'schema' field"),
])
def test_malformed_blobs_are_catalog_errors_naming_the_file(tmp_path: Path, blob: dict, message: str) -> None:
    path = tmp_path / "catalog.yaml"
    import yaml
    path.write_text(yaml.safe_dump_all([PACKAGE, blob]))
    with pytest.raises(CatalogError, match=rf"{path}:\d+: .*{message}"):
        load_catalog_dir(tmp_path)


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json_stream([PACKAGE]) + '{\n  "schema": "olm.bundle",\n  "name" "x"\n}\n')
    with pytest.raises(CatalogError, match=rf"{path}:8: invalid JSON: Expecting ':' delimiter"):
        load_catalog_dir(tmp_path)


def test_truncated_json_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json_stream([PACKAGE, bundle("1.0.0")])[:-40])
    with pytest.raises(CatalogError, match=rf"{path}:\d+: truncated JSON"):
        load_catalog_dir(tmp_path)


def test_non_object_json_and_non_utf8_are_reported(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('[1, 2]')
    with pytest.raises(CatalogError, match="a.json:1: expected a JSON object, found list"):
        load_catalog_dir(tmp_path)
    (tmp_path / "a.json").write_bytes(b'{"schema": "\xff"}')
    with pytest.raises(CatalogError, match="a.json: not UTF-8 text"):
        load_catalog_dir(tmp_path)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("schema: olm.package\nname: [unclosed\n")
    with pytest.raises(CatalogError, match=rf"{path}: invalid YAML"):
        load_catalog_dir(tmp_path)


def test_install_modes_from_csv_metadata_or_bundle_object(tmp_path: Path) -> None:
    modes = [{"type": "OwnNamespace", "supported": True}, {"type": "AllNamespaces", "supported": False}]
    csv = {"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion",
           "spec": {"installModes": modes}}
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
    obj = lambda doc: {"type": "olm.bundle.object",  # noqa: E731
                       "value": {"data": base64.b64encode(json.dumps(doc).encode()).decode()}}
    from_object = bundle("1.0.0")
    from_object["properties"] += [obj(crd), obj(csv)]
    from_metadata = bundle("1.1.0")
    from_metadata["properties"] += [obj({**csv, "spec": {"installModes": []}}),
                                    {"type": "olm.csv.metadata", "value": {"installModes": modes[:1]}}]
    (tmp_path / "c.json").write_text(json_stream([PACKAGE, from_object, from_metadata]))
    bundles = load_catalog_dir(tmp_path).packages["demo"].bundles
    assert bundles["demo.v1.0.0"].install_modes == {"OwnNamespace": True, "AllNamespaces": False}
    assert bundles["demo.v1.1.0"].install_modes == {"OwnNamespace": True}


def test_hidden_and_other_files_are_skipped_and_outward_symlinks_refused(tmp_path: Path) -> None:
    root = tmp_path / "cat"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "x.json").write_text("not json")
    (root / ".hidden.json").write_text("not json")
    (root / "README.md").write_text("# not a catalog")
    (root / "c.json").write_text(json_stream([PACKAGE]))
    assert list(load_catalog_dir(root).packages) == ["demo"]
    (tmp_path / "outside.json").write_text(json_stream([PACKAGE]))
    (root / "link.json").symlink_to(tmp_path / "outside.json")
    with pytest.raises(CatalogError, match="symlink points outside the catalog directory"):
        load_catalog_dir(root)


def test_missing_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="does not exist or is not a directory"):
        load_catalog_dir(tmp_path / "nope")


def test_source_names_the_catalog(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json_stream([PACKAGE]))
    assert load_catalog_dir(tmp_path, source="quay.io/x/index:v1").source == "quay.io/x/index:v1"
    assert load_catalog_dir(tmp_path).source == str(tmp_path)


def test_faster_yaml_path_builds_the_same_model_as_full_blobs() -> None:
    """load_catalog_dir skips unused csv metadata in YAML; the model must equal one built from whole blobs."""
    from edgebuild.catalog.loader import build_catalog, iter_dir_blobs
    from tests.conftest import require_shared
    root = require_shared("catalogs", "community-operators-v4.15")
    assert load_catalog_dir(root) == build_catalog(iter_dir_blobs(root), source=str(root))
