"""Mirror-to-disk and disk-to-mirror with real registries, archives, resume, and storageConfig state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebuild.config import ImageSetConfig, StorageConfig
from edgebuild.errors import RegistryError
from edgebuild.registry.manifest import sha256_digest
from edgebuild.registry.mirror import MirrorOptions, mirror_from_disk, mirror_to_disk
from edgebuild.registry.retry import RetryPolicy
from edgebuild.registry.state import load_state, save_state, state_from_run
from tests.registry_fixtures import FaultRule
from tests.registry_images import (
    Layout,
    inspect_raw,
    make_layer,
    multiarch_image,
    push,
    simple_image,
    skopeo,
    verify_pull,
)
from tests.test_mirror_registry import make_plan

pytestmark = pytest.mark.usefixtures("isolated_auth_env")
OPTS = dict(src_tls_verify=False, dest_tls_verify=False, quiet=True)


@pytest.fixture
def sources(registry, tmp_path: Path) -> list[str]:
    layout = Layout(tmp_path / "src-layout")
    base = [make_layer("base", 200_000)]
    refs = []
    for name in ("a", "b"):
        simple_image(layout, name, (30_000,), base=base)
        refs.append(f"{registry.host}/ns/{name}:v1")
        push(layout, name, refs[-1])
    multiarch_image(layout, "m")
    refs.append(f"{registry.host}/ns/m:v1")
    push(layout, "m", refs[-1])
    return refs


def test_to_disk_and_back(sources, registry2, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    plan = make_plan(sources)
    report = mirror_to_disk(plan, f"file://{disk}", MirrorOptions(**OPTS))
    assert len(report.copied) == 3
    meta = json.loads((disk / "edgebuild" / "images.json").read_text())
    assert meta["complete"] is True
    assert json.loads((disk / "edgebuild" / "plan.json").read_text())["apiVersion"] == plan.api_version
    # skopeo reads the layout by the recorded names and checks every blob
    for ref in sources:
        name = ref.split("/", 1)[1]
        out = skopeo("inspect", "--raw", f"oci:{disk}:{name}").stdout.encode()
        assert sha256_digest(out) == sha256_digest(inspect_raw(ref))
        skopeo("copy", "--all", "--quiet", f"oci:{disk}:{name}", f"oci:{tmp_path / 'check'}:x")
    back = mirror_from_disk(f"file://{disk}", f"docker://{registry2.host}/restored", MirrorOptions(**OPTS))
    assert len(back.copied) == 3
    for ref in sources:
        dest = f"{registry2.host}/restored/{ref.split('/', 1)[1]}"
        assert inspect_raw(dest) == inspect_raw(ref)
        verify_pull(dest, tmp_path / "pulled")
    again = mirror_from_disk(f"file://{disk}", f"docker://{registry2.host}/restored", MirrorOptions(**OPTS))
    assert again.nothing_new and "nothing new" in again.summary()
    again = mirror_to_disk(plan, disk, MirrorOptions(**OPTS))
    assert again.nothing_new and again.bytes == 0


def test_interrupted_to_disk_resumes_and_incomplete_copy_is_refused(registry, sources, registry2, tmp_path: Path,
                                                                    fault_proxy_factory) -> None:
    """The fault proxy (a fake in front of the real registry) fails one blob until the retries run out."""
    proxy = fault_proxy_factory(registry)
    big_layer = json.loads(inspect_raw(sources[1]))["layers"][-1]["digest"]
    proxy.add(FaultRule("GET", f"/v2/ns/b/blobs/{big_layer}", "status", status=503, times=100))
    disk = tmp_path / "disk"
    plan = make_plan([s.replace(registry.host, proxy.host) for s in sources])
    opts = MirrorOptions(**OPTS, retry=RetryPolicy(attempts=2, base_delay=0.01))
    with pytest.raises(RegistryError, match="1 of 3 images failed") as info:
        mirror_to_disk(plan, disk, opts)
    assert "503" in str(info.value)
    meta = json.loads((disk / "edgebuild" / "images.json").read_text())
    assert meta["complete"] is False
    names = [m["annotations"]["org.opencontainers.image.ref.name"]
             for m in json.loads((disk / "index.json").read_text())["manifests"]]
    assert "ns/b:v1" not in names and "ns/a:v1" in names  # nothing partial is named
    assert not list((disk / "blobs" / "sha256").glob(".*"))  # no temporary files left
    with pytest.raises(RegistryError, match="incomplete"):
        mirror_from_disk(disk, f"docker://{registry2.host}", MirrorOptions(**OPTS))
    proxy.rules.clear()
    resumed = mirror_to_disk(plan, disk, opts)
    assert [r.status for r in resumed.results].count("copied") == 1
    assert resumed.blobs.get("present", 0) >= 1  # the shared base layer was not fetched again
    mirror_from_disk(disk, f"docker://{registry2.host}", MirrorOptions(**OPTS))
    assert inspect_raw(f"{registry2.host}/ns/b:v1") == inspect_raw(sources[1])


def test_archives_split_and_restore(sources, registry2, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    report = mirror_to_disk(make_plan(sources), disk, MirrorOptions(**OPTS, archive_size_gb=0.0002))  # 200 kB
    assert len(report.archives) >= 2
    carried = tmp_path / "carried"
    carried.mkdir()
    for archive in report.archives:
        Path(archive).rename(carried / Path(archive).name)
    back = mirror_from_disk(f"file://{carried}", f"docker://{registry2.host}", MirrorOptions(**OPTS))
    assert len(back.copied) == 3
    for ref in sources:
        assert inspect_raw(f"{registry2.host}/{ref.split('/', 1)[1]}") == inspect_raw(ref)


def test_incremental_to_disk_leaves_out_what_earlier_runs_mirrored(sources, tmp_path: Path, registry) -> None:
    digests = {s: sha256_digest(inspect_raw(s)) for s in sources}
    pinned = [s.rsplit(":", 1)[0] + "@" + d for s, d in digests.items()]
    first = make_plan(pinned[:2])
    mirror_to_disk(first, tmp_path / "run1", MirrorOptions(**OPTS))
    config = ImageSetConfig(path="isc.yaml", api_version="mirror.openshift.io/v1alpha2",
                            storage=StorageConfig(local_path=str(tmp_path / "state")))
    assert load_state(config) is None
    save_state(config, state_from_run(first))
    second = make_plan(pinned)
    report = mirror_to_disk(second, tmp_path / "run2", MirrorOptions(**OPTS, previous_state=load_state(config)))
    assert sorted(report.skipped_previous) == sorted(pinned[:2])
    assert [r.key for r in report.copied] == [pinned[2]]


def test_state_in_a_registry_image(registry, tmp_path: Path) -> None:
    config = ImageSetConfig(path="isc.yaml", api_version="mirror.openshift.io/v1alpha2",
                            storage=StorageConfig(registry_image=f"{registry.host}/state/edgebuild:latest",
                                                  registry_skip_tls=True))
    assert load_state(config) is None
    state = {"version": 1, "images": {"a": "sha256:" + "0" * 64}, "catalogs": {}}
    save_state(config, state)
    assert load_state(config) == state
    manifest = json.loads(inspect_raw(f"{registry.host}/state/edgebuild:latest"))
    assert manifest["artifactType"] == "application/vnd.edgebuild.mirror.state"


def test_state_file_that_is_not_json(tmp_path: Path) -> None:
    (tmp_path / "edgebuild-state.json").write_text("{oops")
    config = ImageSetConfig(path="isc.yaml", api_version="mirror.openshift.io/v1alpha2",
                            storage=StorageConfig(local_path=str(tmp_path)))
    with pytest.raises(RegistryError, match="not valid JSON"):
        load_state(config)
