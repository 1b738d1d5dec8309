"""Incremental mirroring (oc-mirror v1 with a storageConfig): the state a run saves, read back by the
next run, makes selection continue from what was mirrored before — fixture v1-08 through the real
state store (edgebuild.registry.state) rather than by handing select_v1 its own output."""

from __future__ import annotations

import json
from pathlib import Path

from edgebuild.catalog.loader import load_catalog_dir
from edgebuild.config import load_config, parse_config
from edgebuild.plan import build_plan
from edgebuild.reference import MirrorTarget
from edgebuild.registry.state import load_state, save_state, state_from_run


def _bundles(plan) -> list[str]:
    return plan.operators[0].selection.bundle_names()


def test_second_run_mirrors_from_the_previous_head_to_the_new_one(shared_dir: Path, tmp_path: Path):
    case = shared_dir / "conformance" / "oc-mirror-filtering" / "v1-08-incremental-heads-only-new-head"
    expected = json.loads((case / "expected.json").read_text())["steps"]
    config = load_config(case / "isc.yaml")
    config.storage.local_path = str(tmp_path / "metadata")  # the fixture's ./metadata, kept in the test dir
    ref = config.operators[0].catalog
    mirror = MirrorTarget("mirror.example:5000")

    assert load_state(config) is None  # first run: nothing recorded yet
    first = build_plan(config, {ref: load_catalog_dir(case / "catalog" / "step1")}, mirror, previous=None)
    assert _bundles(first) == expected[0]["expect_catalog_bundles"]
    for img in first.images:
        img.digest = img.digest or "sha256:" + "0" * 64  # what mirroring records for images by tag
    save_state(config, state_from_run(first, None))

    previous = load_state(config)
    assert previous is not None and previous["catalogs"]
    second = build_plan(config, {ref: load_catalog_dir(case / "catalog" / "step2")}, mirror, previous=previous)
    assert _bundles(second) == expected[1]["expect_catalog_bundles"]
    # Without the state the same catalog gives heads only: the state is what made the difference.
    fresh = build_plan(config, {ref: load_catalog_dir(case / "catalog" / "step2")}, mirror, previous=None)
    assert "foo.v0.3.0" not in _bundles(fresh)


def test_v2_runs_record_no_selection_state(shared_dir: Path):
    case = shared_dir / "conformance" / "oc-mirror-filtering" / "v2-13-jaeger-package-heads"
    config = load_config(case / "isc.yaml")
    plan = build_plan(config, {config.operators[0].catalog: load_catalog_dir(case / "catalog")})
    assert state_from_run(plan, None)["catalogs"] == {}


def test_state_store_rejects_a_corrupt_file(tmp_path: Path):
    config = parse_config("apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\nstorageConfig:\n"
                          f"  local:\n    path: {tmp_path}\nmirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n")
    (tmp_path / "edgebuild-state.json").write_text("{not json")
    try:
        load_state(config)
    except Exception as exc:  # noqa: BLE001 - the type is asserted below
        assert "edgebuild-state.json" in str(exc)
        assert getattr(exc, "exit_code", None) == 1
    else:
        raise AssertionError("a corrupt state file must not be taken as 'no earlier run'")
