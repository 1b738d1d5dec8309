"""The filtered FBC written into rebuilt catalog images: selection applied to the original blobs, with
deprecations trimmed to what is kept and package-less blobs kept (fixture v2-20)."""

from __future__ import annotations

import json
from pathlib import Path

from edgebuild.catalog.loader import load_catalog_dir
from edgebuild.catalog.select import select
from edgebuild.config import load_config
from edgebuild.registry.catalog_rebuild import write_filtered_fbc


def test_deprecations_and_other_blobs_follow_the_filter(shared_dir: Path, tmp_path: Path):
    case = shared_dir / "conformance" / "oc-mirror-filtering" / "v2-20-deprecations-follow-filter"
    expected = json.loads((case / "expected.json").read_text())["expect"]
    config = load_config(case / "isc.yaml")
    catalog = load_catalog_dir(case / "catalog")
    selection = select(catalog, config.operators[0], config.semantics)
    out = write_filtered_fbc(selection, case / "catalog", tmp_path / "index.json")
    blobs = [json.loads(line) for line in out.read_text().splitlines()]

    assert sorted(b["name"] for b in blobs if b["schema"] == "olm.bundle") == expected["bundles"]
    channel = next(b for b in blobs if b["schema"] == "olm.channel")
    assert channel["entries"] == expected["kept_channel_entries"]["ch1"]
    deprecations = [b for b in blobs if b["schema"] == "olm.deprecations"]
    assert len(deprecations) == 1
    refs = [{k: v for k, v in e["reference"].items() if k in ("schema", "name")} for e in deprecations[0]["entries"]]
    assert refs == expected["kept_deprecation_references"]
    # The package had no default channel: none is invented.
    package = next(b for b in blobs if b["schema"] == "olm.package")
    assert "defaultChannel" not in package or package["defaultChannel"]
    # A blob that belongs to no package stays.
    assert any(b["schema"] not in ("olm.package", "olm.channel", "olm.bundle", "olm.deprecations") for b in blobs)
    # The written catalog loads again and selects the same.
    again = load_catalog_dir(tmp_path)
    assert sorted(again.packages["pkg1"].bundles) == ["b2"]
