"""MicroShift and OLM release images from microshift-release-info JSON files.

`release-<arch>.json` (microshift-release-info) and `release-olm-<arch>.json`
(microshift-olm-release-info) look like `{"release": {"base": "4.17.1"}, "images": {name: ref}}`.
The device asks for each `ref` exactly (MicroShift's own manifests pin them by digest), so each is
embedded under that string.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..reference import ImageReference, ReferenceError

_FILE_RE = re.compile(r"^release(?:-olm)?-(x86_64|aarch64)\.json$")


@dataclass(frozen=True, slots=True)
class ReleaseImage:
    name: str  # key in the file, e.g. "operator-lifecycle-manager"
    reference: str  # repo@sha256:..., what the device asks for
    base: str  # release.base of the file
    origin: str  # file it came from


def read_release_info(path: Path) -> list[ReleaseImage]:
    """Images of one release-info file; each must be a digest reference."""
    where = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{where}: cannot read release info: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
        raise UsageError(f"{where}: no 'images' mapping; expected a microshift release-info file "
                         "(/usr/share/microshift/release/release-<arch>.json)")
    base = str((data.get("release") or {}).get("base") or "")
    out = []
    for name, ref in sorted(data["images"].items()):
        try:
            parsed = ImageReference.parse(str(ref))
        except ReferenceError as exc:
            raise UsageError(f"{where}: images.{name}: {exc}") from None
        if not parsed.digest:
            raise UsageError(f"{where}: images.{name}: {ref} has no digest; the device would pull it by tag",
                             "use the release-info file shipped by the RPM, which pins every image by digest")
        out.append(ReleaseImage(name, str(ref), base, where))
    return out


def architecture_of(path: Path) -> str | None:
    """x86_64 or aarch64 from the file name, None if the name does not follow the RPM's."""
    match = _FILE_RE.match(Path(path).name)
    return match.group(1) if match else None
