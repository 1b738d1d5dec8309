"""The boot-time names unit on a booting system: real systemd, a read-only /usr, a fresh /var.

Scenario of issue 9: a MicroShift release image (--release-info) with the digest of an operator's
related image, under another repository. The blueprint stores the image once and renders
`edgebuild-image-names.service`, which adds the second name before CRI-O starts. `edgebuild verify
--root` lays the device out; tests/device_boot.py boots it under systemd (PID 1 of a podman container,
this machine's OS underneath) with a CRI-O stand-in that looks every reference up by containers/image's
storage lookup when systemd starts it. Without the unit, the release reference is missing at that moment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from edgebuild.cli import main
from edgebuild.render.blueprint import ALIAS_UNIT
from tests.bootc_standin import PodmanEnv
from tests.conftest import REPO
from tests.device_boot import DEVICE, DeviceRoot, boot, booting, podman_env, root_fs  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
ART_REPO = "openshift-release-dev/ocp-v4.0-art-dev"


@pytest.fixture
def laid_out(registry_factory, root_fs: Path, tmp_path: Path, capsys) -> dict:  # noqa: F811
    """The quickstart built with a release-info file naming the operator image under ART_REPO, and the
    device root `edgebuild verify --root` laid out for it (kept)."""
    up, mirror = registry_factory("upstream"), registry_factory("mirror")
    config = tmp_path / "isc.yaml"
    subprocess.run([sys.executable, str(REPO / "examples/quickstart/make_example.py"), "--upstream", up.host,
                    "--workdir", str(tmp_path / "example"), "--config", str(config)], check=True,
                   capture_output=True)
    operator = f"docker://{up.host}/edgebuild-example/edge-hello-operator:v0.2.0"
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", operator,
                    f"docker://{up.host}/{ART_REPO}:4.17.1-operator"], check=True)
    digest = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false", operator], check=True,
                                       capture_output=True, text=True).stdout)["Digest"]
    release_ref = f"{up.host}/{ART_REPO}@{digest}"
    release = tmp_path / "release-x86_64.json"
    release.write_text(json.dumps({"release": {"base": "4.17.1"}, "images": {"operator-shared": release_ref}}))
    out, root = tmp_path / "out", root_fs / "device-root"
    common = ["--release-info", str(release), "--src-tls-verify=false"]
    assert main(["build", "-c", str(config), "--to", f"docker://{mirror.host}/edge", "-o", str(out), "-q",
                 "--dest-tls-verify=false", "--insecure-mirror", *common]) == 0, capsys.readouterr()
    capsys.readouterr()
    assert main(["verify", str(out), "--root", str(root), "--format", "json", *common]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rootKept"] is True and Path(report["root"]) == root.resolve()
    blueprint = tomllib.loads((out / "blueprint.toml").read_text())
    embedded = [i["reference"] for i in report["images"] if i["status"] == "embedded"]
    operator_ref = f"{up.host}/edgebuild-example/edge-hello-operator@{digest}"
    assert release_ref in embedded and operator_ref in embedded
    stored = [c["name"] for c in blueprint["containers"] if c["source"].endswith(digest)]
    assert len(stored) == 1 and stored[0] in (operator_ref, release_ref)  # one entry for the image
    other = release_ref if stored[0] == operator_ref else operator_ref
    return {"root": root, "blueprint": blueprint, "references": embedded, "stored_ref": stored[0],
            "other_ref": other}


@pytest.fixture
def device(laid_out: dict, podman_env: PodmanEnv,  # noqa: F811
           booting: list[DeviceRoot]) -> tuple[dict, DeviceRoot]:  # noqa: F811
    root = DeviceRoot(laid_out["root"], podman_env.work / "device")
    booting.append(root)
    root.mount()
    return laid_out, root


def test_every_reference_resolves_when_crio_starts_on_first_and_second_boot(device):
    laid_out, root = device
    enabled = [s for s in laid_out["blueprint"]["customizations"]["services"]["enabled"] if s == ALIAS_UNIT]
    assert enabled == [ALIAS_UNIT]  # the blueprint enables it (microshift, also enabled, is not on this OS)
    root.install(laid_out["references"], enabled)
    assert (root.merged / f"etc/systemd/system/crio.service.wants/{ALIAS_UNIT}").is_symlink()
    assert (root.merged / f"etc/systemd/system/multi-user.target.wants/{ALIAS_UNIT}").is_symlink()
    root.read_only_usr()

    dev = boot(root, DEVICE)
    assert dev.saw() == {ref: "found" for ref in laid_out["references"]}
    names = dev.unit(ALIAS_UNIT, "Result", "ActiveState", "ActiveEnterTimestampMonotonic")
    crio = dev.unit("crio.service", "ExecMainStartTimestampMonotonic", "Result")
    assert (names["Result"], names["ActiveState"], crio["Result"]) == ("success", "active", "success")
    assert int(names["ActiveEnterTimestampMonotonic"]) <= int(crio["ExecMainStartTimestampMonotonic"])
    assert dev.run("touch", "/usr/share/containers/storage/x", check=False).returncode != 0  # /usr is read-only
    stored = (root.var_lib_containers / "storage/overlay-images/images.json").read_text()
    assert laid_out["other_ref"].split("@")[0] in stored  # the second name lives in /var, not in /usr

    # Second boot: the names are there already; the unit runs again, succeeds, and adds nothing.
    subprocess.run(["podman", "stop", "-t", "5", dev.name], capture_output=True, check=True)
    dev = boot(root, DEVICE)
    assert dev.saw() == {ref: "found" for ref in laid_out["references"]}
    assert dev.unit(ALIAS_UNIT, "Result")["Result"] == "success"
    assert (root.var_lib_containers / "storage/overlay-images/images.json").read_text().count('"id"') == \
        stored.count('"id"')


def test_without_the_unit_the_second_reference_is_missing_when_crio_starts(device):
    """The contrast: the same device with the unit not enabled (and so not run): CRI-O's lookup of the
    image's second reference fails; the stored name still resolves."""
    laid_out, root = device
    root.install(laid_out["references"], enable=[])
    root.read_only_usr()
    saw = boot(root, DEVICE).saw()
    assert saw[laid_out["stored_ref"]] == "found"
    assert saw[laid_out["other_ref"]].startswith("missing ")
    assert [ref for ref, seen in saw.items() if seen != "found"] == [laid_out["other_ref"]]
