"""The README stays true: every message its troubleshooting section quotes is one edgebuild prints (it is
in the code, or in a test's expected output), and its first two commands are the ones CI runs.

A quote is a bold code span (**`…`**) or a code span inside one; "…" stands for what varies. Each
piece between the "…" must appear in one Python string literal of edgebuild/ or tests/ (implicitly
joined literals and the literal parts of f-strings count, so a message split over lines is found)."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HOLE = "\0"


def troubleshooting() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]


def quoted_messages() -> list[str]:
    quotes = []
    for bold in re.findall(r"\*\*(.+?)\*\*", troubleshooting(), re.S):
        quotes += re.findall(r"`([^`]+)`", bold)
    return quotes


@cache
def string_literals() -> tuple[str, ...]:
    """Every string constant of the code and the tests; an f-string with its holes as NUL."""
    out: list[str] = []
    for path in [*(REPO / "edgebuild").rglob("*.py"), *(REPO / "tests").rglob("*.py")]:
        if path.name == Path(__file__).name:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                out.append("".join(v.value if isinstance(v, ast.Constant) else HOLE for v in node.values))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.append(node.value)
    return tuple(out)


def found(piece: str) -> bool:
    return any(piece.lower() in literal.lower() for literal in string_literals())


def test_the_section_quotes_messages_at_all():
    assert len(quoted_messages()) >= 12


@pytest.mark.parametrize("quote", quoted_messages())
def test_each_quoted_message_is_one_edgebuild_prints(quote: str):
    pieces = [p.strip() for p in quote.split("…") if p.strip(" ,.:")]
    assert pieces, quote
    missing = [p for p in pieces if not found(p)]
    assert not missing, f"README quotes {quote!r}, but edgebuild never says {missing}"


def test_the_first_two_commands_are_what_ci_runs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = [line.split("#")[0].strip() for line in readme.split("```sh\n", 1)[1].split("```")[0].splitlines()]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert commands == ["./scripts/setup.sh && ./examples/quickstart/run.sh",
                        "./scripts/setup.sh && .venv/bin/python -m pytest -q"]
    for command in commands:
        assert command in ci
    assert "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in ci  # Debian's python3
