#!/usr/bin/env python3
"""Benchmark: `edgebuild verify` of the three-operator set of issue 9, time and peak extra disk.

The set: rabbitmq-cluster-operator 2.20.0+, sailoperator 1.30.0+, kube-green 0.6.0+ (minVersion, oc-mirror
v1) from ../shared/catalogs/community-operators-v4.17, every image reference rewritten to a local
"upstream" docker-registry holding a generated image per reference with PAYLOAD bytes of random
(incompressible, uncompressed) data, so the set is about 295 MB (tests/test_real_catalog_e2e.py,
`synthesize_upstream`). `edgebuild build --skip-verify` mirrors and renders it once per --embed mode;
then `edgebuild verify OUT` runs as its own process, timed from outside. Peak extra disk is the
largest size of verify's scratch directory (TMPDIR pointed at a fresh folder, sampled every 50 ms)
plus any growth of OUT (there must be none). Each mode runs twice: with the scratch store where verify puts
it by default (memory, /dev/shm, when it fits) and on disk (EDGEBUILD_VERIFY_SCRATCH=the scratch folder);
the peak in memory is sampled the same way.

    python3 bench/verify.py [--workdir /var/tmp/edgebuild-bench-verify] [--payload 2900000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgebuild.device_store import RAM_DIR, SCRATCH_ENV  # noqa: E402
from tests.registry_fixtures import RegistryServer  # noqa: E402
from tests.test_real_catalog_e2e import THREE_OPERATORS, synthesize_upstream  # noqa: E402


def tree_bytes(path: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_blocks * 512
            except OSError:
                pass
    return total


def ram_stores() -> set[Path]:
    """verify's scratch stores in memory (edgebuild.device_store.RAM_DIR) that exist now."""
    return set(RAM_DIR.glob("edgebuild-verify-*")) if RAM_DIR.is_dir() else set()


def timed_verify(out: Path, scratch: Path, on_disk: bool, sampled: bool) -> tuple[float, int, int, int, str]:
    """(seconds, peak scratch bytes on disk, peak bytes in memory, OUT growth bytes, last line) of one
    `edgebuild verify OUT` process. `on_disk` puts the store on disk (EDGEBUILD_VERIFY_SCRATCH) instead of
    letting verify choose memory. Sampling walks the scratch tree every 50 ms, which costs a 2-core machine
    a few seconds of CPU: timed runs are not sampled, and one extra run is sampled for the peaks."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    before = tree_bytes(out)
    old_ram = ram_stores()
    peak = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_bytes(scratch))
            peak[1] = max(peak[1], sum(tree_bytes(p) for p in ram_stores() - old_ram))
            time.sleep(0.05)
    sampler = threading.Thread(target=sample)
    if sampled:
        sampler.start()
    env = {**os.environ, "TMPDIR": str(scratch)}
    env.pop(SCRATCH_ENV, None)
    if on_disk:
        env[SCRATCH_ENV] = str(scratch)
    # Start from a settled disk: the previous run's store (~300 MB on disk, just removed) and the mirror's
    # writes are otherwise written back and discarded while this run is timed.
    os.sync()
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "edgebuild", "verify", str(out)], check=False, cwd=REPO, env=env,
                            capture_output=True, text=True)
    elapsed = time.monotonic() - start
    done.set()
    if sampled:
        sampler.join()
    if result.returncode != 0:
        raise SystemExit(f"verify failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, peak[0], peak[1], tree_bytes(out) - before, result.stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/edgebuild-bench-verify"))
    parser.add_argument("--payload", type=int, default=2_900_000, help="random bytes per generated image")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shared = REPO.parent / "shared"
    # An installed edgebuild has its bytecode compiled by pip; a checkout run with PYTHONDONTWRITEBYTECODE
    # (set on this project's machines) would compile every module again in each timed run. Compile once.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "edgebuild")], check=True)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    upstream = RegistryServer(args.workdir / "registry-upstream").start()
    mirror = RegistryServer(args.workdir / "registry-mirror").start()
    try:
        t0 = time.monotonic()
        data = synthesize_upstream(shared, upstream.host, args.workdir / "up", THREE_OPERATORS, args.payload)
        print(f"synthesized {len(data['rewritten'])} images in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        rows = []
        for mode in ("installed", "all"):
            out = args.workdir / f"out-{mode}"
            build = subprocess.run([sys.executable, "-m", "edgebuild", "build", "-c", str(data["config"]), "--to",
                                    f"docker://{mirror.host}/edge", "-o", str(out), "--src-tls-verify=false",
                                    "--dest-tls-verify=false", "--insecure-mirror", "-q", "--skip-verify",
                                    "--embed", mode], check=False, cwd=REPO, capture_output=True, text=True)
            if build.returncode != 0:
                raise SystemExit(build.stdout + build.stderr)
            images = json.loads((out / "images.json").read_text())
            embedded_bytes = sum(i["bytes"] or 0 for i in images if i["embedded"])
            embedded = sum(1 for i in images if i["embedded"])
            for where in ("memory", "disk"):
                runs = [timed_verify(out, args.workdir / "scratch", where == "disk", sampled=False)
                        for _ in range(args.repeat)]
                peaks = timed_verify(out, args.workdir / "scratch", where == "disk", sampled=True)
                rows.append((mode, where, embedded, len(images), embedded_bytes, [r[0] for r in runs],
                             peaks[1], peaks[2], max(r[3] for r in [*runs, peaks])))
        print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; "
              f"python {platform.python_version()}")
        print("| --embed | scratch store | embedded / selected | embedded bytes | verify s (runs) | median s | "
              "peak extra disk | peak in memory | peak / embedded | OUT growth |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for mode, where, n, total, nbytes, seconds, disk, ram, growth in rows:
            print(f"| {mode} | {where} | {n} / {total} | {nbytes / 1e6:.1f} MB | "
                  f"{' / '.join(f'{s:.2f}' for s in seconds)} | {statistics.median(seconds):.2f} | "
                  f"{disk / 1e6:.1f} MB | {ram / 1e6:.1f} MB | {max(disk, ram) / max(nbytes, 1):.2f}x | {growth} B |")
    finally:
        mirror.stop()
        upstream.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
