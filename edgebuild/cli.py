"""The `edgebuild` command: parses arguments, calls the stages, prints results.

Exit codes a pipeline can trust: 0 success, 1 the job failed, 2 bad usage or invalid configuration.
No stage logic lives here; every subcommand is a thin handler over a stage module.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from . import __version__, ocmirror_cli
from .errors import EdgebuildError, FileSystemError, UsageError
from .imagetypes import IMAGE_TYPES

log = logging.getLogger("edgebuild")

BOOTC_DISK_TYPES = ("anaconda-iso", "qcow2", "raw", "vmdk")  # compose of a bootc OUT (bootc-image-builder)


def _bool_flag(text: str) -> bool:
    """skopeo-style boolean option value: `--dest-tls-verify=false`."""
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _key_value(text: str) -> tuple[str, str]:
    ref, sep, path = text.partition("=")
    if not sep or not ref or not path:
        raise argparse.ArgumentTypeError(f"expected REF=PATH, got {text!r}")
    from .fsutil import path_length_problem
    if problem := path_length_problem(path):
        raise argparse.ArgumentTypeError(f"PATH of {ref}: {problem}")
    return ref, path


def _go_duration(text: str) -> str:
    """--catalog-poll-interval: OLM decodes it as a Go duration (checked as time.ParseDuration does)."""
    from .render.validate import check_poll_interval
    if problem := check_poll_interval(text):
        raise argparse.ArgumentTypeError(f"{problem}; write a Go duration such as 30m or 24h")
    return text


def _common_parent() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("common options")
    group.add_argument("--src-tls-verify", type=_bool_flag, nargs="?", const=True, default=True, metavar="BOOL",
                       help="verify TLS of source registries (false also allows plain HTTP), default true")
    group.add_argument("--dest-tls-verify", type=_bool_flag, nargs="?", const=True, default=True, metavar="BOOL",
                       help="verify TLS of the destination registry (false also allows plain HTTP), default true")
    group.add_argument("--authfile", metavar="FILE",
                       help="registry auth file (default: REGISTRY_AUTH_FILE, then "
                            "$XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json)")
    group.add_argument("--cert-dir", metavar="DIR",
                       help="directory of CA certificates (*.crt) and client certificates (*.cert/*.key) "
                            "for every registry; --src-cert-dir / --dest-cert-dir set one side")
    group.add_argument("--src-cert-dir", metavar="DIR", help="as --cert-dir, for source registries only")
    group.add_argument("--dest-cert-dir", metavar="DIR", help="as --cert-dir, for the destination registry only")
    group.add_argument("--arch", choices=("amd64", "arm64"), default=None,
                       help="device architecture. mirror: keep only that platform of multi-arch images (their "
                            "digests change); build/verify: the platform the device check embeds (lists stay whole)")
    _add_registry_options(group)
    group.add_argument("-q", "--quiet", action="store_true", help="print only errors and the final summary")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="-v: a line per image; -vv: also every registry request")
    ocmirror_cli.add_common_options(group)
    return common


def _duration(text: str) -> float:
    """Seconds from a Go duration as oc-mirror takes it (`2s`, `500ms`, `1m30s`) or a bare number."""
    import re
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    text = text.strip()
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return float(text)
    parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"expected a duration such as 2s, 500ms or 1m, got {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def _count(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _add_registry_options(group: argparse._ArgumentGroup) -> None:
    """Registry client options, named and defaulted as oc-mirror's (v2 --retry-*, v1 --max-per-registry)."""
    group.add_argument("--retry-times", type=_count, default=5, metavar="N",
                       help="retries of a failed registry request or blob transfer (connection trouble, 429, "
                            "5xx), default 5")
    group.add_argument("--retry-delay", type=_duration, default=0.0, metavar="DURATION",
                       help="wait between retries (e.g. 2s); default 0: exponential backoff")
    group.add_argument("--max-per-registry", type=_count, default=0, metavar="N",
                       help="concurrent requests per registry; default 0: no limit beyond --parallel")
    group.add_argument("--no-fast-http", action="store_true",
                       help="send every registry request through httpx, not the fast HTTP/1.1 path "
                            "(also EDGEBUILD_FAST_HTTP=0); proxies (HTTP(S)_PROXY) use httpx anyway")


def _apply_registry_options(args: argparse.Namespace) -> Callable[[], None]:
    """Make the options the defaults of the run's registry clients; returns what puts the old ones back."""
    if not hasattr(args, "retry_times"):
        return lambda: None
    from .registry.retry import RetryPolicy
    from .registry.settings import configure
    previous = configure(retry=RetryPolicy.from_options(args.retry_times, args.retry_delay),
                         max_per_registry=args.max_per_registry or None, fast_http=not args.no_fast_http)

    def restore() -> None:
        configure(retry=previous.retry, max_per_registry=previous.max_per_registry, fast_http=previous.fast_http)
    return restore


def _add_config(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("-c", "--config", required=required, metavar="ISC",
                   help="ImageSetConfiguration file (mirror.openshift.io/v1alpha2 or v2alpha1)")
    p.add_argument("--catalog-content", type=_key_value, action="append", default=[], metavar="REF=PATH",
                   help="take the FBC of catalog REF from a local directory or OCI layout instead of the registry")
    _add_catalog_limit_option(p)


def _add_catalog_limit_option(p: argparse.ArgumentParser) -> None:
    """Limits on unpacking a catalog image (a hostile one could fill the disk); see catalog/extract_budget.py."""
    p.add_argument("--catalog-limit", action="append", default=[], metavar="NAME=VALUE",
                   help="raise or lower a limit on unpacking a catalog image: total-bytes (default 8G), "
                        "file-bytes (2G), entries (1000000), depth (64), ratio (500); repeatable; also "
                        "EDGEBUILD_CATALOG_LIMITS=NAME=VALUE,...")


def _apply_catalog_limits(args: argparse.Namespace) -> None:
    from .catalog.extract_budget import configure_budget
    configure_budget(getattr(args, "catalog_limit", None) or [])


def _add_render_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("render options")
    g.add_argument("--distro", default="rhel-94", help="blueprint distro, default rhel-94")
    g.add_argument("--microshift-version", metavar="V", help="pin microshift packages to this version, e.g. 4.17.1")
    g.add_argument("--release-info", action="append", default=[], metavar="FILE",
                   help="MicroShift release-info JSON (release-<arch>.json, release-olm-<arch>.json) whose images "
                        "are embedded too; repeatable")
    g.add_argument("--blueprint-name", default="microshift-edge", help="blueprint name, default microshift-edge")
    g.add_argument("--blueprint-version", default="0.0.1", help="blueprint version (semver), default 0.0.1")
    g.add_argument("--release-source", choices=("mirror", "original"), default="mirror",
                   help="where the build host pulls the --release-info images: the mirror (build mirrors them) "
                        "or their own registries (the osbuild-worker needs a pull secret); default mirror")
    g.add_argument("--image-type", choices=IMAGE_TYPES, default="edge-commit",
                   help="the image type the blueprint is for (warns about what it ignores); default edge-commit")
    g.add_argument("--insecure-mirror", action="store_true",
                   help="mark the mirror insecure in the device drop-in (plain HTTP or self-signed TLS)")
    g.add_argument("--block-original-registries", action="store_true",
                   help="block the original registries on the device (air-gapped: only the mirror is used)")
    g.add_argument("--mirror-ca", metavar="FILE",
                   help="CA certificate of the mirror, installed under /etc/pki/ca-trust/source/anchors/")
    g.add_argument("--subscription-config", metavar="FILE",
                   help="YAML overriding namespace, installPlanApproval and config per package")
    g.add_argument("--no-embed", action="append", default=[], metavar="REGEX",
                   help="do not embed images whose reference matches; the device pulls them from the mirror "
                        "through the drop-in (it must reach the mirror); repeatable")
    _add_embed_option(g)
    g.add_argument("--catalog-poll-interval", metavar="DURATION", type=_go_duration,
                   help="registryPoll interval (a Go duration: 30m, 24h) of the cluster CatalogSources whose image "
                        "is a tag; never on a device, whose catalog is embedded by digest")


def _add_pruning_options(p: argparse.ArgumentParser, dry_run: bool) -> None:
    g = p.add_argument_group("pruning (v1alpha2 with storageConfig, as oc-mirror v1)")
    g.add_argument("--skip-pruning", action="store_true",
                   help="keep in the mirror what earlier runs mirrored and this image set no longer holds (as in "
                        "oc-mirror v1, later runs do not prune it either)")
    if dry_run:
        g.add_argument("--pruning-plan", metavar="FILE",
                       help="with --dry-run: where to write what pruning would delete (default ./pruning-plan.json)")


def _add_delete_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("delete", parents=[common],
                       help="delete mirrored images in two steps (oc-mirror v2 delete, v2alpha1): --generate, "
                            "review, --delete-yaml-file")
    p.add_argument("destination", metavar="docker://HOST[:PORT][/NS]", help="the mirror to delete from")
    p.add_argument("-c", "--config", action="append", default=[], metavar="FILE",
                   help="a DeleteImageSetConfiguration (what to delete, with --generate) and/or the current "
                        "ImageSetConfiguration (what must stay: never listed nor deleted); told apart by kind")
    p.add_argument("--catalog-content", type=_key_value, action="append", default=[], metavar="REF=PATH")
    p.add_argument("--generate", action="store_true",
                   help="write WORKSPACE/working-dir/delete/delete-images.yaml to review; deletes nothing")
    p.add_argument("--workspace", metavar="file://DIR", help="where --generate writes the delete files")
    p.add_argument("--delete-id", metavar="ID", help="suffix of the generated file names (delete-images-ID.yaml)")
    p.add_argument("--delete-yaml-file", metavar="FILE", help="the reviewed delete-images.yaml whose images to delete")
    p.set_defaults(handler=_pipeline("run_delete"))


def _add_bootc_options(p: argparse.ArgumentParser, command: str) -> None:
    """Image mode (bootc): render/build write a Containerfile + build context; verify checks a built
    image; compose runs podman build and bootc-image-builder."""
    g = p.add_argument_group("image mode (bootc)")
    if command in ("render", "build"):
        g.add_argument("--target", choices=("blueprint", "bootc"), default="blueprint",
                       help="blueprint (osbuild, default) or bootc: OUT holds a Containerfile, the embedded images "
                            "as dir: copies and their boot-time copy unit")
        g.add_argument("--base-image", metavar="REF",
                       help="bootc base image (default registry.redhat.io/rhel9/rhel-bootc:9.N of --distro rhel-9N, "
                            "rhel10/rhel-bootc:10.N for rhel-10N)")
        g.add_argument("--bootc-user", action="append", default=[], metavar="NAME",
                       help="config.toml: a user (in wheel) for bootc-image-builder; repeatable")
        g.add_argument("--bootc-ssh-key", action="append", default=[], metavar="FILE.pub",
                       help="config.toml: an SSH public key for the --bootc-user users; repeatable")
        g.add_argument("--bootc-kickstart", metavar="FILE", help="config.toml: installer kickstart (anaconda-iso)")
        g.add_argument("--bootc-filesystem", action="append", default=[], metavar="MOUNT=SIZE",
                       help="config.toml: minimum filesystem size, e.g. '/=20 GiB'; repeatable")
    elif command == "verify":
        g.add_argument("--image", metavar="IMAGE",
                       help="check a built bootc image (local container storage) instead of, or with, OUTDIR")
    elif command == "compose":
        g.add_argument("--tag", default="localhost/edgebuild-microshift:latest", metavar="IMAGE",
                       help="name of the image podman builds from OUT (bootc)")
        g.add_argument("--build-arg", action="append", default=[], metavar="K=V",
                       help="podman build --build-arg, e.g. DNF_OPTS=--enablerepo=…; repeatable")
        g.add_argument("--print-only", action="store_true", help="print the podman / bootc-image-builder commands")


def _add_embed_option(g: argparse._ActionsContainer) -> None:
    g.add_argument("--embed", choices=("installed", "all"), default="installed",
                   help="installed (default): embed the catalog, the bundle each Subscription installs (startingCSV) "
                        "and its related images, additional and release images; the rest of the selection stays "
                        "in the mirror. all: embed every selected image")


def build_parser() -> argparse.ArgumentParser:
    common = _common_parent()
    parser = argparse.ArgumentParser(
        prog="edgebuild",
        description="Build RHEL for Edge images with MicroShift operators from an oc-mirror ImageSetConfiguration.",
        epilog="Selection rules: mirror.openshift.io/v1alpha2 follows oc-mirror v1 (checked against oc-mirror 4.17); "
               "v2alpha1 follows oc-mirror v2 as of release-4.18 and later (heads of every channel when none is "
               "given, ranges over every channel, errors for an empty selection or a filtered-out default "
               "channel), not the 4.17 v2 technology preview, which differed in all those points.")
    parser.add_argument("--version", action="version", version=f"edgebuild {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", parents=[common], help="print a commented ImageSetConfiguration")
    p.add_argument("--catalog", metavar="REF", help="operator catalog image")
    p.add_argument("--package", metavar="P", help="operator package")
    p.add_argument("--channel", metavar="C", help="channel of the package")
    p.add_argument("--api-version", choices=("v1alpha2", "v2alpha1"), default="v1alpha2",
                   help="v1alpha2 = oc-mirror v1 rules (adds dependencies), v2alpha1 = oc-mirror v2 rules")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("list", help="list catalogs or operators")
    lsub = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    lp = lsub.add_parser("catalogs", parents=[common], help="Red Hat operator catalogs of an OpenShift version")
    lp.add_argument("--version", required=True, metavar="4.N", help="OpenShift version, e.g. 4.15")
    lp.add_argument("--registry", default="registry.redhat.io", metavar="HOST[:PORT]",
                    help="where to look for them (default registry.redhat.io; a mirror keeps the redhat/ paths)")
    lp.add_argument("--format", choices=("text", "json"), default="text")
    lp.set_defaults(handler=cmd_list_catalogs)
    lp = lsub.add_parser("operators", parents=[common],
                         help="packages of a catalog, channels of a package, versions of a channel")
    lp.add_argument("--catalog", required=True, metavar="REF", help="catalog: registry image, oci://PATH or directory")
    lp.add_argument("--package", metavar="P")
    lp.add_argument("--channel", metavar="C")
    lp.add_argument("--catalog-content", type=_key_value, action="append", default=[], metavar="REF=PATH")
    lp.add_argument("--format", choices=("text", "json"), default="text")
    lp.set_defaults(handler=cmd_list_operators)

    p = sub.add_parser("plan", parents=[common], help="print the image set and its mirror mapping")
    _add_config(p)
    p.add_argument("--to", metavar="docker://HOST[:PORT][/NS]", help="mirror, to compute destinations")
    p.add_argument("--format", choices=("text", "json"), default="text")
    _add_embed_option(p)
    p.set_defaults(handler=cmd_plan)

    p = sub.add_parser("mirror", parents=[common], help="copy the image set: to a registry, to disk, or from disk")
    _add_config(p)
    p.add_argument("--to", metavar="docker://HOST[:PORT][/NS]|file://DIR")
    p.add_argument("--from", dest="from_", metavar="file://DIR", help="mirror from a disk copy made with --to file://")
    p.add_argument("--dry-run", action="store_true",
                   help="write mapping.txt (source=destination) to the workspace and print it; copy nothing")
    p.add_argument("--parallel", type=int, default=4, metavar="N", help="blob transfers at once, default 4")
    p.add_argument("--release-info", action="append", default=[], metavar="FILE",
                   help="MicroShift release-info JSON whose images are mirrored too; repeatable")
    ocmirror_cli.add_destination_options(p)
    _add_pruning_options(p, dry_run=True)
    p.set_defaults(handler=_pipeline("run_mirror"))

    p = sub.add_parser("render", parents=[common], help="write drop-in, manifests, cluster resources and blueprint")
    _add_config(p)
    p.add_argument("--mirror", required=True, metavar="HOST[:PORT][/NS]", help="the mirror the device pulls from")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    _add_render_options(p)
    ocmirror_cli.add_partial_options(p.add_argument_group("oc-mirror options"))
    _add_bootc_options(p, "render")
    p.set_defaults(handler=_pipeline("run_render"))

    p = sub.add_parser("build", parents=[common], help="plan + mirror + render + verify: the main job")
    _add_config(p)
    p.add_argument("--to", metavar="docker://HOST[:PORT][/NS]")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    p.add_argument("--parallel", type=int, default=4, metavar="N")
    p.add_argument("--skip-verify", action="store_true", help="do not run the offline device check")
    ocmirror_cli.add_destination_options(p, workspace=False)
    _add_pruning_options(p, dry_run=False)
    _add_render_options(p)
    _add_bootc_options(p, "build")
    p.set_defaults(handler=_pipeline("run_build"))

    p = sub.add_parser("verify", parents=[common], help="prove offline that the image has every image it needs")
    p.add_argument("outdir", metavar="OUTDIR", nargs="?", help="a render/build output (or give --image)")
    p.add_argument("--root", metavar="DIR", help="lay the device root out here and keep it "
                                                 "(default: a temporary directory outside OUTDIR, removed after)")
    p.add_argument("--release-info", action="append", default=[], metavar="FILE",
                   help="MicroShift release-info JSON whose images must be on the device too; repeatable")
    p.add_argument("--format", choices=("text", "json"), default="text")
    _add_bootc_options(p, "verify")
    p.set_defaults(handler=_pipeline("run_verify"))

    p = sub.add_parser("compose", parents=[common], help="submit the blueprint to osbuild-composer")
    p.add_argument("blueprint", metavar="BLUEPRINT.toml")
    p.add_argument("--type", required=True, choices=IMAGE_TYPES + BOOTC_DISK_TYPES, dest="image_type")
    p.add_argument("--wait", action="store_true", help="wait for the compose to finish")
    p.add_argument("--download", metavar="DIR", help="download the image here when it finishes (implies --wait)")
    p.add_argument("--socket", metavar="PATH", help="Weldr API socket, default /run/weldr/api.socket")
    p.add_argument("--cloud-api", metavar="URL",
                   help="Cloud API of a composer with remote workers (https://HOST or unix:///PATH)")
    p.add_argument("--token-file", metavar="FILE", help="bearer token for --cloud-api (never printed)")
    p.add_argument("--ref", help="ostree ref, e.g. rhel/9/x86_64/edge")
    p.add_argument("--parent", help="ostree parent commit or ref (upgrades)")
    p.add_argument("--url", help="ostree repo URL (edge-installer: the served edge-container)")
    p.add_argument("--timeout", type=int, default=7200, metavar="SECONDS", help="give up waiting after this long")
    _add_bootc_options(p, "compose")
    p.set_defaults(handler=_pipeline("run_compose"))

    _add_delete_command(sub, common)

    p = sub.add_parser("convert", parents=[common], help="turn an oc-mirror ICSP or IDMS file into a CRI-O drop-in")
    p.add_argument("kind", choices=("icsp", "idms"))
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    p.add_argument("--insecure-mirror", action="store_true", help="mark the mirrors insecure (plain HTTP, self-signed)")
    p.add_argument("--block-original-registries", action="store_true",
                   help="block the source registries (air-gapped device: only the mirrors are used)")
    p.set_defaults(handler=_pipeline("run_convert"))
    return parser


# --------------------------------------------------------------------------------------------------
# Handlers


def cmd_init(args: argparse.Namespace) -> int:
    from .init_config import initial_config
    sys.stdout.write(initial_config(api_version=args.api_version, catalog=args.catalog, package=args.package,
                                    channel=args.channel))
    return 0


def cmd_list_catalogs(args: argparse.Namespace) -> int:
    from .catalog.listing import redhat_catalogs
    from .pipeline import confirm_catalogs
    catalogs = redhat_catalogs(args.version, args.registry)
    status = confirm_catalogs(catalogs, args)
    if args.format == "json":
        print(json.dumps({"version": args.version, "catalogs": catalogs,
                          "status": status}, indent=2))
    else:
        print(f"Red Hat operator catalogs for OpenShift {args.version}:")
        for ref in catalogs:
            print(f"  {ref}  [{status[ref]}]")
    return 0


def cmd_list_operators(args: argparse.Namespace) -> int:
    from .catalog import listing
    from .pipeline import load_catalog
    if args.channel and not args.package:
        raise UsageError("--channel needs --package")
    catalog = load_catalog(args.catalog, args)
    if args.format == "json":
        data = listing.to_json(catalog, args.package, args.channel)
        print(json.dumps(data, indent=2))
    else:
        sys.stdout.write(listing.format_text(catalog, args.package, args.channel))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from .pipeline import make_plan, plan_embed_summary, print_plan_text
    plan = make_plan(args)
    embed = plan_embed_summary(plan, args.embed)
    if args.format == "json":
        sys.stdout.write(json.dumps({**plan.to_json(), "embed": embed}, indent=2) + "\n")
    else:
        print_plan_text(plan, sys.stdout)
        sys.stdout.write(f"embed ({args.embed}): {embed.get('embedded')} image(s); left to the mirror: "
                         f"{embed.get('leftToMirror')}" + (f" ({embed['error']})" if embed.get("error") else "") + "\n")
    return 1 if plan.errors else 0


def _pipeline(name: str) -> Callable[[argparse.Namespace], int]:
    """A handler running `pipeline.<name>`, imported on use so `edgebuild --help` stays quick."""
    def handler(args: argparse.Namespace) -> int:
        from . import pipeline
        return getattr(pipeline, name)(args)
    return handler


def _setup_logging(args: argparse.Namespace) -> None:
    level = ocmirror_cli.log_level(args)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    if getattr(args, "verbose", 0) < 2:
        # httpx logs every request (with URLs) at INFO: keep it for -vv only.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("httpcore").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        ocmirror_cli.check_unsupported(sys.argv[1:] if argv is None else argv, ocmirror_cli.known_options(parser))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    _setup_logging(args)
    restore = _apply_registry_options(args)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        ocmirror_cli.resolve(args)
        _apply_catalog_limits(args)
        return handler(args)
    except EdgebuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _broken_pipe()
    except OSError as exc:  # a path the stage did not wrap itself: still one line, never a traceback
        print(f"error: {FileSystemError.from_os_error(exc)}", file=sys.stderr)
        return 1
    finally:
        restore()


def _broken_pipe() -> int:
    """The reader of standard output went away (`edgebuild list ... | head`): say so once, and keep
    Python from failing again when it flushes stdout at exit."""
    import os
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    print("error: standard output was closed by its reader (broken pipe); the output is incomplete",
          file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
