#!/usr/bin/env python3
"""Benchmark: catalog parsing and bundle selection on the real v4.17 catalogs and on one 50 times larger.

Sets:
  real   ../shared/catalogs/community-operators-v4.17 as shipped (YAML, 29 packages, 695 bundles)
  NNx    the same catalog cloned NN times (default 50) under new package, channel and bundle names
         (related images moved to per-clone namespaces, dependencies kept inside each clone),
         written as JSON streams with opm's 4-space indent, the way catalog images ship; generated
         into a temporary directory and removed afterwards (never committed); measured once as one
         file per package and once concatenated into a single JSON file (the streaming case)

Each measurement runs in a fresh Python process, so peak RSS (getrusage ru_maxrss) is that of one
load + one selection. Selection is `edgebuild.catalog.select.select` with a heads-only whole-catalog
spec (no packages listed) under v1alpha2 (oc-mirror v1 rules) and v2alpha1 (oc-mirror v2 rules);
"plan" is `edgebuild.plan.build_plan` (selection + image set + mirror mapping) on the same spec.

    python3 bench/catalog.py [--scale 50] [--workdir DIR] [--keep] [--results bench/results-catalog.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL = SHARED / "catalogs" / "community-operators-v4.17"
CATALOG_REF = "registry.example.com/bench/catalog-index:v4.17"
MIRROR = "mirror.example.com:5000/edge"


# --------------------------------------------------------------------------------------------------
# Synthetic catalog


def _read_real_blobs(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Blobs of the real catalog per package directory, read with the loader's YAML rules."""
    sys.path.insert(0, str(REPO))
    from edgebuild.catalog.loader import iter_catalog_files, iter_file_blobs

    out: dict[str, list[dict[str, Any]]] = {}
    for path in iter_catalog_files(root):
        out.setdefault(path.parent.name, []).extend(iter_file_blobs(path))
    return out


def _clone_blob(blob: dict[str, Any], k: int, packages: set[str]) -> dict[str, Any]:
    """`blob` renamed for clone `k`: package, channel and bundle names, dependencies, image namespaces."""
    if k == 0:
        return blob

    def pkg(name: str) -> str:
        return f"{name}-c{k}" if name in packages else name

    def bundle(name: str | None) -> str | None:
        return f"c{k}-{name}" if name else name

    def image(ref: str) -> str:
        host, sep, rest = ref.partition("/")
        return f"{host}/c{k}/{rest}" if sep else ref

    schema = blob.get("schema")
    out = dict(blob)
    if schema == "olm.package":
        out["name"] = pkg(blob["name"])
        if blob.get("defaultChannel"):
            out["defaultChannel"] = f"{blob['defaultChannel']}-c{k}"
    elif schema == "olm.channel":
        out["name"] = f"{blob['name']}-c{k}"
        out["package"] = pkg(blob["package"])
        out["entries"] = [{**e, "name": bundle(e["name"]),
                           **({"replaces": bundle(e["replaces"])} if e.get("replaces") else {}),
                           **({"skips": [bundle(s) for s in e["skips"]]} if e.get("skips") else {})}
                          for e in blob.get("entries") or []]
    elif schema == "olm.bundle":
        out["name"] = bundle(blob["name"])
        out["package"] = pkg(blob["package"])
        out["image"] = image(blob.get("image") or "")
        props = []
        for prop in blob.get("properties") or []:
            value = prop.get("value")
            if prop.get("type") == "olm.package":
                value = {**value, "packageName": pkg(value["packageName"])}
            elif prop.get("type") == "olm.package.required":
                value = {**value, "packageName": pkg(value["packageName"])}
            props.append({**prop, "value": value})
        out["properties"] = props
        out["relatedImages"] = [{**r, "image": image(r["image"])} for r in blob.get("relatedImages") or []]
    return out


def generate(scale: int, target: Path) -> dict[str, int]:
    """Write the `scale`x catalog as JSON streams under `target/configs/<package>/catalog.json`."""
    real = _read_real_blobs(REAL)
    packages = {b["name"] for blobs in real.values() for b in blobs if b.get("schema") == "olm.package"}
    stats = {"packages": 0, "bundles": 0, "bytes": 0}
    for k in range(scale):
        for directory, blobs in sorted(real.items()):
            name = directory if k == 0 else f"{directory}-c{k}"
            path = target / "configs" / name / "catalog.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as fh:
                for blob in blobs:
                    json.dump(_clone_blob(blob, k, packages), fh, indent=4)
                    fh.write("\n")
            stats["packages"] += 1
            stats["bundles"] += sum(1 for b in blobs if b.get("schema") == "olm.bundle")
            stats["bytes"] += path.stat().st_size
    return stats


def _concatenate(configs: Path, target: Path) -> Path:
    """All package files as one JSON stream: a single file of hundreds of MB, to show the loader streams."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        for path in sorted(configs.rglob("catalog.json")):
            with path.open("rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
    return target


# --------------------------------------------------------------------------------------------------
# One measurement (runs in its own process)


def measure(catalog_dir: Path, api: str) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from edgebuild.catalog.loader import load_catalog_dir
    from edgebuild.catalog.select import select
    from edgebuild.config import API_V1, API_V2, ImageSetConfig, OperatorSpec
    from edgebuild.plan import build_plan
    from edgebuild.reference import MirrorTarget

    rss_start = _peak_rss_mb()
    t0 = time.perf_counter()
    catalog = load_catalog_dir(catalog_dir, source=CATALOG_REF)
    t1 = time.perf_counter()
    rss_parse = _peak_rss_mb()
    spec = OperatorSpec(catalog=CATALOG_REF)
    semantics = "v1" if api == "v1alpha2" else "v2"
    selection = select(catalog, spec, semantics)
    t2 = time.perf_counter()
    config = ImageSetConfig(path="bench", api_version=API_V1 if api == "v1alpha2" else API_V2, operators=[spec])
    plan = build_plan(config, {CATALOG_REF: catalog}, MirrorTarget.parse(MIRROR))
    t3 = time.perf_counter()
    return {
        "api": api, "packages": len(catalog.packages), "bundles": catalog.bundle_count,
        "selected_bundles": len(selection.bundle_names()), "plan_images": len(plan.images),
        "plan_errors": len(plan.errors), "parse_s": t1 - t0, "select_s": t2 - t1, "plan_s": t3 - t2,
        "rss_start_mb": rss_start, "rss_after_parse_mb": rss_parse, "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_measurement(catalog_dir: Path, api: str) -> dict[str, Any]:
    wall0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--measure", str(catalog_dir), "--api", api],
                          capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"measurement failed ({catalog_dir}, {api}):\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - wall0
    return result


# --------------------------------------------------------------------------------------------------
# Report


def machine() -> str:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    return (f"nproc {os.cpu_count()}, RAM {mem_kb / 1024 / 1024:.1f} GiB, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, CPU {_cpu_model()}")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def report(rows: list[tuple[str, dict[str, Any]]], gen: dict[str, Any], command: str, scale: int) -> str:
    lines = [
        "# Catalog benchmark (bench/catalog.py)", "",
        f"Command: `{command}`", "",
        f"Machine: {machine()}", "",
        f"Synthetic set: {scale}x community-operators-v4.17 = {gen['packages']} packages, {gen['bundles']} bundles, "
        f"{gen['bytes'] / 1e6:.0f} MB of JSON streams (generated in {gen['seconds']:.1f} s into a temporary "
        "directory, removed afterwards).", "",
        "Each row is a fresh process: parse = `load_catalog_dir`, select = `select()` with a heads-only "
        "whole-catalog spec, plan = `build_plan` (selection again + image set + mapping); peak RSS = ru_maxrss "
        "of that process (Python + imports alone: ~{:.0f} MB).".format(rows[0][1]["rss_start_mb"]), "",
        "| set | api | packages | bundles | selected | plan images | parse s | select s | plan s | "
        "parse+plan s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        lines.append(f"| {name} | {r['api']} | {r['packages']} | {r['bundles']} | {r['selected_bundles']} | "
                     f"{r['plan_images']} | {r['parse_s']:.2f} | {r['select_s']:.3f} | {r['plan_s']:.3f} | "
                     f"{r['parse_s'] + r['plan_s']:.2f} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=50, help="size of the synthetic catalog, in copies of v4.17")
    ap.add_argument("--workdir", type=Path, help="where to generate the synthetic catalog (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated catalog")
    ap.add_argument("--results", type=Path, help="also write the report (markdown) to this file")
    ap.add_argument("--apis", default="v1alpha2,v2alpha1")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--api", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.measure:
        print(json.dumps(measure(args.measure, args.api)))
        return 0
    if not REAL.is_dir():
        raise SystemExit(f"{REAL} is missing: the benchmark needs ../shared/catalogs beside the repository")

    apis = args.apis.split(",")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="edgebuild-catalog-bench-"))
    synthetic = workdir / f"catalog-{args.scale}x"
    try:
        t0 = time.perf_counter()
        if synthetic.exists():
            shutil.rmtree(synthetic)
        gen: dict[str, Any] = generate(args.scale, synthetic)
        gen["seconds"] = time.perf_counter() - t0
        print(f"generated {args.scale}x: {gen['packages']} packages, {gen['bundles']} bundles, "
              f"{gen['bytes'] / 1e6:.0f} MB in {gen['seconds']:.1f} s", flush=True)
        single = _concatenate(synthetic / "configs", synthetic / "single" / "configs" / "all" / "catalog.json")
        rows = []
        sets = [("real v4.17 (YAML)", REAL, apis), (f"{args.scale}x v4.17 (JSON)", synthetic / "configs", apis),
                (f"{args.scale}x v4.17, one JSON file", single.parent.parent, apis[-1:])]
        for name, directory, set_apis in sets:
            for api in set_apis:
                result = run_measurement(directory, api)
                rows.append((name, result))
                print(f"{name:22} {api:9} parse {result['parse_s']:6.2f} s  select {result['select_s']:6.3f} s  "
                      f"plan {result['plan_s']:6.3f} s  peak RSS {result['peak_rss_mb']:6.0f} MB  "
                      f"selected {result['selected_bundles']} of {result['bundles']}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir if not args.workdir else synthetic, ignore_errors=True)
    command = "python3 bench/catalog.py " + " ".join(a for a in sys.argv[1:])
    text = report(rows, gen, command.strip(), args.scale)
    if args.results:
        args.results.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
