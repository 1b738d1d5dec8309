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


_OS_ADVICE = {
    "EROFS": "the file system is read-only: choose a directory on a writable one",
    "EACCES": "permission denied: choose a directory you may write to, or run as a user who may",
    "EPERM": "operation not permitted: choose a directory you may write to",
    "ENOSPC": "no space left on the device: free some space or choose another disk; nothing was left half-written",
    "EDQUOT": "the disk quota is exhausted: free some space or choose another disk",
    "EISDIR": "a directory is in the way: give a file name",
    "ENOTDIR": "a file is in the way where a directory is needed",
    "EBUSY": "the path is busy (a mount point?): choose a directory inside it",
}


class FileSystemError(EdgebuildError):
    """An operating-system error on a path edgebuild reads or writes (exit code 1): one line, the path
    and the cause, with what to do about it."""

    @classmethod
    def from_os_error(cls, exc: OSError, path: object = None, doing: str = "") -> FileSystemError:
        """`writing OUT/x: Read-only file system (the file system is read-only: ...)`; the path
        given (what the user named) wins over the temporary file the error happened on."""
        import errno
        where = path if path is not None else exc.filename
        cause = exc.strerror or str(exc)
        advice = _OS_ADVICE.get(errno.errorcode.get(exc.errno or 0, ""))
        text = " ".join(part for part in (doing, str(where) if where is not None else "") if part)
        text = f"{text}: {cause}" if text else cause
        return cls(f"{text} ({advice})" if advice else text)
