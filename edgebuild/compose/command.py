"""`edgebuild compose`: from parsed CLI arguments to one of the two clients, and the printed result.

The CLI keeps only argument parsing; this module decides Weldr or Cloud API from the flags,
reads the token file, reports progress on the log and prints what was built.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, TextIO

from ..errors import UsageError
from .cloud import compose_cloud
from .transport import WELDR_SOCKET, Token
from .types import ComposeProgress, ComposeResult
from .weldr import compose_weldr

log = logging.getLogger("edgebuild.compose")


def _report(progress: ComposeProgress) -> None:
    log.info("%s", progress)


def run_compose(args: argparse.Namespace, out: TextIO = sys.stdout, poll_interval: float = 10.0) -> int:
    """Run `edgebuild compose` for parsed arguments; errors propagate as EdgebuildError subclasses."""
    cloud_api = getattr(args, "cloud_api", None)
    token_file = getattr(args, "token_file", None)
    if cloud_api and args.socket:
        raise UsageError("--socket (Weldr API) and --cloud-api (Cloud API) exclude each other",
                         hint="pass one of them")
    if token_file and not cloud_api:
        raise UsageError("--token-file is for the Cloud API", hint="add --cloud-api https://HOST, or drop the token")
    common: dict[str, Any] = dict(ref=args.ref, parent=args.parent, url=args.url, wait=args.wait,
                                  download_dir=args.download, progress=_report, poll_interval=poll_interval,
                                  timeout=args.timeout)
    if cloud_api:
        token = Token.from_file(token_file) if token_file else None
        result = compose_cloud(args.blueprint, args.image_type, endpoint=cloud_api, token=token,
                               arch=getattr(args, "arch", None), **common)
    else:
        result = compose_weldr(args.blueprint, args.image_type, socket=args.socket or WELDR_SOCKET, **common)
    print_result(result, out)
    return 0


def print_result(result: ComposeResult, out: TextIO) -> None:
    out.write(f"compose {result.compose_id} ({result.api} API, {result.image_type}, blueprint "
              f"{result.blueprint_name}): {result.state}\n")
    if result.ostree_commit:
        out.write(f"ostree commit: {result.ostree_commit}\n")
    if result.artifact:
        out.write(f"image: {result.artifact} ({result.artifact_size} bytes, sha256:{result.artifact_sha256})\n")
    elif not result.finished:
        out.write("not waited for: pass --wait to follow it, or --download DIR to fetch the image\n")
