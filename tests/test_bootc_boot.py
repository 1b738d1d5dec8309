"""Image mode (bootc): the rendered image's boot-time copy under real systemd, read-only /usr, fresh /var.

`edgebuild build --target bootc` renders the build context of the quickstart. What its Containerfile
COPYs is laid out as it would land in the image (the RUN lines are the base image's business: dnf,
firewall-offline-cmd; the `systemctl enable` of the copy unit is run for real with `--root`), over this
machine's OS, and booted by tests/device_boot.py with the CRI-O and MicroShift stand-ins: the copy unit
must have put every embedded image into /var/lib/containers/storage, under every name the device asks
for, before CRI-O starts; a second boot copies nothing; an embedded image that is damaged makes the unit
fail and MicroShift, which requires it, does not start.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgebuild.cli import main
from edgebuild.render.bootc import CONTAINERFILE, IMAGE_LIST, SCRIPT, STORE_DIR, UNIT
from tests.bootc_standin import PodmanEnv
from tests.conftest import REPO
from tests.device_boot import DEVICE, DeviceRoot, boot, booting, podman_env, root_fs  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def lay_out_copies(context: Path, containerfile: Path, layer: Path) -> None:
    """What each `COPY SRC... DEST` of the rendered Containerfile puts into the image, under `layer`."""
    for line in containerfile.read_text().splitlines():
        if not line.startswith("COPY "):
            continue
        *sources, dest = shlex.split(line)[1:]
        for source in sources:
            src = context / source
            if src.is_dir():
                shutil.copytree(src, layer / dest.lstrip("/"), dirs_exist_ok=True, symlinks=True)
            else:
                target = layer / dest.lstrip("/")
                if dest.endswith("/"):
                    target = target / src.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)


@pytest.fixture
def bootc_device(registry_factory, root_fs: Path, podman_env: PodmanEnv,  # noqa: F811
                 booting: list[DeviceRoot], tmp_path: Path, capsys) -> dict:  # noqa: F811
    up, mirror = registry_factory("upstream"), registry_factory("mirror")
    config = tmp_path / "isc.yaml"
    subprocess.run([sys.executable, str(REPO / "examples/quickstart/make_example.py"), "--upstream", up.host,
                    "--workdir", str(tmp_path / "example"), "--config", str(config)], check=True,
                   capture_output=True)
    out = tmp_path / "out"
    rc = main(["build", "-c", str(config), "--to", f"docker://{mirror.host}/edge", "-o", str(out), "-q",
               "--src-tls-verify=false", "--dest-tls-verify=false", "--insecure-mirror", "--target", "bootc"])
    assert rc == 0, capsys.readouterr()
    layer = root_fs / "image"
    lay_out_copies(out, out / CONTAINERFILE, layer)
    (layer / SCRIPT.lstrip("/")).chmod(0o755)  # the Containerfile's RUN chmod
    lines = (out / STORE_DIR / IMAGE_LIST).read_text().splitlines()
    references = [line.split(" ", 1)[0] for line in lines if line and not line.startswith("#")]
    assert len(references) >= 4
    root = DeviceRoot(layer, podman_env.work / "device")
    booting.append(root)
    root.mount()
    root.install(references, enable=[UNIT])  # the Containerfile's RUN systemctl enable
    assert (root.merged / f"etc/systemd/system/microshift.service.requires/{UNIT}").is_symlink()
    root.read_only_usr()
    return {"root": root, "references": references, "layer": layer}


def _journal(dev, unit: str) -> str:
    return dev.run("journalctl", "--no-pager", "-o", "cat", "-u", unit, check=False).stdout


def test_the_copy_unit_fills_the_storage_before_crio_and_a_second_boot_copies_nothing(bootc_device):
    root, references = bootc_device["root"], bootc_device["references"]
    dev = boot(root, DEVICE)
    assert dev.saw() == {ref: "found" for ref in references}
    copy = dev.unit(UNIT, "Result", "ActiveEnterTimestampMonotonic")
    crio = dev.unit("crio.service", "ExecMainStartTimestampMonotonic")
    microshift = dev.unit("microshift.service", "ActiveState")
    assert copy["Result"] == "success" and microshift["ActiveState"] == "active"
    assert int(copy["ActiveEnterTimestampMonotonic"]) <= int(crio["ExecMainStartTimestampMonotonic"])
    assert f"{len(references)} copied, 0 already present, 0 failed" in _journal(dev, UNIT)

    subprocess.run(["podman", "stop", "-t", "5", dev.name], capture_output=True, check=True)
    dev = boot(root, DEVICE)
    assert dev.saw() == {ref: "found" for ref in references}
    assert f"0 copied, {len(references)} already present, 0 failed" in _journal(dev, UNIT)


def test_a_damaged_embedded_image_fails_the_unit_and_microshift_does_not_start(bootc_device):
    root, layer = bootc_device["root"], bootc_device["layer"]
    store = next(p for p in layer.rglob(IMAGE_LIST))
    first_dir = next(line.split(" ", 1)[1] for line in store.read_text().splitlines()
                     if line and not line.startswith("#"))
    image_dir = store.parent / first_dir
    blob = max((p for p in image_dir.iterdir() if p.name not in ("manifest.json", "version")),
               key=lambda p: p.stat().st_size)
    root.unmount()  # change the image's files underneath, then stack them again
    blob.write_bytes(b"not the layer")
    root.mount()
    root.read_only_usr()
    dev = boot(root, DEVICE)
    assert dev.unit(UNIT, "Result")["Result"] == "exit-code"
    assert dev.unit("microshift.service", "ActiveState")["ActiveState"] != "active"
    assert "1 failed" in _journal(dev, UNIT)
