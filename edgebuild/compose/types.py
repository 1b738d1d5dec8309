"""Values shared by both composer clients: image types, progress events and the result."""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..imagetypes import IMAGE_FILENAMES, IMAGE_TYPES

# edgebuild names device architectures as OCI does (--arch amd64|arm64); composer wants RPM names.
_ARCH_ALIASES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


def composer_arch(arch: str | None) -> str:
    """The composer architecture name for `arch` (amd64/arm64 accepted), or the host's when None."""
    name = arch or platform.machine()
    try:
        return _ARCH_ALIASES[name]
    except KeyError:
        raise UsageError(f"architecture {name!r} is not one edge images are built for",
                         hint="use amd64 (x86_64) or arm64 (aarch64)") from None


def check_image_type(image_type: str) -> None:
    if image_type not in IMAGE_FILENAMES:
        raise UsageError(f"image type {image_type!r} is not supported by edgebuild compose",
                         hint="use one of: " + ", ".join(IMAGE_TYPES))


def check_ostree_options(image_type: str, *, ref: str | None, parent: str | None, url: str | None) -> None:
    """Reject ostree options composer would reject, before anything is sent.

    The rules are osbuild/images `ostree.ImageOptions.Validate` (a parent needs the repo URL) and
    the edge-installer image definition (it installs a commit it fetches from `url`).
    """
    if parent and not url:
        raise UsageError("--parent needs --url: composer fetches the parent commit from that ostree repo",
                         hint="pass --url http://HOST/repo/ of the repo that holds the parent commit")
    if image_type == "edge-installer" and not url:
        raise UsageError("edge-installer needs --url: the installer embeds the commit served at that ostree repo",
                         hint="serve the edge-container image (podman run -p 8080:8080 ...) and pass "
                              "--url http://HOST:8080/repo/")


@dataclass(frozen=True)
class ComposeProgress:
    """One observation of a running compose, passed to the caller's progress callback."""

    api: str
    compose_id: str
    state: str
    done: int | None = None
    total: int | None = None
    message: str = ""

    def __str__(self) -> str:
        text = f"compose {self.compose_id}: {self.state}"
        if self.done is not None and self.total:
            text += f" ({self.done}/{self.total})"
        return f"{text} {self.message}".rstrip()


ProgressCallback = Callable[[ComposeProgress], None]


def retry_notice(notify: ProgressCallback, api: str, compose_id: str, state: str) -> Callable[[BaseException], None]:
    """A callback that tells the user a status poll failed and is asked again (the wait goes on)."""
    def tell(exc: BaseException) -> None:
        notify(ComposeProgress(api, compose_id, state, message=f"no answer, asking again: {str(exc).splitlines()[0]}"))
    return tell


@dataclass
class ComposeResult:
    """What a compose produced; `artifact` is set only when the image was downloaded."""

    api: str
    compose_id: str
    image_type: str
    blueprint_name: str
    state: str
    artifact: Path | None = None
    artifact_size: int | None = None
    artifact_sha256: str | None = None
    ostree_commit: str | None = None
    warnings: list[str] = field(default_factory=list)
    polls: int = 0
    elapsed_seconds: float = 0.0

    @property
    def finished(self) -> bool:
        return self.state in ("FINISHED", "success")
