"""`mirror.blockedImages` patterns, read as oc-mirror reads them: Go `regexp` syntax, RE2 engine.

oc-mirror compiles each name with Go's `regexp.Compile` (v2: internal/pkg/config/validate.go
validateBlockedImages; v1: v1/pkg/cli/mirror/blocked.go isBlocked) and blocks an image when
`MatchString` finds the pattern anywhere in its reference. Go's regexp is RE2: linear time, so
`(a+)+$` cannot hang a run, and no look-around or back-references. Python's `re` backtracks and
has another syntax, so the google-re2 bindings are used; the one construct RE2 accepts and Go
does not (`\\C`, any single byte) is refused here too.
"""

from __future__ import annotations

from typing import Any

import re2  # type: ignore[import-untyped]


class GoRegexpError(ValueError):
    """A pattern Go's regexp.Compile would refuse; the message is RE2's reason."""


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print each refused pattern on stderr


def compile_go_regexp(pattern: str) -> Any:
    """The compiled pattern (its `.search(text)` is Go's MatchString), or GoRegexpError."""
    if _has_any_byte_escape(pattern):
        raise GoRegexpError("invalid escape sequence: \\C (Go's regexp does not support it)")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        raise GoRegexpError(reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)) from None


def _has_any_byte_escape(pattern: str) -> bool:
    escaped = False
    for char in pattern:
        if escaped:
            if char == "C":
                return True
            escaped = False
        elif char == "\\":
            escaped = True
    return False
