"""Errors of the render stage.

A `BlueprintError` collects every problem of a blueprint in one pass, each naming the entry and
the rule it breaks, because fixing them one run at a time is slow when a blueprint carries many
files and containers.
"""

from __future__ import annotations

from ..errors import EdgebuildError


class RenderError(EdgebuildError):
    """Rendering cannot produce a correct device configuration (exit code 1)."""


class BlueprintError(EdgebuildError):
    """The blueprint would be refused by osbuild-composer (exit code 2: the inputs are invalid)."""

    exit_code = 2

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        text = "invalid blueprint:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(text, hint)
        self.problems = problems
