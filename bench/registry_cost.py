#!/usr/bin/env python3
"""What each registry request costs the registry itself, in CPU, and what that means for a copy.

On a small machine a registry-to-registry copy of many small images is bound by the CPU of the two
registries, not by the copying client. This script measures the CPU seconds a docker-registry
process (distribution 2.8, as in the tests) spends per request of each kind, sequentially on one
keep-alive connection, and from that the least CPU any client must make the registries spend on
the "tiny" profile of bench/mirror.py (300 images of 64 KB + 16 KB layers and a config), next to
what the curl ceiling makes the destination spend. Dividing by the core count gives a lower bound
on the wall time of a copy on this machine.

    python3 bench/registry_cost.py [--requests 300]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Session:
    """One keep-alive connection to the registry; every answer is read whole."""

    def __init__(self, host: str) -> None:
        self.conn = http.client.HTTPConnection(host, timeout=30)

    def send(self, method: str, url: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        self.conn.request(method, url, body=body, headers=headers or {})
        response = self.conn.getresponse()
        response.read()
        return response


def main() -> None:
    from tests.registry_fixtures import RegistryServer
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind")
    n = parser.parse_args().requests
    with tempfile.TemporaryDirectory(prefix="edgebuild-regcost-") as tmp:
        registry = RegistryServer(Path(tmp)).start()
        try:
            costs = measure(registry, n)
        finally:
            registry.stop()
    print(f"# docker-registry CPU per request, {n} requests each, one connection "
          f"({platform.node()}, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')})")
    for name, ms in costs.items():
        print(f"{name:28s} {ms:5.2f} ms")
    blob_put = costs["POST upload"] + costs["PUT blob (16 KB)"]
    source = 300 * (costs["GET manifest"] + 3 * costs["GET blob (16 KB)"]) / 1000
    destination = 300 * (3 * blob_put + costs["PUT manifest"]) / 1000
    ceiling = 900 * blob_put / 1000
    cores = os.cpu_count() or 1
    print("\ntiny profile (300 images, 3 blobs each), registry CPU no client can avoid:")
    print(f"  source registry: 300 manifest GETs + 900 blob GETs          {source:5.1f} CPU-s")
    print(f"  destination: 900 x (POST + PUT) + 300 manifest PUTs        {destination:5.1f} CPU-s")
    print(f"  together {source + destination:.1f} CPU-s: at least {(source + destination) / cores:.1f} s of wall "
          f"time on {cores} cores, before the client's own CPU")
    print(f"  the curl ceiling makes the destination spend 900 x (POST + PUT) = {ceiling:.1f} CPU-s "
          f"and reads no source registry")


def measure(registry: object, n: int) -> dict[str, float]:
    host = registry.host  # type: ignore[attr-defined]
    pid = registry.proc.pid  # type: ignore[attr-defined]
    session = Session(host)
    blobs = [os.urandom(16_000) for _ in range(n)]
    digests = ["sha256:" + hashlib.sha256(b).hexdigest() for b in blobs]
    locations: list[str] = []
    costs: dict[str, float] = {}

    def timed(name: str, action: Callable[[int], None]) -> None:
        before = process_cpu(pid)
        for i in range(n):
            action(i)
        time.sleep(0.2)  # let the registry's background work (GC) land in this measurement
        costs[name] = (process_cpu(pid) - before) / n * 1000

    def manifest(i: int) -> bytes:
        return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digests[i], "size": len(blobs[i])}, "layers": []}).encode()

    accept = {"Accept": OCI_MANIFEST}
    timed("GET /v2/ (ping)", lambda i: session.send("GET", "/v2/"))
    timed("tags/list, no repository", lambda i: session.send("GET", f"/v2/cost/r{i}/tags/list"))
    timed("POST upload", lambda i: locations.append(
        session.send("POST", f"/v2/cost/r{i}/blobs/uploads/").getheader("Location") or ""))
    timed("PUT blob (16 KB)", lambda i: session.send(
        "PUT", f"{locations[i]}&digest={digests[i]}", blobs[i], {"Content-Type": "application/octet-stream"}))
    timed("HEAD blob", lambda i: session.send("HEAD", f"/v2/cost/r{i}/blobs/{digests[i]}"))
    timed("GET blob (16 KB)", lambda i: session.send("GET", f"/v2/cost/r{i}/blobs/{digests[i]}"))
    timed("PUT manifest", lambda i: session.send("PUT", f"/v2/cost/r{i}/manifests/v1", manifest(i),
                                                 {"Content-Type": OCI_MANIFEST}))
    timed("GET manifest", lambda i: session.send("GET", f"/v2/cost/r{i}/manifests/v1", headers=accept))
    timed("HEAD manifest", lambda i: session.send("HEAD", f"/v2/cost/r{i}/manifests/v1", headers=accept))
    timed("tags/list", lambda i: session.send("GET", f"/v2/cost/r{i}/tags/list"))
    return costs


if __name__ == "__main__":
    main()
