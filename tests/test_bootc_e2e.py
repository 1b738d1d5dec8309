"""Image mode end to end with real parts: the quickstart's operator in a real docker-registry,
`edgebuild build --target bootc` (mirror, render the Containerfile and the dir: image store, verify),
real podman building the rendered Containerfile FROM the test stand-in base (tests/bootc_standin.py),
the built image run with no network doing its boot-time copy, skopeo checking every reference the
way CRI-O looks it up, and kustomize building the manifests found in the image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from edgebuild.cli import main
from edgebuild.render.bootc import IMAGE_LIST, SCRIPT
from tests.bootc_standin import CALLS_LOG, PodmanEnv, build_standin
from tests.conftest import REPO, require_tool

pytestmark = pytest.mark.slow
TAG = "localhost/edgebuild-test-bootc:1"


@pytest.fixture
def podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PodmanEnv]:
    for tool in ("skopeo", "podman", "kubectl", "unshare", "runc"):
        require_tool(tool)
    # A short path: under pytest's long tmp_path conmon's socket paths pass the 108-byte limit of a
    # unix socket name and every `podman run` waits 20 s for its exit status.
    work = Path(tempfile.mkdtemp(prefix="ebpod-", dir="/tmp"))
    env = PodmanEnv(work).write()
    for key, value in env.environ().items():
        monkeypatch.setenv(key, value)
    build_standin(tmp_path, env)
    yield env
    shutil.rmtree(work, ignore_errors=True)


def _podman(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, **kw)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.stderr}")
    return result


@pytest.fixture
def quickstart(registry_factory, tmp_path: Path, capsys) -> dict:
    up = registry_factory("upstream")
    mirror = registry_factory("mirror")
    config = tmp_path / "isc.yaml"
    subprocess.run([sys.executable, str(REPO / "examples/quickstart/make_example.py"), "--upstream", up.host,
                    "--workdir", str(tmp_path / "example"), "--config", str(config)], check=True,
                   capture_output=True)
    return {"config": config, "mirror": mirror, "upstream": up.host}


def _build(quickstart: dict, out: Path, capsys, *extra: str) -> str:
    rc = main(["build", "-c", str(quickstart["config"]), "--to", f"docker://{quickstart['mirror'].host}/edge",
               "-o", str(out), "--src-tls-verify=false", "--dest-tls-verify=false", "--insecure-mirror",
               "--target", "bootc", "--base-image", "localhost/edgebuild-test-standin-bootc:1", *extra])
    captured = capsys.readouterr()
    assert rc == 0, captured.out + captured.err
    return captured.out


def _image_list(out: Path) -> dict[str, str]:
    lines = (out / "images" / IMAGE_LIST).read_text().splitlines()
    return dict(line.split(" ", 1) for line in lines if line and not line.startswith("#"))


def _lookup(ref: str, store: Path) -> subprocess.CompletedProcess:
    """CRI-O's lookup: containers/image's storage transport, by exactly the reference."""
    return subprocess.run(["skopeo", "inspect", "--raw", f"containers-storage:[vfs@{store}/graphroot+{store}/rr]{ref}"],
                          capture_output=True, text=True)


def _boot_copy(store: Path) -> subprocess.CompletedProcess:
    store.mkdir(exist_ok=True)
    (store / "storage.conf").write_text('[storage]\ndriver = "vfs"\ngraphroot = "/store/graphroot"\n'
                                        'runroot = "/store/runroot"\n')
    cmd = ["podman", "run", "--rm", "--network", "none", "-v", f"{store}:/store",
           "-e", "CONTAINERS_STORAGE_CONF=/store/storage.conf", "--entrypoint", SCRIPT, TAG]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_quickstart_as_bootc_built_by_podman_and_copied_at_boot(quickstart: dict, podman: PodmanEnv,
                                                                tmp_path: Path, capsys):
    out = tmp_path / "out"
    text = _build(quickstart, out, capsys, "--bootc-user", "core")
    assert "verify: ok" in text and "bootc-image-builder" in text and "podman build" in text
    assert (out / "Containerfile").is_file() and not (out / "blueprint.toml").exists()
    listed = _image_list(out)
    plan = json.loads((out / "plan.json").read_text())["images"]
    assert len(listed) == len(plan)  # one name per planned image (catalog under its mirror name)

    build = _podman("build", "--network", "none", "--pull=never", "-t", TAG, "-f", str(out / "Containerfile"),
                    str(out))
    assert build.returncode == 0
    # What the Containerfile ran on the stand-in, as its stubs recorded it.
    calls = _podman("run", "--rm", "--network", "none", TAG, "cat", CALLS_LOG).stdout.splitlines()
    assert calls[0].startswith("dnf install -y") and "microshift microshift-olm microshift-release-info" in calls[0]
    assert "firewall-offline-cmd --zone=trusted --add-source=10.42.0.0/16" in calls
    assert "systemctl enable microshift.service edgebuild-embedded-images.service" in calls
    assert calls[-1] == "bootc container lint"

    # Size: the dir copies are in the image once (one COPY layer), not doubled.
    embedded = sum(f.stat().st_size for f in (out / "images").rglob("*") if f.is_file())
    size = int(_podman("image", "inspect", "--format", "{{.Size}}", TAG).stdout)
    base = int(_podman("image", "inspect", "--format", "{{.Size}}", "localhost/edgebuild-test-standin-bootc:1").stdout)
    with capsys.disabled():
        print(f"\nbootc sizes: built {size} B, stand-in base {base} B, added {size - base} B, "
              f"embedded dir: copies {embedded} B")
    assert embedded <= size - base < 2 * embedded, (size, base, embedded)

    # Boot: the copy runs offline in the built image, twice; the second copies nothing.
    store = tmp_path / "device-store"
    first = _boot_copy(store)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{len(listed)} copied, 0 already present, 0 failed" in first.stdout
    second = _boot_copy(store)
    assert second.returncode == 0 and "0 copied" in second.stdout and "copied " not in second.stdout.split("\n")[0]
    assert f"0 copied, {len(listed)} already present" in second.stdout
    for ref in listed:
        assert _lookup(ref, store).returncode == 0, ref

    # The manifests found in the image build with kustomize.
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    tar = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", TAG, "tar", "-C", "/etc/microshift/manifests.d",
         "-cf", "-", "."],
        capture_output=True, check=True)
    subprocess.run(["tar", "-C", str(mdir), "-xf", "-"], input=tar.stdout, check=True)
    dirs = [d for d in mdir.iterdir() if d.is_dir()]
    assert dirs
    for d in dirs:
        built = subprocess.run(["kubectl", "kustomize", str(d)], capture_output=True, text=True)
        assert built.returncode == 0 and "kind: CatalogSource" in built.stdout, built.stderr

    # verify --image: the built image's own list, plan and script.
    assert main(["verify", "--image", TAG]) == 0
    assert "verify: ok" in capsys.readouterr().out


def test_boot_copy_killed_midway_then_rerun_completes(quickstart: dict, podman: PodmanEnv, tmp_path: Path, capsys):
    """SIGKILL of the boot-time copy (script and skopeo) while its second image is being copied, as a
    power cut would; the next boot completes every image, skipping those the first one finished."""
    out = tmp_path / "out"
    _build(quickstart, out, capsys, "--skip-verify")
    _podman("build", "--network", "none", "--pull=never", "-t", TAG, "-f", str(out / "Containerfile"), str(out))
    listed = _image_list(out)
    assert len(listed) >= 3
    store = tmp_path / "device-store"
    store.mkdir()
    (store / "storage.conf").write_text('[storage]\ndriver = "vfs"\ngraphroot = "/store/graphroot"\n'
                                        'runroot = "/store/runroot"\n')
    killer = (f"{SCRIPT} > /store/log 2>&1 & script=$!; "
              "until grep -q '^copied' /store/log; do :; done; "  # first image done
              "until p=$(grep -l 'preserve-digest[s]' /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); "
              "[ -n \"$p\" ]; do :; done; "  # the second `skopeo copy` under way
              "kill -9 $script $p; echo killed")
    cut = _podman("run", "--rm", "--network", "none", "-v", f"{store}:/store",
                  "-e", "CONTAINERS_STORAGE_CONF=/store/storage.conf", "--entrypoint", "/bin/sh", TAG, "-c", killer,
                  timeout=120)
    assert "killed" in cut.stdout
    done_before = [ref for ref in listed if _lookup(ref, store).returncode == 0]
    assert 1 <= len(done_before) < len(listed), done_before  # cut midway: some copied, some not
    rerun = _boot_copy(store)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{len(listed) - len(done_before)} copied, {len(done_before)} already present, 0 failed" in rerun.stdout
    for ref in listed:
        whole = subprocess.run(["skopeo", "inspect", f"containers-storage:[vfs@{store}/graphroot+{store}/rr]{ref}"],
                               capture_output=True, text=True)
        assert whole.returncode == 0, (ref, whole.stderr)  # config and layers readable: the image is whole


def test_verify_fails_naming_the_reference_removed_from_the_image_list(quickstart: dict, podman: PodmanEnv,
                                                                       tmp_path: Path, capsys):
    out = tmp_path / "out"
    _build(quickstart, out, capsys)
    listed = _image_list(out)
    plan = json.loads((out / "plan.json").read_text())["images"]
    app = next(i for i in plan if i["type"] == "additional")
    wanted = f"{app['source'].split('@')[0]}@{app['digest']}"
    assert wanted in listed
    list_file = out / "images" / IMAGE_LIST
    list_file.write_text("".join(line + "\n" for line in list_file.read_text().splitlines()
                                 if not line.startswith(wanted + " ")))
    assert main(["verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert f"MISSING {wanted}" in text and "not in the image list" in text and "verify: FAILED, 1 problem" in text
    # The same on the built image: its list lacks the reference.
    _podman("build", "--network", "none", "--pull=never", "-t", TAG, "-f", str(out / "Containerfile"), str(out))
    assert main(["verify", "--image", TAG]) == 1
    assert f"MISSING {wanted}" in capsys.readouterr().out


from tests.test_real_catalog_e2e import kube_green_upstream  # noqa: E402,F401  (fixture)


def test_real_catalog_as_bootc_with_one_image_under_two_names(kube_green_upstream: dict,  # noqa: F811
                                                              registry_factory,
                                                              podman: PodmanEnv, tmp_path: Path, capsys):
    """kube-green from the real community catalog; its operator image is asked for by tag (the CSV)
    and, through an additionalImage, by digest: one dir: copy, copied at boot under both names."""
    operator_tag = kube_green_upstream["rewritten"]["docker.io/kubegreen/kube-green:0.7.1"]
    digest = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{operator_tag}"],
                                       capture_output=True, text=True, check=True).stdout)["Digest"]
    operator_digest = f"{operator_tag.rsplit(':', 1)[0]}@{digest}"
    config = kube_green_upstream["config"]
    doc = yaml.safe_load(config.read_text())
    doc["mirror"]["additionalImages"] = [{"name": operator_digest}]
    config.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    text = _build({"config": config, "mirror": registry_factory("mirror")}, out, capsys)
    assert "verify: ok" in text and f"found   {operator_tag}" in text and f"found   {operator_digest}" in text
    listed = _image_list(out)
    assert listed[operator_tag] == listed[operator_digest]  # one copy, two names
    assert len({*listed.values()}) == len(listed) - 1

    _podman("build", "--network", "none", "--pull=never", "-t", TAG, "-f", str(out / "Containerfile"), str(out))
    store = tmp_path / "device-store"
    boot = _boot_copy(store)
    assert boot.returncode == 0, boot.stdout + boot.stderr
    for ref in (operator_tag, operator_digest, *listed):
        assert _lookup(ref, store).returncode == 0, ref
    assert main(["verify", "--image", TAG]) == 0
    capsys.readouterr()

    list_file = out / "images" / IMAGE_LIST
    list_file.write_text("".join(line + "\n" for line in list_file.read_text().splitlines()
                                 if not line.startswith(operator_tag + " ")))
    assert main(["verify", str(out)]) == 1
    failed = capsys.readouterr().out
    assert f"MISSING {operator_tag}" in failed and f"found   {operator_digest}" in failed
