"""oc-mirror v2 conformance: every `v2-*` case of ../shared/conformance/oc-mirror-filtering.

Each case holds a catalog, an ImageSetConfiguration and the outcome oc-mirror v2 produced (bundles,
channels and default channel, or the error). The channel-graph table of v2-23 (catalog-filter's own
unit table for head detection and range filtering) runs as unit cases on the graph functions.
"""

from __future__ import annotations

import json

import pytest

from edgebuild.catalog.graph import ChannelGraphError
from edgebuild.catalog.loader import load_catalog_dir
from edgebuild.catalog.model import ChannelEntry
from edgebuild.catalog.ranges_v2 import VersionRange
from edgebuild.catalog.select_v2 import channel_graph, filter_catalog_v2, filter_channel_by_range
from edgebuild.config import load_config
from edgebuild.errors import ConfigErrors, SelectionError
from edgebuild.semver import Version
from tests.conftest import require_shared

CASES_DIR = require_shared("conformance", "oc-mirror-filtering", module=True)
TABLE = CASES_DIR / "v2-23-multiple-channel-heads-error" / "channel-graph-table.json"


def _v2_cases() -> list[str]:
    return sorted(p.name for p in CASES_DIR.glob("v2-*") if p.is_dir())


def _table(section: str) -> list[dict]:
    return json.loads(TABLE.read_text())[section] if TABLE.is_file() else []


def _entries(raw: list[dict]) -> list[ChannelEntry]:
    return [ChannelEntry(e["name"], e.get("replaces"), tuple(e.get("skips") or ())) for e in raw]


def test_every_v2_case_is_collected() -> None:
    """The parametrization follows the directory listing; guard against an empty or moved folder."""
    assert len(_v2_cases()) >= 14


@pytest.mark.parametrize("case", _v2_cases())
def test_v2_case(case: str) -> None:
    folder = CASES_DIR / case
    expected = json.loads((folder / "expected.json").read_text())["expect"]
    catalog = load_catalog_dir(folder / "catalog")

    if case.startswith("v2-12"):
        # oc-mirror fails only while filtering ("... results in an empty channel"); edgebuild refuses
        # min > max when it loads the configuration (exit code 2), before touching any catalog.
        with pytest.raises(ConfigErrors) as info:
            load_config(folder / "isc.yaml")
        assert info.value.exit_code == 2
        assert "minVersion 0.3.1 is greater than maxVersion 0.2.0" in str(info.value)
        return

    config = load_config(folder / "isc.yaml")
    assert config.semantics == "v2"
    (spec,) = config.operators

    if expected.get("error") or expected.get("error_contains"):
        with pytest.raises(SelectionError) as info:
            filter_catalog_v2(catalog, spec)
        message = info.value.message
        if expected.get("error"):
            assert message == expected["error"]
        if expected.get("error_contains"):
            assert expected["error_contains"] in message
        full_form = expected.get("error_full_form") or expected.get("error_full_form_v2")
        if full_form:
            # oc-mirror itself prefixes "failed to filter catalog: "; the filter's text must be whole.
            assert full_form.removeprefix("failed to filter catalog: ") == message
        assert info.value.exit_code == 1
        return

    result = filter_catalog_v2(catalog, spec)
    selection = result.selection
    assert selection.bundle_names() == expected["bundles"]
    summary = selection.summary()
    assert set(summary) == set(expected["packages"])
    for name, want in expected["packages"].items():
        assert (summary[name]["defaultChannel"] or None) == want["defaultChannel"]
        assert summary[name]["channels"] == want["channels"]
    if "warning_contains" in expected:
        assert any(expected["warning_contains"] in w for w in selection.warnings), selection.warnings
    if "kept_channel_entries" in expected:
        for pkg in selection.packages.values():
            for channel, want_entries in expected["kept_channel_entries"].items():
                assert [e.to_fbc() for e in pkg.channels[channel]] == want_entries
    if "kept_deprecation_references" in expected:
        (blob,) = result.deprecations
        assert [e["reference"] for e in blob["entries"]] == expected["kept_deprecation_references"]
    if "kept_other_blobs" in expected:
        assert [b.get("name") for b in result.others] == ["global"]
    if "exact_output_fbc" in expected:
        channel_blobs = [b for b in expected["exact_output_fbc"] if b["schema"] == "olm.channel"]
        for blob in channel_blobs:
            kept = selection.packages[blob["package"]].channels[blob["name"]]
            assert [e.to_fbc() for e in kept] == blob["entries"]


@pytest.mark.parametrize("row", _table("newChannel_validation"), ids=lambda r: r["name"])
def test_channel_graph_table(row: dict) -> None:
    entries = _entries(row["entries"])
    if row.get("expectedErrorContains"):
        with pytest.raises(ChannelGraphError) as info:
            channel_graph(entries)
        for fragment in row["expectedErrorContains"]:
            assert fragment in str(info.value)
    else:
        assert channel_graph(entries).head == row["expectedHead"]


@pytest.mark.parametrize("row", _table("filterByVersionRange"), ids=lambda r: r["name"])
def test_range_table(row: dict) -> None:
    graph = channel_graph(_entries(row["entries"]))
    versions = {name: Version.parse(v) for name, v in row["versionMap"].items()}
    kept, warnings = filter_channel_by_range(graph, VersionRange.parse(row["versionRange"]), versions)
    assert sorted(kept) == row["expectedKeptBundles"]
    for fragment in row.get("expectedWarnings") or []:
        assert any(fragment in w for w in warnings), warnings


def test_table_is_complete() -> None:
    """The reference promises 15 head/cycle cases and 11 range cases; all of them run above."""
    assert len(_table("newChannel_validation")) == 15
    assert len(_table("filterByVersionRange")) == 11
