"""oc-mirror's command-line habits, accepted where edgebuild has the same thing under another name.

People come to edgebuild with oc-mirror commands in their notes, so edgebuild takes:
- the destination as a positional argument (`edgebuild mirror -c isc.yaml docker://host/ns`), as
  both oc-mirror versions do;
- oc-mirror v1's TLS flags (v1/pkg/cli/mirror/options.go, `BindFlags`: `--source-skip-tls`,
  `--dest-skip-tls`, `--source-use-http`, `--dest-use-http`) as aliases of skopeo's
  `--src-tls-verify=false` / `--dest-tls-verify=false` (which also allow plain HTTP);
- oc-mirror v2's `--log-level`, `--cache-dir` and `--workspace` (internal/pkg/cli/executor.go,
  `NewMirrorCmd`), and v1's `--continue-on-error` / `--skip-missing`;
and answers an oc-mirror flag edgebuild does not have with what to use instead, rather than
argparse's bare "unrecognized arguments".
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from .errors import UsageError

LOG_LEVELS = ("error", "info", "debug", "trace")

# oc-mirror flags (v1 options.go BindFlags, v2 executor.go NewMirrorCmd) edgebuild lacks -> what to use
UNSUPPORTED: dict[str, str] = {
    "--v1": "edgebuild follows oc-mirror v1 rules for apiVersion mirror.openshift.io/v1alpha2",
    "--v2": "edgebuild follows oc-mirror v2 rules for apiVersion mirror.openshift.io/v2alpha1",
    "--dir": "--workspace DIR",
    "--parallel-images": "--parallel N (blob transfers at once)",
    "--parallel-layers": "--parallel N (blob transfers at once)",
    "--manifests-only": "edgebuild render -c ISC --mirror HOST[:PORT][/NS] -o OUT (writes the cluster resources "
                        "and device files without copying)",
    "--dry-run-manifest-lists": "--dry-run (mapping.txt lists manifest lists whole)",
    "--skip-image-pin": "nothing: edgebuild always mirrors and embeds images by digest (a device needs digests)",
    "--rebuild-catalogs": "nothing: catalogs are always rebuilt filtered to the selection (full: true without "
                          "packages copies the catalog as it is)",
    "--since": "storageConfig in the ImageSetConfiguration (v1alpha2) to mirror only what is new",
    "--ignore-history": "a configuration without storageConfig",
    "--max-nested-paths": "a shorter --to namespace (edgebuild keeps oc-mirror's repository names)",
    "--image-timeout": "--retry-times / --retry-delay",
    "--port": "nothing: edgebuild copies directly, without a local storage registry",
    "--policy": "skopeo copy with a signature policy for signed images (edgebuild does not check signatures)",
    "--secure-policy": "skopeo copy with a signature policy for signed images (edgebuild does not check signatures)",
    "--enable-operator-secure-policy": "skopeo copy with a signature policy (edgebuild does not check signatures)",
    "--remove-signatures": "nothing: edgebuild does not copy signatures",
    "--skip-verification": "nothing: edgebuild always checks digests",
    "--skip-metadata-check": "nothing: --from checks only that the disk copy finished",
    "--strict-archive": "archiveSize in the ImageSetConfiguration (archives never exceed it)",
    "--registries.d": "--cert-dir DIR and --authfile FILE",
    "--oci-registries-config": "--catalog-content REF=PATH",
    "--force": "nothing: mirror again to redo what is missing (finished images are skipped)",
}


def known_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of `parser` and its subcommands (a flag edgebuild gains stops being refused)."""
    found: set[str] = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= known_options(sub)
    return found


def check_unsupported(argv: Sequence[str], known: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Refuse an oc-mirror flag edgebuild lacks with what to use instead (exit 2)."""
    for token in argv:
        if token == "--":
            return
        name = token.split("=", 1)[0]
        if name in UNSUPPORTED and name not in known:
            raise UsageError(f"{name} is an oc-mirror flag that edgebuild does not support: use {UNSUPPORTED[name]}")


def add_tls_aliases(group: argparse._ArgumentGroup) -> None:
    """oc-mirror v1's TLS/HTTP flags, stored where the skopeo-style flags store."""
    for flag, dest, what in (("--source-skip-tls", "src_tls_verify", "TLS verification of source registries"),
                             ("--source-use-http", "src_tls_verify", "plain HTTP to source registries"),
                             ("--dest-skip-tls", "dest_tls_verify", "TLS verification of the destination"),
                             ("--dest-use-http", "dest_tls_verify", "plain HTTP to the destination")):
        verb = "skip" if "skip" in flag else "allow"
        side = "src" if dest.startswith("src") else "dest"
        group.add_argument(flag, dest=dest, action="store_const", const=False,
                           help=f"oc-mirror v1 name: {verb} {what} (= --{side}-tls-verify=false)")


def add_common_options(group: argparse._ArgumentGroup) -> None:
    add_tls_aliases(group)
    group.add_argument("--log-level", choices=LOG_LEVELS, default=None,
                       help="oc-mirror v2 name: error = -q, info (default), debug = -v, trace = -vv")
    group.add_argument("--cache-dir", metavar="DIR", default=None,
                       help="where unpacked catalogs are kept (default: $EDGEBUILD_CACHE_DIR, else "
                            "~/.cache/edgebuild)")


def add_destination_options(p: argparse.ArgumentParser, *, workspace: bool = True) -> None:
    """The positional destination of oc-mirror, and what goes with a mirror run."""
    p.add_argument("destination", nargs="?", metavar="DESTINATION",
                   help="as --to (oc-mirror's positional destination: docker://HOST[:PORT][/NS] or file://DIR)")
    g = p.add_argument_group("oc-mirror options")
    if workspace:
        g.add_argument("--workspace", metavar="[file://]DIR",
                       help="results folder, as oc-mirror's (--dry-run writes mapping.txt there); default as "
                            "oc-mirror: v1 DEST/oc-mirror-workspace or ./oc-mirror-workspace, v2 "
                            "DEST/working-dir or ./working-dir")
    add_partial_options(g)


def add_partial_options(g: argparse._ArgumentGroup) -> None:
    """oc-mirror v1's --continue-on-error / --skip-missing (see partial.py)."""
    g.add_argument("--continue-on-error", action="store_true",
                   help="images that fail to mirror (render: are not in the mirror) do not stop the run: the rest "
                        "is mirrored and rendered, the others are listed in the summary and images.json; "
                        "the exit code is 1 still, as oc-mirror's")
    g.add_argument("--skip-missing", action="store_true",
                   help="as --continue-on-error for images that are not found, and the exit code is 0")


def resolve(args: argparse.Namespace) -> None:
    """Fold the oc-mirror spellings into edgebuild's: the positional destination into --to, and
    --log-level into -q / -v."""
    positional = getattr(args, "destination", None)
    if positional is not None:
        if getattr(args, "to", None) not in (None, positional):
            raise UsageError(f"two destinations: --to {args.to} and {positional}; give one")
        args.to = positional
    if hasattr(args, "to") and getattr(args, "destination", "absent") is None and args.to is None:
        raise UsageError(f"{args.command}: no destination: give --to docker://HOST[:PORT][/NS] or file://DIR, "
                         "or the destination as the last argument (as oc-mirror takes it)")
    level = getattr(args, "log_level", None)
    if level == "error":
        args.quiet = True
    elif level == "debug":
        args.verbose = max(args.verbose, 1)
    elif level == "trace":
        args.verbose = max(args.verbose, 2)


def log_level(args: argparse.Namespace) -> int:
    """-q: errors and the result only; default: info; -v: per-image lines (info too); -vv: requests."""
    if getattr(args, "quiet", False):
        return logging.WARNING
    return logging.DEBUG if getattr(args, "verbose", 0) >= 2 else logging.INFO


def workspace_dir(api_version: str, destination: str, workspace: str | None) -> Path:
    """oc-mirror's results folder for this run.

    v1 (v1/pkg/cli/mirror/mirror.go, Complete): the hidden --dir, default `oc-mirror-workspace`,
    under DEST for file://DEST, else in the current directory. v2 (internal/pkg/cli/executor.go,
    Complete): `working-dir` under --workspace, or under DEST for file://DEST.
    """
    v2 = api_version.endswith("v2alpha1")
    leaf = "working-dir" if v2 else "oc-mirror-workspace"
    if workspace:
        base = Path(workspace.removeprefix("file://"))
        if not v2 or base.name == leaf:
            return base
        return base / leaf
    if destination.startswith("file://"):
        return Path(destination.removeprefix("file://")) / leaf
    return Path(leaf)


def dry_run_mapping_path(api_version: str, destination: str, workspace: str | None) -> Path:
    """Where oc-mirror writes mapping.txt on --dry-run: v1 WORKSPACE/mapping.txt
    (mirror.go, mirrorMappings with o.DryRun), v2 WORKSPACE/dry-run/mapping.txt (dryrun.go, DryRun)."""
    base = workspace_dir(api_version, destination, workspace)
    return base / "dry-run" / "mapping.txt" if api_version.endswith("v2alpha1") else base / "mapping.txt"
