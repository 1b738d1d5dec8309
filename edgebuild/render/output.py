"""`render_outputs`: every file of OUTDIR, rendered into a temporary directory and swapped in.

A failed run leaves the previous OUTDIR untouched: everything is rendered and checked in memory,
written to a sibling temporary directory `.OUT.new-*`, and only then swapped in. The swap is one
`renameat2(RENAME_EXCHANGE)`, so OUTDIR is never missing, not even for a moment (a SIGKILL at any
point leaves the old or the complete new output); where the filesystem cannot exchange, two
renames are used and the next run puts a `.OUT.old-*` back when a kill came between them. Each
run removes the `.OUT.*` leftovers of killed runs, holding a lock on the parent directory so two
renders into one OUTDIR never remove each other's staging.

Refused, with the reason, instead of guessed: a mount point as OUTDIR (it cannot be renamed; give
a directory inside it), a non-empty directory that is no edgebuild output, and an older output
holding files the user added (they would be lost with the old tree: move them out first). A
failure to write (read-only, permission, disk full) is one `error:` line, exit 1, nothing half
written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import tomllib
import uuid
from pathlib import Path

from ..config import ImageSetConfig
from ..embed import check_mode, split_embedded, totals
from ..errors import UsageError
from ..fsutil import exchange_paths, fsync_dir, locked_directory, path_length_problem, pause_point
from ..plan import Plan, PlanImage, image_destination
from ..reference import ImageReference, MirrorTarget
from .blueprint import (
    INSTALLER_TEMPLATE,
    DeviceDirectory,
    DeviceFile,
    EmbeddedImage,
    check_version_pin,
    edge_blueprint,
    installer_blueprint,
    render_blueprint,
)
from .cluster import CatalogSourceSpec, catalog_sources, render_cluster_resources
from .dropin import DropinOptions, render_dropin
from .errors import RenderError
from .manifests import ManifestDir, NamespaceLedger, render_catalog_dir
from .mirrors import MirrorRule, category_of, scopes, unique_rules
from .options import CA_ANCHOR_PATH, DROPIN_PATH, MANIFESTS_ROOT, RenderOptions, RenderResult
from .policy import unsupported_options
from .release_info import ReleaseImage, read_release_info
from .subscriptions import load_subscription_config

BLUEPRINT_FILE = "blueprint.toml"
INSTALLER_BLUEPRINT_FILE = "blueprint-installer.toml"


def render_outputs(plan: Plan, config: ImageSetConfig, options: RenderOptions, outdir: Path) -> RenderResult:
    """Render the blueprint, device files, cluster resources, mapping and image lists into `outdir`.

    `plan` must be mirrored (every image has its digest). `config` is taken for the CLI contract;
    everything rendered is read from the plan, which already carries the configuration's choices.
    """
    outdir = Path(outdir)
    _check_replaceable(outdir)
    if plan.errors:
        raise RenderError("the plan has errors; nothing rendered:\n  " + "\n  ".join(plan.errors))
    mirror = options.mirror or plan.mirror
    if mirror is None:
        raise UsageError("render needs the mirror", "pass --mirror HOST[:PORT][/NAMESPACE]")
    warnings: list[str] = []
    subscription_config = load_subscription_config(options.subscription_config)
    releases = [image for path in options.release_info for image in read_release_info(path)]
    microshift_version = _microshift_version(options.microshift_version, releases, warnings)

    sources = catalog_sources(plan)
    tls_verify = False if options.insecure_mirror else None
    images = _embedded_images(plan, sources, releases, mirror, options.release_source, tls_verify)
    images, pulled = _split_no_embed(images, options.no_embed)
    images, not_installed = split_embedded(images, plan, check_mode(options.embed), subscription_config)
    pulled += not_installed
    embed_totals = totals(options.image_sizes, [i.source for i in images], [i.source for i in pulled])

    ledger, subscribed = NamespaceLedger(), set[tuple[str, str]]()
    manifest_dirs: list[ManifestDir] = []
    device_image = {id(s): _catalog_device_reference(plan, s) for s in sources}
    for source in sources:
        directory, w = render_catalog_dir(source, device_image[id(source)], subscription_config, ledger,
                                          options.catalog_poll_interval, subscribed)
        manifest_dirs.append(directory)
        warnings.extend(w)
    selected = {p for s in sources for p in (s.catalog.selection.packages if s.catalog.selection else {})}
    warnings += [f"--subscription-config: package {p} is not selected by the plan; its settings are unused"
                 for p in sorted(set(subscription_config.packages) - selected)]

    dropin_text = render_dropin(
        _device_rules(plan, releases, mirror, options.release_source),
        DropinOptions(insecure=options.insecure_mirror, block_originals=options.block_originals,
                      mirror_registry=mirror.registry))
    files = [DeviceFile(DROPIN_PATH, dropin_text)]
    directories: list[DeviceDirectory] = []
    for directory in manifest_dirs:
        base = f"{MANIFESTS_ROOT}/{directory.name}"
        directories.append(DeviceDirectory(base))
        files += [DeviceFile(f"{base}/{name}", text) for name, text in sorted(directory.files.items())]
    if options.ca_file is not None:
        ca_text = _read_ca(options.ca_file)
        files.append(DeviceFile(CA_ANCHOR_PATH, ca_text))
        certs_dir = f"/etc/containers/certs.d/{mirror.registry}"
        directories.append(DeviceDirectory(certs_dir))
        files.append(DeviceFile(f"{certs_dir}/ca.crt", ca_text))

    edge_doc = edge_blueprint(options.blueprint_name, options.blueprint_description, options.blueprint_version,
                              options.distro, microshift_version, directories, files, images)
    edge_text = render_blueprint(edge_doc)
    installer_doc = installer_blueprint(f"{options.blueprint_name}-installer", options.blueprint_description,
                                        options.blueprint_version, options.distro)
    installer_text = render_blueprint(installer_doc, INSTALLER_TEMPLATE)
    if options.image_type == "edge-installer":
        warnings.append(f"edge-installer ignores the packages, files and containers of {BLUEPRINT_FILE}; build "
                        f"edge-container from it, then edge-installer from {INSTALLER_BLUEPRINT_FILE} with --url")
    else:
        warnings += unsupported_options(edge_doc, options.image_type)

    cluster_files, w = render_cluster_resources(plan, sources, options.catalog_poll_interval)
    warnings += w

    tree: dict[str, bytes] = {
        BLUEPRINT_FILE: edge_text.encode(),
        INSTALLER_BLUEPRINT_FILE: installer_text.encode(),
        "mapping.txt": "".join(line + "\n" for line in plan.mapping_lines()).encode(),
        "images.json": (json.dumps(_images_json(images, sizes=options.image_sizes)
                                   + _images_json(pulled, embedded=False, sizes=options.image_sizes), indent=2)
                        + "\n").encode(),
        "plan.json": plan.dumps().encode(),
    }
    # files/ holds every file of the blueprint, including those edge_blueprint adds (the image-names unit).
    tree.update({f"files{f['path']}": f["data"].encode() for f in edge_doc["customizations"]["files"]})
    tree.update({f"cluster-resources/{name}": text.encode() for name, text in cluster_files.items()})
    empty_dirs = [f"files{d.path}" for d in directories]
    _write_tree(outdir, tree, empty_dirs)
    return RenderResult(
        outdir=outdir, blueprint=outdir / BLUEPRINT_FILE, installer_blueprint=outdir / INSTALLER_BLUEPRINT_FILE,
        dropin=outdir / f"files{DROPIN_PATH}",
        manifest_dirs=[outdir / f"files{MANIFESTS_ROOT}/{d.name}" for d in manifest_dirs],
        cluster_resources=[outdir / "cluster-resources" / name for name in sorted(cluster_files)],
        containers=len(edge_doc["containers"]), warnings=warnings, embed_totals=embed_totals)


def _microshift_version(asked: str | None, releases: list[ReleaseImage], warnings: list[str]) -> str | None:
    """The version pin: as asked, else the release-info base, so RPMs match the embedded images."""
    bases = sorted({r.base for r in releases if r.base})
    if asked:
        check_version_pin(asked)
        mismatched = [b for b in bases if not b.startswith(asked.rstrip("*").rstrip("."))]
        if mismatched:
            warnings.append(f"--microshift-version {asked} does not match the release info base "
                            f"{', '.join(mismatched)}; the embedded release images may not be the ones the RPMs run")
        return asked
    if len(bases) > 1:
        raise RenderError(f"release info files disagree on the MicroShift version ({', '.join(bases)})",
                          "give release-info files of one MicroShift version, or pin it with --microshift-version")
    return bases[0] if bases else None


def _catalog_image(plan: Plan, source: CatalogSourceSpec) -> PlanImage | None:
    cplan = source.catalog
    dest_name = ImageReference.parse(cplan.destination).name if cplan.destination else None
    for img in plan.images_of("catalog"):
        if img.source == cplan.spec.catalog:
            return img
        if dest_name and img.destination and ImageReference.parse(img.destination).name == dest_name:
            return img
    return None


def _catalog_device_reference(plan: Plan, source: CatalogSourceSpec) -> str:
    """Mirror name @ digest: the catalog may have been rebuilt, so the original name@digest exists nowhere."""
    img = _catalog_image(plan, source)
    if img is None or not img.digest or not source.catalog.destination:
        raise RenderError(f"catalog {source.catalog.catalog}: the digest of its mirrored image is unknown",
                          "mirror the catalog first (edgebuild mirror or build) so the plan records its digest")
    return f"{ImageReference.parse(source.catalog.destination).name}@{img.digest}"


def _embedded_images(plan: Plan, sources: list[CatalogSourceSpec], releases: list[ReleaseImage],
                     mirror: MirrorTarget, release_source: str, tls_verify: bool | None) -> list[EmbeddedImage]:
    out: list[EmbeddedImage] = []
    seen: set[str] = set()

    def add(image: EmbeddedImage) -> None:
        if image.name not in seen:
            seen.add(image.name)
            out.append(image)

    for source in sources:
        ref = _catalog_device_reference(plan, source)
        add(EmbeddedImage(ref, ref, tls_verify, "catalog", source.catalog.catalog))
    for img in plan.images:
        if img.type in ("catalog", "release"):  # catalogs above; release images below, from release-info
            continue
        if not img.destination:
            raise RenderError(f"{img.source}: no mirror destination in the plan", "plan with --mirror/--to set")
        device = img.device_reference
        pull = f"{ImageReference.parse(img.destination).name}@{img.digest}"
        add(EmbeddedImage(pull, device, tls_verify, img.type, img.source))
    if release_source not in ("mirror", "original"):
        raise UsageError(f"release_source {release_source!r} must be 'mirror' or 'original'")
    for rel in releases:
        if release_source == "mirror":
            pull = _release_destination(rel, mirror, plan.semantics)
            add(EmbeddedImage(pull, rel.reference, tls_verify, "release", rel.reference))
        else:
            add(EmbeddedImage(rel.reference, rel.reference, None, "release", rel.reference))
    return out


def _release_destination(rel: ReleaseImage, mirror: MirrorTarget, semantics: str) -> str:
    ref = ImageReference.parse(rel.reference)
    destination, _tag = image_destination(ref, semantics, mirror)
    return destination


def _device_rules(plan: Plan, releases: list[ReleaseImage], mirror: MirrorTarget,
                  release_source: str) -> list[MirrorRule]:
    """Digest rules for every image the device may pull; tag rules for images given by tag."""
    rules: list[MirrorRule] = []
    for img in plan.images:
        if img.type in ("catalog", "release") or not img.destination:
            continue
        src = ImageReference.parse(img.source)
        source_scope, mirror_scope = scopes(src, ImageReference.parse(img.destination))
        rules.append(MirrorRule(source_scope, mirror_scope, "digest", category_of(img.type)))
        if src.tag:
            rules.append(MirrorRule(source_scope, mirror_scope, "tag", category_of(img.type)))
    if release_source == "mirror":
        for rel in releases:
            src = ImageReference.parse(rel.reference)
            dst = ImageReference.parse(_release_destination(rel, mirror, plan.semantics))
            source_scope, mirror_scope = scopes(src, dst, force_repository=True)
            rules.append(MirrorRule(source_scope, mirror_scope, "digest", "release"))
    return unique_rules(rules)


def _images_json(images: list[EmbeddedImage], embedded: bool = True,
                 sizes: dict[str, int | None] | None = None) -> list[dict[str, object]]:
    return [{"type": i.kind, "source": i.origin, "pullFrom": i.source, "deviceReference": i.name,
             "digest": ImageReference.parse(i.name).digest, "embedded": embedded,
             "bytes": (sizes or {}).get(i.source)} for i in images]


def _split_no_embed(images: list[EmbeddedImage], patterns: list[str]) -> tuple[list[EmbeddedImage],
                                                                               list[EmbeddedImage]]:
    """(embedded, left to the mirror): images whose device reference matches a --no-embed pattern stay
    out of [[containers]]; catalogs are always embedded (the CatalogSource pod starts before any pull)."""
    try:
        compiled = [re.compile(p) for p in patterns]
    except re.error as exc:
        raise UsageError(f"--no-embed: not a valid regular expression: {exc}") from None
    embedded: list[EmbeddedImage] = []
    pulled: list[EmbeddedImage] = []
    for image in images:
        skip = image.kind != "catalog" and any(c.search(image.name) for c in compiled)
        (pulled if skip else embedded).append(image)
    return embedded, pulled


def _read_ca(path: Path) -> str:
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the CA file: {exc}") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise UsageError(f"{path}: not a PEM certificate (no BEGIN CERTIFICATE line)",
                         "give the mirror's CA certificate in PEM form")
    return text


def _check_replaceable(outdir: Path) -> None:
    """Refuse to replace a directory that is not an earlier render output (or empty), or a mount point."""
    if problem := path_length_problem(str(outdir.absolute())):
        raise UsageError(f"-o {outdir}: {problem}", "choose a shorter OUTDIR")
    if not outdir.exists():
        return
    if not outdir.is_dir():
        raise UsageError(f"{outdir} exists and is not a directory", "choose another -o OUTDIR")
    if os.path.ismount(outdir):
        raise UsageError(f"{outdir} is a mount point: edgebuild swaps OUTDIR in whole by a rename, and a mount "
                         "point cannot be renamed", f"give a directory inside it, e.g. -o {outdir / 'edgebuild'}")
    if any(outdir.iterdir()) and not _is_output(outdir):
        raise UsageError(f"{outdir} is not empty and holds no earlier edgebuild output; it would be replaced",
                         "choose a new or empty -o OUTDIR")


def _is_output(outdir: Path) -> bool:
    return (outdir / "plan.json").is_file() and (outdir / BLUEPRINT_FILE).is_file()


_KNOWN_TOP = frozenset({BLUEPRINT_FILE, INSTALLER_BLUEPRINT_FILE, "mapping.txt", "images.json", "plan.json"})
_SCRATCH_DIRS = frozenset({".verify"})  # verify's scratch device root and image store (verify.py), rebuilt per run


def _output_files(outdir: Path) -> list[str]:
    """Relative paths of the files and links of an output, scratch directories left out (not walked)."""
    out: list[str] = []
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        for entry in os.scandir(outdir / rel_dir if rel_dir else outdir):
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_dir(follow_symlinks=False):
                if rel not in _SCRATCH_DIRS:
                    stack.append(rel)
            else:
                out.append(rel)
    return sorted(out)


def _files_added_by_user(outdir: Path, tree: dict[str, bytes]) -> list[str]:
    """Files in an older output that no render wrote: not in the new tree, and neither one of the
    names a render writes at the top, a device file the old blueprint lists, nor a cluster resource."""
    if not outdir.is_dir() or not _is_output(outdir):
        return []
    try:
        listed = {f"files{f.get('path', '')}" for f in
                  tomllib.loads((outdir / BLUEPRINT_FILE).read_text()).get("customizations", {}).get("files", [])}
    except (OSError, ValueError, AttributeError):
        listed = None  # unreadable: everything under files/ counts as ours
    added = []
    for rel in _output_files(outdir):
        ours = (rel in tree or rel in _KNOWN_TOP or rel.startswith("cluster-resources/")
                or (rel.startswith("files/") and (listed is None or rel in listed)))
        if not ours:
            added.append(rel)
    return added


def _write_tree(outdir: Path, tree: dict[str, bytes], directories: list[str]) -> None:
    outdir = outdir.resolve()
    parent = outdir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with locked_directory(parent, f"-o {outdir}", _say):
            _remove_leftovers(outdir)
            added = _files_added_by_user(outdir, tree)
            if added:
                shown = ", ".join(added[:5]) + (f" and {len(added) - 5} more" if len(added) > 5 else "")
                raise UsageError(f"{outdir} holds files an earlier render did not write: {shown}; replacing the "
                                 "output would delete them", "move them out of OUTDIR (or render into a new -o)")
            _stage_and_swap(outdir, tree, directories)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise RenderError(f"cannot write the output {outdir}: {exc.strerror or exc}{where}; nothing was changed",
                          "check free space, permissions and that the filesystem is writable") from None


def _say(message: str) -> None:
    import sys
    sys.stderr.write(message + "\n")


def _stage_and_swap(outdir: Path, tree: dict[str, bytes], directories: list[str]) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.new-", dir=outdir.parent))
    try:
        os.chmod(staging, 0o755)
        for rel in directories:
            (staging / rel).mkdir(parents=True, exist_ok=True)
        for rel, data in tree.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(target, 0o644)
        pause_point("render-staged")
        _swap_in(staging, outdir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _leftover_re(outdir: Path) -> re.Pattern[str]:
    """Names of this OUTDIR's staging (`.OUT.new-XXXXXXXX`, from mkdtemp) and fallback (`.OUT.old-…`) dirs."""
    return re.compile(rf"^\.{re.escape(outdir.name)}\.(new|old)-[A-Za-z0-9_]{{8}}$")


def _remove_leftovers(outdir: Path) -> None:
    """Clean up after killed runs (called under the parent's lock): an old output moved aside by the
    two-rename fallback goes back when OUTDIR is missing; every other leftover is removed."""
    pattern = _leftover_re(outdir)
    leftovers = sorted((p for p in outdir.parent.iterdir() if pattern.match(p.name)),
                       key=lambda p: p.name.split(".")[-1].startswith("new"))
    for path in leftovers:
        if path.name.split(".")[-1].startswith("old") and not outdir.exists():
            os.rename(path, outdir)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _swap_in(staging: Path, outdir: Path) -> None:
    parent = outdir.parent
    if not outdir.exists():
        os.rename(staging, outdir)
        fsync_dir(parent)
        return
    pause_point("render-before-exchange")
    if exchange_paths(staging, outdir):
        fsync_dir(parent)
        pause_point("render-exchanged")
        shutil.rmtree(staging, ignore_errors=True)  # it holds the old output now
        return
    old = parent / f".{outdir.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(outdir, old)
    pause_point("render-old-moved")  # the one window of the fallback: the next run restores `old`
    try:
        os.rename(staging, outdir)
    except BaseException:
        os.rename(old, outdir)
        raise
    fsync_dir(parent)
    shutil.rmtree(old, ignore_errors=True)
