#!/usr/bin/env python3
"""Benchmark: edgebuild's mirroring against `skopeo sync` and a raw curl ceiling, in one run.

Profiles (generated once, deterministic, cached under --workdir):
  operators  ~1.15 GB of realistic operator images: 30 images of 1 MB-300 MB whose base layers
             (UBI-like 80 MB / 40 MB, runtime 30 MB) are shared by most images
  tiny       300 images of 64 KB + 16 KB layers
  disk       the operators set mirrored to a local directory (skopeo sync --dest dir vs edgebuild file://)
  bigblob    one image with a single 1 GB layer: peak RSS of the edgebuild process while copying it

Every cold run starts with an empty destination registry; a warm run repeats against a complete
one. The ceiling is curl's monolithic POST+PUT of the same unique blobs into a fresh registry,
sequential and 4 at a time. Registries are docker-registry (distribution 2.8) on 127.0.0.1,
started and stopped by PID here.

edgebuild runs as its own process and is timed from outside, start-up included, as skopeo and curl
are; it is installed from this checkout into a fresh venv under --workdir (`pip install .`), as a user
installs it. With --repeat N the cold runs of ceiling, skopeo and edgebuild are interleaved N times and the
ratios are taken between medians, so a busy machine moves all three alike. Each cold run also
reports the CPU seconds of the source registry, the destination registry and the copying process
(from /proc and getrusage): on a small machine the copy is CPU-bound and that split says why.

    python3 bench/mirror.py [--workdir /var/tmp/edgebuild-bench] [--profiles operators,tiny,disk,bigblob]
                            [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    from tests.registry_fixtures import RegistryServer
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

MB = 1_000_000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


# ------------------------------------------------------------------------------------ image generation

class StreamLayout:
    """An OCI layout whose layers are written as streams (a 1 GB layer never sits in memory)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.refs: list[dict] = []
        self.layers: dict[str, tuple[dict, str]] = {}

    def _store(self, tmp: Path) -> dict:
        h = hashlib.sha256()
        with tmp.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        digest = "sha256:" + h.hexdigest()
        size = tmp.stat().st_size
        tmp.replace(self.root / "blobs" / "sha256" / digest[7:])
        return {"digest": digest, "size": size}

    def layer(self, seed: str, size: int) -> tuple[dict, str]:
        """A gzip (level 0) tar holding one file of `size` seeded random bytes; cached by seed."""
        if seed in self.layers:
            return self.layers[seed]
        tmp = self.root / f".{seed}.tmp"
        rng = random.Random(seed)
        diff = hashlib.sha256()

        class Tee:
            def __init__(self, fh): self.fh = fh
            def write(self, data):
                diff.update(data)
                return self.fh.write(data)
            def flush(self): pass

        with tmp.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=0, mtime=0) as gz:
            tee = Tee(gz)
            with tarfile.open(fileobj=tee, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                info = tarfile.TarInfo(f"data/{seed}.bin")
                info.size, info.mtime = size, 0

                class Source:
                    left = size
                    def read(self, n=-1):
                        n = self.left if n < 0 else min(n, self.left)
                        self.left -= n
                        return rng.randbytes(n)
                tar.addfile(info, Source())
        desc = {"mediaType": OCI_LAYER, **self._store(tmp)}
        self.layers[seed] = (desc, "sha256:" + diff.hexdigest())
        return self.layers[seed]

    def blob(self, data: bytes, media_type: str) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def image(self, name: str, layers: list[tuple[dict, str]]) -> None:
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"name": name}},
                             "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]}}).encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": self.blob(config, OCI_CONFIG), "layers": [d for d, _ in layers]}).encode()
        desc = self.blob(manifest, OCI_MANIFEST)
        self.refs.append({**desc, "annotations": {"org.opencontainers.image.ref.name": name}})

    def finish(self) -> None:
        (self.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.refs}))


OPERATOR_SIZES_MB = [300, 150, 100, 80, 60, 50, 40, 30, 25, 20, 15, 12, 10, 8, 6, 5, 4, 3, 2, 2,
                     1, 1, 1, 1, 1, 1, 1, 1, 1, 1]


def generate(workdir: Path, profile: str) -> Path:
    root = workdir / "layouts" / profile
    if (root / "index.json").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    layout = StreamLayout(root)
    if profile == "operators":
        ubi = layout.layer("ubi8-base", 80 * MB)
        ubi_minimal = layout.layer("ubi8-minimal", 40 * MB)
        runtimes = [layout.layer(f"runtime-{r}", 30 * MB) for r in ("go", "python", "java")]
        for i, size in enumerate(OPERATOR_SIZES_MB):
            base = [ubi_minimal] if i % 5 == 4 else [ubi, runtimes[i % 3]]
            layout.image(f"operators/op-{i:02d}:v1", base + [layout.layer(f"op-{i}", size * MB)])
    elif profile == "tiny":
        for i in range(300):
            layout.image(f"tiny/t-{i:03d}:v1", [layout.layer(f"t{i}-a", 64_000), layout.layer(f"t{i}-b", 16_000)])
    elif profile == "bigblob":
        layout.image("big/one:v1", [layout.layer("big-1g", 1000 * MB)])
    layout.finish()
    return root


def layout_refs(root: Path) -> list[str]:
    index = json.loads((root / "index.json").read_text())
    return [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]


def unique_blobs(root: Path) -> list[tuple[str, Path]]:
    """(digest, file) of every config and layer blob of the layout (not manifests)."""
    out: dict[str, Path] = {}
    index = json.loads((root / "index.json").read_text())
    for entry in index["manifests"]:
        manifest = json.loads((root / "blobs/sha256" / entry["digest"][7:]).read_bytes())
        for desc in [manifest["config"], *manifest["layers"]]:
            out[desc["digest"]] = root / "blobs/sha256" / desc["digest"][7:]
    return sorted(out.items())


# ------------------------------------------------------------------------------------ runners

def run(cmd: list[str], **kw) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    return elapsed, proc


def push_layout(root: Path, registry: RegistryServer) -> None:
    refs = layout_refs(root)
    script = "\n".join(f"skopeo copy --quiet --dest-tls-verify=false oci:{root}:{r} docker://{registry.host}/{r}"
                       for r in refs)
    subprocess.run(["xargs", "-P4", "-I{}", "sh", "-c", "{}"], input=script, text=True, check=True)


def skopeo_sync(refs: list[str], src: RegistryServer, dst: RegistryServer, workdir: Path,
                to_dir: Path | None = None) -> float:
    images: dict[str, list[str]] = {}
    for ref in refs:
        repo, tag = ref.rsplit(":", 1)
        images.setdefault(repo, []).append(tag)
    spec = workdir / "sync.yaml"
    spec.write_text(json.dumps({src.host: {"tls-verify": False, "images": images}}))
    if to_dir:
        cmd = ["skopeo", "sync", "--all", "--src", "yaml", "--dest", "dir", str(spec), str(to_dir)]
    else:
        cmd = ["skopeo", "sync", "--all", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", str(spec),
               f"{dst.host}/mirror"]
    return run(cmd)[0]


def edgebuild_run(refs: list[str], src: RegistryServer, target: str, workdir: Path) -> tuple[float, dict]:
    """`edgebuild mirror` as a user runs it (the CLI, in its own process): (wall time, what it reported).

    The images are the configuration's additionalImages (v2alpha1), which keeps each source's path
    and tag at the destination, as skopeo sync does."""
    isc = workdir / "isc-bench.yaml"
    isc.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                   "  additionalImages:\n" + "".join(f"  - name: {src.host}/{r}\n" for r in refs))
    rss_file = workdir / "edgebuild-rss.txt"
    start = time.monotonic()
    _, proc = run([EDGEBUILD_PYTHON[0], "-c", _CLI_WITH_RSS, str(rss_file), "mirror", "-c", str(isc), "--to", target,
                   "--src-tls-verify=false", "--dest-tls-verify=false"], cwd=workdir)
    elapsed = time.monotonic() - start
    summary = next((line for line in proc.stderr.splitlines()
                    if line.startswith(("mirrored to", "nothing new", "wrote"))), proc.stderr.splitlines()[-1])
    return elapsed, {"summary": summary, "maxrss_mb": int(rss_file.read_text()) / 1024}


# The Python that runs edgebuild: a venv with `pip install .` of this checkout (see install_edgebuild)
EDGEBUILD_PYTHON = [sys.executable]


def install_edgebuild(workdir: Path) -> str:
    """Install this checkout into a fresh venv, as a user installs it, and return its python.

    A developer checkout is an editable install on an interpreter that may carry unrelated packages
    (here trio, which httpcore imports when present) and no compiled bytecode; that adds 0.1 s to
    every start and would be measured as edgebuild's."""
    venv = workdir / "venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--force-reinstall", "--no-deps", str(REPO)],
                   check=True, capture_output=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(REPO)], check=True, capture_output=True)
    return str(venv / "bin" / "python")


# `edgebuild ARGS…` that also leaves its peak RSS (KiB) in the file named first
_CLI_WITH_RSS = """import resource, sys
from edgebuild.cli import main
code = main(sys.argv[2:])
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
sys.exit(code)"""


def curl_ceiling(blobs: list[tuple[str, Path]], registry: RegistryServer, parallel: int, workdir: Path) -> float:
    """curl POST + monolithic PUT of every blob, split over `parallel` lanes.

    Each lane is two curl processes with keep-alive (`next` in a -K config): first all POSTs (the
    upload sessions, Location headers dumped to files), then all PUTs streaming the files. So the
    figure is the registry's ingest limit, not process start-up.
    """
    lanes = [blobs[i::parallel] for i in range(parallel)]
    tmp = workdir / "ceiling"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.monotonic()

    def run_lanes(configs: list[Path]) -> None:
        procs = [subprocess.Popen(["curl", "-sS", "-K", str(c)]) for c in configs]
        if any(p.wait() != 0 for p in procs):
            raise RuntimeError("curl ceiling run failed")
    posts = []
    for n, lane in enumerate(lanes):
        cfg = tmp / f"post-{n}.cfg"
        cfg.write_text("next\n".join(f'url = "http://{registry.host}/v2/ceiling/blobs/uploads/"\nrequest = "POST"\n'
                                     f'dump-header = "{tmp}/h-{n}-{i}"\noutput = "/dev/null"\n'
                                     for i in range(len(lane))))
        posts.append(cfg)
    run_lanes(posts)
    puts = []
    for n, lane in enumerate(lanes):
        lines = []
        for i, (digest, path) in enumerate(lane):
            headers = (tmp / f"h-{n}-{i}").read_text()
            location = next(line.split(":", 1)[1].strip() for line in headers.splitlines()
                            if line.lower().startswith("location:"))
            lines.append(f'url = "{location}&digest={digest}"\nupload-file = "{path}"\n'
                         'header = "Content-Type: application/octet-stream"\noutput = "/dev/null"\nfail\n')
        cfg = tmp / f"put-{n}.cfg"
        cfg.write_text("next\n".join(lines))
        puts.append(cfg)
    run_lanes(puts)
    return time.monotonic() - start


def fresh(registry: RegistryServer) -> RegistryServer:
    registry.stop()
    shutil.rmtree(registry.storage, ignore_errors=True)
    return registry.start()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class ColdRun:
    wall: float
    cpu_src: float
    cpu_dst: float
    cpu_copier: float


def measured(src: RegistryServer, dst: RegistryServer, action) -> ColdRun:  # type: ignore[no-untyped-def]
    """Run `action` (returns wall seconds) with the CPU of both registries and of child processes counted."""
    a0, b0 = process_cpu(src.proc.pid), process_cpu(dst.proc.pid)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = action()
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    copier = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    return ColdRun(wall, process_cpu(src.proc.pid) - a0, process_cpu(dst.proc.pid) - b0, copier)


def describe(runs: list[ColdRun]) -> str:
    walls = ", ".join(f"{r.wall:.2f}" for r in runs)
    mid = sorted(runs, key=lambda r: r.wall)[(len(runs) - 1) // 2]  # the median run (lower middle)
    return (f"median {median(runs):.2f} s ({walls}); CPU-s src {mid.cpu_src:.1f} / dst {mid.cpu_dst:.1f} / "
            f"copying process(es) {mid.cpu_copier:.1f} (median run)")


def median(runs: list[ColdRun]) -> float:
    return statistics.median(r.wall for r in runs)


def registry_profile(profile: str, refs: list[str], blobs: list[tuple[str, Path]], src: RegistryServer,
                     dst: RegistryServer, workdir: Path, repeat: int, say) -> None:  # type: ignore[no-untyped-def]
    """Cold runs of ceiling (1 and 4 lanes), skopeo sync and edgebuild, interleaved; then warm runs."""
    target = f"docker://{dst.host}/mirror"
    ceil_seq: list[ColdRun] = []
    ceil_par: list[ColdRun] = []
    sk: list[ColdRun] = []
    eb: list[ColdRun] = []
    info: dict = {}
    t_sk_warm = t_eb_warm = 0.0
    for n in range(repeat):
        last = n == repeat - 1
        fresh(dst)
        ceil_seq.append(measured(src, dst, lambda: curl_ceiling(blobs, dst, 1, workdir)))
        fresh(dst)
        ceil_par.append(measured(src, dst, lambda: curl_ceiling(blobs, dst, 4, workdir)))
        fresh(dst)
        sk.append(measured(src, dst, lambda: skopeo_sync(refs, src, dst, workdir)))
        if last:  # warm: the destination holds skopeo's copy; a rerun is short, so take the median of five
            t_sk_warm = statistics.median(skopeo_sync(refs, src, dst, workdir) for _ in range(5))
        fresh(dst)

        def edgebuild() -> float:
            elapsed, report = edgebuild_run(refs, src, target, workdir)
            info.update(report)
            return elapsed
        eb.append(measured(src, dst, edgebuild))
        if last:
            t_eb_warm = statistics.median(edgebuild_run(refs, src, target, workdir)[0] for _ in range(5))
    limit = 1.25 if profile == "operators" else 1.5
    say(f"ceiling 1 lane:  {describe(ceil_seq)}")
    say(f"ceiling 4 lanes: {describe(ceil_par)}")
    say(f"skopeo sync:     {describe(sk)}")
    say(f"edgebuild:       {describe(eb)}; peak RSS {info['maxrss_mb']:.0f} MB; last run: {info['summary']}")
    say(f"ratios of medians: edgebuild/ceiling4 {median(eb) / median(ceil_par):.2f} (target <= {limit}), "
        f"edgebuild/skopeo {median(eb) / median(sk):.2f}, skopeo/ceiling4 {median(sk) / median(ceil_par):.2f}")
    say(f"warm (median of 5): skopeo sync {t_sk_warm:.2f} s | edgebuild {t_eb_warm:.2f} s "
        f"(ratio {t_eb_warm / t_sk_warm:.2f}, target <= 1.0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/var/tmp/edgebuild-bench")
    parser.add_argument("--profiles", default="operators,tiny,disk,bigblob")
    parser.add_argument("--repeat", type=int, default=1, help="cold runs of each contender, interleaved")
    args = parser.parse_args()
    from tests.registry_fixtures import RegistryServer
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    EDGEBUILD_PYTHON[0] = install_edgebuild(workdir)
    profiles = args.profiles.split(",")
    src = RegistryServer(workdir / "reg-src")
    dst = RegistryServer(workdir / "reg-dst")
    shutil.rmtree(src.storage, ignore_errors=True)
    load = os.getloadavg()[0]
    results: list[str] = [f"# bench/mirror.py on {platform.node()} ({os.cpu_count()} cores, "
                          f"{platform.platform()}), {time.strftime('%Y-%m-%d %H:%M:%S')}, "
                          f"load average {load:.2f} at start, --repeat {args.repeat}"]

    def say(line: str) -> None:
        print(line, flush=True)
        results.append(line)

    src.start()
    dst.start()
    try:
        for profile in profiles:
            layout_profile = "operators" if profile == "disk" else profile
            root = generate(workdir, layout_profile)
            refs = layout_refs(root)
            blobs = unique_blobs(root)
            total = sum(p.stat().st_size for _, p in blobs)
            marker = src.storage / f"pushed-{layout_profile}"
            if not marker.exists():
                push_layout(root, src)
                marker.write_text("ok")
            say(f"\n## {profile}: {len(refs)} images, {len(blobs)} unique blobs, {total / MB:.0f} MB")
            if profile == "bigblob":
                fresh(dst)
                elapsed, info = edgebuild_run(refs, src, f"docker://{dst.host}/mirror", workdir)
                say(f"edgebuild cold: {elapsed:.2f} s, peak RSS {info['maxrss_mb']:.0f} MB "
                    f"(target < 200 MB while copying a 1 GB blob)")
                continue
            if profile == "disk":
                out_skopeo, out_eb = workdir / "disk-skopeo", workdir / "disk-edgebuild"
                shutil.rmtree(out_skopeo, ignore_errors=True)
                shutil.rmtree(out_eb, ignore_errors=True)
                t_sk = skopeo_sync(refs, src, dst, workdir, to_dir=out_skopeo)
                t_eb, info = edgebuild_run(refs, src, f"file://{out_eb}", workdir)
                t_eb_warm, _ = edgebuild_run(refs, src, f"file://{out_eb}", workdir)
                say(f"cold: skopeo sync --dest dir {t_sk:.2f} s | edgebuild file:// {t_eb:.2f} s "
                    f"(ratio edgebuild/skopeo {t_eb / t_sk:.2f}; peak RSS {info['maxrss_mb']:.0f} MB)")
                say(f"warm: edgebuild file:// {t_eb_warm:.2f} s (skopeo sync --dest dir refuses to write into "
                    "a filled directory, so it has no warm run)")
                continue
            registry_profile(profile, refs, blobs, src, dst, workdir, max(1, args.repeat), say)
    finally:
        src.stop()
        dst.stop()
    (workdir / "last-results.md").write_text("\n".join(results) + "\n")


if __name__ == "__main__":
    main()
