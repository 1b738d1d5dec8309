"""`edgebuild plan` on real catalogs: the JSON shape of DESIGN.md, oc-mirror naming, blocked images,
tag references, errors in JSON with exit code 1.

Expected bundles were checked by reading ../shared/catalogs/community-operators-v4.17/kube-green/
catalog.yaml: one channel `alpha`, a linear replaces chain v0.3.0 … v0.7.1 (no skips), default
channel alpha; v0.7.1's relatedImages are the bundle itself and docker.io/kubegreen/kube-green:0.7.1
(a tag, not a digest).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from edgebuild.cli import main

CATALOG = "registry.example.com/community/community-operator-index:v4.17"
KG_BUNDLE_071 = ("quay.io/community-operator-pipeline-prod/kube-green@"
                 "sha256:6a3babd5a11f00ce3786a1a2c7f7543ee72b4fe41d10a4e184a566da36b75bd0")


@pytest.fixture
def catalog_dir(shared_dir: Path) -> Path:
    return shared_dir / "catalogs" / "community-operators-v4.17"


def run_plan(tmp_path: Path, catalog_dir: Path, body: str, capsys, *extra: str) -> tuple[int, dict]:
    isc = tmp_path / "isc.yaml"
    isc.write_text(textwrap.dedent(body).replace("CATALOG", CATALOG))
    rc = main(["plan", "-c", str(isc), "--catalog-content", f"{CATALOG}={catalog_dir}", "--format", "json",
               "-q", *extra])
    return rc, json.loads(capsys.readouterr().out)


V1_KUBE_GREEN = """\
    apiVersion: mirror.openshift.io/v1alpha2
    kind: ImageSetConfiguration
    mirror:
      operators:
      - catalog: CATALOG
        packages:
        - name: kube-green
      additionalImages:
      - name: registry.example.com/apps/app:1.0
      blockedImages:
      - name: "^docker\\\\.io/"
    """


def test_plan_json_shape_and_v1_naming(tmp_path, catalog_dir, capsys):
    rc, plan = run_plan(tmp_path, catalog_dir, V1_KUBE_GREEN, capsys, "--to", "docker://mirror.example:5000/edge")
    assert rc == 0
    assert set(plan) >= {"apiVersion", "operators", "images", "errors"}
    assert plan["apiVersion"] == "mirror.openshift.io/v1alpha2" and plan["errors"] == []
    assert plan["operators"] == [{
        "catalog": CATALOG, "destination": "mirror.example:5000/edge/community/community-operator-index:v4.17",
        "packages": {"kube-green": {"defaultChannel": "alpha", "channels": {"alpha": ["kube-green.v0.7.1"]}}}}]
    sources = [img["source"] for img in plan["images"]]
    assert sources == sorted(sources)
    by_source = {img["source"]: img for img in plan["images"]}
    assert by_source[CATALOG]["type"] == "catalog"
    bundle = by_source[KG_BUNDLE_071]
    assert bundle["type"] == "bundle"
    # v1 naming: the source path under the mirror namespace, digest kept, a 6-hex tag for digest-only refs.
    assert bundle["destination"] == ("mirror.example:5000/edge/community-operator-pipeline-prod/kube-green@"
                                     "sha256:6a3babd5a11f00ce3786a1a2c7f7543ee72b4fe41d10a4e184a566da36b75bd0")
    assert bundle["destinationTag"] == "6a3bab"
    assert by_source["registry.example.com/apps/app:1.0"] == {
        "source": "registry.example.com/apps/app:1.0", "type": "additional",
        "destination": "mirror.example:5000/edge/apps/app:1.0", "destinationTag": "1.0",
        "neededBy": ["additionalImages"]}
    # The related image by tag is blocked by the regex: not in the set, and said so.
    assert not any(s.startswith("docker.io/") for s in sources)
    assert any("docker.io/kubegreen/kube-green:0.7.1: blocked" in w for w in plan["warnings"])


def test_plan_v2_naming_uses_full_digest_tags(tmp_path, catalog_dir, capsys):
    body = V1_KUBE_GREEN.replace("v1alpha2", "v2alpha1")
    rc, plan = run_plan(tmp_path, catalog_dir, body, capsys, "--to", "docker://mirror.example:5000")
    assert rc == 0
    bundle = next(i for i in plan["images"] if i["source"] == KG_BUNDLE_071)
    assert bundle["destinationTag"] == "sha256-6a3babd5a11f00ce3786a1a2c7f7543ee72b4fe41d10a4e184a566da36b75bd0"


def test_plan_text_for_people(tmp_path, catalog_dir, capsys):
    isc = tmp_path / "isc.yaml"
    isc.write_text(textwrap.dedent(V1_KUBE_GREEN).replace("CATALOG", CATALOG))
    assert main(["plan", "-c", str(isc), "--catalog-content", f"{CATALOG}={catalog_dir}", "-q"]) == 0
    out = capsys.readouterr().out
    assert "kube-green (default channel alpha)" in out and "alpha: kube-green.v0.7.1" in out
    assert "images: 3 (1 catalog, 1 bundle, 1 additional)" in out


def test_plan_whole_catalog_heads_only(tmp_path, catalog_dir, capsys):
    rc, plan = run_plan(tmp_path, catalog_dir, """\
        apiVersion: mirror.openshift.io/v2alpha1
        kind: ImageSetConfiguration
        mirror:
          operators:
          - catalog: CATALOG
        """, capsys)
    assert rc == 0
    packages = plan["operators"][0]["packages"]
    assert len(packages) == 29  # every package of the v4.17 set (catalogs/SOURCE.md)
    assert packages["kube-green"]["channels"] == {"alpha": ["kube-green.v0.7.1"]}
    # One head per channel: 71 channels in the set.
    assert sum(len(p["channels"]) for p in packages.values()) == 71
    assert all(len(b) == 1 for p in packages.values() for b in p["channels"].values())


def test_plan_version_range_on_a_channel(tmp_path, catalog_dir, capsys):
    rc, plan = run_plan(tmp_path, catalog_dir, """\
        apiVersion: mirror.openshift.io/v1alpha2
        kind: ImageSetConfiguration
        mirror:
          operators:
          - catalog: CATALOG
            packages:
            - name: kube-green
              channels:
              - name: alpha
                minVersion: 0.5.1
                maxVersion: 0.6.0
        """, capsys)
    assert rc == 0
    assert plan["operators"][0]["packages"]["kube-green"]["channels"]["alpha"] == [
        "kube-green.v0.5.1", "kube-green.v0.5.2", "kube-green.v0.6.0"]


def test_plan_selection_error_in_json_and_exit_1(tmp_path, catalog_dir, capsys):
    rc, plan = run_plan(tmp_path, catalog_dir, """\
        apiVersion: mirror.openshift.io/v1alpha2
        kind: ImageSetConfiguration
        mirror:
          operators:
          - catalog: CATALOG
            packages:
            - name: kube-gren
        """, capsys)
    assert rc == 1
    assert len(plan["errors"]) == 1 and "kube-gren" in plan["errors"][0]
    assert "kube-green" in plan["operators"][0]["error"]  # the nearest existing name is suggested


def test_plan_invalid_config_exit_2_prints_no_json(tmp_path, catalog_dir, capsys):
    isc = tmp_path / "isc.yaml"
    isc.write_text("apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\nmirror:\n  operators: 3\n")
    assert main(["plan", "-c", str(isc), "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "mirror.operators: must be a list" in captured.err


def test_plan_unreachable_catalog_says_how_to_work_offline(tmp_path, capsys):
    isc = tmp_path / "isc.yaml"
    isc.write_text("apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\nmirror:\n  operators:\n"
                   "  - catalog: registry.invalid/ns/index:v1\n")
    assert main(["plan", "-c", str(isc), "-q"]) == 1
    err = capsys.readouterr().err
    assert "registry.invalid" in err and "--catalog-content" in err


def test_list_operators_cli(catalog_dir, capsys):
    assert main(["list", "operators", "--catalog", str(catalog_dir), "--package", "kube-green", "--format",
                 "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "alpha" in json.dumps(data) and "0.7.1" in json.dumps(data)
    assert main(["list", "operators", "--catalog", str(catalog_dir), "--package", "kube-gren"]) == 1
    assert "kube-green" in capsys.readouterr().err


def test_list_catalogs_cli(capsys):
    assert main(["list", "catalogs", "--version", "4.15", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "registry.redhat.io/redhat/redhat-operator-index:v4.15" in data["catalogs"]
    assert len(data["catalogs"]) == 4


def test_list_catalogs_marks_what_the_registry_confirms(registry, tmp_path, capsys):
    """Against a real registry holding one of the four indexes: that one is confirmed, the rest not found."""
    import subprocess

    from tests.conftest import require_tool
    from tests.ocibuild import write_catalog_layout
    require_tool("skopeo")
    write_catalog_layout(tmp_path / "layout", {"configs/p/catalog.json": b'{"schema":"olm.package","name":"p"}'},
                         ref_name="v4.15")
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:v4.15",
                    f"docker://{registry.host}/redhat/redhat-operator-index:v4.15"], check=True)
    assert main(["list", "catalogs", "--version", "4.15", "--registry", registry.host, "--src-tls-verify=false",
                 "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)["status"]
    assert status[f"{registry.host}/redhat/redhat-operator-index:v4.15"] == "confirmed"
    assert status[f"{registry.host}/redhat/certified-operator-index:v4.15"] == "not found"


def test_list_catalogs_offline_answers_at_once(capsys):
    import time
    start = time.monotonic()
    assert main(["list", "catalogs", "--version", "4.17", "--registry", "registry.invalid"]) == 0
    out = capsys.readouterr().out
    assert out.count("[unreachable:") == 4 and time.monotonic() - start < 10
