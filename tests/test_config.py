"""ImageSetConfiguration loading: valid files of both API versions, and every invalid input with the
message, the location and the exit code a user sees."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from edgebuild.cli import main
from edgebuild.config import API_V1, API_V2, load_config, parse_config
from edgebuild.errors import ConfigErrors
from edgebuild.init_config import initial_config

V1 = "apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\n"
V2 = "apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\n"


def errors_of(text: str) -> list:
    with pytest.raises(ConfigErrors) as info:
        parse_config(textwrap.dedent(text), "isc.yaml")
    return info.value.errors


def one_error(text: str):
    errs = errors_of(text)
    assert len(errs) == 1, [str(e) for e in errs]
    return errs[0]


def test_full_v1_config_reads_every_field():
    config = parse_config(V1 + textwrap.dedent("""\
        archiveSize: 4
        storageConfig:
          local:
            path: ./meta
        mirror:
          platform:
            architectures: [amd64]
            channels:
            - name: stable-4.15
              minVersion: 4.15.1
          operators:
          - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.15
            full: false
            skipDependencies: true
            targetCatalog: my-ns/my-index
            targetTag: v1
            packages:
            - name: amq-broker-rhel8
              defaultChannel: 7.11.x
              channels:
              - name: 7.11.x
                minVersion: 7.11.1
                maxVersion: 7.11.7
            - name: other
              minBundle: other.v1.0.0
          additionalImages:
          - name: registry.example.com/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
          blockedImages:
          - name: ".*ppc64le.*"
          helm:
            repositories:
            - name: podinfo
              url: https://stefanprodan.github.io/podinfo
              charts:
              - name: podinfo
                version: 5.0.0
        """), "isc.yaml")
    assert config.api_version == API_V1 and config.semantics == "v1"
    assert config.archive_size_gb == 4 and config.storage and config.storage.local_path == "./meta"
    op = config.operators[0]
    assert (op.skip_dependencies, op.target_catalog, op.target_tag) == (True, "my-ns/my-index", "v1")
    pkg = op.packages[0]
    assert pkg.default_channel == "7.11.x"
    assert (pkg.channels[0].min_version, pkg.channels[0].max_version) == ("7.11.1", "7.11.7")
    assert op.packages[1].min_bundle == "other.v1.0.0"
    assert config.is_blocked("quay.io/x/img-ppc64le:1") and not config.is_blocked("quay.io/x/img:1")
    # Accepted but not acted on: said plainly, with the reason.
    assert any("mirror.platform" in w and "not acted on" in w for w in config.warnings)
    assert any("mirror.helm" in w and "not acted on" in w for w in config.warnings)


def test_v2_fields_and_lenient_versions():
    config = parse_config(V2 + textwrap.dedent("""\
        mirror:
          platform:
            platforms:
            - os: linux
              architecture: arm64
          operators:
          - catalog: registry.redhat.io/redhat/redhat-operator-index:v4.17
            targetCatalogSourceTemplate: ./cs-template.yaml
            packages:
            - name: jaeger-product
              minVersion: v1.47
          additionalImages:
          - name: quay.io/team/app:1.0
            targetRepo: apps/app
            targetTag: stable
        """), "isc.yaml")
    assert config.semantics == "v2"
    assert config.platform == {"platforms": ["linux/arm64"]}
    assert config.operators[0].packages[0].min_version == "v1.47"
    extra = config.additional_images[0]
    assert (extra.target_repo, extra.target_tag) == ("apps/app", "stable")


def test_unknown_field_names_line_and_nearest_field():
    err = one_error(V1 + """\
mirror:
  operators:
  - catalog: quay.io/a/index:v1
    packages:
    - name: foo
      chanels: []
""")
    assert (err.file, err.line, err.field) == ("isc.yaml", 8, "mirror.operators[0].packages[0].chanels")
    assert "unknown field" in str(err) and "did you mean 'channels'" in str(err)


def test_v1_only_field_is_unknown_in_v2():
    err = one_error(V2 + "storageConfig:\n  local:\n    path: x\n"
                    "mirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n")
    assert err.field == "storageConfig" and err.line == 3


@pytest.mark.parametrize("snippet, field, words", [
    ("  operators:\n  - catalog: quay.io/a/i:v1\n    full: \"yes please\"\n", "mirror.operators[0].full",
     "must be true or false"),
    ("  operators:\n  - catalog: [a, b]\n", "mirror.operators[0].catalog", "must be a string"),
    ("  operators: {catalog: x}\n", "mirror.operators", "must be a list"),
    ("  additionalImages:\n  - name: quay.io/a/b@sha256:123\n", "mirror.additionalImages[0].name", "bad digest"),
    ("  additionalImages:\n  - name: Quay.io/A/B:1\n", "mirror.additionalImages[0].name", "lowercase"),
])
def test_wrong_types_and_bad_references(snippet, field, words):
    err = one_error(V1 + "mirror:\n" + snippet)
    assert err.field == field and words in str(err)


def test_bad_semver_v1_is_strict():
    err = one_error(V1 + """\
mirror:
  operators:
  - catalog: quay.io/a/i:v1
    packages:
    - name: foo
      minVersion: "1.2"
""")
    assert err.line == 8 and err.field.endswith("minVersion")
    assert "must respect semantic versioning notation" in str(err) and "X.Y.Z" in str(err)


def test_bad_semver_v2_is_lenient_but_still_checked():
    parse_config(V2 + "mirror:\n  operators:\n  - catalog: quay.io/a/i:v1\n    packages:\n    - name: foo\n"
                 "      minVersion: v1.2\n")
    err = one_error(V2 + "mirror:\n  operators:\n  - catalog: quay.io/a/i:v1\n    packages:\n    - name: foo\n"
                    "      maxVersion: 1.x.3\n")
    assert "maxVersion" in err.field and "semantic version" in str(err)


@pytest.mark.parametrize("header", [V1, V2])
def test_min_greater_than_max_fails_at_load(header):
    err = one_error(header + """\
mirror:
  operators:
  - catalog: quay.io/a/i:v1
    packages:
    - name: foo
      channels:
      - name: beta
        minVersion: 0.3.1
        maxVersion: 0.2.0
""")
    assert err.line == 10 and "greater than maxVersion" in str(err) and "swap" in str(err)


def test_duplicate_catalog_package_channel():
    errs = errors_of(V1 + """\
mirror:
  operators:
  - catalog: quay.io/a/i:v1
    packages:
    - name: foo
      channels:
      - name: stable
      - name: stable
    - name: foo
  - catalog: quay.io/a/i:v1
""")
    text = "\n".join(str(e) for e in errs)
    assert "duplicate channel entry 'stable'" in text
    assert "duplicate package entry 'foo'" in text
    assert "catalog 'quay.io/a/i:v1': duplicate found in configuration" in text
    assert {e.line for e in errs} == {10, 11, 12}


def test_duplicate_catalog_allowed_with_distinct_target():
    parse_config(V1 + "mirror:\n  operators:\n  - catalog: quay.io/a/i:v1\n  - catalog: quay.io/a/i:v1\n"
                 "    targetTag: filtered\n")


def test_v2_mixing_package_and_channel_ranges():
    err = one_error(V2 + """\
mirror:
  operators:
  - catalog: quay.io/a/i:v1
    packages:
    - name: foo
      minVersion: 1.0.0
      channels:
      - name: stable
        maxVersion: 2.0.0
""")
    assert "mixing both filtering by minVersion/maxVersion and filtering by channel" in str(err)
    assert err.line == 7


def test_v2_full_with_range_can_never_work():
    err = one_error(V2 + "mirror:\n  operators:\n  - catalog: quay.io/a/i:v1\n    full: true\n    packages:\n"
                    "    - name: foo\n      minVersion: 1.0.0\n")
    assert "Full: true cannot be mixed with versionRange" in str(err)


def test_min_version_and_min_bundle_exclusive():
    err = one_error(V1 + "mirror:\n  operators:\n  - catalog: quay.io/a/i:v1\n    packages:\n    - name: foo\n"
                    "      minVersion: 1.0.0\n      minBundle: foo.v1.0.0\n")
    assert "mutually exclusive" in str(err)


def test_bad_blocked_images_regex():
    err = one_error(V1 + "mirror:\n  blockedImages:\n  - name: 'quay.io/(foo'\n")
    assert err.field == "mirror.blockedImages[0].name" and err.line == 5
    assert "not a valid regular expression" in str(err) and "escape" in str(err)


@pytest.mark.parametrize("text, words", [
    ("kind: ImageSetConfiguration\nmirror: {}\n", "apiVersion: required field is missing"),
    ("apiVersion: mirror.openshift.io/v1alpha1\nkind: ImageSetConfiguration\nmirror: {}\n",
     "unsupported apiVersion"),
    ("apiVersion: mirror.openshift.io/v1alpha2\nkind: DeleteImageSetConfiguration\nmirror: {}\n",
     "unsupported kind"),
    ("apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\n", "mirror: required field"),
    ("apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\nmirror: {}\n", "nothing to mirror"),
    ("mirror: [unclosed\n", "not valid YAML"),
    ("", "the file is empty"),
])
def test_top_level_errors(text, words):
    with pytest.raises(ConfigErrors) as info:
        parse_config(text, "isc.yaml")
    assert words in str(info.value)
    assert "isc.yaml" in str(info.value)


def test_all_errors_reported_together():
    errs = errors_of(V1 + """\
mirror:
  operators:
  - catalog: quay.io/a/i:v1
    fulll: true
    packages:
    - name: foo
      minVersion: nope
  blockedImages:
  - name: "["
""")
    assert len(errs) == 3


def test_cli_exit_code_2_and_message_on_invalid_config(tmp_path: Path, capsys):
    isc = tmp_path / "isc.yaml"
    isc.write_text(V1 + "mirror:\n  operators:\n  - catalog: quay.io/a/i:v1\n    skipDependency: true\n")
    assert main(["plan", "-c", str(isc)]) == 2
    err = capsys.readouterr().err
    assert f"{isc}:6: mirror.operators[0].skipDependency: unknown field" in err
    assert "did you mean 'skipDependencies'" in err


def test_cli_missing_config_file(tmp_path: Path, capsys):
    assert main(["plan", "-c", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


@pytest.mark.parametrize("api", ["v1alpha2", "v2alpha1"])
def test_init_prints_a_valid_commented_config(api, tmp_path: Path, capsys):
    assert main(["init", "--api-version", api, "--catalog", "quay.io/a/index:v1", "--package", "foo",
                 "--channel", "stable"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# ImageSetConfiguration")
    config = parse_config(text, "init.yaml")
    assert config.api_version == (API_V1 if api == "v1alpha2" else API_V2)
    assert config.operators[0].packages[0].channels[0].name == "stable"
    assert parse_config(initial_config(), "default.yaml").operators


def test_load_config_reads_conformance_files(shared_dir: Path):
    fixtures = sorted((shared_dir / "conformance" / "oc-mirror-filtering").glob("*/isc.yaml"))
    assert len(fixtures) >= 30
    for path in fixtures:
        if "min-greater-than-max" in str(path):
            with pytest.raises(ConfigErrors):
                load_config(path)
        else:
            assert load_config(path).operators
