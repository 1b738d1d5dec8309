"""The last differences from oc-mirror found by running its binary and its test tables (issue 14):

1. field names match ignoring case (Go's encoding/json, which both oc-mirror APIs decode through);
2. v1: a defaultChannel that is not among the package's listed channels fails with oc-mirror v1's message;
3. v1: a maxVersion that is not X.Y.Z makes oc-mirror v1 drop the range (it selects as if none were
   given); edgebuild selects the same and says so in a warning naming the fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebuild.catalog.loader import build_catalog
from edgebuild.catalog.select_v1 import select_v1
from edgebuild.cli import main
from edgebuild.config import parse_config
from edgebuild.errors import ConfigErrors

V1 = "mirror.openshift.io/v1alpha2"
V2 = "mirror.openshift.io/v2alpha1"
CATALOG = "registry.example/ns/index:v1"


def _head(api: str = V1) -> str:
    return f"apiVersion: {api}\nkind: ImageSetConfiguration\nmirror:\n"


# -- 1. case-insensitive field names ----------------------------------------------------------------

def test_oc_mirror_test_config_spelling_is_accepted() -> None:
    # The spelling of oc-mirror's own pkg/config/testdata/config/valid.yaml.
    config = parse_config(_head() + "  additionalimages:\n    - name: registry.redhat.io/ubi8/ubi:latest\n"
                          "  blockedimages:\n    - name: alpine\n    - name: redis\n")
    assert [i.name for i in config.additional_images] == ["registry.redhat.io/ubi8/ubi:latest"]
    assert [b.pattern.pattern for b in config.blocked_images] == ["alpine", "redis"]
    assert config.warnings == []


@pytest.mark.parametrize("api", [V1, V2])
def test_every_level_matches_ignoring_case(api: str) -> None:
    text = (f"APIVERSION: {api}\nKind: ImageSetConfiguration\nMirror:\n  Operators:\n  - Catalog: {CATALOG}\n"
            "    PACKAGES:\n    - NAME: foo\n      Channels:\n      - name: stable\n        maxversion: 1.0.0\n")
    config = parse_config(text)
    assert config.api_version == api
    assert config.operators[0].packages[0].channels[0].max_version == "1.0.0"


def test_two_keys_differing_in_case_the_later_wins_with_a_warning() -> None:
    config = parse_config(_head() + "  additionalImages:\n  - name: quay.io/a/first:1\n"
                          "  additionalimages:\n  - name: quay.io/a/second:1\n")
    assert [i.name for i in config.additional_images] == ["quay.io/a/second:1"]
    [warning] = config.warnings
    assert ":6: mirror.additionalImages: 'additionalImages' and 'additionalimages' name the same field" in warning


def test_exact_duplicates_and_unknown_fields_stay_errors() -> None:
    with pytest.raises(ConfigErrors) as err:
        parse_config(_head() + "  additionalImages: []\n  additionalImages: []\n  additionalimage: []\n")
    text = str(err.value)
    assert "mirror.additionalImages: field given twice" in text
    assert "mirror.additionalimage: unknown field" in text and "did you mean 'additionalImages'" in text


# -- 2. v1 defaultChannel outside the listed channels -----------------------------------------------

def _catalog_dir(root: Path) -> Path:
    blobs = [{"schema": "olm.package", "name": "foo", "defaultChannel": "stable"}]
    blobs += [{"schema": "olm.channel", "package": "foo", "name": ch, "entries": [
        {"name": f"foo.v{v}", **({"replaces": f"foo.v{prev}"} if prev else {})}
        for v, prev in (("1.0.0", None), ("1.1.0", "1.0.0"), ("1.2.0", "1.1.0"), ("1.3.0", "1.2.0"))]}
        for ch in ("stable", "alpha")]
    blobs += [{"schema": "olm.bundle", "package": "foo", "name": f"foo.v{v}", "image": f"registry.example/foo:{v}",
               "properties": [{"type": "olm.package", "value": {"packageName": "foo", "version": v}}]}
              for v in ("1.0.0", "1.1.0", "1.2.0", "1.3.0")]
    (root / "foo").mkdir(parents=True)
    (root / "foo" / "catalog.json").write_text("".join(json.dumps(b) + "\n" for b in blobs))
    return root


def _plan(tmp_path: Path, packages: str, capsys) -> tuple[int, dict, str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    isc = tmp_path / "isc.yaml"
    isc.write_text(_head() + f"  operators:\n  - catalog: {CATALOG}\n    packages:\n{packages}")
    rc = main(["plan", "-c", str(isc), "--catalog-content", f"{CATALOG}={_catalog_dir(tmp_path / 'fbc')}",
               "--format", "json"])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out), captured.err


@pytest.mark.parametrize("channels", ["", "      channels:\n      - name: stable\n"])
def test_v1_default_channel_not_listed_fails_with_oc_mirror_message(tmp_path: Path, capsys, channels: str) -> None:
    rc, plan, _ = _plan(tmp_path, f"    - name: foo\n      defaultChannel: alpha\n{channels}", capsys)
    assert rc == 1
    assert (
        "defaultChannel has been set with 'alpha', please ensure that 'alpha' is declared in the channels section "
        "for the package 'foo' in the config ") in plan["errors"][0]
    assert "add '- name: alpha' under channels" in plan["errors"][0]


def test_v1_default_channel_that_is_listed_is_used(tmp_path: Path, capsys) -> None:
    rc, plan, _ = _plan(tmp_path, "    - name: foo\n      defaultChannel: alpha\n      channels:\n"
                                  "      - name: alpha\n", capsys)
    assert rc == 0 and plan["operators"][0]["packages"]["foo"]["defaultChannel"] == "alpha"


# -- 3. v1 non-X.Y.Z versions ---------------------------------------------------------------------

@pytest.mark.parametrize("versions, fix", [
    ("      maxVersion: '1.2'\n", 'maxVersion: "1.2.0"'),
    ("      maxVersion: v1.2.0\n", 'maxVersion: "1.2.0"'),
    ("      minVersion: 1.1.0\n      maxVersion: '1.2'\n", 'maxVersion: "1.2.0"'),
    ("      minVersion: '1.1'\n      maxVersion: 1.2.0\n", 'minVersion: "1.1.0"'),
])
def test_v1_non_semver_bound_is_ignored_like_oc_mirror_and_says_so(tmp_path: Path, capsys, caplog, versions: str,
                                                                    fix: str) -> None:
    rc, plan, _ = _plan(tmp_path, f"    - name: foo\n{versions}", capsys)
    err = caplog.text  # configuration warnings go through the 'edgebuild' logger to stderr
    unbounded = _plan(tmp_path / "b", "    - name: foo\n", capsys)[1]
    assert rc == 0
    assert plan["operators"] == unbounded["operators"]  # the same selection as with no bound: the heads
    assert plan["operators"][0]["packages"]["foo"]["channels"]["stable"] == ["foo.v1.3.0"]
    assert "ignored: oc-mirror v1 (v1alpha2) needs full X.Y.Z versions" in err
    assert f"write {fix} to apply the bound" in err


def test_v1_full_semver_and_wildcard_bounds_still_apply(tmp_path: Path, capsys, caplog) -> None:
    rc, plan, _ = _plan(tmp_path, "    - name: foo\n      maxVersion: 1.2.x\n", capsys)
    assert rc == 0 and "ignored" not in caplog.text
    # a package-level range is membership on every channel in oc-mirror v1: 1.2.x is <1.3.0
    assert plan["operators"][0]["packages"]["foo"]["channels"]["stable"] == ["foo.v1.0.0", "foo.v1.1.0", "foo.v1.2.0"]


def test_v1_unquoted_number_is_refused_as_oc_mirror_refuses_it() -> None:
    # oc-mirror 4.17 (run here): "json: cannot unmarshal number into Go struct field ... maxVersion of type string"
    with pytest.raises(ConfigErrors) as err:
        parse_config(_head() + f"  operators:\n  - catalog: {CATALOG}\n    packages:\n    - name: foo\n"
                     "      maxVersion: 1.2\n")
    assert "maxVersion 1.2 is a number, not a string" in str(err.value)
    assert 'quote it and give X.Y.Z: maxVersion: "1.2.0"' in str(err.value)


def test_v1_lone_non_semver_min_version_and_non_versions_stay_errors() -> None:
    for versions in ("      minVersion: '1.2'\n", "      maxVersion: latest\n"):
        with pytest.raises(ConfigErrors, match="must respect semantic versioning notation"):
            parse_config(_head() + f"  operators:\n  - catalog: {CATALOG}\n    packages:\n    - name: foo\n"
                         + versions)


def test_v2_reads_short_versions_as_masterminds_does() -> None:
    config = parse_config(_head(V2) + f"  operators:\n  - catalog: {CATALOG}\n    packages:\n    - name: foo\n"
                          "      maxVersion: 1.2\n")
    assert config.operators[0].packages[0].max_version == "1.2" and config.warnings == []


def test_ignored_bound_selects_the_heads_in_select_v1_too() -> None:
    blobs = [json.loads(line) for line in (_catalog_dir_lines())]
    config = parse_config(_head() + f"  operators:\n  - catalog: {CATALOG}\n    packages:\n    - name: foo\n"
                          "      maxVersion: '1.2'\n")
    selection = select_v1(build_catalog(blobs), config.operators[0])
    assert selection.summary()["foo"]["channels"]["stable"] == ["foo.v1.3.0"]


def _catalog_dir_lines() -> list[str]:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        return (_catalog_dir(Path(tmp)) / "foo" / "catalog.json").read_text().splitlines()


def test_help_and_readme_state_which_oc_mirror_v2_the_rules_come_from(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "v2alpha1 follows oc-mirror v2 as of release-4.18 and later" in text
    assert "not the 4.17 v2 technology preview" in text
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "**as of release-4.18 and later**" in readme
