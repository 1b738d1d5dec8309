"""Which registry failures are transient, and the registry's face of the one retry loop.

Connection trouble and 408, 429, 5xx answers can change; that is a property of the error's class
(`TransientError`), set where the failure is recognised. The loop itself is `edgebuild.retry`. It is
entered once per unit of work: a request, or a whole blob transfer. Inside a blob transfer the
requests it makes are sent once (`single_attempt`), so a blob that fails forever costs
retry-times + 1 requests and never the product of two budgets.
"""

from __future__ import annotations

from ..errors import RegistryError
from ..retry import RetryPolicy, Transient, parse_retry_after, single_attempt

__all__ = ["RETRYABLE_STATUS", "RetryPolicy", "StatusError", "TransientError", "TransientStatusError",
           "is_transient", "parse_retry_after", "single_attempt"]

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class TransientError(RegistryError, Transient):
    """A failure a later attempt may not see (connection trouble, 408/429/5xx, a token that died)."""

    def __init__(self, message: str, hint: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class StatusError(RegistryError):
    """An unexpected HTTP answer; `codes` are the registry's error codes (MANIFEST_BLOB_UNKNOWN, …)."""

    def __init__(self, message: str, hint: str | None = None, *, status: int, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message, hint)
        self.status = status
        self.codes = codes


class TransientStatusError(StatusError, TransientError):
    """An answer worth asking again for (408, 429, 5xx)."""

    def __init__(self, message: str, hint: str | None = None, *, status: int, codes: tuple[str, ...] = (),
                 retry_after: float | None = None) -> None:
        StatusError.__init__(self, message, hint, status=status, codes=codes)
        self.retry_after = retry_after


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, Transient)
