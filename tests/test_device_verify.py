"""verify fails, naming the reference, where the device would fail and a lenient check would not:
a digest stored only under another repository (podman finds it, CRI-O's lookup does not), and two
[[containers]] entries of one image, which osbuild stores under one name. Real registry, real skopeo,
and podman shown to be lenient on the very store verify built."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from edgebuild.cli import main
from tests.conftest import require_tool
from tests.ocibuild import OciLayout

pytestmark = pytest.mark.slow


@pytest.fixture
def pushed(registry, tmp_path: Path) -> dict:
    require_tool("skopeo")
    layout = OciLayout.create(tmp_path / "layout")
    desc = layout.add_image([{"etc/hello.txt": b"hello\n"}])
    layout.tag(desc, "v1")
    source = f"{registry.host}/edge/hello"
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout.root}:v1",
                    f"docker://{source}:v1"], check=True)
    return {"source": f"{source}@{desc['digest']}", "digest": desc["digest"]}


def _outdir(tmp_path: Path, containers: list[dict], plan_images: list[dict] | None = None) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    lines = ['name = "t"', 'version = "0.0.1"', 'distro = "rhel-9.6"']
    for c in containers:
        lines += ["[[containers]]", f'source = "{c["source"]}"', f'name = "{c["name"]}"', "tls-verify = false"]
    (out / "blueprint.toml").write_text("\n".join(lines) + "\n")
    (out / "plan.json").write_text(json.dumps({"images": plan_images or []}))
    return out


def test_a_digest_stored_under_another_repository_fails_although_podman_finds_it(pushed, tmp_path, capsys):
    d = pushed["digest"]
    asked = f"quay.io/team/hello@{d}"
    out = _outdir(tmp_path, [{"source": pushed["source"], "name": f"registry.example.com/other/hello@{d}"}],
                  [{"source": asked, "type": "related", "digest": d, "neededBy": ["pkg/pkg.v1"]}])
    root = tmp_path / "root"
    assert main(["verify", str(out), "--root", str(root)]) == 1
    captured = capsys.readouterr()
    assert f"MISSING {asked}" in captured.out and "podman's lenient lookup would find it" in captured.out
    assert "registry.example.com/other/hello@" in captured.out
    assert "verify: embedding 1/1 " in captured.err and "verify: looking up" in captured.err  # progress on stderr
    # The lenient answer verify refuses to trust: podman on the same stores says the image exists.
    require_tool("podman")
    env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(root / ".edgebuild-host" / "storage.conf")}
    lenient = subprocess.run(["podman", "image", "exists", asked], check=False, env=env, capture_output=True, text=True)
    assert lenient.returncode == 0, lenient.stderr


def test_two_entries_of_one_image_collapse_and_the_lost_name_fails(pushed, tmp_path, capsys):
    """Issue 9 case 1: a tag and a digest of one image as two entries; osbuild keeps the last name only."""
    d = pushed["digest"]
    tag_ref, digest_ref = "quay.io/team/hello-app:v1", f"quay.io/other/hello-app@{d}"
    out = _outdir(tmp_path, [{"source": pushed["source"], "name": tag_ref},
                             {"source": pushed["source"], "name": digest_ref}])
    assert main(["verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert f"MISSING {tag_ref}" in text and "osbuild stores one name per image" in text
    assert f"found   {digest_ref}" in text
    assert "embedded images: 1" in text
    assert not [p for p in out.iterdir() if p.name not in ("blueprint.toml", "plan.json")]  # nothing left in OUT


def test_root_inside_outdir_is_refused(pushed, tmp_path, capsys):
    out = _outdir(tmp_path, [{"source": pushed["source"], "name": "quay.io/team/hello:v1"}])
    assert main(["verify", str(out), "--root", str(out / "root")]) == 1
    assert "lies inside OUTDIR" in capsys.readouterr().err


def _with_images_json(out: Path, source: str, nbytes: int) -> None:
    (out / "images.json").write_text(json.dumps([{"deviceReference": source, "embedded": True, "bytes": nbytes}]))


def test_the_scratch_store_lives_in_memory_when_it_fits_and_is_gone_after(pushed, tmp_path, capsys):
    from edgebuild.device_store import RAM_DIR, scratch_parent
    if scratch_parent(1) != RAM_DIR:
        pytest.skip(f"{RAM_DIR} is not a writable tmpfs with room on this machine")
    out = _outdir(tmp_path, [{"source": pushed["source"], "name": "quay.io/team/hello:v1"}])
    _with_images_json(out, "quay.io/team/hello:v1", 1024)
    before = set(RAM_DIR.iterdir())
    assert main(["verify", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"scratch store in {RAM_DIR}/edgebuild-verify-" in err
    assert set(RAM_DIR.iterdir()) == before, "the store in memory is removed after"


def test_edgebuild_verify_scratch_picks_the_place_but_never_inside_outdir(pushed, tmp_path, capsys, monkeypatch):
    out = _outdir(tmp_path, [{"source": pushed["source"], "name": "quay.io/team/hello:v1"}])
    _with_images_json(out, "quay.io/team/hello:v1", 1024)
    chosen = tmp_path / "scratch-disk"
    chosen.mkdir()
    monkeypatch.setenv("EDGEBUILD_VERIFY_SCRATCH", str(chosen))
    assert main(["verify", str(out)]) == 0
    assert f"scratch store in {chosen}/edgebuild-verify-" in capsys.readouterr().err
    assert not list(chosen.iterdir()), "removed after"

    monkeypatch.setenv("EDGEBUILD_VERIFY_SCRATCH", str(out / "scratch"))
    assert main(["verify", str(out)]) == 1
    err = capsys.readouterr().err
    assert "EDGEBUILD_VERIFY_SCRATCH" in err and "lies inside OUTDIR" in err
    assert sorted(p.name for p in out.iterdir()) == ["blueprint.toml", "images.json", "plan.json"]


def test_a_store_that_does_not_fit_in_memory_goes_to_the_temporary_directory(tmp_path, monkeypatch):
    from edgebuild.device_store import RAM_DIR, scratch_parent
    monkeypatch.delenv("EDGEBUILD_VERIFY_SCRATCH", raising=False)
    assert scratch_parent(None) is None, "unknown size: no memory"
    assert scratch_parent(10**15) is None, "a petabyte does not fit"
    assert scratch_parent(1, ram=tmp_path) is None, "not a tmpfs"
    assert scratch_parent(1, ram=RAM_DIR / "no-such-dir") is None


def test_a_killed_verify_leaves_a_store_the_next_run_removes(pushed, tmp_path, capsys, monkeypatch):
    """SIGKILL mid-store leaves the scratch store behind (in memory it would hold RAM until reboot);
    the next verify removes stores whose owner process is gone, and nothing else."""
    import signal
    import sys
    import time
    out = _outdir(tmp_path, [{"source": pushed["source"], "name": "quay.io/team/hello:v1"}])
    chosen = tmp_path / "scratch"
    chosen.mkdir()
    env = {**os.environ, "EDGEBUILD_VERIFY_SCRATCH": str(chosen)}
    proc = subprocess.Popen([sys.executable, "-m", "edgebuild", "verify", str(out)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not list(chosen.glob("edgebuild-verify-*/.owner-pid")) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    left = list(chosen.glob("edgebuild-verify-*"))
    assert left, "the killed run left its store"
    foreign = chosen / "edgebuild-verify-someone-elses"  # no owner file: not ours to judge
    foreign.mkdir()
    alive = chosen / "edgebuild-verify-running"
    alive.mkdir()
    (alive / ".owner-pid").write_text(f"{os.getpid()}\n")  # a live owner: in use

    monkeypatch.setenv("EDGEBUILD_VERIFY_SCRATCH", str(chosen))
    assert main(["verify", str(out)]) == 0
    assert sorted(p.name for p in chosen.iterdir()) == sorted([foreign.name, alive.name])


def test_the_report_says_whether_the_device_root_is_still_there(pushed, tmp_path, capsys):
    """A temporary root is gone when verify prints: the report says so instead of naming a missing path."""
    out = _outdir(tmp_path, [{"source": pushed["source"], "name": "quay.io/team/hello:v1"}])
    assert main(["verify", str(out)]) == 0
    assert "device root: a temporary directory, removed (--root DIR keeps it)" in capsys.readouterr().out
    assert main(["verify", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rootKept"] is False and not Path(report["root"]).exists()
    kept = tmp_path / "kept-root"
    assert main(["verify", str(out), "--root", str(kept), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rootKept"] is True and Path(report["root"]) == kept.resolve()
    assert (kept / "etc/containers/storage.conf").is_file()


def _statuses(out: Path, root: Path | None = None) -> dict[str, str]:
    from edgebuild.verify import verify
    report = verify(out, root=root, progress=None)
    return {i.reference: i.status for i in report.images}


def test_a_throwaway_run_spread_over_stores_answers_as_one_store(registry, tmp_path):
    """Without --root, verify spreads the embedded images over several stores (bench/RESULTS.md: faster);
    a kept --root is one store, as on the device. Every answer must be the same either way: tags, digests,
    a digest asked under another repository (CRI-O: missing), and a collapsed entry (missing)."""
    require_tool("skopeo")
    from edgebuild.device_store import shard_of
    from edgebuild.verify import THROWAWAY_SHARDS
    layout = OciLayout.create(tmp_path / "layout")
    pushed = []
    for n in range(8):
        desc = layout.add_image([{f"etc/image-{n}": str(n).encode()}])
        layout.tag(desc, f"v{n}")
        source = f"{registry.host}/edge/image-{n}"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout.root}:v{n}",
                        f"docker://{source}:v{n}"], check=True)
        pushed.append((f"{source}@{desc['digest']}", desc["digest"]))
    containers = [{"source": src, "name": f"quay.io/team/image-{n}:v{n}"} for n, (src, _d) in enumerate(pushed[:4])]
    containers += [{"source": src, "name": f"quay.io/team/image-{n}@{d}"} for n, (src, d) in enumerate(pushed[4:], 4)]
    containers.append({"source": pushed[0][0], "name": "quay.io/team/collapsed:v0"})  # the last name wins
    plan = [{"source": f"quay.io/elsewhere/image-5@{pushed[5][1]}", "type": "related", "digest": pushed[5][1]}]
    out = _outdir(tmp_path, containers, plan)
    names = [c["name"] for c in containers]
    assert len({shard_of(name, THROWAWAY_SHARDS) for name in names}) == THROWAWAY_SHARDS  # really spread
    spread, one = _statuses(out), _statuses(out, tmp_path / "root")
    assert spread == one
    assert one["quay.io/team/image-0:v0"] == "missing" and one["quay.io/team/collapsed:v0"] == "embedded"
    assert one[f"quay.io/elsewhere/image-5@{pushed[5][1]}"] == "missing"
    assert sum(status == "embedded" for status in one.values()) == 8


def test_one_image_under_two_manifests_in_two_stores_is_stored_again_into_one(registry, tmp_path, capsys):
    """Two manifests of one image (same config, so one image ID) in two stores would be two records; one
    store merges them into one record with both names and digests, which changes what a digest reference
    under the other repository resolves to. verify sees it and stores everything again into one store."""
    require_tool("skopeo")
    from edgebuild.device_store import shard_of
    from edgebuild.verify import THROWAWAY_SHARDS
    layout = OciLayout.create(tmp_path / "layout")
    first = layout.add_image([{"etc/one": b"one image"}])
    manifest = json.loads((layout.root / "blobs/sha256" / first["digest"].split(":", 1)[1]).read_text())
    second = layout.add_json({**manifest, "annotations": {"edgebuild.test": "a second manifest"}},
                             manifest["mediaType"])
    layout.tag(first, "a")
    layout.tag(second, "b")
    names = {}
    for ref, desc in (("a", first), ("b", second)):
        source = f"{registry.host}/edge/{ref}"
        subprocess.run(["skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
                        f"oci:{layout.root}:{ref}", f"docker://{source}:{ref}"], check=True)
        names[ref] = (f"{source}@{desc['digest']}", desc["digest"])
    repo_b = next(f"quay.io/team/b{n}" for n in range(64) if shard_of(f"quay.io/team/b{n}@{second['digest']}",
                  THROWAWAY_SHARDS) != shard_of(f"quay.io/team/a@{first['digest']}", THROWAWAY_SHARDS))
    containers = [{"source": names["a"][0], "name": f"quay.io/team/a@{first['digest']}"},
                  {"source": names["b"][0], "name": f"{repo_b}@{second['digest']}"}]
    across = f"quay.io/team/a@{second['digest']}"  # repository a, the digest of the other manifest
    out = _outdir(tmp_path, containers, [{"source": across, "type": "related", "digest": second["digest"]}])
    one = _statuses(out, tmp_path / "root")
    assert one[across] == "embedded"  # one record: repository a is among its names, the digest among its digests
    assert main(["verify", str(out)]) in (0, 1)
    assert "storing again into one store" in capsys.readouterr().err
    assert _statuses(out) == one
