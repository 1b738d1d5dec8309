"""The stages wired together the way the CLI runs them.

Each function takes the parsed arguments, calls stage modules in order and returns an exit code
or a result; printing of results for people happens here, never inside a stage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from .catalog.model import Catalog
from .config import ImageSetConfig, load_config
from .errors import CatalogError, RegistryError, UsageError
from .plan import Plan, add_release_images, build_plan
from .reference import MirrorTarget, ReferenceError

log = logging.getLogger("edgebuild")


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    return dict(getattr(args, "catalog_content", None) or [])


def cache_dir(args: argparse.Namespace | None = None) -> Path:
    """Where unpacked catalogs are kept between runs (one directory per catalog manifest digest):
    --cache-dir (oc-mirror v2's flag), else EDGEBUILD_CACHE_DIR, else the XDG cache."""
    base = getattr(args, "cache_dir", None) or os.environ.get("EDGEBUILD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgebuild")
    return Path(base)


def open_catalog_for(ref: str, args: argparse.Namespace, source_factory: Any = None) -> Any:
    """Load the catalog `ref` (registry image, oci://PATH, a directory, or a --catalog-content override)
    as a LoadedCatalog whose FBC stays on disk (`fbc_dir`), so a filtered catalog can be rebuilt from it.
    Pass one `source_factory` for several catalogs so they share a client per registry."""
    from .catalog.sources import open_catalog_image
    overrides = _overrides(args)
    if ref not in overrides and "://" not in ref and Path(ref).is_dir():
        overrides[ref] = ref  # a plain directory name given as the catalog
    factory = source_factory or _image_source_factory(args)
    try:
        return open_catalog_image(ref, overrides=overrides, image_source_factory=factory,
                                  workdir=cache_dir(args), arch=getattr(args, "arch", None) or "amd64")
    except RegistryError as exc:
        raise CatalogError(f"catalog {ref}: {exc.message}",
                           (f"{exc.hint}; or " if exc.hint else "")
                           + f"load it from disk with --catalog-content {ref}=PATH "
                           "(an FBC directory or an OCI layout from 'skopeo copy docker://REF oci:PATH')") from None
    finally:
        if source_factory is None:
            factory.close()


def load_catalog(ref: str, args: argparse.Namespace) -> Catalog:
    check_catalog_content(args, [ref], "--catalog")
    return open_catalog_for(ref, args).catalog


def check_catalog_content(args: argparse.Namespace, refs: list[str], what: str) -> None:
    """A --catalog-content REF=PATH whose REF is none of the run's catalogs is a mistake (a typo in the
    tag, usually), not something to ignore: the catalog would silently come from the registry."""
    from .catalog.sources import _find_override
    for ref, path in getattr(args, "catalog_content", None) or []:
        if not any(_find_override(wanted, {ref: path}) for wanted in refs):
            raise UsageError(f"--catalog-content {ref}={path}: {ref} is not a catalog of this run",
                             f"the {what} catalogs are: {', '.join(refs) or '(none)'}")


def _image_source_factory(args: argparse.Namespace) -> Any:
    """Registry-backed catalog sources, one client per registry host, with the source TLS/auth options."""
    from .registry.source import RegistrySourceFactory
    return RegistrySourceFactory(tls_verify=args.src_tls_verify, authfile=args.authfile, cert_dir=src_cert_dir(args))


def confirm_catalogs(refs: list[str], args: argparse.Namespace) -> dict[str, str]:
    """{ref: "confirmed" | "not found" | "unreachable: why"}: one manifest HEAD per catalog, no retries,
    so an offline machine answers at once instead of waiting on backoff."""
    from concurrent.futures import ThreadPoolExecutor

    from .reference import ImageReference
    from .registry.client import RegistryClient
    from .registry.retry import RetryPolicy

    def check(ref: str) -> tuple[str, str]:
        image = ImageReference.parse(ref)
        try:
            with RegistryClient(image.registry, tls_verify=args.src_tls_verify, cert_dir=src_cert_dir(args),
                                authfile=args.authfile, retry=RetryPolicy(attempts=1), timeout=10.0) as client:
                found = client.head_manifest(image.repository, image.tag or "latest")
        except RegistryError as exc:
            return ref, f"unreachable: {exc.message.splitlines()[0]}"
        return ref, "confirmed" if found else "not found"

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(check, refs))


def load_catalogs(config: ImageSetConfig, args: argparse.Namespace,
                  fbc_dirs: dict[str, str] | None = None) -> dict[str, Catalog]:
    """Every catalog of the configuration, read concurrently; `fbc_dirs` (if given) receives where each
    one's FBC is on disk."""
    from concurrent.futures import ThreadPoolExecutor
    refs = list(dict.fromkeys(spec.catalog for spec in config.operators))
    check_catalog_content(args, refs, "configuration's")
    factory = _image_source_factory(args)

    def load(ref: str) -> Any:
        log.info("loading catalog %s", ref)
        return open_catalog_for(ref, args, factory)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(4, len(refs)))) as pool:
            loaded = dict(zip(refs, pool.map(load, refs), strict=True))
    finally:
        factory.close()
    if fbc_dirs is not None:
        fbc_dirs.update({ref: str(item.fbc_dir) for ref, item in loaded.items() if item.fbc_dir is not None})
    return {ref: item.catalog for ref, item in loaded.items()}


def catalogs_to_rebuild(config: ImageSetConfig, fbc_dirs: dict[str, str]) -> dict[str, str]:
    """Catalogs mirrored as a filtered rebuild (as oc-mirror does) rather than copied whole.

    Only a `full: true` catalog without packages is copied as it is; every other selection is
    rebuilt, so the CatalogSource on the device offers exactly the bundles whose images it carries.
    """
    return {spec.catalog: fbc_dirs[spec.catalog] for spec in config.operators
            if spec.catalog in fbc_dirs and not (spec.full and not spec.packages)}


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


def make_plan(args: argparse.Namespace) -> Plan:
    """`edgebuild plan`: what `mirror` would copy, including what earlier runs (storageConfig) change.

    Selection errors stay in the plan (its JSON carries them) instead of stopping here.
    """
    config = load_config_reporting(args)
    previous = _load_state(config, args.authfile)
    return build_plan(config, load_catalogs(config, args), parse_mirror(args.to), previous=previous)


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
    shown = {f"catalog {op.catalog}: {op.error}" for op in plan.operators if op.error}
    for error in plan.errors:
        if error not in shown:  # a catalog's error is printed once, under that catalog
            out.write(f"error: {error}\n")


def src_cert_dir(args: argparse.Namespace) -> str | None:
    """--src-cert-dir, else --cert-dir (skopeo's per-side flags; one --cert-dir serves both)."""
    return getattr(args, "src_cert_dir", None) or getattr(args, "cert_dir", None)


def dest_cert_dir(args: argparse.Namespace) -> str | None:
    return getattr(args, "dest_cert_dir", None) or getattr(args, "cert_dir", None)


def mirror_options(args: argparse.Namespace, config: ImageSetConfig | None = None) -> Any:
    from .registry.mirror import MirrorOptions
    return MirrorOptions(src_tls_verify=args.src_tls_verify, dest_tls_verify=args.dest_tls_verify,
                         authfile=args.authfile, src_cert_dir=src_cert_dir(args),
                         dest_cert_dir=dest_cert_dir(args), arch=args.arch,
                         parallel=getattr(args, "parallel", 4), quiet=args.quiet, verbose=args.verbose,
                         archive_size_gb=config.archive_size_gb if config else None,
                         retry=_retry_policy())


def _retry_policy() -> Any:
    """The run's retry policy (--retry-times / --retry-delay, set on the registry client settings)."""
    from .registry.settings import settings
    return settings().retry


def _load_state(config: ImageSetConfig, authfile: str | None) -> dict[str, Any] | None:
    if config.storage is None:
        return None
    from .registry.state import load_state
    return load_state(config, authfile=authfile)


def _save_state(config: ImageSetConfig, plan: Plan, previous: dict[str, Any] | None,
                authfile: str | None) -> None:
    if config.storage is None:
        return
    from .prune import with_mirrored
    from .registry.state import save_state, state_from_run
    save_state(config, with_mirrored(state_from_run(plan, previous), plan), authfile=authfile)


def _pruning(args: argparse.Namespace, plan: Plan, previous: dict[str, Any] | None, *, dry_run: bool) -> None:
    """oc-mirror v1 pruning after a registry run (prune.py); --dry-run writes pruning-plan.json instead."""
    from .prune import run_pruning
    run_pruning(plan, previous, dry_run=dry_run, skip=getattr(args, "skip_pruning", False),
                plan_file=Path(getattr(args, "pruning_plan", None) or "pruning-plan.json"),
                client_options={"tls_verify": args.dest_tls_verify, "cert_dir": dest_cert_dir(args),
                                "authfile": args.authfile}, quiet=args.quiet)


def _fail_on_plan_errors(plan: Plan) -> None:
    if len(plan.errors) == 1:  # the error itself, once; a count of one would only repeat it
        raise CatalogError(plan.errors[0])
    if plan.errors:
        for error in plan.errors:
            print(f"error: {error}", file=sys.stderr)
        raise CatalogError(f"the plan has {len(plan.errors)} error(s); nothing was mirrored",
                           "fix the configuration or the catalog selection ('edgebuild plan' shows the plan)")


def load_config_reporting(args: argparse.Namespace) -> ImageSetConfig:
    config = load_config(args.config)
    for warning in config.warnings:
        log.warning("warning: %s", warning)
    return config


def prepare_plan(args: argparse.Namespace, config: ImageSetConfig, mirror: MirrorTarget | None,
                 release_info: list[str]) -> tuple[Plan, Any]:
    """The plan a mirror/build/render run works on, and the mirror options that go with it.

    The storageConfig state of earlier runs is read (v1 incremental selection), every catalog's FBC
    is located for the filtered rebuild, and release-info images join the set. Any plan error stops
    the run here, before anything is copied or written.
    """
    options = mirror_options(args, config)
    checked = preflight_config(config, args, mirror)
    options.previous_state = _load_state(config, args.authfile)
    fbc_dirs: dict[str, str] = {}
    plan = build_plan(config, load_catalogs(config, args, fbc_dirs), mirror, previous=options.previous_state)
    preflight_plan(plan, args, checked)
    options.catalog_dirs = catalogs_to_rebuild(config, fbc_dirs)
    add_release_images(plan, release_references(release_info))
    for warning in plan.warnings:
        log.warning("warning: %s", warning)
    _fail_on_plan_errors(plan)
    return plan, options


def _preflight_sides(args: argparse.Namespace) -> Any:
    from .registry.preflight import Sides
    return Sides(args.src_tls_verify, args.dest_tls_verify, src_cert_dir(args), dest_cert_dir(args))


def preflight_config(config: ImageSetConfig, args: argparse.Namespace, mirror: MirrorTarget | None) -> set[str]:
    """Ping, once and concurrently, every registry the configuration names (catalogs, additional images,
    storageConfig, the destination; with --dry-run only the catalogs) before any is used; returns those
    checked."""
    from .registry.preflight import check_registries, config_targets
    destination = mirror.registry if mirror is not None and not getattr(args, "dry_run", False) else None
    local = [spec.catalog for spec in config.operators if "://" not in spec.catalog and Path(spec.catalog).is_dir()]
    targets = config_targets(config, _preflight_sides(args), destination=destination,
                             overrides=_overrides(args), local_catalogs=local)
    if getattr(args, "dry_run", False):  # only the catalogs are read: nothing else is asked
        targets = [t for t in targets if t.role == "catalog source"]
    return check_registries(targets, authfile=args.authfile)


def preflight_plan(plan: Plan, args: argparse.Namespace, checked: set[str]) -> None:
    """The same for the image sources the catalogs added (bundles, related images)."""
    from .registry.preflight import check_registries, plan_targets
    if getattr(args, "dry_run", False):
        return
    check_registries(plan_targets(plan, _preflight_sides(args), checked), authfile=args.authfile)


def _check_path_length(option: str, path: str) -> None:
    """A usage error (exit 2) before any registry is asked: an output path Linux cannot create."""
    from .fsutil import path_length_problem
    if problem := path_length_problem(path):
        raise UsageError(f"{option}: {problem}", "choose a shorter path")


def run_mirror(args: argparse.Namespace) -> int:
    """mirror: registry to registry, to disk (file://), or from disk (--from file:// --to docker://)."""
    from .registry import mirror as engine
    config = load_config_reporting(args)
    if args.from_:
        if not args.from_.startswith("file://") or not args.to.startswith("docker://"):
            raise UsageError("--from takes file://DIR and then --to must be docker://HOST[:PORT][/NS]")
        if args.dry_run:
            raise UsageError("--dry-run with --from is not supported: the disk copy's edgebuild/images.json "
                             "lists what would be pushed")
        from .registry.preflight import Target, check_registries
        target = parse_mirror(args.to)
        assert target is not None
        check_registries([Target(target.registry, "destination", args.dest_tls_verify, dest_cert_dir(args))],
                         authfile=args.authfile)
        engine.mirror_from_disk(args.from_, args.to, mirror_options(args, config))
        return 0
    if args.arch:
        log.warning("warning: --arch %s: multi-arch images are filtered to %s and re-pushed as new indexes with new "
                    "digests; references by the original digest (CSV relatedImages, ICSP/IDMS, a device) will "
                    "not find them. Leave --arch out to keep manifest lists whole.", args.arch, args.arch)
    to_disk = args.to.startswith("file://")
    if to_disk:
        _check_path_length(f"--to {args.to}", str(Path(args.to.removeprefix("file://")).absolute()))
    plan, options = prepare_plan(args, config, parse_mirror(args.to), args.release_info)
    options.keep_going = bool(args.continue_on_error or args.skip_missing)
    if args.dry_run:
        lines = engine.dry_run(plan, args.to)
        path = write_dry_run_mapping(config, args, lines)
        for line in lines:
            print(line)
        log.info("dry run: %d images; mapping written to %s; nothing copied", len(lines), path)
        _pruning(args, plan, options.previous_state, dry_run=True)
        return 0
    from . import partial
    try:
        if to_disk:
            disk = engine.parse_dir(args.to)
            try:
                engine.mirror_to_disk(plan, args.to, options)  # each prints its own summary
            except OSError as exc:
                from .errors import FileSystemError
                raise FileSystemError.from_os_error(exc, disk, "writing") from None
        else:
            engine.mirror_to_registry(plan, args.to, options)
    except RegistryError as exc:
        shortfall = partial.tolerate(exc, args)  # re-raised unless --continue-on-error / --skip-missing
        print(partial.summary(shortfall), file=sys.stderr)
        return 1 if shortfall.fatal else 0  # no pruning, no storageConfig state: the next run retries them
    if not to_disk:
        _pruning(args, plan, options.previous_state, dry_run=False)
    _save_state(config, plan, options.previous_state, args.authfile)
    return 0


def write_dry_run_mapping(config: ImageSetConfig, args: argparse.Namespace, lines: list[str]) -> Path:
    """mapping.txt where oc-mirror puts it on --dry-run (ocmirror_cli.dry_run_mapping_path)."""
    from .errors import FileSystemError
    from .fsutil import write_atomic
    from .ocmirror_cli import dry_run_mapping_path
    path = dry_run_mapping_path(config.api_version, args.to, getattr(args, "workspace", None))
    try:
        write_atomic(path, "".join(line + "\n" for line in lines).encode())
    except OSError as exc:
        raise FileSystemError.from_os_error(exc, path, "writing") from None
    return path


def release_references(paths: list[str]) -> dict[str, str]:
    """{image reference: 'release-info FILE (name)'} of MicroShift release-info JSON files."""
    if not paths:
        return {}
    from .render.release_info import read_release_info
    return {img.reference: f"release-info {Path(path).name}" for path in paths
            for img in read_release_info(Path(path))}


def render_options(args: argparse.Namespace, mirror: MirrorTarget) -> Any:
    from .render.options import RenderOptions
    return RenderOptions(
        mirror=mirror, distro=args.distro, microshift_version=args.microshift_version,
        release_info=[Path(p) for p in args.release_info], release_source=args.release_source,
        image_type=args.image_type, blueprint_name=args.blueprint_name,
        blueprint_version=args.blueprint_version, insecure_mirror=args.insecure_mirror,
        block_originals=args.block_original_registries, ca_file=Path(args.mirror_ca) if args.mirror_ca else None,
        subscription_config=Path(args.subscription_config) if args.subscription_config else None,
        catalog_poll_interval=args.catalog_poll_interval, no_embed=list(args.no_embed), embed=args.embed)


def _render(plan: Plan, config: ImageSetConfig, args: argparse.Namespace, mirror: MirrorTarget) -> Any:
    from .pipeline_bootc import render_bootc, wants_bootc
    from .render.output import render_outputs
    if wants_bootc(args):  # image mode: a Containerfile and its build context instead of a blueprint
        return render_bootc(plan, config, args, mirror, render_options(args, mirror))
    if not args.dest_tls_verify and not args.insecure_mirror:
        log.warning("warning: the mirror %s was used with --dest-tls-verify=false, but the blueprint and the "
                    "device drop-in will verify its TLS certificate; pass --insecure-mirror for a plain-HTTP or "
                    "self-signed mirror (or --mirror-ca FILE)", mirror.registry)
    options = render_options(args, mirror)
    options.image_sizes = _mirror_image_sizes(plan, mirror, args)
    result = render_outputs(plan, config, options, Path(args.output))
    for warning in result.warnings:
        log.warning("warning: %s", warning)
    print(f"rendered {result.blueprint} ({result.containers} containers, "
          f"{len(result.manifest_dirs)} manifests directories) and {result.dropin}")
    if result.embed_totals is not None:
        print(f"--embed {args.embed}: {result.embed_totals.format_text()}")
    return result


# -- embed counts and sizes (issue 9) -------------------------------------------------------------
def plan_embed_summary(plan: Plan, mode: str) -> dict[str, Any]:
    """Counts of `plan --embed`: images embedded and left to the mirror (no sizes: plan is offline)."""
    from .embed import check_mode, plan_split, totals
    from .errors import EdgebuildError
    try:
        embedded, mirror_only = plan_split(plan, check_mode(mode))
    except EdgebuildError as exc:
        return {"mode": mode, "embedded": None, "leftToMirror": None, "error": str(exc).splitlines()[0]}
    return {"mode": mode, **totals({}, embedded, mirror_only).to_json()}


def _mirror_image_sizes(plan: Plan, mirror: MirrorTarget, args: argparse.Namespace) -> dict[str, int | None]:
    """{mirror name@digest: sum of layer sizes} of every planned and release image, from the mirror's manifests."""
    from .embed import image_sizes
    from .plan import image_destination
    from .reference import ImageReference
    from .registry.client import RegistryClient
    from .render.release_info import read_release_info
    refs: dict[str, str] = {}
    for img in plan.images:
        if img.destination and img.digest:
            name = ImageReference.parse(img.destination).name
            refs[f"{name}@{img.digest}"] = f"{ImageReference.parse(name).repository}@{img.digest}"
    for path in args.release_info if args.release_source == "mirror" else []:
        for rel in read_release_info(Path(path)):
            dest, _tag = image_destination(ImageReference.parse(rel.reference), plan.semantics, mirror)
            refs[dest] = dest.split("/", 1)[1]
    client = RegistryClient(mirror.registry, tls_verify=args.dest_tls_verify, cert_dir=dest_cert_dir(args),
                            authfile=args.authfile)
    with client:
        return image_sizes(refs, client, arch=_device_arch(args))


def _device_arch(args: argparse.Namespace) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(args.arch or "amd64", args.arch or "amd64")


def run_render(args: argparse.Namespace) -> int:
    """render: the plan against a mirror that already holds the images (digests read from it)."""
    from .registry.resolve import resolve_digests
    config = load_config_reporting(args)
    mirror = parse_mirror(f"docker://{args.mirror.removeprefix('docker://')}")
    assert mirror is not None
    _check_path_length(f"-o {args.output}", str(Path(args.output).absolute()))
    # Release images are embedded from the render options; the plan needs only what was mirrored.
    plan, options = prepare_plan(args, config, mirror, [])
    from . import partial
    tolerant = args.continue_on_error or args.skip_missing
    missing = resolve_digests(plan, mirror, options, allow_missing=tolerant)
    shortfall = partial.Shortfall({source: f"not in the mirror {mirror}" for source in missing},
                                  fatal=args.continue_on_error)
    types = {img.source: img.type for img in plan.images}
    _render(partial.without(plan, shortfall), config, args, mirror)
    partial.mark_in_outputs(Path(args.output), types, shortfall)
    if shortfall:
        print(partial.summary(shortfall, Path(args.output)), file=sys.stderr)
    return 1 if shortfall.fatal and shortfall else 0


def run_build(args: argparse.Namespace) -> int:
    """build: plan, mirror, render, verify — the main job."""
    from .registry.mirror import mirror_to_registry
    if not args.to.startswith("docker://"):
        raise UsageError(f"build --to {args.to}: build needs a registry the image builder can pull from",
                         "use docker://HOST[:PORT][/NS]; for an air gap, run 'mirror --to file://' first")
    config = load_config_reporting(args)
    mirror = parse_mirror(args.to)
    assert mirror is not None
    _check_path_length(f"-o {args.output}", str(Path(args.output).absolute()))
    plan, options = prepare_plan(args, config, mirror,
                                 args.release_info if args.release_source == "mirror" else [])
    # Manifest lists stay whole in the mirror: a filtered index gets a new digest, and the device asks
    # for the original one. osbuild picks the device's platform when it embeds; --arch is used for that
    # check (verify) only.
    options.arch = None
    from . import partial
    shortfall = partial.Shortfall()
    try:
        mirror_to_registry(plan, args.to, options)  # prints its own summary
    except RegistryError as exc:
        shortfall = partial.tolerate(exc, args)  # re-raised unless --continue-on-error / --skip-missing
    if not shortfall:  # a partial run neither prunes nor records state
        _pruning(args, plan, options.previous_state, dry_run=False)
        _save_state(config, plan, options.previous_state, args.authfile)
    types = {img.source: img.type for img in plan.images}
    _render(partial.without(plan, shortfall), config, args, mirror)
    partial.mark_in_outputs(Path(args.output), types, shortfall)
    ok = True
    if not args.skip_verify:
        from .pipeline_bootc import verify_bootc_outdir, wants_bootc
        from .verify import verify
        verify_report = verify_bootc_outdir(args) if wants_bootc(args) else verify(
            Path(args.output), release_info=[Path(p) for p in args.release_info],
            authfile=args.authfile, arch=args.arch,
            progress=None if getattr(args, "quiet", False) else sys.stderr)
        sys.stdout.write(verify_report.format_text())
        ok = verify_report.ok
    if shortfall:
        print(partial.summary(shortfall, Path(args.output)), file=sys.stderr)
        ok = ok and not shortfall.fatal
    if ok and getattr(args, "target", "blueprint") != "bootc":  # bootc: render printed its podman commands
        print(next_command(Path(args.output), args))
    return 0 if ok else 1


def next_command(outdir: Path, args: argparse.Namespace) -> str:
    """What to run after a build: the compose that turns the blueprint into the image."""
    blueprint = outdir / "blueprint.toml"
    image_type = getattr(args, "image_type", "edge-commit")
    return (f"next: build the image with osbuild-composer:\n"
            f"  edgebuild compose {blueprint} --type {image_type} --wait\n"
            f"  (or: composer-cli blueprints push {blueprint} && "
            f"composer-cli compose start-ostree {args.blueprint_name} {image_type})")


def run_verify(args: argparse.Namespace) -> int:
    from .pipeline_bootc import verify_bootc_outdir, wants_bootc
    from .verify import verify
    if not args.outdir and not args.image:
        raise UsageError("verify needs OUTDIR (a render/build output) or --image IMAGE (a built bootc image)")
    report = verify_bootc_outdir(args) if wants_bootc(args) else verify(
        Path(args.outdir), root=Path(args.root) if args.root else None,
        release_info=[Path(p) for p in args.release_info], authfile=args.authfile, arch=args.arch)
    if args.format == "json":
        print(json.dumps(report.to_json(), indent=2))
    else:
        sys.stdout.write(report.format_text())
    return 0 if report.ok else 1


def run_compose(args: argparse.Namespace) -> int:
    from .compose.command import run_compose as compose
    from .pipeline_bootc import compose_bootc, wants_bootc
    if wants_bootc(args):
        return compose_bootc(args)
    return compose(args)


def run_delete(args: argparse.Namespace) -> int:
    """delete (oc-mirror v2's two steps): the plans of the configurations are made as `plan` makes them."""
    from .delete import run_delete as delete
    return delete(args, lambda config, mirror: build_plan(config, load_catalogs(config, args), mirror))


def run_convert(args: argparse.Namespace) -> int:
    from .render.convert import convert_file
    text = convert_file(args.kind, Path(args.file), insecure=args.insecure_mirror,
                        block_originals=args.block_original_registries)
    if args.output:
        from .errors import FileSystemError
        from .fsutil import write_atomic
        try:
            write_atomic(Path(args.output), text.encode())
        except OSError as exc:
            raise FileSystemError.from_os_error(exc, args.output, "writing") from None
    else:
        sys.stdout.write(text)
    return 0
