"""oc-mirror v1 conformance: every `v1-*` case of ../shared/conformance/oc-mirror-filtering.

Each case is a catalog, an ImageSetConfiguration and the result oc-mirror v1 produces (bundles,
channels and default channel per package, or the error text). Two-step cases (v1-08, v1-09) run the
first step, keep its state with `selection_state()` and feed it to the second step. v1-35 (oc-mirror's
library-level old-vs-new diff) passes the old catalog as `previous`. v1-33 checks the validation of
already filtered catalogs, so it validates the catalog directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebuild.catalog.graph import validate_catalog
from edgebuild.catalog.loader import load_catalog_dir
from edgebuild.catalog.model import Catalog
from edgebuild.catalog.select_v1 import select_v1, selection_state
from edgebuild.catalog.selection import Selection
from edgebuild.config import load_config
from edgebuild.errors import SelectionError
from tests.conftest import require_shared

FIXTURES = require_shared("conformance", "oc-mirror-filtering", module=True)
CASES = sorted(p.name for p in FIXTURES.glob("v1-*"))


def _expected(case: Path) -> dict:
    return json.loads((case / "expected.json").read_text(encoding="utf-8"))


def _spec(case: Path):
    config = load_config(case / "isc.yaml")
    assert config.semantics == "v1"
    assert len(config.operators) == 1
    return config.operators[0]


def _package_summary(expected_packages: dict) -> dict:
    return {name: {"defaultChannel": pkg["defaultChannel"],
                   "channels": {ch: sorted(bundles) for ch, bundles in pkg["channels"].items()}}
            for name, pkg in expected_packages.items()}


def _channels_as_fbc(selection: Selection) -> dict:
    """{package: {"defaultChannel", "channels": {channel: [entry as FBC]}}} of a selection."""
    return {name: {"defaultChannel": sp.default_channel,
                   "channels": {ch: sorted((e.to_fbc() for e in entries), key=lambda d: d["name"])
                                for ch, entries in sp.channels.items()}}
            for name, sp in selection.packages.items()}


def _catalog_as_fbc(catalog: Catalog) -> dict:
    return {name: {"defaultChannel": pkg.default_channel,
                   "channels": {ch.name: sorted((e.to_fbc() for e in ch.entries), key=lambda d: d["name"])
                                for ch in pkg.channels.values()}}
            for name, pkg in catalog.packages.items()}


def _expected_fbc(case: Path) -> Catalog | None:
    """The exact filtered FBC a case ships (expected-fbc.json or expected/), as a Catalog."""
    if (case / "expected-fbc.json").is_file():
        from edgebuild.catalog.loader import build_catalog
        blobs = json.loads((case / "expected-fbc.json").read_text(encoding="utf-8"))
        return build_catalog(blobs, source=str(case / "expected-fbc.json"))
    if (case / "expected").is_dir():
        return load_catalog_dir(case / "expected")
    return None


@pytest.mark.parametrize("case_name", CASES)
def test_v1_case(case_name: str) -> None:
    case = FIXTURES / case_name
    expected = _expected(case)

    if not (case / "isc.yaml").exists():  # v1-33: validation of filtered catalogs
        for rel_path, want in expected["expect"].items():
            catalog = load_catalog_dir(case / Path(rel_path).parent)
            assert validate_catalog(catalog) == want["error"]
        return

    spec = _spec(case)

    if "steps" in expected:  # v1-08 / v1-09: incremental runs
        first = select_v1(load_catalog_dir(case / "catalog" / "step1"), spec)
        assert first.bundle_names() == expected["steps"][0]["expect_catalog_bundles"]
        state = json.loads(json.dumps(selection_state(first)))  # must survive a JSON round trip
        second = select_v1(load_catalog_dir(case / "catalog" / "step2"), spec, previous=state)
        assert second.bundle_names() == expected["steps"][1]["expect_catalog_bundles"]
        return

    if (case / "catalog" / "new").is_dir():  # v1-35: differential against an old catalog
        selection = select_v1(load_catalog_dir(case / "catalog" / "new"), spec,
                              previous=load_catalog_dir(case / "catalog" / "old"))
    else:
        catalog = load_catalog_dir(case / "catalog")
        want = expected["expect"]
        if want.get("error") or want.get("error_contains"):
            with pytest.raises(SelectionError) as err:
                select_v1(catalog, spec)
            if want.get("error"):
                assert err.value.message == want["error"]
            else:
                assert want["error_contains"] in err.value.message
            return
        selection = select_v1(catalog, spec)

    want = expected["expect"]
    assert selection.bundle_names() == want["bundles"]
    if "packages" in want:
        assert selection.summary() == _package_summary(want["packages"])
    exact = _expected_fbc(case)
    if exact is not None:
        assert _channels_as_fbc(selection) == _catalog_as_fbc(exact)


def test_every_v1_case_is_collected() -> None:
    """The fixture set has 21 v1 cases; a missing directory must not silently shrink the suite."""
    assert len(CASES) == 21
