"""oc-mirror v2 selection beyond the conformance fixtures: Masterminds ranges, warnings, errors,
and real community-operators catalogs."""

from __future__ import annotations

import pytest

from edgebuild.catalog.loader import build_catalog, load_catalog_dir
from edgebuild.catalog.model import Catalog
from edgebuild.catalog.ranges_v2 import RangeError, VersionRange, pinned_version, range_from_min_max
from edgebuild.catalog.select import select
from edgebuild.catalog.select_v2 import filter_catalog_v2, select_v2
from edgebuild.config import ChannelSpec, OperatorSpec, PackageSpec, parse_config
from edgebuild.errors import SelectionError
from edgebuild.semver import Version
from tests.conftest import require_shared


def admits(constraint: str, version: str) -> bool:
    return VersionRange.parse(constraint).contains(Version.parse(version))


# --------------------------------------------------------------------------------------------------
# Masterminds constraints


@pytest.mark.parametrize("constraint, version, expected", [
    # A constraint without a prerelease never admits one ...
    (">=1.47.0", "1.51.0-1", False),
    ("<2.0.0", "1.5.0-1", False),
    ("*", "1.0.0-rc.1", False),
    ("1.x", "1.2.0-1", False),
    # ... a prerelease in the constraint admits prereleases of any X.Y.Z, in SemVer order.
    (">=1.47.1-5", "1.51.0-1", True),
    (">=1.47.1-5", "1.47.1-4", False),
    (">=1.47.1-5", "1.47.1-10", True),  # numeric identifiers compare as numbers
    (">=1.0.0-alpha", "1.0.0-alpha.1", True),  # more identifiers sort later
    (">=1.0.0-beta", "1.0.0-alpha", False),
    ("=1.2.3-1", "1.2.3-1", True),
    ("=1.2.3-1", "1.2.3", False),
    # ... and opens the whole AND group (Masterminds >= 3.4.0), not other OR groups.
    (">=1.47.1-5 <=1.60.0", "1.51.0-1", True),
    (">=1.0.0-0 <1.5.0 || >=2.0.0", "1.2.0-1", True),
    (">=1.0.0-0 <1.5.0 || >=2.0.0", "2.1.0-1", False),
    # Build metadata is ignored.
    ("<=1.42.0-5", "1.42.0-5+0.1687199951.p", True),
    ("=1.2.3", "1.2.3+build.7", True),
    (">1.2.3", "1.2.3+build.7", False),
])
def test_prerelease_and_build_rules(constraint: str, version: str, expected: bool) -> None:
    assert admits(constraint, version) is expected


@pytest.mark.parametrize("constraint, inside, outside", [
    ("1.2 - 1.4.5", ["1.2.0", "1.3.9", "1.4.5"], ["1.1.9", "1.4.6"]),
    ("1.2 - 1.4", ["1.4.0", "1.4.9"], ["1.5.0"]),  # a partial upper end admits all of 1.4
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.2.2", "1.3.0"]),
    ("~>1.2", ["1.2.0", "1.2.7"], ["1.3.0"]),
    ("~1", ["1.0.0", "1.9.9"], ["2.0.0", "0.9.0"]),
    ("^1.2.3", ["1.2.3", "1.9.9"], ["1.2.2", "2.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4", "0.1.0"]),
    ("^0", ["0.0.1", "0.9.0"], ["1.0.0"]),
    ("1.2.x", ["1.2.0", "1.2.99"], ["1.3.0", "1.1.9"]),
    ("1.X", ["1.0.0", "1.7.3"], ["2.0.0"]),
    ("*", ["0.0.1", "99.0.0"], []),
    ("=1.2", ["1.2.0", "1.2.5"], ["1.3.0"]),  # a partial '=' is a tilde
    ("<=1.2", ["1.2.9", "0.1.0"], ["1.3.0"]),  # a partial '<=' admits the whole 1.2
    (">1.2", ["1.3.0", "2.0.0"], ["1.2.9"]),  # a partial '>' needs the next minor
    (">1", ["2.0.0"], ["1.9.9"]),
    ("!=1.2.3", ["1.2.4"], ["1.2.3"]),
    ("!=1.2", ["1.3.0"], ["1.2.0", "1.2.7"]),
    (">=1.0.0, <2.0.0", ["1.5.0"], ["2.0.0"]),
    (">= 1.0.0   < 2.0.0", ["1.5.0"], ["0.9.0"]),
    (">=v1.2", ["1.2.0"], ["1.1.0"]),  # lenient versions
    ("=>1.2.0 =<1.3.0", ["1.3.0"], ["1.3.1"]),
    ("<1.0.0 || >=2.0.0", ["0.5.0", "2.0.0"], ["1.0.0"]),
])
def test_operators_and_partial_versions(constraint: str, inside: list[str], outside: list[str]) -> None:
    for version in inside:
        assert admits(constraint, version), f"{constraint} should admit {version}"
    for version in outside:
        assert not admits(constraint, version), f"{constraint} should refuse {version}"


@pytest.mark.parametrize("text", ["", "foo", ">=1.2.3abc", "1.2.", ">=1.0 ,", ">=1.0>=2.0", "==1.2", "1.2.3-"])
def test_improper_constraints_are_refused(text: str) -> None:
    with pytest.raises(RangeError, match="improper constraint"):
        VersionRange.parse(text)


def test_range_strings_as_oc_mirror_builds_and_prints_them() -> None:
    assert range_from_min_max("1.2.0", None) == ">=1.2.0"
    assert range_from_min_max(None, "2.0") == " <=2.0"  # oc-mirror's leading space, kept verbatim
    assert range_from_min_max("1.0", "2.0") == ">=1.0 <=2.0"
    assert str(VersionRange.parse(" <=2.0")) == "<=2.0"
    assert str(VersionRange.parse("1.2 - 1.4.5")) == ">=1.2 <=1.4.5"
    assert pinned_version(">=1.2.3 <=1.2.3") == "1.2.3"
    assert pinned_version(">=1.2 <=1.2.0") is None  # textual, as catalog-filter compares
    assert pinned_version(">=1.2.3") is None


# --------------------------------------------------------------------------------------------------
# Selection on small catalogs


def _catalog(channels: dict[str, list[dict]], versions: dict[str, str], default: str = "stable",
             requires: dict[str, str] | None = None, deprecations: list[dict] | None = None) -> Catalog:
    blobs: list[dict] = [{"schema": "olm.package", "name": "pkg", "defaultChannel": default},
                         {"schema": "olm.package", "name": "other", "defaultChannel": "stable"},
                         {"schema": "olm.channel", "package": "other", "name": "stable", "entries": [{"name": "o1"}]},
                         {"schema": "olm.bundle", "package": "other", "name": "o1", "image": "x/o:1",
                          "properties": [{"type": "olm.package",
                                          "value": {"packageName": "other", "version": "1.0.0"}}]}]
    for name, entries in channels.items():
        blobs.append({"schema": "olm.channel", "package": "pkg", "name": name, "entries": entries})
    for name, version in versions.items():
        props = [{"type": "olm.package", "value": {"packageName": "pkg", "version": version}}]
        if requires and name in requires:
            props.append({"type": "olm.package.required",
                          "value": {"packageName": requires[name], "versionRange": ">=1.0.0"}})
        blobs.append({"schema": "olm.bundle", "package": "pkg", "name": name, "image": f"x/pkg:{name}",
                      "properties": props})
    blobs.extend(deprecations or [])
    return build_catalog(blobs, "test")


def _spec(*packages: PackageSpec, full: bool = False) -> OperatorSpec:
    return OperatorSpec(catalog="example.com/cat:1", packages=list(packages), full=full)


LINEAR = {"stable": [{"name": "b1"}, {"name": "b2", "replaces": "b1"}, {"name": "b3", "replaces": "b2"}],
          "fast": [{"name": "b3"}, {"name": "b4", "replaces": "b3"}]}
LINEAR_VERSIONS = {"b1": "1.0.0", "b2": "2.0.0", "b3": "3.0.0", "b4": "4.0.0"}


def test_unknown_package_and_channel_are_ignored_with_nearest_names() -> None:
    catalog = _catalog(LINEAR, LINEAR_VERSIONS)
    selection = select_v2(catalog, _spec(PackageSpec("pkk"), PackageSpec(
        "pkg", channels=[ChannelSpec("stable"), ChannelSpec("fasst")])))
    assert selection.bundle_names() == ["b3"]
    assert list(selection.packages) == ["pkg"]
    assert any('package "pkk" is not in catalog' in w and "did you mean pkg" in w for w in selection.warnings)
    assert any('channel "fasst" is not in package "pkg"' in w and "did you mean fast" in w
               for w in selection.warnings)


def test_catalog_without_packages_keeps_every_channel_head_and_full_keeps_everything() -> None:
    catalog = _catalog(LINEAR, LINEAR_VERSIONS)
    assert select_v2(catalog, _spec()).summary()["pkg"]["channels"] == {"fast": ["b4"], "stable": ["b3"]}
    full = filter_catalog_v2(catalog, _spec(full=True))
    assert full.unfiltered
    assert full.selection.bundle_names() == ["b1", "b2", "b3", "b4", "o1"]


def test_unlisted_packages_get_no_default_channel_check() -> None:
    """catalog-filter checks default channels only of listed packages; a whole-catalog run does not."""
    catalog = _catalog(LINEAR, LINEAR_VERSIONS, default="gone")
    assert select_v2(catalog, _spec()).summary()["pkg"] == {
        "defaultChannel": "gone", "channels": {"fast": ["b4"], "stable": ["b3"]}}
    with pytest.raises(SelectionError, match='the default channel "gone" was filtered out'):
        select_v2(catalog, _spec(PackageSpec("pkg")))


def test_long_channel_is_filtered_without_recursion_limits() -> None:
    """5000 entries, each replacing the previous one and skipping the two before it."""
    n = 5000
    entries = [{"name": "b0"}] + [{"name": f"b{i}", "replaces": f"b{i - 1}",
                                   "skips": [f"b{j}" for j in (i - 2, i - 3) if j >= 0]} for i in range(1, n)]
    catalog = _catalog({"stable": entries}, {f"b{i}": f"1.{i}.0" for i in range(n)})
    selection = select_v2(catalog, _spec(PackageSpec("pkg", min_version="1.100.0", max_version="1.199.0")))
    assert selection.bundle_names() == sorted(f"b{i}" for i in range(100, 200))
    assert select_v2(catalog, _spec(PackageSpec("pkg"))).bundle_names() == [f"b{n - 1}"]


def test_dispatch_by_semantics() -> None:
    catalog = _catalog(LINEAR, LINEAR_VERSIONS)
    assert select(catalog, _spec(PackageSpec("pkg")), "v2").bundle_names() == ["b3", "b4"]


def test_range_emptying_a_non_default_channel_drops_it_with_a_warning() -> None:
    catalog = _catalog(LINEAR, LINEAR_VERSIONS)
    selection = select_v2(catalog, _spec(PackageSpec("pkg", max_version="3.5.0")))
    assert selection.summary()["pkg"]["channels"] == {"fast": ["b3"], "stable": ["b1", "b2", "b3"]}
    selection = select_v2(catalog, _spec(PackageSpec("pkg", channels=[
        ChannelSpec("stable"), ChannelSpec("fast", min_version="9.0.0")])))
    assert selection.summary()["pkg"]["channels"] == {"stable": ["b3"]}
    assert any('channel "fast": no bundle is in range ">=9.0.0"' in w for w in selection.warnings)


def test_range_emptying_the_default_channel_is_an_error_quoting_the_range_verbatim() -> None:
    catalog = _catalog(LINEAR, LINEAR_VERSIONS)
    with pytest.raises(SelectionError) as info:
        select_v2(catalog, _spec(PackageSpec("pkg", max_version="0.5.0")))
    assert info.value.message == ('package "pkg" channel "stable" has version range " <=0.5.0" that results in '
                                  'an empty channel')
    assert "1.0.0, 2.0.0, 3.0.0" in info.value.hint
    assert info.value.exit_code == 1


def test_pinned_version_selects_exactly_one_bundle_or_fails() -> None:
    catalog = _catalog(LINEAR, LINEAR_VERSIONS)
    spec = _spec(PackageSpec("pkg", channels=[ChannelSpec("stable", min_version="2.0.0", max_version="2.0.0")]))
    assert select_v2(catalog, spec).bundle_names() == ["b2"]
    missing = _spec(PackageSpec("pkg", channels=[ChannelSpec("stable", min_version="2.5.0", max_version="2.5.0")]))
    with pytest.raises(SelectionError) as info:
        select_v2(catalog, missing)
    assert info.value.message == "error finding specific bundle: specific version 2.5.0 not found in bundles"


def test_pinned_version_is_searched_package_wide_and_can_leave_a_channel_without_entries() -> None:
    """catalog-filter looks the pinned version up among all bundles of the package: a package-level pin
    keeps it in the channels that have it and leaves the others empty (not dropped)."""
    catalog = _catalog(LINEAR, LINEAR_VERSIONS)
    selection = select_v2(catalog, _spec(PackageSpec("pkg", min_version="1.0.0", max_version="1.0.0")))
    assert selection.summary()["pkg"]["channels"] == {"fast": [], "stable": ["b1"]}
    assert any("left without entries" in w for w in selection.warnings)


def test_full_with_a_range_is_refused() -> None:
    catalog = _catalog(LINEAR, LINEAR_VERSIONS)
    with pytest.raises(SelectionError, match="Full: true cannot be mixed with versionRange"):
        select_v2(catalog, _spec(PackageSpec("pkg", min_version="1.0.0"), full=True))


def test_multiple_heads_hint_names_heads_with_versions_and_a_pin_that_works() -> None:
    catalog = _catalog({"stable": [{"name": "b1"}, {"name": "b2", "replaces": "b1"}, {"name": "b3"}]},
                       {"b1": "1.0.0", "b2": "2.0.0", "b3": "3.0.0"})
    with pytest.raises(SelectionError) as info:
        select_v2(catalog, _spec(PackageSpec("pkg")))
    assert info.value.message == ('package "pkg" channel "stable" unable to filter head of channel: '
                                  "multiple channel heads found: [b2 b3]")
    hint = info.value.hint or ""
    assert "b2 (2.0.0), b3 (3.0.0)" in hint
    assert "minVersion: 3.0.0 and maxVersion: 3.0.0" in hint
    # The suggested pin does select a single bundle.
    pinned = _spec(PackageSpec("pkg", channels=[ChannelSpec("stable", min_version="3.0.0", max_version="3.0.0")]))
    assert select_v2(catalog, pinned).bundle_names() == ["b3"]
    # With a range the same graph error is raised without the channel prefix (catalog-filter returns it bare).
    with pytest.raises(SelectionError) as info:
        select_v2(catalog, _spec(PackageSpec("pkg", min_version="1.0.0")))
    assert info.value.message == "multiple channel heads found: [b2 b3]"


def test_default_channel_rules() -> None:
    catalog = _catalog(LINEAR, LINEAR_VERSIONS)
    with pytest.raises(SelectionError) as info:
        select_v2(catalog, _spec(PackageSpec("pkg", channels=[ChannelSpec("fast")])))
    assert info.value.message == ('invalid default channel configuration for package "pkg": the default channel '
                                  '"stable" was filtered out, a new default channel must be configured for this '
                                  'package')
    assert "defaultChannel" in (info.value.hint or "")
    chosen = select_v2(catalog, _spec(PackageSpec("pkg", default_channel="fast", channels=[ChannelSpec("fast")])))
    assert chosen.summary()["pkg"] == {"defaultChannel": "fast", "channels": {"fast": ["b4"]}}
    with pytest.raises(SelectionError, match='override "fast" does not exist in the filtered output'):
        select_v2(catalog, _spec(PackageSpec("pkg", default_channel="fast", channels=[ChannelSpec("stable")])))


def test_default_override_emptied_by_its_range_is_dropped_with_a_warning() -> None:
    catalog = _catalog(LINEAR, LINEAR_VERSIONS)
    selection = select_v2(catalog, _spec(PackageSpec("pkg", default_channel="fast", channels=[
        ChannelSpec("fast", max_version="1.0.0"), ChannelSpec("stable")])))
    assert selection.summary()["pkg"] == {"defaultChannel": "fast", "channels": {"stable": ["b3"]}}
    assert any("rebuilt catalog is invalid" in w for w in selection.warnings)


def test_out_of_range_bundles_kept_for_a_single_head_are_warned_about() -> None:
    catalog = _catalog({"stable": [{"name": "b1"}, {"name": "b3", "replaces": "b1"},
                                   {"name": "b2", "replaces": "b3"}, {"name": "b4", "replaces": "b2"}]},
                       {"b1": "1.0.0", "b2": "2.0.0", "b3": "3.0.0", "b4": "4.0.0"})
    selection = select_v2(catalog, _spec(PackageSpec("pkg", min_version="1.0.0", max_version="2.0.0")))
    assert selection.bundle_names() == ["b1", "b2", "b3"]
    assert any('including bundle "b3" with version "3.0.0": it falls outside the specified range of '
               '">=1.0.0 <=2.0.0"' in w for w in selection.warnings)


def test_missing_dependency_is_warned_not_added() -> None:
    catalog = _catalog(LINEAR, LINEAR_VERSIONS, requires={"b3": "other"})
    selection = select_v2(catalog, _spec(PackageSpec("pkg", channels=[ChannelSpec("stable")])))
    assert selection.bundle_names() == ["b3"]
    assert any("b3 requires package other" in w and "does not add dependencies" in w for w in selection.warnings)


def test_bundle_version_that_is_not_strict_semver_fails_like_oc_mirror() -> None:
    catalog = _catalog(LINEAR, {**LINEAR_VERSIONS, "b4": "v4.0"})
    with pytest.raises(SelectionError) as info:
        select_v2(catalog, _spec(PackageSpec("pkg")))
    assert info.value.message == "invalid semantic version"
    assert "b4" in (info.value.hint or "") and "'v4.0'" in (info.value.hint or "")
    # Packages that are not listed are not indexed, so they cannot fail the selection.
    assert select_v2(catalog, _spec(PackageSpec("other"))).bundle_names() == ["o1"]


def test_deprecations_follow_kept_channels_as_listed_before_version_filtering() -> None:
    deprecation = {"schema": "olm.deprecations", "package": "pkg", "entries": [
        {"reference": {"schema": "olm.package"}, "message": "p"},
        {"reference": {"schema": "olm.channel", "name": "fast"}, "message": "f"},
        {"reference": {"schema": "olm.bundle", "name": "b4"}, "message": "b4"},
        {"reference": {"schema": "olm.bundle", "name": "b1"}, "message": "b1"}]}
    catalog = _catalog(LINEAR, LINEAR_VERSIONS, deprecations=[deprecation])
    result = filter_catalog_v2(catalog, _spec(PackageSpec("pkg", channels=[
        ChannelSpec("stable"), ChannelSpec("fast", min_version="9.0.0")])))
    kept = [e["message"] for e in result.deprecations[0]["entries"]]
    # "fast" was dropped for its empty range but catalog-filter's index still lists it: its entry stays.
    assert kept == ["p", "f"]
    assert len(catalog.deprecations[0]["entries"]) == 4  # the catalog itself is not modified


def test_isc_min_version_goes_through_config() -> None:
    """A v2alpha1 ISC read by config.py reaches select_v2 with the same strings oc-mirror would build."""
    config = parse_config(
        "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n  operators:\n"
        "  - catalog: example.com/cat:1\n    packages:\n    - name: pkg\n      minVersion: '2.0'\n")
    catalog = _catalog(LINEAR, LINEAR_VERSIONS)
    selection = select_v2(catalog, config.operators[0])
    assert selection.summary()["pkg"]["channels"] == {"fast": ["b3", "b4"], "stable": ["b2", "b3"]}


# --------------------------------------------------------------------------------------------------
# Real catalogs (community-operators-prod, ../shared/catalogs)
#
# Expected bundles were worked out by hand from each package's catalog.yaml: reading every
# olm.channel's entries (name, replaces, skips) and each bundle's olm.package version, e.g.
#   grep -n -B2 -A3 "replaces\|skips" catalogs/community-operators-v4.17/infinispan/catalog.yaml
# then finding the entry nobody replaces or skips (the head) and walking `replaces` down from it.


@pytest.fixture(scope="module")
def catalog_417() -> Catalog:
    return load_catalog_dir(require_shared("catalogs", "community-operators-v4.17"))


@pytest.fixture(scope="module")
def catalog_415() -> Catalog:
    return load_catalog_dir(require_shared("catalogs", "community-operators-v4.15"))


def test_real_heads_of_every_channel_of_a_package(catalog_417: Catalog) -> None:
    # infinispan: 2.2.x is a replaces chain 2.2.0..2.2.5; in 2.3.x the entries 2.3.0..2.3.7 have no
    # edges and are all skipped by 2.3.8; 2.4.x ends at 2.4.18; stable ends at 2.5.14.
    selection = select_v2(catalog_417, _spec(PackageSpec("infinispan")))
    assert selection.summary() == {"infinispan": {"defaultChannel": "stable", "channels": {
        "2.2.x": ["infinispan-operator.v2.2.5"], "2.3.x": ["infinispan-operator.v2.3.8"],
        "2.4.x": ["infinispan-operator.v2.4.18"], "stable": ["infinispan-operator.v2.5.14"]}}}
    head = selection.packages["infinispan"].channels["2.3.x"][0]
    assert head.replaces is None and len(head.skips) == 9  # copied verbatim, dangling skips included


def test_real_single_non_default_channel(catalog_415: Catalog) -> None:
    # koku-metrics-operator (v4.15): default channel beta; alpha is a replaces chain 0.9.0 .. 4.4.1.
    only_alpha = _spec(PackageSpec("koku-metrics-operator", channels=[ChannelSpec("alpha")]))
    with pytest.raises(SelectionError, match='the default channel "beta" was filtered out'):
        select_v2(catalog_415, only_alpha)
    only_alpha.packages[0].default_channel = "alpha"
    assert select_v2(catalog_415, only_alpha).summary() == {"koku-metrics-operator": {
        "defaultChannel": "alpha", "channels": {"alpha": ["koku-metrics-operator.v4.4.1"]}}}


def test_real_version_range_cuts_the_replaces_chain(catalog_417: Catalog) -> None:
    # infinispan stable: ... 2.4.15 <- 2.4.16 <- 2.4.17 <- 2.4.18 <- 2.5.0 <- 2.5.1 <- ... <- 2.5.14.
    # In range: 2.4.16..2.5.1; new head 2.5.1 (lowest with the most in-range bundles), tail 2.4.15.
    spec = _spec(PackageSpec("infinispan", channels=[
        ChannelSpec("stable", min_version="2.4.16", max_version="2.5.1")]))
    selection = select_v2(catalog_417, spec)
    assert selection.summary()["infinispan"]["channels"] == {"stable": [
        "infinispan-operator.v2.4.16", "infinispan-operator.v2.4.17", "infinispan-operator.v2.4.18",
        "infinispan-operator.v2.5.0", "infinispan-operator.v2.5.1"]}
    assert not [w for w in selection.warnings if "including bundle" in w]


def test_real_version_range_keeps_in_range_skips(catalog_417: Catalog) -> None:
    # infinispan 2.4.x: 2.4.0 replaces 2.3.8, which skips 2.3.0..2.3.7 (none of them replaces anything).
    # Range 2.3.5..2.4.1: chain part 2.4.1, 2.4.0, 2.3.8 plus the in-range skips 2.3.5, 2.3.6, 2.3.7.
    spec = _spec(PackageSpec("infinispan", default_channel="2.4.x", channels=[
        ChannelSpec("2.4.x", min_version="2.3.5", max_version="2.4.1")]))
    assert select_v2(catalog_417, spec).summary()["infinispan"]["channels"]["2.4.x"] == [
        f"infinispan-operator.v{v}" for v in ("2.3.5", "2.3.6", "2.3.7", "2.3.8", "2.4.0", "2.4.1")]


def test_real_package_range_applies_to_every_channel(catalog_415: Catalog) -> None:
    # koku-metrics-operator (v4.15): alpha and beta both hold 0.9.0 .. 4.4.1; >=4.0.0 keeps 4.0.0 .. 4.4.1.
    selection = select_v2(catalog_415, _spec(PackageSpec("koku-metrics-operator", min_version="4.0.0")))
    expected = [f"koku-metrics-operator.v{v}" for v in ("4.0.0", "4.1.0", "4.2.0", "4.3.0", "4.3.1", "4.4.0", "4.4.1")]
    assert selection.summary()["koku-metrics-operator"]["channels"] == {"alpha": expected, "beta": expected}


@pytest.mark.parametrize("min_version, max_version, expected", [
    # release-1.7: v1.7.0 replaces v1.7.0-alpha (version 1.7.0-alpha, a prerelease).
    ("1.6.0", None, ["multicluster-global-hub-operator.v1.7.0"]),
    ("1.7.0-alpha", None, ["multicluster-global-hub-operator.v1.7.0", "multicluster-global-hub-operator.v1.7.0-alpha"]),
    # The prerelease on maxVersion opens the whole group: 1.7.0-alpha is in, 1.7.0 is above it.
    ("1.0.0", "1.7.0-alpha", ["multicluster-global-hub-operator.v1.7.0-alpha"]),
])
def test_real_prerelease_bundle(catalog_417: Catalog, min_version: str, max_version: str | None,
                                expected: list[str]) -> None:
    spec = _spec(PackageSpec("multicluster-global-hub-operator", channels=[
        ChannelSpec("release-1.7", min_version=min_version, max_version=max_version)]))
    assert select_v2(catalog_417, spec).bundle_names() == expected


def test_real_whole_catalog_heads(catalog_417: Catalog) -> None:
    # 29 packages, 71 channels; one head per channel, several channels share their head.
    selection = select_v2(catalog_417, _spec())
    assert len(selection.packages) == 29
    assert sum(len(p.channels) for p in selection.packages.values()) == 71
    assert all(len(entries) == 1 for p in selection.packages.values() for entries in p.channels.values())
    assert selection.packages["rabbitmq-cluster-operator"].channels["stable"][0].name == \
        "rabbitmq-cluster-operator.v2.20.1"


# --------------------------------------------------------------------------------------------------
# v1 fixtures whose expected.json carries the oc-mirror v2 outcome of the same ISC


@pytest.mark.parametrize("case", ["v1-01-heads-only-with-dependencies", "v1-04-package-full-with-dependencies",
                                  "v1-05-min-equals-max-version", "v1-06-min-max-range", "v1-07-max-version"])
def test_v2_contrast_of_v1_cases(case: str) -> None:
    import json

    folder = require_shared("conformance", "oc-mirror-filtering", case)
    contrast = json.loads((folder / "expected.json").read_text())["expect"].get("v2_contrast") or \
        json.loads((folder / "expected.json").read_text())["v2_contrast"]
    catalog_dir = folder / "catalog"
    if not any(catalog_dir.glob("*.yaml")) and not any(catalog_dir.glob("*/*.yaml")):
        catalog_dir = next(p for p in catalog_dir.iterdir() if p.is_dir())
    catalog = load_catalog_dir(catalog_dir)
    config = parse_config((folder / "isc.yaml").read_text(), str(folder / "isc.yaml"))
    (spec,) = config.operators
    if contrast.get("error"):
        with pytest.raises(SelectionError) as info:
            select_v2(catalog, spec)
        assert contrast["error"].removeprefix("failed to filter catalog: ") == info.value.message
    else:
        assert select_v2(catalog, spec).bundle_names() == contrast["bundles"]
