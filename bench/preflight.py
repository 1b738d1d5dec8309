#!/usr/bin/env python3
"""Benchmark: how fast `edgebuild mirror` fails when a registry it needs cannot be reached.

Targets (issue 11): a destination on a wrong port fails in under 5 s; 100 images on hosts that do
not resolve fail in under 10 s. Each case runs the CLI as its own process (`python3 -m edgebuild`,
start-up included) from this checkout, or with --rev from a git revision checked out beside it for a
before/after comparison (that run is cut off at --timeout seconds).

Cases:
  wrong-port     20 additionalImages on a real local docker-registry, destination 127.0.0.1:<closed port>
  dns-100-hosts  100 additionalImages on 100 different names under .invalid (never resolve)
  dns-1-host     100 additionalImages on one name under .invalid

    python3 bench/preflight.py [--repeat 3] [--rev e8f45f0 --timeout 120]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def closed_port() -> int:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def write_isc(path: Path, images: list[str]) -> Path:
    path.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                    "  additionalImages:\n" + "".join(f"  - name: {ref}\n" for ref in images))
    return path


def timed(checkout: Path, argv: list[str], timeout: float) -> tuple[float, int | None, str]:
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "edgebuild", *argv], cwd=checkout, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.monotonic() - started, None, f"(still running after {timeout:g} s)"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return time.monotonic() - started, done.returncode, (lines[0] if lines else "")[:150]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rev", help="also run this git revision (checked out in a temporary worktree)")
    parser.add_argument("--timeout", type=float, default=120.0, help="cut off a run after this long")
    args = parser.parse_args()

    from tests.registry_fixtures import RegistryServer
    with tempfile.TemporaryDirectory(prefix="edgebuild-preflight-") as tmp:
        work = Path(tmp)
        source = RegistryServer(work / "src").start()
        try:
            cases = {
                "wrong-port": (write_isc(work / "port.yaml", [f"{source.host}/b/app{n}:v1" for n in range(20)]),
                               f"docker://127.0.0.1:{closed_port()}/mirror"),
                "dns-100-hosts": (write_isc(work / "dns100.yaml",
                                            [f"r{n}.edgebuild-bench.invalid/ns/app:v1" for n in range(100)]),
                                  f"docker://{source.host}/mirror"),
                "dns-1-host": (write_isc(work / "dns1.yaml",
                                         [f"quay.edgebuild-bench.invalid/ns/app{n}:v1" for n in range(100)]),
                               f"docker://{source.host}/mirror"),
            }
            checkouts = [("this checkout", REPO)]
            if args.rev:
                old = work / "rev"
                subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.rev],
                               check=True, capture_output=True)
                checkouts.append((f"rev {args.rev}", old))
            print(f"python {sys.version.split()[0]}, {args.repeat} run(s) each, median wall seconds")
            try:
                for name, (config, target) in cases.items():
                    argv = ["mirror", "-c", str(config), "--to", target, "--src-tls-verify=false",
                            "--dest-tls-verify=false", "-q"]
                    for label, checkout in checkouts:
                        runs = [timed(checkout, argv, args.timeout) for _ in range(args.repeat)]
                        median = statistics.median(r[0] for r in runs)
                        print(f"{name:14} {label:18} {median:7.2f} s  exit {runs[-1][1]}  {runs[-1][2]}")
            finally:
                if args.rev:
                    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(work / "rev")],
                                   capture_output=True)
        finally:
            source.stop()


if __name__ == "__main__":
    main()
