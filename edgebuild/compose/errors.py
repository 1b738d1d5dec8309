"""Errors of the compose stage.

Every message names the API, the request and the composer's own error id and text, because a user
reading a failed pipeline log needs the id to search for and the text to act on. No message ever
carries a bearer token: texts that come from the server pass through `Token.redact` first.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import EdgebuildError
from ..retry import Transient


@dataclass(frozen=True)
class ApiErrorEntry:
    """One error as the composer reported it: its id (Weldr `id`, Cloud API `code`/`id`) and text."""

    id: str
    message: str

    def __str__(self) -> str:
        return f"{self.id}: {self.message}" if self.id else self.message


class ComposerError(EdgebuildError):
    """Anything that went wrong talking to osbuild-composer (exit code 1)."""


class ComposerUnavailableError(ComposerError):
    """The composer socket or URL cannot be reached at all."""


class ComposerDroppedError(ComposerUnavailableError, Transient):
    """A request got no answer (connection refused or reset, timeout): a composer restarting or a
    network blip looks like this, so a status poll or a download asks again."""


class ComposerAPIError(ComposerError):
    """The composer answered a request with an error response."""

    def __init__(self, api: str, request: str, status_code: int, errors: list[ApiErrorEntry],
                 hint: str | None = None) -> None:
        detail = "; ".join(str(e) for e in errors) or "no error details in the response"
        super().__init__(f"osbuild-composer {api} refused {request} (HTTP {status_code}): {detail}", hint)
        self.api = api
        self.request = request
        self.status_code = status_code
        self.errors = errors

    @property
    def error_ids(self) -> list[str]:
        return [e.id for e in self.errors]


class ComposerBusyError(ComposerAPIError, Transient):
    """An answer worth asking again for (408, 429, 5xx): composer or the proxy in front of it is
    overloaded or restarting."""

    def __init__(self, api: str, request: str, status_code: int, errors: list[ApiErrorEntry],
                 hint: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(api, request, status_code, errors, hint)
        self.retry_after = retry_after


BUSY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def api_error(api: str, request: str, status_code: int, errors: list[ApiErrorEntry], hint: str | None = None,
              retry_after: float | None = None) -> ComposerAPIError:
    """The error for an error answer: `ComposerBusyError` when asking again may help."""
    if status_code in BUSY_STATUS:
        return ComposerBusyError(api, request, status_code, errors, hint, retry_after)
    return ComposerAPIError(api, request, status_code, errors, hint)


class ComposeFailedError(ComposerError):
    """The compose ran and failed; carries the osbuild error and where the full log was saved."""

    def __init__(self, api: str, compose_id: str, reason: str, log_excerpt: str = "",
                 log_path: str | None = None) -> None:
        text = f"compose {compose_id} failed ({api}): {reason}"
        if log_excerpt:
            text += "\n" + "\n".join("  | " + line for line in log_excerpt.splitlines())
        if log_path:
            text += f"\n  full log: {log_path}"
        super().__init__(text)
        self.api = api
        self.compose_id = compose_id
        self.reason = reason
        self.log_excerpt = log_excerpt
        self.log_path = log_path


class ComposeTimeoutError(ComposerError):
    """The compose did not finish within the time the caller was willing to wait."""


class BlueprintConversionError(ComposerError):
    """The blueprint uses something the target API cannot carry, so the image would differ (exit code 2)."""

    exit_code = 2
