"""`--target bootc` wired into render, build, verify and compose (the pipeline's image-mode branch)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from .config import ImageSetConfig
from .plan import Plan
from .reference import MirrorTarget

log = logging.getLogger("edgebuild")


def wants_bootc(args: argparse.Namespace) -> bool:
    """True for `--target bootc`, for `verify --image`, and for verify/compose of a bootc OUT."""
    if getattr(args, "target", None) == "bootc" or getattr(args, "image", None):
        return True
    path = getattr(args, "outdir", None) or getattr(args, "blueprint", None)
    return path is not None and (Path(path) / "Containerfile").is_file()


def bootc_options(args: argparse.Namespace) -> Any:
    from .render.bootc import BootcOptions
    return BootcOptions(base_image=args.base_image, users=list(args.bootc_user),
                        ssh_keys=[Path(p) for p in args.bootc_ssh_key],
                        kickstart=Path(args.bootc_kickstart) if args.bootc_kickstart else None,
                        filesystems=list(args.bootc_filesystem))


def render_bootc(plan: Plan, config: ImageSetConfig, args: argparse.Namespace, mirror: MirrorTarget,
                 render_options: Any) -> Any:
    """Render OUT as a bootc build context, the embedded images copied from the mirror by edgebuild."""
    from .compose.bootc import quickstart_text
    from .pipeline import dest_cert_dir, src_cert_dir
    from .registry.dirtransport import DirFetcher
    from .render.bootc import render_bootc_outputs
    fetcher = DirFetcher(mirror.registry, mirror_tls_verify=args.dest_tls_verify, mirror_cert_dir=dest_cert_dir(args),
                         src_tls_verify=args.src_tls_verify, src_cert_dir=src_cert_dir(args),
                         authfile=args.authfile, arch=args.arch)
    try:
        result = render_bootc_outputs(plan, config, render_options, bootc_options(args), Path(args.output), fetcher)
    finally:
        fetcher.close()
    for warning in result.warnings:
        log.warning("warning: %s", warning)
    names = sum(len(e.names) for e in result.entries)
    print(f"rendered {result.containerfile} ({len(result.entries)} embedded images under {names} names, "
          f"{result.embedded_bytes} bytes, {result.copied} copied from the mirror), {result.builder_config}")
    if not args.quiet:
        sys.stdout.write(quickstart_text(result.render.outdir))
    return result


def verify_bootc_outdir(args: argparse.Namespace) -> Any:
    from .verify_bootc import verify_bootc
    outdir = getattr(args, "outdir", None) or getattr(args, "output", None)
    return verify_bootc(Path(outdir) if outdir else None, image=getattr(args, "image", None),
                        release_info=[Path(p) for p in args.release_info])


def compose_bootc(args: argparse.Namespace) -> int:
    from .compose.bootc import compose_bootc as run
    path = Path(args.blueprint)
    outdir = path.parent if path.name == "Containerfile" else path
    return run(outdir, args.image_type, tag=args.tag, authfile=args.authfile, build_args=list(args.build_arg),
               output=Path(args.download or "output"), print_only=args.print_only)
