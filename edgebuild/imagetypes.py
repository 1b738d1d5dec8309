"""The image types edgebuild composes, defined once: the CLI's choices and compose's artifact names.

A module of its own so that `edgebuild --help` does not import the compose clients (httpx).
"""

from __future__ import annotations

# Each type with osbuild's default artifact file name (osbuild/images data/distrodefs/rhel-9/imagetypes.yaml),
# used when the server names no file.
IMAGE_FILENAMES: dict[str, str] = {
    "edge-commit": "commit.tar",
    "edge-container": "container.tar",
    "edge-installer": "installer.iso",
}
IMAGE_TYPES: tuple[str, ...] = tuple(IMAGE_FILENAMES)
