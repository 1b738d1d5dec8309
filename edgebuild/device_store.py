"""A device's container image store, written and read the way the real builder and CRI-O do.

The builder (osbuild's `org.osbuild.skopeo` stage) runs `skopeo copy SOURCE
containers-storage:[overlay@ROOT+RUNROOT]NAME` once per image; CRI-O finds an image through
containers/image's storage transport (`storage/storage_reference.go`, `resolveImage`), which is
what `skopeo inspect containers-storage:[DRIVER@ROOT+RUNROOT]REFERENCE` answers. That lookup is
strict where `podman image exists` is lenient: a digest reference `repo@sha256:D` is found only
when an image with manifest digest D is stored under a name of the same repository
(`imageMatchesRepo`). Storing `repo:tag` makes both `repo:tag` and `repo@D` resolve; storing
`repo@D` makes only `repo@D` resolve (checked with skopeo 1.9.3 / containers/image 5.23).

API (small on purpose; the bootc image-mode check reuses it):

    store = DeviceStore(root=Path(...), runroot=Path(...))          # driver picked by `usable_driver`
    store_images(store, [("docker://mirror/a@sha256:D", "quay.io/a:v1")], src_tls_verify=False)
    add_names(store, primary=DeviceStore(...), names=[("quay.io/a@sha256:D", "quay.io/b:t")])
    resolve(store, "quay.io/a@sha256:D")  -> Resolution(ok=True, ...)

Every call runs skopeo; nothing here talks to podman's lenient lookup.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EdgebuildError

Driver = str  # "overlay" or "vfs"
_DRIVER_CACHE: dict[str, Driver] = {}


@dataclass(frozen=True, slots=True)
class DeviceStore:
    """One containers-storage: `root` (graphroot) and `runroot`, plus read-only additional stores.

    `additional` are image stores searched after `root`, as `additionalimagestores` in storage.conf
    makes them (the device's /usr/share/containers/storage is one).
    """

    root: Path
    runroot: Path
    driver: Driver = "overlay"
    additional: tuple[Path, ...] = ()
    tmpdir: Path | None = None  # where skopeo keeps a blob while it stores it (its TMPDIR); None: inherited

    def spec(self) -> str:
        """The `[DRIVER@ROOT+RUNROOT:OPTIONS]` part of a containers-storage: reference."""
        options = ",".join(f"{self.driver}.imagestore={path}" for path in self.additional)
        return f"[{self.driver}@{self.root}+{self.runroot}{':' + options if options else ''}]"

    def ref(self, name: str) -> str:
        return f"containers-storage:{self.spec()}{name}"

    def storage_conf(self) -> str:
        """The storage.conf text describing this store (CONTAINERS_STORAGE_CONF for podman)."""
        extra = ", ".join(json.dumps(str(p)) for p in self.additional)
        return (f'[storage]\ndriver = "{self.driver}"\nrunroot = {json.dumps(str(self.runroot))}\n'
                f'graphroot = {json.dumps(str(self.root))}\n\n[storage.options]\n'
                f'additionalimagestores = [{extra}]\n')


@dataclass(frozen=True, slots=True)
class Resolution:
    reference: str
    ok: bool
    image_id: str | None = None
    digest: str | None = None
    detail: str = ""


@dataclass(slots=True)
class StoredImage:
    """What an image store holds: image ID -> its names and manifest digests."""

    names: dict[str, list[str]] = field(default_factory=dict)
    digests: dict[str, list[str]] = field(default_factory=dict)


def skopeo() -> str:
    path = shutil.which("skopeo")
    if not path:
        raise EdgebuildError("the device image store needs 'skopeo', which is not installed",
                             hint="run scripts/setup.sh (Debian: apt-get install skopeo)")
    return path


def _private_mounts() -> list[str]:
    """`unshare -m` as root: the overlay driver mounts its home, and those mounts must die with skopeo
    instead of staying on the host (a scratch store could then not be removed)."""
    unshare = shutil.which("unshare")
    return [unshare, "-m", "--propagation", "private"] if unshare and os.geteuid() == 0 else []


# skopeo runs about a tenth of a second per image, and Go's garbage collector spent a sixth of that (more
# with four copies at once) collecting a heap that dies with the process: off, with a memory limit that
# turns it back on long before a large layer could matter (skopeo streams layers; its peak RSS stayed
# ~23 MB storing a 300 MB layer). Measured in bench/RESULTS.md (verify). A GOGC or GOMEMLIMIT the user
# set wins.
_GO_ENV = {"GOGC": "off", "GOMEMLIMIT": "512MiB"}


def _run(cmd: list[str], tmpdir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**_GO_ENV, **os.environ}
    if tmpdir:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.run(_private_mounts() + cmd, capture_output=True, text=True, check=False, env=env)


RAM_DIR = Path("/dev/shm")
SCRATCH_ENV = "EDGEBUILD_VERIFY_SCRATCH"


def scratch_parent(expected_bytes: int | None, ram: Path = RAM_DIR) -> Path | None:
    """The directory a throw-away store of about `expected_bytes` is made in.

    `$EDGEBUILD_VERIFY_SCRATCH` when set. Otherwise memory (the tmpfs at /dev/shm) when the store fits
    there three times over and in a quarter of the memory available: a store is thousands of small
    files and dozens of fsyncs per image, which cost a disk far more than they cost RAM (measured in
    bench/RESULTS.md). Else None: the temporary directory (TMPDIR, else /tmp).
    """
    chosen = os.environ.get(SCRATCH_ENV)
    if chosen:
        return Path(chosen)
    if not expected_bytes or not _is_tmpfs(ram) or not os.access(ram, os.W_OK | os.X_OK):
        return None
    stat = os.statvfs(ram)
    if stat.f_bavail * stat.f_frsize < 3 * expected_bytes or _available_memory() < 4 * expected_bytes:
        return None
    return ram


def _is_tmpfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    return any(len(f) > 2 and f[1] == str(path) and f[2] == "tmpfs" for f in (line.split() for line in mounts))


def _available_memory() -> int:
    """MemAvailable from /proc/meminfo in bytes (0 when it cannot be read: then memory is not used)."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def usable_driver(scratch: Path) -> Driver:
    """'overlay' when the kernel and the file system under `scratch` allow it (as root), else 'vfs'.

    overlay shares layers between images and is what the device uses; vfs copies every layer.
    The probe stores one empty image in a throw-away store under `scratch`.
    """
    key = str(Path(scratch).resolve())
    if key in _DRIVER_CACHE:
        return _DRIVER_CACHE[key]
    Path(scratch).mkdir(parents=True, exist_ok=True)
    probe = Path(tempfile.mkdtemp(prefix="driver-probe-", dir=scratch))
    try:
        layout = probe / "layout"
        _write_empty_layout(layout)
        store = DeviceStore(probe / "root", probe / "run", "overlay")
        result = _run([skopeo(), "copy", "--quiet", f"oci:{layout}:probe", store.ref("localhost/probe:1")])
        driver = "overlay" if result.returncode == 0 else "vfs"
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    _DRIVER_CACHE[key] = driver
    return driver


def _write_empty_layout(layout: Path) -> None:
    """A one-layer OCI layout (an empty tar) to probe a storage driver with."""
    import hashlib

    blobs = layout / "blobs/sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}", len(data)

    layer, layer_size = put(b"\0" * 1024)  # an empty tar archive: two zero blocks
    config, config_size = put(json.dumps({"architecture": "amd64", "os": "linux",
                                          "rootfs": {"type": "layers", "diff_ids": [layer]}}).encode())
    manifest, manifest_size = put(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer,
                    "size": layer_size}]}).encode())
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest, "size": manifest_size,
        "annotations": {"org.opencontainers.image.ref.name": "probe"}}]}))


@dataclass(frozen=True, slots=True)
class Copy:
    """One `skopeo copy SOURCE containers-storage:[store]NAME`, the osbuild skopeo stage's command."""

    store: DeviceStore
    source: str  # a transport reference: docker://..., oci:..., dir:...
    name: str
    tls_verify: bool = True


def store_images(store: DeviceStore, images: Iterable[tuple[str, str]], *, src_tls_verify: bool = True,
                 authfile: str | None = None, arch: str | None = None, workers: int = 4,
                 on_done: Callable[[str, str], None] | None = None) -> None:
    """`skopeo copy SOURCE containers-storage:[...]NAME` for each (transport source, stored name)."""
    store_copies([Copy(store, source, name, src_tls_verify) for source, name in images], authfile=authfile,
                 arch=arch, workers=workers, on_done=on_done)


def store_copies(copies: Iterable[Copy], *, authfile: str | None = None, arch: str | None = None,
                 workers: int = 4, on_done: Callable[[str, str], None] | None = None) -> None:
    """Run `copies` a few at a time. `on_done(source, name)` is called after each one (progress); the
    first failed copy cancels the queued ones and raises, naming the source and the name."""
    tool = skopeo()

    def copy(item: Copy) -> Copy:
        cmd = [tool, "copy", "--quiet", "--retry-times", "2"]
        if not item.tls_verify:
            cmd.append("--src-tls-verify=false")
        if authfile:
            cmd += ["--src-authfile", authfile]
        if arch:
            cmd += ["--override-arch", arch]
        result = _run(cmd + [item.source, item.store.ref(item.name)], item.store.tmpdir)
        if result.returncode != 0:
            raise EdgebuildError(f"cannot store {item.source} as {item.name}: {result.stderr.strip()}",
                                 hint="is the mirror running and does it hold the image?")
        return item

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(copy, item) for item in copies]
        try:
            for future in as_completed(futures):
                done = future.result()
                if on_done:
                    on_done(done.source, done.name)
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def shard_of(name: str, shards: int) -> int:
    """Which of `shards` stores the image stored as `name` goes to: by name, so that two images claiming
    one name meet in one store, where the later copy takes the name from the earlier as on the device."""
    return zlib.crc32(name.encode()) % shards if shards > 1 else 0


def ids_in_several(stores: Iterable[DeviceStore]) -> set[str]:
    """Image IDs (config digests) found in more than one of `stores`. One store would hold one record for
    such an image, with the names and manifest digests of both copies; separate stores hold two records,
    and a digest reference could then resolve differently (`imageMatchesRepo` sees one record's names)."""
    seen: dict[str, int] = {}
    for store in stores:
        for image_id in read_store(store.root, store.driver).names:
            seen[image_id] = seen.get(image_id, 0) + 1
    return {image_id for image_id, count in seen.items() if count > 1}


def add_names(store: DeviceStore, names: Iterable[tuple[str, str]]) -> None:
    """Give stored images another name, as edgebuild's boot-time unit does on the device.

    Each (existing reference, new name) runs `skopeo copy containers-storage:EXISTING
    containers-storage:NEW` against `store`: when EXISTING lies in a read-only additional store,
    the new name lands in `store.root` as an image record that reuses the additional store's layers
    (no layer is copied). NEW must be a tag reference: containers/image refuses a digest destination
    between two storages ("would require changing layer representation").
    """
    tool = skopeo()
    for existing, new in names:
        result = _run([tool, "copy", "--quiet", store.ref(existing), store.ref(new)])
        if result.returncode != 0:
            raise EdgebuildError(f"cannot add the name {new} to {existing}: {result.stderr.strip()}")


def resolve(store: DeviceStore, reference: str) -> Resolution:
    """Does `reference` resolve in `store` by containers/image's storage lookup (CRI-O's rule)?"""
    result = _run([skopeo(), "inspect", "--no-tags", store.ref(reference)])
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
        return Resolution(reference, False, detail=reason)
    data = json.loads(result.stdout)
    return Resolution(reference, True, digest=data.get("Digest"))


def resolve_all(store: DeviceStore, references: Iterable[str], workers: int = 4) -> dict[str, Resolution]:
    """`resolve` for many references, a few skopeo processes at a time."""
    refs = list(references)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(zip(refs, pool.map(lambda r: resolve(store, r), refs), strict=True))


def read_store(root: Path, driver: Driver) -> StoredImage:
    """The names and manifest digests of every image in the store at `root` (its images.json)."""
    out = StoredImage()
    index = Path(root) / f"{driver}-images" / "images.json"
    if not index.is_file():
        return out
    for image in json.loads(index.read_text(encoding="utf-8") or "[]"):
        out.names[image["id"]] = list(image.get("names") or [])
        out.digests[image["id"]] = list(image.get("digests") or ([image["digest"]] if image.get("digest") else []))
    return out


def resolves_by_rule(reference: str, stored: Iterable[tuple[str, str]]) -> bool:
    """containers/image's storage lookup as a rule, for checks without a store: does `reference`
    resolve among `stored` (name, manifest digest) pairs?

    A tag reference needs exactly that name; a digest reference needs the digest under any name of
    the same repository (`imageMatchesRepo`). tests/test_device_store.py checks this rule against
    real skopeo lookups.
    """
    name, _, digest = reference.partition("@")
    repository = _repository(name)
    for stored_name, stored_digest in stored:
        if digest:
            if stored_digest == digest and _repository(stored_name.split("@", 1)[0]) == repository:
                return True
        elif stored_name.split("@", 1)[0] == name:
            return True
    return False


def _repository(name: str) -> str:
    """`registry/path` of a `registry/path[:tag]` (a ':' after the last '/' starts the tag)."""
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name
