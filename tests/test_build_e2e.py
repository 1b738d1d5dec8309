"""The main job end to end, with real parts: two docker-registry processes (an "upstream" and the
mirror), the quickstart's generated operator catalog, `edgebuild build` (select, mirror, render,
verify), skopeo checking the mirror, and podman starting an embedded image from the rendered
device root with no network — the way a field device would.

Also the verify failure modes: a related image left out of the blueprint, a CatalogSource image that
is not the embedded name, and a manifests directory that does not build.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomlkit

from edgebuild.cli import main
from tests.conftest import REPO, require_tool

pytestmark = pytest.mark.slow


@pytest.fixture
def upstream(registry_factory, tmp_path: Path) -> dict:
    """The quickstart's catalog and images pushed to an 'upstream' registry; its ImageSetConfiguration."""
    for tool in ("skopeo", "podman", "kubectl", "unshare"):
        require_tool(tool)
    up = registry_factory("upstream")
    config = tmp_path / "isc.yaml"
    subprocess.run([sys.executable, str(REPO / "examples/quickstart/make_example.py"), "--upstream", up.host,
                    "--workdir", str(tmp_path / "example"), "--config", str(config)], check=True,
                   capture_output=True)
    return {"host": up.host, "config": config}


@pytest.fixture
def built(upstream: dict, registry_factory, tmp_path: Path, capsys) -> dict:
    mirror = registry_factory("mirror")
    out = tmp_path / "out"
    rc = main(["build", "-c", str(upstream["config"]), "--to", f"docker://{mirror.host}/edge", "-o", str(out),
               "--src-tls-verify=false", "--dest-tls-verify=false", "--insecure-mirror", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.out + captured.err
    return {**upstream, "mirror": mirror.host, "out": out, "stdout": captured.out}


def _plan_images(out: Path) -> list[dict]:
    return json.loads((out / "plan.json").read_text())["images"]


def test_build_mirrors_renders_and_verifies(built: dict):
    out = built["out"]
    assert "verify: ok" in built["stdout"]
    assert "edgebuild compose" in built["stdout"] and "next:" in built["stdout"]
    assert not [p for p in out.rglob("*") if "verify" in p.name], "verify leaves nothing in OUTDIR"
    for name in ("blueprint.toml", "blueprint-installer.toml", "mapping.txt", "images.json", "plan.json",
                 "files/etc/containers/registries.conf.d/999-edgebuild-mirror.conf"):
        assert (out / name).is_file(), name
    images = _plan_images(out)
    assert sorted(i["type"] for i in images) == ["additional", "bundle", "catalog", "related"]
    # Every image is in the mirror, by digest, as an independent client sees it.
    for img in images:
        dest = img["destination"].split("@")[0].rsplit(":", 1)[0] if img["type"] == "catalog" else \
            img["destination"].split("@")[0]
        result = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                 f"docker://{dest}@{img['digest']}"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    # Every image the device needs has a [[containers]] entry named by the reference the device uses.
    blueprint = tomlkit.parse((out / "blueprint.toml").read_text()).unwrap()
    names = {c["name"] for c in blueprint["containers"]}
    for img in images:
        if img["type"] != "catalog":
            assert f"{img['source'].split('@')[0]}@{img['digest']}" in names
    # The catalog in the mirror is rebuilt to the selection (oc-mirror v1 --rebuild-catalogs): read back
    # with skopeo into a layout, it offers only the bundle that is embedded.
    catalog = next(i for i in images if i["type"] == "catalog")
    layout = out.parent / "mirrored-catalog"
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                    f"docker://{catalog['destination'].rsplit(':', 1)[0]}@{catalog['digest']}", f"oci:{layout}:c"],
                   check=True)
    from edgebuild.catalog.sources import open_catalog
    mirrored = open_catalog(f"oci://{layout}")
    assert sorted(mirrored.packages["edge-hello"].bundles) == ["edge-hello.v0.2.0"]
    assert [e.name for e in mirrored.packages["edge-hello"].channels["stable"].entries] == ["edge-hello.v0.2.0"]
    # The bundle selected is the channel head (v1 heads-only) and the subscription pins it.
    subscription = next(out.glob("files/etc/microshift/manifests.d/*/subscription-edge-hello.yaml")).read_text()
    assert "startingCSV: edge-hello.v0.2.0" in subscription and "namespace: openshift-operators" in subscription


def test_second_build_copies_nothing_new(built: dict, capsys):
    rc = main(["build", "-c", str(built["config"]), "--to", f"docker://{built['mirror']}/edge", "-o",
               str(built["out"]), "--src-tls-verify=false", "--dest-tls-verify=false", "--insecure-mirror",
               "--skip-verify"])
    assert rc == 0
    assert "nothing new to mirror" in capsys.readouterr().err


def _podman_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage_conf: Path) -> None:
    """podman settings that work as root on these machines (registry-tooling.md §5)."""
    work = tmp_path / "podman"
    (work / "tmp").mkdir(parents=True)
    conf = work / "containers.conf"
    conf.write_text(
        '[containers]\nnetns = "host"\ncgroupns = "host"\nlog_driver = "k8s-file"\n'
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
        f'[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
        f'events_logfile_path = "{work}/events.log"\nruntime = "runc"\ntmp_dir = "{work}/tmp"\n')
    monkeypatch.setenv("CONTAINERS_CONF", str(conf))
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(storage_conf))
    monkeypatch.setenv("TMPDIR", str(work / "tmp"))


def test_embedded_image_runs_offline_from_the_device_store(built: dict, tmp_path: Path, monkeypatch, pytestconfig):
    """pytest-container starts the additionalImage from the rendered root's image store with
    `--network none`: it can only come from what the blueprint embeds."""
    from pytest_container import Container
    from pytest_container.container import ContainerLauncher
    from pytest_container.runtime import PodmanRuntime

    app = next(i for i in _plan_images(built["out"]) if i["type"] == "additional")
    name = f"{app['source'].split('@')[0]}@{app['digest']}"
    root = tmp_path / "device-root"  # verify keeps a root given with --root; by default it removes its scratch
    assert main(["verify", str(built["out"]), "--root", str(root)]) == 0
    _podman_env(tmp_path, monkeypatch, root / ".edgebuild-host" / "storage.conf")
    container = Container(url=f"containers-storage:{name}", custom_entry_point="/bin/sleep",
                          extra_entrypoint_args=["600"], extra_launch_args=["--network", "none", "--init"])
    with ContainerLauncher.from_pytestconfig(container, PodmanRuntime(), pytestconfig) as launcher:
        launcher.launch_container()
        data = launcher.container_data
        assert data.connection.file("/etc/hello.txt").content_string == "hello from an offline image\n"
        assert data.connection.run("cat /etc/hello.txt").rc == 0


def _edit_blueprint(out: Path, edit) -> None:
    doc = tomlkit.parse((out / "blueprint.toml").read_text())
    edit(doc)
    (out / "blueprint.toml").write_text(tomlkit.dumps(doc))


def test_verify_fails_naming_a_related_image_left_out(built: dict, capsys):
    out = built["out"]
    operator = next(i for i in _plan_images(out) if i["type"] == "related")
    wanted = f"{operator['source'].split('@')[0]}@{operator['digest']}"

    def drop(doc):
        containers = doc["containers"]
        index = next(n for n, c in enumerate(containers) if c["name"] == wanted)
        del containers[index]
    _edit_blueprint(out, drop)
    assert main(["verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert f"MISSING {wanted}" in text and "verify: FAILED" in text
    assert "edge-hello/edge-hello.v0.2.0" in text  # who needs it


def test_verify_fails_when_catalogsource_image_is_not_the_embedded_name(built: dict, capsys):
    out = built["out"]
    catalog = next(i for i in _plan_images(out) if i["type"] == "catalog")
    by_tag = catalog["destination"]  # the mirror reference by tag: not how the image is embedded

    def retarget(doc):
        for entry in doc["customizations"]["files"]:
            if entry["path"].endswith("catalogsource.yaml"):
                lines = [f"  image: {by_tag}" if line.strip().startswith("image:") else line
                         for line in str(entry["data"]).splitlines()]
                entry["data"] = tomlkit.string("\n".join(lines) + "\n", multiline=True, literal=True)
    _edit_blueprint(out, retarget)
    assert main(["verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert f"MISSING {by_tag}" in text and "referenced by tag" in text


def test_verify_fails_when_a_manifests_directory_does_not_build(built: dict, capsys):
    out = built["out"]

    def break_kustomization(doc):
        for entry in doc["customizations"]["files"]:
            if entry["path"].endswith("kustomization.yaml"):
                entry["data"] = tomlkit.string(str(entry["data"]) + "  - missing-file.yaml\n", multiline=True,
                                               literal=True)
    _edit_blueprint(out, break_kustomization)
    assert main(["verify", str(out), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    failed = [m for m in report["manifests"] if not m["ok"]]
    assert len(failed) == 1 and "missing-file.yaml" in failed[0]["detail"]


def test_a_failed_render_leaves_the_previous_output_untouched(built: dict, capsys):
    """Through the CLI: a build that fails in render, after planning and mirroring, keeps the earlier output byte
    for byte and leaves no staging directory (the mid-write case is in test_render_blueprint.py)."""
    out = built["out"]
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*")
              if p.is_file() and ".verify" not in p.parts}
    rc = main(["build", "-c", str(built["config"]), "--to", f"docker://{built['mirror']}/edge", "-o", str(out),
               "--src-tls-verify=false", "--dest-tls-verify=false", "--insecure-mirror", "-q", "--no-embed", "("])
    assert rc == 2
    assert "--no-embed: not a valid regular expression" in capsys.readouterr().err
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and ".verify" not in p.parts}
    assert after == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out") or p.name.startswith("out.")]


def test_release_info_images_are_mirrored_embedded_and_verified(upstream: dict, registry_factory, tmp_path: Path,
                                                                capsys):
    """A microshift-release-info style file: its images are mirrored, embedded under their own reference,
    mapped by the drop-in, and checked by verify. The hello-app image stands in for a MicroShift image."""
    config_text = upstream["config"].read_text()
    app_ref = next(line.split("name: ", 1)[1] for line in config_text.splitlines() if "hello-app@" in line)
    release = tmp_path / "release-x86_64.json"
    release.write_text(json.dumps({"release": {"base": "4.17.1"}, "images": {"hello": app_ref}}))
    no_extra = tmp_path / "isc.yaml"
    no_extra.write_text(config_text.split("  additionalImages:")[0])
    mirror = registry_factory("mirror")
    out = tmp_path / "out"
    rc = main(["build", "-c", str(no_extra), "--to", f"docker://{mirror.host}", "-o", str(out), "--release-info",
               str(release), "--src-tls-verify=false", "--dest-tls-verify=false", "--insecure-mirror", "-q"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert f"found   {app_ref}  (release-info release-x86_64.json" in text
    blueprint = tomlkit.parse((out / "blueprint.toml").read_text()).unwrap()
    assert {"name": app_ref, "source": f"{mirror.host}/{app_ref.split('/', 1)[1]}", "tls-verify": False} in \
        blueprint["containers"]
    assert {"name": "microshift", "version": "4.17.1"} in blueprint["packages"]  # pinned to the release base


def test_build_with_a_catalog_from_an_oci_layout(upstream: dict, registry_factory, tmp_path: Path, capsys):
    """`catalog: oci://PATH`: the catalog is read from disk, rebuilt to the selection, pushed to the mirror,
    and the CatalogSource names it by its mirror digest."""
    layout = tmp_path / "edge-catalog"
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                    f"docker://{upstream['host']}/edgebuild-example/catalog:v1", f"oci:{layout}:v1"], check=True)
    config = tmp_path / "oci-isc.yaml"
    config.write_text(upstream["config"].read_text().replace(f"{upstream['host']}/edgebuild-example/catalog:v1",
                                                             f"oci://{layout}"))
    mirror = registry_factory("mirror")
    out = tmp_path / "out"
    rc = main(["build", "-c", str(config), "--to", f"docker://{mirror.host}/edge", "-o", str(out),
               "--src-tls-verify=false", "--dest-tls-verify=false", "--insecure-mirror", "-q"])
    text = capsys.readouterr().out
    assert rc == 0, text
    catalog = next(i for i in _plan_images(out) if i["type"] == "catalog")
    assert catalog["source"] == f"oci://{layout}"
    assert catalog["destination"] == f"{mirror.host}/edge/edge-catalog:latest"
    assert f"found   {mirror.host}/edge/edge-catalog@{catalog['digest']}  (CatalogSource" in text
    result = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                             f"docker://{mirror.host}/edge/edge-catalog:latest"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_image_left_to_the_mirror_passes_verify_through_the_dropin(upstream: dict, registry_factory,
                                                                   tmp_path: Path, capsys):
    """--no-embed: the app image is not in [[containers]]; verify accepts it because the drop-in maps it to
    the mirror, and says the device must reach the mirror for it."""
    mirror = registry_factory("mirror")
    out = tmp_path / "out"
    rc = main(["build", "-c", str(upstream["config"]), "--to", f"docker://{mirror.host}/edge", "-o", str(out),
               "--src-tls-verify=false", "--dest-tls-verify=false", "--insecure-mirror", "-q",
               "--no-embed", "/hello-app@"])
    text = capsys.readouterr().out
    assert rc == 0, text
    app = next(i for i in json.loads((out / "images.json").read_text()) if i["type"] == "additional")
    assert app["embedded"] is False
    blueprint = tomlkit.parse((out / "blueprint.toml").read_text()).unwrap()
    assert app["deviceReference"] not in {c["name"] for c in blueprint["containers"]}
    assert f"mirror  {app['deviceReference']}" in text and f"pulls it from {mirror.host}/edge" in text


def test_air_gapped_flow_through_the_cli(upstream: dict, registry_factory, tmp_path: Path, capsys):
    """mirror --dry-run (nothing written), mirror --to file://, mirror --from file:// --to docker:// into a
    registry that never saw the upstream, then render against it and verify: the oc-mirror M2D/D2M flow."""
    mirror = registry_factory("airgap")
    config = str(upstream["config"])
    common = ["--src-tls-verify=false", "--dest-tls-verify=false", "-q"]

    assert main(["mirror", "-c", config, "--to", f"docker://{mirror.host}/edge", "--dry-run", *common]) == 0
    mapping = capsys.readouterr().out.splitlines()
    assert len(mapping) == 4 and all("=" + mirror.host + "/edge/" in line for line in mapping)
    catalog = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                              f"docker://{mirror.host}/edge/edgebuild-example/catalog:v1"], capture_output=True)
    assert catalog.returncode != 0  # the dry run pushed nothing

    disk = tmp_path / "disk"
    assert main(["mirror", "-c", config, "--to", f"file://{disk}", *common]) == 0
    assert (disk / "index.json").is_file() and (disk / "edgebuild" / "images.json").is_file()
    assert main(["mirror", "-c", config, "--from", f"file://{disk}", "--to", f"docker://{mirror.host}/edge",
                 *common]) == 0
    capsys.readouterr()

    out = tmp_path / "rendered"
    assert main(["render", "-c", config, "--mirror", f"{mirror.host}/edge", "-o", str(out), "--insecure-mirror",
                 *common]) == 0
    assert main(["verify", str(out)]) == 0
    text = capsys.readouterr().out
    assert "verify: ok" in text and text.count("found  ") == 4


def test_verify_never_clears_a_root_it_did_not_lay_out(built: dict, tmp_path: Path, capsys):
    mine = tmp_path / "precious"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["verify", str(built["out"]), "--root", str(mine)]) == 1
    assert "was not laid out by edgebuild verify" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"
    # A root it laid out itself is replaced on the next run.
    own = tmp_path / "device-root"
    assert main(["verify", str(built["out"]), "--root", str(own)]) == 0
    assert main(["verify", str(built["out"]), "--root", str(own)]) == 0
