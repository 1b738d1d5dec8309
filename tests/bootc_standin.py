"""TEST DATA: a stand-in for the RHEL bootc base image, which these machines cannot reach.

It provides only what the rendered Containerfile runs and what the boot-time copy needs:
- busybox-static (the host's /bin/busybox) as /bin/sh and the usual applets;
- stubs for `dnf`, `firewall-offline-cmd`, `systemctl` and `bootc` that append their arguments to
  /var/lib/standin/calls.log (so a test can read what the build ran) and succeed; `bootc` accepts
  only `container lint`;
- the host's real skopeo (/usr/bin/skopeo) with the shared libraries `ldd` lists, and a
  policy.json, so the boot-time copy inside the built image is the real containers/image code.

The image is assembled as an OCI layout with tests/ocibuild.py and copied into a podman storage
with skopeo: nothing is pulled, nothing needs the network.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tests.ocibuild import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Entry,
    OciLayout,
    gzip_bytes,
    sha256_digest,
    tar_bytes,
)

STANDIN_IMAGE = "localhost/edgebuild-test-standin-bootc:1"
CALLS_LOG = "/var/lib/standin/calls.log"
STUB = """#!/bin/sh
# TEST STAND-IN for {name}: records its arguments, changes nothing.
echo "{name} $*" >> {log}
{extra}exit 0
"""
BOOTC_CHECK = ('if [ "$1 $2" != "container lint" ]; then '
               'echo "stand-in bootc: only \'container lint\'" >&2; exit 1; fi\n')
POLICY = b'{"default": [{"type": "insecureAcceptAnything"}]}\n'


@dataclass(frozen=True)
class PodmanEnv:
    """podman settings that work as root here (registry-tooling.md 5), with a storage of our own."""

    work: Path

    @property
    def graphroot(self) -> Path:
        return self.work / "graphroot"

    @property
    def runroot(self) -> Path:
        return self.work / "runroot"

    def environ(self) -> dict[str, str]:
        return {"CONTAINERS_CONF": str(self.work / "containers.conf"),
                "CONTAINERS_STORAGE_CONF": str(self.work / "storage.conf"),
                "TMPDIR": str(self.work / "tmp")}

    def write(self) -> PodmanEnv:
        (self.work / "tmp").mkdir(parents=True, exist_ok=True)
        (self.work / "containers.conf").write_text(
            '[containers]\nnetns = "host"\ncgroupns = "host"\nlog_driver = "k8s-file"\n'
            'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
            f'[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{self.work}/events.log"\nruntime = "runc"\ntmp_dir = "{self.work}/tmp"\n')
        (self.work / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.graphroot}"\nrunroot = "{self.runroot}"\n')
        return self


def _shared_libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = re.findall(r"(/\S+\.so[.\d]*)", out)
    return sorted(set(libs))


def _entries() -> list[Entry]:
    entries: list[Entry] = []
    dirs = ["bin", "etc", "etc/containers", "lib", "lib64", "lib/x86_64-linux-gnu", "usr", "usr/bin", "usr/lib",
            "usr/libexec", "usr/lib/systemd", "usr/lib/systemd/system", "var", "var/lib", "var/lib/standin",
            "var/lib/containers", "run", "proc", "sys", "dev"]
    entries += [Entry(d, type=tarfile.DIRTYPE, mode=0o755) for d in dirs]
    entries += [Entry("tmp", type=tarfile.DIRTYPE, mode=0o1777), Entry("var/tmp", type=tarfile.DIRTYPE, mode=0o1777)]
    entries.append(Entry("bin/busybox", Path("/bin/busybox").read_bytes(), mode=0o755))
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
    entries += [Entry(f"bin/{a}", type=tarfile.SYMTYPE, linkname="busybox") for a in applets if a != "busybox"]
    skopeo = os.path.realpath("/usr/bin/skopeo")
    entries.append(Entry("usr/bin/skopeo", Path(skopeo).read_bytes(), mode=0o755))
    for lib in _shared_libraries(skopeo):
        entries.append(Entry(lib.lstrip("/"), Path(os.path.realpath(lib)).read_bytes(), mode=0o755))
    entries.append(Entry("etc/containers/policy.json", POLICY))
    entries.append(Entry("etc/containers/registries.conf", b"# stand-in: no registries\n"))
    for name in ("dnf", "firewall-offline-cmd", "systemctl", "bootc"):
        stub = STUB.format(name=name, log=CALLS_LOG, extra=BOOTC_CHECK if name == "bootc" else "")
        entries.append(Entry(f"usr/bin/{name}", stub.encode(), mode=0o755))
    return entries


def build_standin(workdir: Path, podman: PodmanEnv) -> str:
    """Build the stand-in base into podman's storage; returns its name.

    Written by hand rather than with `OciLayout.add_image` because buildah needs a `history` entry
    per layer in the config to commit a build on top of it."""
    layout = OciLayout.create(workdir / "standin-layout")
    tar = tar_bytes(_entries())
    layer = layout.add_blob(gzip_bytes(tar, level=1), OCI_LAYER_GZIP)
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Labels": {"containers.bootc": "1", "edgebuild.test": "stand-in, not a RHEL image"},
                         "Cmd": ["/bin/sh"]},
              "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
              "history": [{"created_by": "tests/bootc_standin.py (test data)"}]}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": layout.add_json(config, OCI_CONFIG),
                "layers": [layer]}
    layout.tag(layout.add_json(manifest, OCI_MANIFEST), "standin")
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{layout.root}:standin",
                    f"containers-storage:[vfs@{podman.graphroot}+{podman.runroot}]{STANDIN_IMAGE}"],
                   check=True, env={**os.environ, **podman.environ()})
    return STANDIN_IMAGE
