"""osbuild-composer clients: the Weldr API (local socket) and the Cloud API (socket or HTTPS + token).

`compose_weldr` and `compose_cloud` are what the CLI calls; both return a ComposeResult and raise
EdgebuildError subclasses (see `errors`) that carry composer's error id and message.
"""

from .cloud import CloudClient, compose_cloud
from .cloudapi import CloudBlueprint, blueprint_to_cloud, compose_request
from .errors import (
                     BlueprintConversionError,
                     ComposeFailedError,
                     ComposerAPIError,
                     ComposerError,
                     ComposerUnavailableError,
                     ComposeTimeoutError,
)
from .transport import CLOUD_SOCKET, WELDR_SOCKET, Token, parse_endpoint
from .types import IMAGE_TYPES, ComposeProgress, ComposeResult
from .weldr import WeldrClient, compose_weldr

__all__ = [
    "BlueprintConversionError", "CLOUD_SOCKET", "CloudBlueprint", "CloudClient", "ComposeFailedError",
    "ComposeProgress", "ComposeResult", "ComposeTimeoutError", "ComposerAPIError", "ComposerError",
    "ComposerUnavailableError", "IMAGE_TYPES", "Token", "WELDR_SOCKET", "WeldrClient", "blueprint_to_cloud",
    "compose_cloud", "compose_request", "compose_weldr", "parse_endpoint",
]
