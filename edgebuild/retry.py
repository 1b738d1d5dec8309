"""The one retry policy and loop of edgebuild, for registries and composer alike.

Only failures that can change are retried, and that is a property of the error's class: a class
that also derives from `Transient` says "a later attempt may not see this". The stage that
recognises a failure picks the class (registry/retry.py for registries, compose/errors.py for
composer), so the loop never guesses from message text. The caller decides what may be repeated
at all: a registry request or a blob transfer, a compose status poll or a download, never a POST
that would start a second compose.

Defaults follow oc-mirror v2 (`--retry-times` 5 retries, `--retry-delay` 0 = exponential backoff,
a set delay is constant between attempts).
"""

from __future__ import annotations

import contextvars
import email.utils
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

_SINGLE_ATTEMPT: contextvars.ContextVar[bool] = contextvars.ContextVar("edgebuild_single_attempt", default=False)


class Transient(Exception):
    """Mixed into an error class whose failures a later attempt may not see.

    `retry_after` is the server's Retry-After in seconds, when it sent one.
    """

    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` = retry-times + 1. `delay_seconds` > 0 waits that long between attempts (oc-mirror's
    --retry-delay); 0 backs off exponentially from `base_delay`, with jitter, up to `max_delay`."""

    attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    delay_seconds: float = 0.0
    sleep_fn: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    @classmethod
    def from_options(cls, retry_times: int, retry_delay: float) -> RetryPolicy:
        return cls(attempts=max(0, retry_times) + 1, delay_seconds=max(0.0, retry_delay))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt number `attempt + 1` (attempt counts from 0)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        if self.delay_seconds:
            return self.delay_seconds
        cap = min(self.max_delay, self.base_delay * (2 ** attempt))
        return random.uniform(cap / 2, cap)

    def sleep(self, attempt: int, retry_after: float | None = None) -> None:
        self.sleep_fn(self.delay(attempt, retry_after))

    @property
    def effective_attempts(self) -> int:
        """1 inside a unit of work that retries as a whole (see `single_attempt`)."""
        return 1 if _SINGLE_ATTEMPT.get() else max(1, self.attempts)

    def run(self, call: Callable[[int], T], before_retry: Callable[[BaseException], None] | None = None) -> T:
        """`call(attempt)` until it returns or fails with a non-transient error or the budget is spent."""
        attempts = self.effective_attempts
        attempt = 0
        while True:
            try:
                return call(attempt)
            except Transient as exc:
                if attempt + 1 >= attempts:
                    raise
                if before_retry:
                    before_retry(exc)
                self.sleep(attempt, exc.retry_after)
                attempt += 1


@contextmanager
def single_attempt() -> Iterator[None]:
    """Requests made inside are sent once: the enclosing loop owns the retries."""
    token = _SINGLE_ATTEMPT.set(True)
    try:
        yield
    finally:
        _SINGLE_ATTEMPT.reset(token)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())
