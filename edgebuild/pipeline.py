"""The stages wired together the way the CLI runs them.

Each function takes the parsed arguments, calls stage modules in order and returns an exit code
or a result; printing of results for people happens here, never inside a stage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from .catalog.model import Catalog
from .config import ImageSetConfig, load_config
from .errors import CatalogError, UsageError
from .plan import Plan, build_plan
from .reference import MirrorTarget, ReferenceError

log = logging.getLogger("edgebuild")


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    return dict(getattr(args, "catalog_content", None) or [])


def load_catalog(ref: str, args: argparse.Namespace) -> Catalog:
    """Load the catalog `ref` (registry image, oci://PATH, a directory, or a --catalog-content override)."""
    from .catalog.loader import load_catalog_dir
    overrides = _overrides(args)
    local = overrides.get(ref) or (ref if not ref.startswith("oci://") and Path(ref).is_dir() else None)
    if local and Path(local).is_dir() and not (Path(local) / "oci-layout").exists():
        return load_catalog_dir(local)
    from .catalog.sources import open_catalog
    return open_catalog(ref, overrides=overrides, image_source_factory=_image_source_factory(args),
                        arch=getattr(args, "arch", None) or "amd64")


def _image_source_factory(args: argparse.Namespace) -> Any:
    """A factory for registry-backed catalog sources, or None when the registry client is absent."""
    try:
        from .registry.source import registry_image_source_factory
    except ImportError:
        return None
    return registry_image_source_factory(tls_verify=args.src_tls_verify, authfile=args.authfile,
                                         cert_dir=args.cert_dir)


def load_catalogs(config: ImageSetConfig, args: argparse.Namespace) -> dict[str, Catalog]:
    catalogs: dict[str, Catalog] = {}
    for spec in config.operators:
        if spec.catalog not in catalogs:
            log.info("loading catalog %s", spec.catalog)
            catalogs[spec.catalog] = load_catalog(spec.catalog, args)
    return catalogs


def parse_mirror(text: str | None) -> MirrorTarget | None:
    if text is None:
        return None
    if text.startswith("file://"):
        return None
    if "://" in text and not text.startswith("docker://"):
        raise UsageError(f"--to {text}: expected docker://HOST[:PORT][/NS] or file://DIR")
    try:
        return MirrorTarget.parse(text)
    except ReferenceError as exc:
        raise UsageError(str(exc)) from None


def make_plan(args: argparse.Namespace, config: ImageSetConfig | None = None) -> Plan:
    config = config or load_config(args.config)
    for warning in config.warnings:
        log.warning("warning: %s", warning)
    mirror = parse_mirror(getattr(args, "to", None))
    catalogs = load_catalogs(config, args)
    return build_plan(config, catalogs, mirror)


def print_plan_text(plan: Plan, out: TextIO) -> None:
    """A plan for people: selection per catalog, image counts, warnings and errors."""
    for op in plan.operators:
        out.write(f"catalog {op.catalog}")
        out.write(f"  ->  {op.destination}\n" if op.destination else "\n")
        if op.error:
            out.write(f"  ERROR: {op.error}\n")
            continue
        assert op.selection is not None
        for name, pkg in op.selection.summary().items():
            out.write(f"  {name} (default channel {pkg['defaultChannel']})\n")
            for channel, bundles in pkg["channels"].items():
                out.write(f"    {channel}: {', '.join(bundles)}\n")
    counts: dict[str, int] = {}
    for img in plan.images:
        counts[img.type] = counts.get(img.type, 0) + 1
    summary = ", ".join(f"{counts[t]} {t}" for t in ("catalog", "bundle", "related", "additional") if t in counts)
    out.write(f"images: {len(plan.images)} ({summary or 'none'})\n")
    if plan.mirror is not None:
        for line in plan.mapping_lines():
            out.write(f"  {line}\n")
    else:
        for img in plan.images:
            out.write(f"  {img.type:<10} {img.source}\n")
    for warning in plan.warnings:
        out.write(f"warning: {warning}\n")
    for error in plan.errors:
        out.write(f"error: {error}\n")


def run_mirror(args: argparse.Namespace) -> int:
    raise CatalogError("mirror is being wired in; see issue #3")


def run_render(args: argparse.Namespace) -> int:
    raise CatalogError("render is being wired in; see issue #4")


def run_build(args: argparse.Namespace) -> int:
    raise CatalogError("build is being wired in; see issue #4")


def run_verify(args: argparse.Namespace) -> int:
    from .verify import verify
    report = verify(Path(args.outdir), root=Path(args.root) if args.root else None,
                    release_info=[Path(p) for p in args.release_info], authfile=args.authfile, arch=args.arch)
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        sys.stdout.write(report.format_text())
    return 0 if report.ok else 1


def run_compose(args: argparse.Namespace) -> int:
    raise CatalogError("compose is being wired in; see issue #5")


def run_convert(args: argparse.Namespace) -> int:
    raise CatalogError("convert is being wired in; see issue #4")
