"""What a new user meets first, with real parts: the quickstart's operator in a real docker-registry
"upstream", a real mirror, edgebuild's CLI as people type it (oc-mirror habits included).

Each test pins the exact message and exit code: counts that agree between plan, progress and summary
(the catalog counted once), -q and -v, the next command after build, --dry-run's mapping.txt where
oc-mirror writes it, oc-mirror's flag names, --continue-on-error / --skip-missing, selection errors
in edgebuild's words printed once, and a --catalog-content REF that matches no catalog.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgebuild.cli import main
from tests.conftest import REPO, require_tool

MISSING = "edgebuild-example/not-pushed:v1"


@pytest.fixture
def upstream(registry_factory, tmp_path: Path) -> dict:
    """The quickstart's catalog and images in an 'upstream' registry; its ImageSetConfiguration, and one
    with an additional image the upstream does not have."""
    require_tool("skopeo")
    up = registry_factory("upstream")
    config = tmp_path / "isc.yaml"
    subprocess.run([sys.executable, str(REPO / "examples/quickstart/make_example.py"), "--upstream", up.host,
                    "--workdir", str(tmp_path / "example"), "--config", str(config)], check=True,
                   capture_output=True)
    broken = tmp_path / "isc-missing.yaml"
    broken.write_text(config.read_text() + f"  - name: {up.host}/{MISSING}\n")
    return {"host": up.host, "config": config, "broken": broken}


@pytest.fixture
def mirror(registry_factory):
    return registry_factory("mirror")


TLS = ["--src-tls-verify=false", "--dest-tls-verify=false"]


def test_counts_agree_and_quiet_prints_only_the_summary(upstream, mirror, capsys):
    assert main(["plan", "-c", str(upstream["config"]), "--src-tls-verify=false"]) == 0
    plan_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("images: "))
    assert plan_line == "images: 4 (1 catalog, 1 bundle, 1 related, 1 additional)"

    assert main(["mirror", "-c", str(upstream["config"]), f"docker://{mirror.host}/edge", *TLS, "-q"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"mirrored to docker://{mirror.host}/edge: 4 copied, "
                                               "0 already present, 0 failed;"), err


def test_verbose_lists_every_image_including_the_rebuilt_catalog(upstream, mirror, capsys):
    assert main(["mirror", "-c", str(upstream["config"]), "--to", f"docker://{mirror.host}/edge", *TLS, "-v"]) == 0
    err = capsys.readouterr().err
    copied = [line for line in err.splitlines() if line.startswith("copied: ")]
    assert len(copied) == 4, err
    assert any("/catalog:v1 -> " in line and "(rebuilt with the selection)" in line for line in copied)
    assert "4 copied" in err


def test_default_output_has_progress_lines_not_one_per_image(upstream, mirror, capsys):
    assert main(["mirror", "-c", str(upstream["config"]), "--to", f"docker://{mirror.host}/edge", *TLS]) == 0
    err = capsys.readouterr().err
    assert "copied: " not in err
    assert re.search(r"^images 4/4 \(0 already present\)", err, re.M), err


def test_build_ends_with_the_next_command(upstream, mirror, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert main(["build", "-c", str(upstream["config"]), f"docker://{mirror.host}/edge", "-o", str(out), *TLS,
                 "--insecure-mirror", "--skip-verify", "-q"]) == 0
    stdout = capsys.readouterr().out
    assert stdout.rstrip().endswith(
        "next: build the image with osbuild-composer:\n"
        f"  edgebuild compose {out}/blueprint.toml --type edge-commit --wait\n"
        f"  (or: composer-cli blueprints push {out}/blueprint.toml && "
        "composer-cli compose start-ostree microshift-edge edge-commit)")


def test_oc_mirror_v1_flag_names_and_positional_destination(upstream, mirror, capsys):
    code = main(["mirror", "-c", str(upstream["config"]), f"docker://{mirror.host}/edge",
                 "--source-use-http", "--dest-skip-tls", "--log-level", "error"])
    assert code == 0, capsys.readouterr().err
    assert len(capsys.readouterr().err.splitlines()) == 1  # --log-level error = -q: the summary only


def test_without_oc_mirror_tls_flag_a_plain_http_registry_still_fails(upstream, mirror, capsys):
    """The message the README's troubleshooting quotes for a plain-HTTP registry."""
    assert main(["mirror", "-c", str(upstream["config"]), f"docker://{mirror.host}/edge", "-q"]) == 1
    err = capsys.readouterr().err
    assert f"cannot reach registry {upstream['host']}: [SSL: WRONG_VERSION_NUMBER]" in err, err
    assert "turn TLS verification off for it (--src-tls-verify=false / --dest-tls-verify=false)" in err


def test_skip_missing_mirrors_the_rest_and_succeeds(upstream, mirror, tmp_path: Path, capsys):
    out = tmp_path / "out"
    code = main(["build", "-c", str(upstream["broken"]), f"docker://{mirror.host}/edge", "-o", str(out), *TLS,
                 "--insecure-mirror", "--skip-verify", "--skip-missing", "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    source = f"{upstream['host']}/{MISSING}"
    assert (f"incomplete: 1 image(s) were not mirrored and are not in the output (marked \"mirrored\": false "
            f"in {out}/images.json): {source}") in err
    entries = json.loads((out / "images.json").read_text())
    missing = [e for e in entries if e.get("mirrored") is False]
    assert [e["source"] for e in missing] == [source] and "HTTP 404" in missing[0]["reason"]
    assert source not in (out / "blueprint.toml").read_text()
    assert len([e for e in entries if e.get("embedded")]) == 4


def test_continue_on_error_renders_what_was_mirrored_and_fails(upstream, mirror, tmp_path: Path, capsys):
    out = tmp_path / "out"
    code = main(["build", "-c", str(upstream["broken"]), f"docker://{mirror.host}/edge", "-o", str(out), *TLS,
                 "--insecure-mirror", "--skip-verify", "--continue-on-error", "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert "incomplete: 1 image(s) were not mirrored" in captured.err
    assert (out / "blueprint.toml").is_file() and "next:" not in captured.out


def test_without_tolerance_a_missing_image_fails_the_build(upstream, mirror, tmp_path: Path, capsys):
    out = tmp_path / "out"
    code = main(["build", "-c", str(upstream["broken"]), f"docker://{mirror.host}/edge", "-o", str(out), *TLS,
                 "--insecure-mirror", "--skip-verify", "-q"])
    assert code == 1
    assert re.search(r"^error: 1 of 5 images failed to mirror", capsys.readouterr().err, re.M)
    assert not out.exists()


def test_render_continue_on_error_marks_what_the_mirror_lacks(upstream, mirror, tmp_path: Path, capsys):
    assert main(["mirror", "-c", str(upstream["config"]), f"docker://{mirror.host}/edge", *TLS, "-q"]) == 0
    isc = tmp_path / "isc-tag.yaml"  # an image by tag: render asks the mirror for its digest
    isc.write_text(upstream["config"].read_text() + f"  - name: {upstream['host']}/{MISSING}\n")
    out = tmp_path / "out"
    argv = ["render", "-c", str(isc), "--mirror", f"{mirror.host}/edge", "-o", str(out), *TLS, "--insecure-mirror"]
    code = main(argv + ["--skip-missing"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"{upstream['host']}/{MISSING}" in err and "incomplete: 1 image(s)" in err
    assert main(argv + ["--continue-on-error"]) == 1


# ------------------------------------------------------------------------------------------------ dry run


@pytest.mark.parametrize("api, destination, workspace, where", [
    ("v1alpha2", "docker://m.example:5000/ns", None, "oc-mirror-workspace/mapping.txt"),
    ("v1alpha2", "file://DISK", None, "DISK/oc-mirror-workspace/mapping.txt"),
    ("v1alpha2", "docker://m.example:5000/ns", "file://WS", "WS/mapping.txt"),
    ("v2alpha1", "docker://m.example:5000/ns", "file://WS", "WS/working-dir/dry-run/mapping.txt"),
    ("v2alpha1", "file://DISK", None, "DISK/working-dir/dry-run/mapping.txt"),
    ("v2alpha1", "docker://m.example:5000/ns", None, "working-dir/dry-run/mapping.txt"),
])
def test_dry_run_writes_mapping_txt_where_oc_mirror_does(api, destination, workspace, where, local_catalog: Path,
                                                         tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    catalog = local_catalog
    isc = tmp_path / "isc.yaml"
    isc.write_text(ISC.format(api=api, channel="stable-3.6"))
    fill = {"DISK": str(tmp_path / "disk"), "WS": str(tmp_path / "ws")}
    for key, value in fill.items():
        destination = destination.replace(key, value)
        where = where.replace(key, value)
    argv = ["mirror", "-c", str(isc), destination, "--dry-run", "--catalog-content", f"{CATALOG}={catalog}"]
    if workspace:
        argv += ["--workspace", workspace.replace("WS", fill["WS"])]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    mapping = (tmp_path / where).read_text().splitlines()
    assert mapping == printed and len(mapping) == 2
    assert any(line.startswith("quay.io/foo/b@sha256:" + "1" * 64 + "=") for line in mapping), mapping


CATALOG = "registry.example/cat:v1"
FBC = "".join(json.dumps(b) + "\n" for b in [
    {"schema": "olm.package", "name": "foo", "defaultChannel": "stable-3.6"},
    {"schema": "olm.channel", "package": "foo", "name": "stable-3.6", "entries": [{"name": "foo.v3.6.0"}]},
    {"schema": "olm.channel", "package": "foo", "name": "stable-3.10", "entries": [{"name": "foo.v3.10.0"}]},
    {"schema": "olm.bundle", "package": "foo", "name": "foo.v3.6.0", "image": "quay.io/foo/b@sha256:" + "1" * 64,
     "properties": [{"type": "olm.package", "value": {"packageName": "foo", "version": "3.6.0"}}]},
    {"schema": "olm.bundle", "package": "foo", "name": "foo.v3.10.0", "image": "quay.io/foo/b@sha256:" + "2" * 64,
     "properties": [{"type": "olm.package", "value": {"packageName": "foo", "version": "3.10.0"}}]},
])
ISC = """apiVersion: mirror.openshift.io/{api}
kind: ImageSetConfiguration
mirror:
  operators:
  - catalog: registry.example/cat:v1
    packages:
    - name: foo
      channels:
      - name: {channel}
"""


@pytest.fixture
def local_catalog(tmp_path: Path) -> Path:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "index.json").write_text(FBC)
    return catalog


# ------------------------------------------------------------------------------------------------ errors


def test_a_missing_channel_is_one_error_in_edgebuilds_words(local_catalog: Path, tmp_path: Path, capsys):
    isc = tmp_path / "isc.yaml"
    isc.write_text(ISC.format(api="v1alpha2", channel="stabel-3.6"))
    code = main(["mirror", "-c", str(isc), "docker://m.example:5000/ns", "--dry-run",
                 "--catalog-content", f"{CATALOG}={local_catalog}"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count('package "foo" has no channel "stabel-3.6"') == 1, err
    assert (f'error: catalog {CATALOG}: cannot select the configured operators: package "foo" has no channel '
            '"stabel-3.6"\n  hint: package \'foo\' has no channel \'stabel-3.6\'; its channels are stable-3.10, '
            "stable-3.6 (nearest: stable-3.6, stable-3.10)") in err
    assert "new model" not in err and "error generating diff" not in err

    assert main(["plan", "-c", str(isc), "--catalog-content", f"{CATALOG}={local_catalog}"]) == 1
    out = capsys.readouterr().out
    assert out.count('has no channel "stabel-3.6"') == 1, out


def test_catalog_content_for_no_catalog_of_the_run_is_a_usage_error(local_catalog: Path, tmp_path: Path, capsys):
    isc = tmp_path / "isc.yaml"
    isc.write_text(ISC.format(api="v1alpha2", channel="stable-3.6"))
    assert main(["plan", "-c", str(isc), "--catalog-content", f"registry.example/cat:v2={local_catalog}"]) == 2
    assert capsys.readouterr().err == (
        f"error: --catalog-content registry.example/cat:v2={local_catalog}: registry.example/cat:v2 is not a "
        f"catalog of this run\n  hint: the configuration's catalogs are: {CATALOG}\n")
    assert main(["list", "operators", "--catalog", str(local_catalog),
                 "--catalog-content", f"other.example/x:1={local_catalog}"]) == 2


@pytest.mark.parametrize("flag, advice", [
    ("--v2", "use edgebuild follows oc-mirror v2 rules for apiVersion mirror.openshift.io/v2alpha1"),
    ("--parallel-images=8", "use --parallel N (blob transfers at once)"),
    ("--since=2024-01-01", "use storageConfig in the ImageSetConfiguration (v1alpha2) to mirror only what is new"),
    ("--manifests-only", "use edgebuild render -c ISC --mirror HOST[:PORT][/NS] -o OUT"),
])
def test_an_oc_mirror_flag_edgebuild_lacks_says_what_to_use(flag, advice, capsys):
    assert main(["mirror", "-c", "isc.yaml", "docker://m.example/ns", flag]) == 2
    err = capsys.readouterr().err
    name = flag.split("=")[0]
    assert err.startswith(f"error: {name} is an oc-mirror flag that edgebuild does not support: {advice}"), err
    assert err.count("\n") == 1


def test_two_destinations_and_none_are_usage_errors(capsys):
    assert main(["mirror", "-c", "isc.yaml", "--to", "docker://a/ns", "docker://b/ns"]) == 2
    assert capsys.readouterr().err == "error: two destinations: --to docker://a/ns and docker://b/ns; give one\n"
    assert main(["mirror", "-c", "isc.yaml"]) == 2
    assert capsys.readouterr().err == ("error: mirror: no destination: give --to docker://HOST[:PORT][/NS] or "
                                       "file://DIR, or the destination as the last argument (as oc-mirror takes "
                                       "it)\n")


def test_cache_dir_flag_is_where_catalogs_are_unpacked(tmp_path: Path, monkeypatch):
    from edgebuild.cli import build_parser
    from edgebuild.pipeline import cache_dir
    monkeypatch.setenv("EDGEBUILD_CACHE_DIR", str(tmp_path / "env"))
    args = build_parser().parse_args(["plan", "-c", "x", "--cache-dir", str(tmp_path / "flag")])
    assert cache_dir(args) == tmp_path / "flag"
    args = build_parser().parse_args(["plan", "-c", "x"])
    assert cache_dir(args) == tmp_path / "env"


def test_oc_mirror_tls_aliases_set_the_skopeo_style_options():
    from edgebuild.cli import build_parser
    args = build_parser().parse_args(["mirror", "-c", "x", "docker://m/ns", "--source-skip-tls", "--dest-use-http"])
    assert (args.src_tls_verify, args.dest_tls_verify, args.destination) == (False, False, "docker://m/ns")


def test_skip_missing_to_disk_gives_a_disk_copy_that_pushes(upstream, mirror, tmp_path: Path, capsys):
    disk = tmp_path / "disk"
    assert main(["mirror", "-c", str(upstream["broken"]), f"file://{disk}", "--src-tls-verify=false",
                 "--skip-missing", "-q"]) == 0
    body = json.loads((disk / "edgebuild" / "images.json").read_text())
    assert body["complete"] is True
    assert [e["source"] for e in body["images"] if e["status"] == "failed"] == [f"{upstream['host']}/{MISSING}"]
    capsys.readouterr()
    assert main(["mirror", "-c", str(upstream["broken"]), "--from", f"file://{disk}",
                 f"docker://{mirror.host}/edge", "--dest-tls-verify=false", "-q"]) == 0
    assert capsys.readouterr().err.startswith(f"mirrored to docker://{mirror.host}/edge: 4 copied,")


def test_vv_shows_registry_requests_and_v_does_not(upstream, mirror):
    """In a subprocess: the CLI's logging setup is what is tested, and pytest owns logging in-process."""
    def run(flag: str) -> str:
        done = subprocess.run([sys.executable, "-m", "edgebuild", "mirror", "-c", str(upstream["config"]),
                               f"docker://{mirror.host}/edge", *TLS, flag], capture_output=True, text=True,
                              cwd=REPO, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr
    verbose = run("-v")
    assert "copied: " in verbose and "HTTP Request:" not in verbose
    very = run("-vv")
    assert f"HTTP Request: GET http://{upstream['host']}/v2/" in very, very


def test_verify_shows_progress_while_it_embeds(upstream, mirror, tmp_path: Path):
    for tool in ("podman", "kubectl", "unshare"):
        require_tool(tool)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "edgebuild", "build", "-c", str(upstream["config"]),
                           f"docker://{mirror.host}/edge", "-o", str(out), *TLS, "--insecure-mirror"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    steps = [line for line in done.stderr.splitlines() if line.startswith("verify: embedding ")]
    assert [line.split()[2] for line in steps] == ["1/4", "2/4", "3/4", "4/4"], done.stderr
