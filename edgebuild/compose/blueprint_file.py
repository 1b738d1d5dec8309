"""Reading the TOML blueprint that `render` wrote, with the checks Weldr would make first.

Checking the name and version here turns a composer 400 into an error that names the file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError

# osbuild-composer internal/weldr/api.go ValidBlueprintName.
_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class BlueprintFile:
    path: Path
    raw: bytes
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.data["name"])


def load_blueprint(path: str | Path) -> BlueprintFile:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read blueprint {path}: {exc.strerror}",
                         hint="pass the blueprint.toml that 'edgebuild render' or 'build' wrote") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"blueprint {path} is not valid TOML: {exc}") from None
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise UsageError(f"blueprint {path} has no name", hint='add name = "..." at the top of the file')
    if not _NAME.match(name):
        raise UsageError(f"blueprint {path}: name {name!r} has characters composer refuses",
                         hint="use only letters, digits, '.', '_' and '-'")
    version = data.get("version")
    if version is not None and (not isinstance(version, str) or not _SEMVER.match(version)):
        raise UsageError(f"blueprint {path}: version {version!r} is not semantic versioning",
                         hint='write it as MAJOR.MINOR.PATCH, e.g. version = "0.0.1"')
    return BlueprintFile(path=path, raw=raw, data=data)
