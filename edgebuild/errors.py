"""Error types shared by every stage.

Each error carries the exit code the CLI must return, so a stage decides what kind of failure it
is and the CLI only prints it: 2 for bad usage or an invalid configuration, 1 for a failed job.
"""

from __future__ import annotations


class EdgebuildError(Exception):
    """A failure of the job (exit code 1) with a message meant for the user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(EdgebuildError):
    """Bad command-line usage (exit code 2)."""

    exit_code = 2


class ConfigError(EdgebuildError):
    """An invalid ImageSetConfiguration (exit code 2), located by file, line and field."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.file = file
        self.line = line
        self.field = field

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        return text if not self.hint else f"{text}\n  hint: {self.hint}"


class ConfigErrors(EdgebuildError):
    """Several configuration errors found in one pass, reported together (exit code 2)."""

    exit_code = 2

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class CatalogError(EdgebuildError):
    """A catalog that cannot be read or is unsafe to unpack (exit code 1)."""


class SelectionError(EdgebuildError):
    """Bundle selection failed, as oc-mirror would fail, explained (exit code 1)."""


class RegistryError(EdgebuildError):
    """A registry refused or broke a request (exit code 1). Never carries credentials."""
