"""Boot a device root laid out by `edgebuild verify --root` under real systemd, as PID 1 of a podman container.

What the test stands in for, and what is real:
- the operating system is this machine's own (its root file system, read-only, under an overlay): real
  systemd, real skopeo, real containers-storage. The device's files come from verify's laid-out root
  on top of it: the blueprint's files (registries.conf.d, manifests.d, edgebuild's boot-time unit),
  osbuild's storage.conf and the embedded image store at /usr/share/containers/storage;
- /usr is read-only, as on an ostree (RHEL for Edge) system; /var/lib/containers is an empty writable
  directory, as on a freshly installed device;
- services are enabled with `systemctl --root=... enable`, the command osbuild's org.osbuild.systemd
  stage runs for the blueprint's `[customizations.services] enabled`;
- CRI-O and MicroShift are TEST STAND-INS: a oneshot `crio.service` that, when systemd starts it, looks
  every device reference up by containers/image's storage lookup (`skopeo inspect containers-storage:REF`,
  the code CRI-O uses) and writes what it found, and a `microshift.service` that wants it and starts after
  it, as the real one does. The device boots a target that wants MicroShift, as multi-user.target does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.bootc_standin import PodmanEnv
from tests.conftest import require_tool

TARGET = "edgebuild-test-device.target"
DEVICE = "edgebuild-test-device"  # the container's name
SAW = "/run/edgebuild-test/crio-saw.txt"
REFERENCES = "/etc/edgebuild-test/references.txt"
CRIO_STANDIN = """# TEST STAND-IN for CRI-O: at its start, looks each device reference up as CRI-O does.
[Unit]
Description=TEST STAND-IN for CRI-O (edgebuild tests)

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh /etc/edgebuild-test/crio-standin.sh
"""
CRIO_SCRIPT = f"""#!/bin/sh
# TEST STAND-IN for CRI-O: containers/image's storage lookup of every reference, by exactly that name.
mkdir -p /run/edgebuild-test
while read -r ref; do
  if skopeo inspect --raw "containers-storage:$ref" >/dev/null 2>/run/edgebuild-test/last-error; then
    echo "found $ref"
  else
    echo "missing $ref $(tail -n 1 /run/edgebuild-test/last-error)"
  fi
done < {REFERENCES} > {SAW}
"""
MICROSHIFT_STANDIN = """# TEST STAND-IN for MicroShift: starts after CRI-O, as the real unit does, and does nothing.
[Unit]
Description=TEST STAND-IN for MicroShift (edgebuild tests)
Wants=crio.service
After=crio.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
"""
DEVICE_TARGET = """[Unit]
Description=edgebuild test: the device's boot, up to MicroShift
Wants=microshift.service
After=microshift.service
"""
# This machine's units that would touch its kernel or devices from the container's boot: masked.
HOST_UNITS = ("systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount", "proc-sys-fs-binfmt_misc.mount",
              "systemd-sysctl.service", "systemd-modules-load.service", "systemd-udevd.service",
              "systemd-udev-trigger.service", "systemd-udev-settle.service", "systemd-timesyncd.service",
              "systemd-boot-update.service", "systemd-hwdb-update.service", "kmod-static-nodes.service")
# Directories the device starts with empty (the host's own are hidden): an overlay "opaque" directory.
FRESH = ("tmp", "var/tmp", "run", "var/log", "var/lib/containers")


@dataclass
class BootedDevice:
    name: str

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["podman", "exec", self.name, *cmd], capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} in the device: {result.stdout}{result.stderr}")
        return result

    def saw(self) -> dict[str, str]:
        """{reference: 'found' or 'missing <why>'} as the CRI-O stand-in saw them at its start."""
        lines = self.run("cat", SAW).stdout.splitlines()
        return {line.split(" ", 2)[1]: line.split(" ", 1)[0] if line.startswith("found") else line
                for line in lines}

    def unit(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, *[f"--property={p}" for p in props]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


class DeviceRoot:
    """The container's root: verify's laid-out root over this machine's, with the device's fresh dirs."""

    def __init__(self, device_root: Path, work: Path) -> None:
        self.device_root = device_root
        self.work = work
        self.merged = work / "merged"
        self.var_lib_containers = work / "var-lib-containers"
        self.mounts: list[Path] = []

    def mount(self) -> None:
        upper, scratch = self.work / "upper", self.work / "ovl-work"
        for path in (upper, scratch, self.merged, self.var_lib_containers):
            path.mkdir(parents=True, exist_ok=True)
        for fresh in FRESH:
            (upper / fresh).mkdir(parents=True, exist_ok=True)
            os.setxattr(upper / fresh, "trusted.overlay.opaque", b"y")
        result = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                                 f"lowerdir={self.device_root}:/,upperdir={upper},workdir={scratch}",
                                 str(self.merged)], capture_output=True, text=True)
        if result.returncode != 0:  # the harness, not edgebuild: this machine cannot stack its / this way
            pytest.skip(f"cannot lay the device root over this machine's /: {result.stderr.strip()}")
        self.mounts.append(self.merged)

    def install(self, references: list[str], enable: list[str]) -> None:
        """The stand-in CRI-O, the test target, and `systemctl --root enable` of the blueprint's services."""
        etc = self.merged / "etc"
        (etc / "edgebuild-test").mkdir(parents=True, exist_ok=True)
        (etc / "edgebuild-test/references.txt").write_text("".join(f"{r}\n" for r in references))
        (etc / "edgebuild-test/crio-standin.sh").write_text(CRIO_SCRIPT)
        (etc / "systemd/system/crio.service").write_text(CRIO_STANDIN)
        (etc / "systemd/system/microshift.service").write_text(MICROSHIFT_STANDIN)
        (etc / f"systemd/system/{TARGET}").write_text(DEVICE_TARGET)
        for unit in HOST_UNITS:
            (etc / "systemd/system" / unit).unlink(missing_ok=True)
            (etc / "systemd/system" / unit).symlink_to("/dev/null")
        if enable:
            _sh("systemctl", f"--root={self.merged}", "enable", *enable)

    def read_only_usr(self) -> None:
        usr = self.merged / "usr"
        _sh("mount", "--bind", str(usr), str(usr))
        self.mounts.append(usr)
        _sh("mount", "-o", "remount,bind,ro", str(usr))

    def unmount(self) -> None:
        for path in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
        self.mounts.clear()


def boot(root: DeviceRoot, name: str, timeout: float = 90) -> BootedDevice:
    """Start systemd as PID 1 of a container on `root` and wait until the boot is done."""
    subprocess.run(["podman", "rm", "-f", name], capture_output=True)
    started = subprocess.run(
        ["podman", "run", "-d", "--name", name, "--network", "none", "--systemd=always", "--cgroupns=private",
         # CRI-O's storage mounts (CAP_SYS_ADMIN, and a profile that allows mount); /proc/sys and /sys stay
         # read-only, so the boot cannot change this machine's kernel settings.
         "--cap-add=SYS_ADMIN", "--security-opt=apparmor=unconfined",
         "-v", f"{root.var_lib_containers}:/var/lib/containers", "--rootfs", str(root.merged),
         "/lib/systemd/systemd", f"--unit={TARGET}"], capture_output=True, text=True)
    if started.returncode != 0:  # the harness, not edgebuild: podman cannot start systemd here
        pytest.skip(f"podman cannot start systemd as PID 1 on this machine: {started.stderr.strip()[-400:]}")
    device = BootedDevice(name)
    wait_booted(device, timeout)
    return device


def wait_booted(device: BootedDevice, timeout: float = 90) -> None:
    """Until systemd says the boot is over. A systemd that never answers (this machine cannot run it as
    PID 1 in a container) skips the test; one that answers but does not finish fails it, with its jobs."""
    deadline = time.monotonic() + timeout
    answered, state = False, ""
    while time.monotonic() < deadline:
        result = device.run("systemctl", "is-system-running", check=False)
        state = result.stdout.strip() or result.stderr.strip()
        if state in ("running", "degraded"):
            return
        answered = answered or state in ("initializing", "starting", "maintenance", "stopping")
        time.sleep(0.2)
    if answered:
        jobs = device.run("systemctl", "list-jobs", "--no-pager", check=False).stdout
        raise AssertionError(f"the device's boot did not finish in {timeout:.0f} s ({state}); jobs:\n{jobs}")
    logs = subprocess.run(["podman", "logs", device.name], capture_output=True, text=True)
    pytest.skip(f"systemd did not start as PID 1 of a podman container on this machine ({state!r}); "
                f"{logs.stdout[-400:]}{logs.stderr[-400:]}")


def stop(name: str) -> None:
    subprocess.run(["podman", "rm", "-f", "-t", "2", name], capture_output=True)


def _sh(*cmd: str) -> None:
    result = subprocess.run(list(cmd), capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {result.stdout}{result.stderr}")


@pytest.fixture
def podman_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[PodmanEnv]:
    """podman as root with the settings that work here (tests/bootc_standin.py), systemd installed."""
    for tool in ("skopeo", "podman", "runc", "kubectl", "unshare", "systemctl"):
        require_tool(tool)
    if not os.access("/lib/systemd/systemd", os.X_OK):
        pytest.skip("systemd is not installed (scripts/setup.sh installs it)")
    work = Path(tempfile.mkdtemp(prefix="ebboot-", dir="/tmp"))  # short: conmon's socket path limit
    env = PodmanEnv(work).write()
    for key, value in env.environ().items():
        monkeypatch.setenv(key, value)
    yield env
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def root_fs(podman_env: PodmanEnv) -> Iterator[Path]:
    """A file system of its own for the device's files: overlayfs refuses a lower layer that lies inside
    another one (the machine's /), so they must not be on the / file system."""
    path = podman_env.work / "root-fs"
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m", "edgebuild-test", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the device root: {result.stderr.strip()}")
    yield path
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def booting(podman_env: PodmanEnv) -> Iterator[list[DeviceRoot]]:
    """Device roots a test mounts (append them): their container is stopped and they are unmounted after."""
    roots: list[DeviceRoot] = []
    yield roots
    stop(DEVICE)
    for root in roots:
        root.unmount()
