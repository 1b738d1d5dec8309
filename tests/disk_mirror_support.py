"""Source images in a real registry and the checks of a disk copy, for the kill and concurrency tests."""

from __future__ import annotations

import json
from pathlib import Path

from tests.hostile_support import V2
from tests.registry_images import Layout, make_layer, push, simple_image, skopeo


def push_images(registry_host: str, work: Path, names: list[str], sizes: tuple[int, ...]) -> list[str]:
    """Push `names` (sharing one base layer) to team/NAME:v1; returns their references."""
    layout = Layout(work / "src-layout")
    base = [make_layer("shared-base", 400_000)]
    refs = []
    for name in names:
        simple_image(layout, name, sizes, base=base)
        refs.append(f"{registry_host}/team/{name}:v1")
        push(layout, name, refs[-1])
    return refs


def write_isc(path: Path, refs: list[str]) -> Path:
    path.write_text(V2 + "mirror:\n  additionalImages:\n" + "".join(f"  - name: {r}\n" for r in refs))
    return path


def index_names(disk: Path) -> set[str]:
    index = json.loads((disk / "index.json").read_text())
    return {m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]}


def leftovers(disk: Path) -> list[str]:
    """What a killed run may leave: partial blobs, temporary metadata, rebuild scratch directories."""
    return sorted(p.relative_to(disk).as_posix() for p in disk.rglob("*")
                  if p.name.endswith((".part", ".tmp")) or p.name.startswith("edgebuild-catalog-"))


def verify_disk_images(disk: Path, refs: list[str], scratch: Path) -> None:
    """skopeo reads every image from the layout by its name and copies it out, checking each blob."""
    for ref in refs:
        name = ref.split("/", 1)[1]
        raw = skopeo("inspect", "--raw", f"oci:{disk}:{name}").stdout
        assert json.loads(raw)["layers"], name
        skopeo("copy", "--quiet", f"oci:{disk}:{name}", f"oci:{scratch}:{name.replace('/', '-')}")
