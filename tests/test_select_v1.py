"""oc-mirror v1 selection beyond the conformance fixtures: graph rules, ranges, dependencies, errors
with their hints, incremental state, speed on big channels, and real community catalogs."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from edgebuild.catalog.graph import ChannelGraphError, channel_head, channel_heads, validate_catalog, validate_channel
from edgebuild.catalog.loader import build_catalog, load_catalog_dir
from edgebuild.catalog.model import Catalog, ChannelEntry
from edgebuild.catalog.ranges_v1 import RangeError, parse_range
from edgebuild.catalog.select_v1 import select_v1, selection_state
from edgebuild.config import ChannelSpec, OperatorSpec, PackageSpec, parse_config
from edgebuild.errors import SelectionError
from edgebuild.semver import Version
from tests.conftest import require_shared

# --------------------------------------------------------------------------------------------------
# helpers: small catalogs written as FBC blobs


def _bundle(pkg: str, name: str, version: str, requires: list[tuple[str, str]] = (),
            provides: list[tuple[str, str, str]] = (), requires_gvk: list[tuple[str, str, str]] = ()) -> dict:
    props: list[dict[str, Any]] = [{"type": "olm.package", "value": {"packageName": pkg, "version": version}}]
    props += [{"type": "olm.package.required", "value": {"packageName": p, "versionRange": r}} for p, r in requires]
    props += [{"type": "olm.gvk", "value": {"group": g, "version": v, "kind": k}} for g, v, k in provides]
    props += [{"type": "olm.gvk.required", "value": {"group": g, "version": v, "kind": k}} for g, v, k in requires_gvk]
    return {"schema": "olm.bundle", "package": pkg, "name": name, "image": f"reg.example/{pkg}/bundle:{version}",
            "properties": props}


def _channel(pkg: str, name: str, entries: list[dict], priority: int | None = None) -> dict:
    blob: dict[str, Any] = {"schema": "olm.channel", "package": pkg, "name": name, "entries": entries}
    if priority is not None:
        blob["properties"] = [{"type": "olm.channel", "value": {"channelName": name, "priority": priority}}]
    return blob


def _package(name: str, default: str) -> dict:
    return {"schema": "olm.package", "name": name, "defaultChannel": default}


def _chain(pkg: str, versions: list[str]) -> list[dict]:
    """Entries of a linear replaces chain pkg.v<versions[0]> <- pkg.v<versions[1]> <- ..."""
    out = []
    for i, v in enumerate(versions):
        entry: dict[str, Any] = {"name": f"{pkg}.v{v}"}
        if i:
            entry["replaces"] = f"{pkg}.v{versions[i - 1]}"
        out.append(entry)
    return out


def _linear_package(pkg: str, versions: list[str], channel: str = "stable", **bundle_kw: Any) -> list[dict]:
    return ([_package(pkg, channel), _channel(pkg, channel, _chain(pkg, versions))]
            + [_bundle(pkg, f"{pkg}.v{v}", v, **bundle_kw) for v in versions])


def _spec(*packages: PackageSpec, full: bool = False, skip_deps: bool = False) -> OperatorSpec:
    return OperatorSpec(catalog="reg.example/catalog:latest", packages=list(packages), full=full,
                        skip_dependencies=skip_deps)


def E(name: str, replaces: str | None = None, skips: tuple[str, ...] = ()) -> ChannelEntry:
    return ChannelEntry(name, replaces, skips)


# --------------------------------------------------------------------------------------------------
# graph rules (operator-registry model validation)


def test_head_counts_replaces_and_skips_but_not_skip_range() -> None:
    entries = [E("a"), E("b", "a"), E("c", skips=("b",)), ChannelEntry("d", None, (), ">=0.0.1 <9.0.0")]
    assert channel_heads(entries) == ["c", "d"]
    with pytest.raises(ChannelGraphError, match="multiple channel heads found in graph: c, d") as err:
        channel_head(entries)
    assert err.value.heads == ["c", "d"]


def test_no_head_when_every_entry_is_replaced() -> None:
    assert validate_channel([E("a", "b"), E("b", "a")]) == "no channel head found in graph"


def test_cycle_below_the_head_is_reported_as_a_path() -> None:
    entries = [E("head", "a"), E("a", "b"), E("b", "c"), E("c", "a")]
    assert validate_channel(entries) == "detected cycle in replaces chain of upgrade graph: a -> b -> c -> a"


def test_stranded_bundles_are_listed_and_skipped_ones_are_not() -> None:
    entries = [E("v3", "v2", skips=("v1",)), E("v2"), E("v1"), E("lost-b"), E("lost-a")]
    assert validate_channel(entries) == ("multiple channel heads found in graph: lost-a, lost-b, v3")
    entries = [E("v3", "v2", skips=("v1", "lost")), E("v2"), E("v1"), E("lost"), E("old", "v0")]
    assert validate_channel(entries) == ("multiple channel heads found in graph: old, v3")
    # a bundle replaced by something off the head's chain is stranded
    entries = [E("v3", "v2"), E("v2", "v1"), E("v1"), E("x", "side"), E("side")]
    assert channel_heads(entries) == ["v3", "x"]
    entries = [E("v3", "v2", skips=("x",)), E("v2", "v1"), E("v1"), E("x", "side"), E("side")]
    assert validate_channel(entries) == "channel contains one or more stranded bundles: side"


def test_empty_channel_and_missing_default_channel_in_a_catalog() -> None:
    assert validate_channel([]) == "channel must contain at least one bundle"
    catalog = build_catalog([_package("p", "gone"), _channel("p", "stable", [{"name": "p.v1"}]),
                             _bundle("p", "p.v1", "1.0.0")])
    assert validate_catalog(catalog) == ('invalid index:\n└── invalid package "p":\n'
                                         '    └── invalid channel "gone":\n'
                                         '        └── channel must contain at least one bundle')


def test_validation_tree_uses_branches_for_several_errors() -> None:
    blobs = [_package("p", "a"), _channel("p", "a", [{"name": "x"}, {"name": "y"}]),
             _channel("p", "b", [{"name": "x", "replaces": "y"}, {"name": "y", "replaces": "x"}]),
             _bundle("p", "x", "1.0.0"), _bundle("p", "y", "2.0.0")]
    assert validate_catalog(build_catalog(blobs)) == (
        'invalid index:\n└── invalid package "p":\n'
        '    ├── invalid channel "a":\n    │   └── multiple channel heads found in graph: x, y\n'
        '    └── invalid channel "b":\n        └── no channel head found in graph')


def _big_channel(n: int, skips: int) -> list[dict]:
    """A channel of n bundles, each replacing the previous one and skipping the `skips` before that."""
    entries = []
    for i in range(n):
        entry: dict[str, Any] = {"name": f"big.v1.0.{i}"}
        if i:
            entry["replaces"] = f"big.v1.0.{i - 1}"
            entry["skips"] = [f"big.v1.0.{j}" for j in range(max(0, i - 1 - skips), i - 1)]
        entries.append(entry)
    return entries


def test_big_channel_with_many_skips_is_fast() -> None:
    """3000 bundles with up to 95 skips each (OCPBUGS-52471's shape): validate, heads, minVersion fill."""
    n = 3000
    blobs = ([_package("big", "stable"), _channel("big", "stable", _big_channel(n, 95))]
             + [_bundle("big", f"big.v1.0.{i}", f"1.0.{i}") for i in range(n)])
    catalog = build_catalog(blobs)
    started = time.perf_counter()
    assert validate_catalog(catalog) is None
    heads = select_v1(catalog, _spec())
    filled = select_v1(catalog, _spec(PackageSpec("big", channels=[ChannelSpec("stable", min_version="1.0.0")])))
    ranged = select_v1(catalog, _spec(PackageSpec("big", min_version="1.0.100", max_version="1.0.2999")))
    elapsed = time.perf_counter() - started
    assert heads.bundle_names() == [f"big.v1.0.{n - 1}"]
    assert len(filled.bundle_names()) == n
    assert len(ranged.bundle_names()) == n - 100
    assert elapsed < 5, f"selection on a {n}-bundle channel took {elapsed:.1f}s"


# --------------------------------------------------------------------------------------------------
# blang/semver ranges


@pytest.mark.parametrize("text, inside, outside", [
    (">=1.0.0 <2.0.0", ["1.0.0", "1.9.9", "1.5.0-rc.1"], ["0.9.9", "2.0.0", "1.0.0-rc.1"]),
    ("<0.2.0", ["0.1.0", "0.2.0-alpha"], ["0.2.0"]),
    ("<0.1.0 || >=2.0.0", ["0.0.1", "2.0.0", "3.1.4"], ["0.1.0", "1.9.0"]),
    ("!=1.2.3", ["1.2.4", "1.2.3-1"], ["1.2.3", "1.2.3+build.5"]),
    ("1.2.3", ["1.2.3"], ["1.2.4"]),
    ("==1.2.3", ["1.2.3"], ["1.2.2"]),
    (">= 1.0.0", ["1.0.0"], ["0.9.0"]),
    ("1.x", ["1.0.0", "1.99.0"], ["2.0.0", "0.9.0"]),
    ("1.2.x", ["1.2.0", "1.2.9"], ["1.3.0", "1.1.9"]),
    (">1.2.x", ["1.3.0"], ["1.2.9"]),
    ("<=1.x", ["1.9.0"], ["2.0.0"]),
    # blang expands "!=1.2.x" to "<1.2.0" AND ">=1.3.0" in one group, which nothing satisfies: kept for parity
    ("!=1.2.x", [], ["1.1.0", "1.2.5", "1.3.0"]),
    ("1.x.x", ["1.0.5"], ["1.1.0"]),  # blang reads 1.x.x as a patch wildcard (1.0.x): kept for parity
])
def test_blang_ranges(text: str, inside: list[str], outside: list[str]) -> None:
    rng = parse_range(text)
    for v in inside:
        assert rng(Version.parse(v)), f"{v} should be in {text}"
    for v in outside:
        assert not rng(Version.parse(v)), f"{v} should not be in {text}"


@pytest.mark.parametrize("text, message", [
    ("", "Last element in range is '||'"),
    ("|| <1.0.0", "First element in range is '||'"),
    (">=1.0", "Could not parse version"),
    ("~1.0.0", "Could not parse comparator"),
    ("v1.0.0", "Could not parse comparator"),
    (">=1.0.0||<0.5.0", "Could not parse version"),
])
def test_blang_range_errors(text: str, message: str) -> None:
    with pytest.raises(RangeError, match=message):
        parse_range(text)


def test_range_matches_strings_and_ignores_unparsable() -> None:
    rng = parse_range(">=1.0.0")
    assert rng.matches("1.0.0") and not rng.matches("v1.0.0") and not rng.matches(None)


# --------------------------------------------------------------------------------------------------
# package / channel rules


FOO = _linear_package("foo", ["0.1.0", "0.2.0", "0.3.0", "0.4.0"])


def test_package_min_version_is_exact_plus_path_to_head() -> None:
    sel = select_v1(build_catalog(FOO), _spec(PackageSpec("foo", min_version="0.2.0")))
    assert sel.bundle_names() == ["foo.v0.2.0", "foo.v0.3.0", "foo.v0.4.0"]


def test_package_min_version_matches_a_build_suffix_ocpbugs_588() -> None:
    blobs = [_package("op", "stable"), _channel("op", "stable", [
        {"name": "op.v4.11.0-202208291725"}, {"name": "op.v4.12.0", "replaces": "op.v4.11.0-202208291725"}]),
        _bundle("op", "op.v4.11.0-202208291725", "4.11.0-202208291725"), _bundle("op", "op.v4.12.0", "4.12.0")]
    spec = _spec(PackageSpec("op", channels=[ChannelSpec("stable", min_version="4.11.0")]))
    sel = select_v1(build_catalog(blobs), spec)
    assert sel.bundle_names() == ["op.v4.11.0-202208291725", "op.v4.12.0"]


def test_package_min_version_drops_channels_without_it() -> None:
    blobs = FOO + [_channel("foo", "fast", _chain("foo", ["0.3.0", "0.4.0"]))]
    sel = select_v1(build_catalog(blobs), _spec(PackageSpec("foo", min_version="0.2.0")))
    assert sel.summary()["foo"]["channels"] == {"stable": ["foo.v0.2.0", "foo.v0.3.0", "foo.v0.4.0"]}


def test_package_min_version_with_listed_channel_reselects_every_channel() -> None:
    """v1 quirk: the listed channel's head-only selection is replaced by the pkg minVersion fill,
    and an unlisted channel comes back too."""
    blobs = FOO + [_channel("foo", "fast", _chain("foo", ["0.2.0", "0.4.0"]))]
    spec = _spec(PackageSpec("foo", min_version="0.2.0", channels=[ChannelSpec("stable")]))
    sel = select_v1(build_catalog(blobs), spec)
    assert sel.summary()["foo"]["channels"] == {"fast": ["foo.v0.2.0", "foo.v0.4.0"],
                                                "stable": ["foo.v0.2.0", "foo.v0.3.0", "foo.v0.4.0"]}
    assert any("re-select every channel" in w for w in sel.warnings)


def test_package_range_is_not_applied_to_listed_channels() -> None:
    spec = _spec(PackageSpec("foo", max_version="0.2.0", channels=[ChannelSpec("stable")]))
    assert select_v1(build_catalog(FOO), spec).bundle_names() == ["foo.v0.4.0"]


def test_package_range_and_channel_range_together_is_an_include_error() -> None:
    spec = _spec(PackageSpec("foo", max_version="0.2.0", channels=[ChannelSpec("stable", max_version="0.3.0")]))
    with pytest.raises(SelectionError, match='range setting is mutually exclusive between package and channel'):
        select_v1(build_catalog(FOO), spec)


def test_min_bundle_keeps_the_whole_channel_and_says_so() -> None:
    spec = _spec(PackageSpec("foo", channels=[ChannelSpec("stable", min_bundle="foo.v0.3.0")]))
    sel = select_v1(build_catalog(FOO), spec)
    assert len(sel.bundle_names()) == 4
    assert any("minBundle foo.v0.3.0 has no effect" in w for w in sel.warnings)


def test_channel_min_version_missing_is_an_error_with_nearest_versions() -> None:
    spec = _spec(PackageSpec("foo", channels=[ChannelSpec("stable", min_version="0.2.5")]))
    with pytest.raises(SelectionError) as err:
        select_v1(build_catalog(FOO), spec)
    assert err.value.message == ('error generating diff: error including items:\n'
                                 '[package="foo" channel="stable"] bundles do not exist in channel: versions=["0.2.5"]')
    assert "nearest: 0.1.0, 0.2.0, 0.3.0, 0.4.0" in err.value.hint


def test_unknown_package_suggests_near_names() -> None:
    with pytest.raises(SelectionError) as err:
        select_v1(build_catalog(FOO), _spec(PackageSpec("fooo")))
    assert err.value.message.endswith('[package="fooo"] package does not exist in new model')
    assert "did you mean 'foo'" in err.value.hint


def test_unknown_channel_lists_the_channels() -> None:
    with pytest.raises(SelectionError) as err:
        select_v1(build_catalog(FOO), _spec(PackageSpec("foo", channels=[ChannelSpec("stabel")])))
    assert '[package="foo" channel="stabel"] channel does not exist in new model' in err.value.message
    assert "its channels are stable (nearest: stable)" in err.value.hint


def test_range_matching_nothing_reports_operator_not_found() -> None:
    with pytest.raises(SelectionError) as err:
        select_v1(build_catalog(FOO), _spec(PackageSpec("foo", min_version="1.0.0", max_version="2.0.0")))
    assert err.value.message == ("Operator foo was not found, please check name, minVersion, maxVersion, and "
                                 "channels in the config file.")
    assert "versions span 0.1.0 .. 0.4.0" in err.value.hint


def test_multiple_heads_error_names_versions_and_a_working_range() -> None:
    """A range that keeps two parallel bundles: both become heads; the hint says which bound fixes it."""
    blobs = [_package("p", "stable"), _channel("p", "stable", [
        {"name": "p.v1.0.0"}, {"name": "p.v1.1.0"},
        {"name": "p.v2.0.0", "replaces": "p.v1.1.0", "skips": ["p.v1.0.0"]}])]
    blobs += [_bundle("p", f"p.v{v}", v) for v in ("1.0.0", "1.1.0", "2.0.0")]
    with pytest.raises(SelectionError) as err:
        select_v1(build_catalog(blobs), _spec(PackageSpec("p", min_version="1.0.0", max_version="1.1.0")))
    assert err.value.message.endswith("multiple channel heads found in graph: p.v1.0.0, p.v1.1.0")
    assert "p.v1.0.0 (1.0.0), p.v1.1.0 (1.1.0)" in err.value.hint
    assert "maxVersion 2.0.0 (head p.v2.0.0)" in err.value.hint
    assert "minVersion 1.1.0 (head p.v1.1.0)" in err.value.hint


def test_invalid_source_catalog_fails_before_filtering() -> None:
    blobs = FOO + [_package("bad", "stable"), _channel("bad", "stable", [{"name": "b1"}, {"name": "b2"}]),
                   _bundle("bad", "b1", "1.0.0"), _bundle("bad", "b2", "2.0.0")]
    with pytest.raises(SelectionError) as err:
        select_v1(build_catalog(blobs), _spec(PackageSpec("foo")))
    assert err.value.message.startswith("error converting new declarative config to model: invalid index:")
    assert "multiple channel heads found in graph: b1, b2" in err.value.message


def test_full_catalog_without_packages_is_not_validated() -> None:
    blobs = [_package("bad", "stable"), _channel("bad", "stable", [{"name": "b1"}, {"name": "b2"}]),
             _bundle("bad", "b1", "1.0.0"), _bundle("bad", "b2", "2.0.0")]
    assert select_v1(build_catalog(blobs), _spec(full=True)).bundle_names() == ["b1", "b2"]


# --------------------------------------------------------------------------------------------------
# default channel


def _two_channels(default: str, priorities: tuple[int | None, int | None] = (None, None)) -> list[dict]:
    return ([_package("p", default), _channel("p", "a", _chain("p", ["1.0.0"]), priorities[0]),
             _channel("p", "b", _chain("p", ["2.0.0"]), priorities[1]), _channel("p", "c", _chain("p", ["3.0.0"]))]
            + [_bundle("p", f"p.v{v}", v) for v in ("1.0.0", "2.0.0", "3.0.0")])


def test_user_default_channel_is_ignored_when_the_catalog_default_survives() -> None:
    spec = _spec(PackageSpec("p", default_channel="b", channels=[ChannelSpec("a"), ChannelSpec("b")]))
    sel = select_v1(build_catalog(_two_channels("a")), spec)
    assert sel.packages["p"].default_channel == "a"
    assert any("defaultChannel 'b' has no effect" in w for w in sel.warnings)


def test_user_default_channel_not_listed_fails_as_oc_mirror_does() -> None:
    # oc-mirror v1's command (mirror.go) checks this before its diff engine would report 'invalid channel "c"'.
    spec = _spec(PackageSpec("p", default_channel="c", channels=[ChannelSpec("a"), ChannelSpec("b")]))
    with pytest.raises(SelectionError) as err:
        select_v1(build_catalog(_two_channels("c")), spec)
    assert err.value.message.startswith("defaultChannel has been set with 'c'")


def test_default_channel_by_priority_and_undeterminable() -> None:
    spec = _spec(PackageSpec("p", channels=[ChannelSpec("a"), ChannelSpec("b")]))
    assert select_v1(build_catalog(_two_channels("c", (5, 9))), spec).packages["p"].default_channel == "b"
    with pytest.raises(SelectionError, match='the current default channel "c" for package "p" could not be determined'):
        select_v1(build_catalog(_two_channels("c")), spec)


# --------------------------------------------------------------------------------------------------
# dependencies


def test_dependency_prefers_the_default_channel_on_equal_versions() -> None:
    blobs = _linear_package("app", ["1.0.0"], requires=[("lib", ">=1.0.0")])
    blobs += [_package("lib", "stable"), _channel("lib", "fast", _chain("lib", ["1.0.0", "2.0.0"])),
              _channel("lib", "stable", _chain("lib", ["2.0.0"]))]
    blobs += [_bundle("lib", f"lib.v{v}", v) for v in ("1.0.0", "2.0.0")]
    sel = select_v1(build_catalog(blobs), _spec(PackageSpec("app")))
    assert sel.summary()["lib"] == {"defaultChannel": "stable", "channels": {"stable": ["lib.v2.0.0"]}}


def test_dependencies_are_transitive_and_unsatisfiable_ones_are_ignored() -> None:
    blobs = _linear_package("app", ["1.0.0"], requires=[("lib", "<2.0.0"), ("missing", ">=1.0.0")])
    blobs += _linear_package("lib", ["1.0.0", "1.5.0", "2.0.0"], requires_gvk=[("base.io", "v1", "Base")])
    blobs += _linear_package("base", ["0.1.0", "0.2.0"], provides=[("base.io", "v1", "Base")])
    sel = select_v1(build_catalog(blobs), _spec(PackageSpec("app")))
    assert sel.bundle_names() == ["app.v1.0.0", "base.v0.2.0", "lib.v1.5.0", "lib.v2.0.0"]
    assert select_v1(build_catalog(blobs), _spec(PackageSpec("app"), skip_deps=True)).bundle_names() == ["app.v1.0.0"]


def test_dependency_skipped_by_its_head_is_not_added_ocpbugs_11371() -> None:
    blobs = _linear_package("app", ["1.0.0"], requires=[("lib", "<2.0.0")])
    blobs += [_package("lib", "stable"), _channel("lib", "stable", [
        {"name": "lib.v1.0.0"}, {"name": "lib.v2.0.0", "skips": ["lib.v1.0.0"]}])]
    blobs += [_bundle("lib", f"lib.v{v}", v) for v in ("1.0.0", "2.0.0")]
    sel = select_v1(build_catalog(blobs), _spec(PackageSpec("app")))
    assert sel.bundle_names() == ["app.v1.0.0"]
    assert any("skipped by the channel head lib.v2.0.0" in w for w in sel.warnings)


def test_dependency_off_the_replaces_chain_is_an_error() -> None:
    blobs = _linear_package("app", ["1.0.0"], requires=[("lib", "<2.0.0")])
    # valid channel: head v2.0.0 -> v1.5.0; v1.9.0 is skipped by v1.5.0 (not by the head) and replaces a
    # bundle that is not there, so the replaces chains of v1.9.0 and of the head never meet.
    blobs += [_package("lib", "stable"), _channel("lib", "stable", [
        {"name": "lib.v2.0.0", "replaces": "lib.v1.5.0"}, {"name": "lib.v1.5.0", "skips": ["lib.v1.9.0"]},
        {"name": "lib.v1.9.0", "replaces": "lib.v1.8.0"}])]
    blobs += [_bundle("lib", f"lib.v{v}", v) for v in ("1.5.0", "1.9.0", "2.0.0")]
    with pytest.raises(SelectionError,
                       match='channel stable: head "lib.v2.0.0" not reachable from bundle "lib.v1.9.0"'):
        select_v1(build_catalog(blobs), _spec(PackageSpec("app")))


def test_invalid_required_range_names_the_bundle() -> None:
    blobs = _linear_package("app", ["1.0.0"], requires=[("lib", "~1.0")]) + _linear_package("lib", ["1.0.0"])
    with pytest.raises(SelectionError, match="bundle app.v1.0.0: invalid olm.package.required versionRange '~1.0'"):
        select_v1(build_catalog(blobs), _spec(PackageSpec("app")))


# --------------------------------------------------------------------------------------------------
# incremental state


def test_selection_state_is_json_and_drives_the_next_run() -> None:
    step1 = build_catalog(_linear_package("foo", ["0.1.0", "0.2.0"]))
    first = select_v1(step1, _spec())
    state = selection_state(first)
    assert state == {"foo": {"stable": {"startingVersion": "0.2.0", "bundles": ["foo.v0.2.0"]}}}
    step2 = build_catalog(_linear_package("foo", ["0.1.0", "0.2.0", "0.3.0", "0.4.0"])
                          + _linear_package("new", ["1.0.0", "1.1.0"]))
    second = select_v1(step2, _spec(), previous=json.loads(json.dumps(state)))
    assert second.bundle_names() == ["foo.v0.2.0", "foo.v0.3.0", "foo.v0.4.0", "new.v1.1.0"]


def test_incremental_pruned_starting_version_moves_to_the_next_one() -> None:
    state = {"foo": {"stable": {"startingVersion": "0.2.0", "bundles": ["foo.v0.2.0"]}}}
    step2 = build_catalog(_linear_package("foo", ["0.3.0", "0.4.0", "0.5.0"]))
    assert select_v1(step2, _spec(), previous=state).bundle_names() == ["foo.v0.3.0", "foo.v0.4.0", "foo.v0.5.0"]


def test_incremental_with_packages_v1_09_include_variant() -> None:
    """v1-09's second config (imageset-config-filter-multi-prune.yaml: packages foo, bar minVersion 0.1.0)
    gives the same two steps as the catalog-wide run (e2e pruned_catalogs_with_include)."""
    case = require_shared("conformance", "oc-mirror-filtering", "v1-09-incremental-pruned-catalog")
    spec = _spec(PackageSpec("foo"), PackageSpec("bar", min_version="0.1.0"))
    first = select_v1(load_catalog_dir(case / "catalog" / "step1"), spec)
    assert first.bundle_names() == ["bar.v0.1.0", "foo.v0.1.1"]
    second = select_v1(load_catalog_dir(case / "catalog" / "step2"), spec, previous=selection_state(first))
    assert second.bundle_names() == ["bar.v0.1.0", "foo.v0.2.0"]


def test_incremental_state_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(SelectionError, match="previous run state is not in the form"):
        select_v1(build_catalog(FOO), _spec(), previous={"foo": ["foo.v0.1.0"]})


def test_config_to_selection_end_to_end() -> None:
    text = ("apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\nmirror:\n  operators:\n"
            "  - catalog: reg.example/catalog:latest\n    packages:\n    - name: foo\n      channels:\n"
            "      - name: stable\n        minVersion: 0.3.0\n")
    spec = parse_config(text).operators[0]
    assert select_v1(build_catalog(FOO), spec).bundle_names() == ["foo.v0.3.0", "foo.v0.4.0"]


# --------------------------------------------------------------------------------------------------
# real catalogs (community-operators-prod, ../shared/catalogs)

@pytest.fixture(scope="module")
def v417() -> Catalog:
    return load_catalog_dir(require_shared("catalogs", "community-operators-v4.17"))


@pytest.fixture(scope="module")
def v415() -> Catalog:
    return load_catalog_dir(require_shared("catalogs", "community-operators-v4.15"))


def test_real_catalogs_are_valid_models(v417: Catalog, v415: Catalog) -> None:
    assert validate_catalog(v417) is None
    assert validate_catalog(v415) is None


def test_real_heads_only_whole_catalog(v417: Catalog, v415: Catalog) -> None:
    # Checked by reading the YAML: kube-green/catalog.yaml has one channel `alpha`, a linear replaces chain
    # v0.3.0 <- v0.3.1 <- ... <- v0.7.1 (no skips), so its head is kube-green.v0.7.1. infinispan's `stable`
    # channel ends with v2.5.14 (replaces v2.5.13), its `2.2.x` channel with v2.2.5, `2.3.x` with v2.3.8 (which
    # skips v2.3.0..v2.3.7), `2.4.x` with v2.4.18 (replaces v2.4.17).
    for catalog in (v417, v415):
        sel = select_v1(catalog, _spec(skip_deps=True))
        assert set(sel.packages) == set(catalog.packages)
        for sp in sel.packages.values():
            assert all(len(entries) == 1 for entries in sp.channels.values())
    sel = select_v1(v417, _spec(skip_deps=True))
    assert sel.summary()["kube-green"] == {"defaultChannel": "alpha", "channels": {"alpha": ["kube-green.v0.7.1"]}}
    assert sel.summary()["infinispan"] == {"defaultChannel": "stable", "channels": {
        "2.2.x": ["infinispan-operator.v2.2.5"], "2.3.x": ["infinispan-operator.v2.3.8"],
        "2.4.x": ["infinispan-operator.v2.4.18"], "stable": ["infinispan-operator.v2.5.14"]}}


def test_real_single_package_channel_min_version(v417: Catalog) -> None:
    # kube-green alpha chain (see above): minVersion 0.5.1 is that bundle plus every bundle up to the head.
    spec = _spec(PackageSpec("kube-green", channels=[ChannelSpec("alpha", min_version="0.5.1")]))
    assert select_v1(v417, spec).bundle_names() == [
        "kube-green.v0.5.1", "kube-green.v0.5.2", "kube-green.v0.6.0", "kube-green.v0.7.0", "kube-green.v0.7.1"]


def test_real_version_range(v417: Catalog) -> None:
    # infinispan with maxVersion 2.4.0 keeps, in every channel, the bundles <= 2.4.0 (plain membership):
    # 2.2.x keeps all six 2.2.* bundles; 2.3.x keeps 2.3.0..2.3.8; 2.4.x and stable keep 2.3.0..2.3.8 and 2.4.0.
    # Each channel still has one head: 2.2.5, 2.3.8 (skips 2.3.0-2.3.7), 2.4.0 (replaces 2.3.8).
    sel = select_v1(v417, _spec(PackageSpec("infinispan", max_version="2.4.0"), full=True))
    channels = sel.summary()["infinispan"]["channels"]
    v23 = [f"infinispan-operator.v2.3.{i}" for i in range(9)]
    assert channels == {"2.2.x": [f"infinispan-operator.v2.2.{i}" for i in range(6)], "2.3.x": v23,
                        "2.4.x": v23 + ["infinispan-operator.v2.4.0"], "stable": v23 + ["infinispan-operator.v2.4.0"]}
    assert sel.packages["infinispan"].default_channel == "stable"


def test_real_range_with_parallel_bundles_fails_with_a_hint(v417: Catalog) -> None:
    # infinispan 2.3.0..2.3.7 neither replace nor skip each other; only 2.3.8 skips them all. A range
    # ending at 2.3.7 therefore leaves eight heads, and maxVersion 2.3.8 would leave one.
    spec = _spec(PackageSpec("infinispan", min_version="2.3.0", max_version="2.3.7"), skip_deps=True)
    with pytest.raises(SelectionError) as err:
        select_v1(v417, spec)
    assert 'invalid channel "stable":' in err.value.message
    assert "multiple channel heads found in graph: infinispan-operator.v2.3.0, infinispan-operator.v2.3.1" in \
        err.value.message
    assert "maxVersion 2.3.8 (head infinispan-operator.v2.3.8)" in err.value.hint


def test_real_v415_single_package(v415: Catalog) -> None:
    # kube-green in v4.15 is the same linear alpha chain; its head is also kube-green.v0.7.1.
    sel = select_v1(v415, _spec(PackageSpec("kube-green")))
    assert sel.summary() == {"kube-green": {"defaultChannel": "alpha", "channels": {"alpha": ["kube-green.v0.7.1"]}}}
