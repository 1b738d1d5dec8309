#!/usr/bin/env python3
"""Benchmark: `edgebuild plan` of a whole real catalog served by a local registry.

The real community-operators v4.17 catalog (../shared/catalogs) is packed into a catalog image and
pushed to a docker-registry on 127.0.0.1; `edgebuild plan --to docker://…` then plans every bundle
of every channel (v2alpha1 `full: true`), which is thousands of images, nearly all by digest. The
plan needs the registry only to read the catalog image (manifest, config, one layer); images named
by digest need no lookup. A pass-through proxy in front of the registry counts the requests.

Each run is the CLI in a fresh process: cold (empty catalog cache) and warm (the unpacked catalog is
cached per manifest digest, so only the manifest is asked for).

    python3 bench/plan.py
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REAL = REPO.parent / "shared" / "catalogs" / "community-operators-v4.17"


def main() -> None:
    from tests.ocibuild import write_catalog_layout
    from tests.registry_fixtures import FaultProxy, RegistryServer
    if not REAL.is_dir():
        sys.exit(f"{REAL} not found: this benchmark reads the shared real catalog")
    with tempfile.TemporaryDirectory(prefix="edgebuild-plan-bench-") as tmp:
        work = Path(tmp)
        files = {f"configs/{p.relative_to(REAL)}": p.read_bytes() for p in sorted(REAL.rglob("*")) if p.is_file()}
        write_catalog_layout(work / "layout", files, ref_name="v4.17")
        registry = RegistryServer(work / "registry").start()
        proxy = FaultProxy(registry).start()
        try:
            subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{work / 'layout'}:v4.17",
                            f"docker://{registry.host}/bench/catalog:v4.17"], check=True)
            isc = work / "isc.yaml"
            isc.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                           f"  operators:\n  - catalog: {proxy.host}/bench/catalog:v4.17\n    full: true\n")
            env = {**os.environ, "EDGEBUILD_CACHE_DIR": str(work / "cache")}
            print(f"# bench/plan.py on {platform.node()} ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d %H:%M')}")
            for label in ("cold (empty catalog cache)", "warm (catalog cached by digest)"):
                proxy.log.clear()
                start = time.monotonic()
                out = subprocess.run(["edgebuild", "plan", "-c", str(isc), "--to", "docker://mirror.example:5000/edge",
                                      "--src-tls-verify=false", "--format", "json"],
                                     check=False, capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    sys.exit(f"edgebuild plan failed: {out.stderr[-3000:]}")
                out = out.stdout
                elapsed = time.monotonic() - start
                plan = json.loads(out)
                images = plan["images"]
                by_digest = sum(1 for i in images if "@sha256:" in i["source"])
                print(f"{label}: {elapsed:.2f} s, {len(images)} images ({by_digest} by digest), "
                      f"{len(proxy.log)} registry requests: "
                      + ", ".join(sorted({f'{m} {p.split("/")[-2]}' for m, p, _, _ in proxy.log})))
        finally:
            proxy.stop()
            registry.stop()


if __name__ == "__main__":
    main()
