"""What a render run is asked to do (`RenderOptions`) and what it produced (`RenderResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..embed import EmbedTotals
from ..reference import MirrorTarget

DEFAULT_DISTRO = "rhel-94"
DEFAULT_BLUEPRINT_NAME = "edgebuild-microshift"
DEFAULT_BLUEPRINT_VERSION = "0.0.1"
DROPIN_PATH = "/etc/containers/registries.conf.d/999-edgebuild-mirror.conf"
MANIFESTS_ROOT = "/etc/microshift/manifests.d"
CA_ANCHOR_PATH = "/etc/pki/ca-trust/source/anchors/edgebuild-mirror-ca.crt"


@dataclass(slots=True)
class RenderOptions:
    """Inputs of `render_outputs` besides the plan and the configuration.

    `mirror` defaults to the plan's mirror. `release_info` are microshift-release-info JSON files
    (`release-<arch>.json`, `release-olm-<arch>.json`). `release_source` says where the build host
    pulls the MicroShift/OLM release images: "mirror" (oc-mirror naming under `mirror`) or
    "original" (their own registries, with the worker's pull secret).
    """

    mirror: MirrorTarget | None = None
    distro: str = DEFAULT_DISTRO
    microshift_version: str | None = None
    release_info: list[Path] = field(default_factory=list)
    release_source: str = "mirror"
    blueprint_name: str = DEFAULT_BLUEPRINT_NAME
    blueprint_version: str = DEFAULT_BLUEPRINT_VERSION
    blueprint_description: str = "MicroShift with OLM operators mirrored by edgebuild"
    image_type: str = "edge-commit"
    insecure_mirror: bool = False
    block_originals: bool = False
    ca_file: Path | None = None
    subscription_config: Path | None = None
    catalog_poll_interval: str | None = None  # e.g. "24h"; None = no updateStrategy (offline device)
    # Regular expressions over device references: matching images are not embedded; the device pulls
    # them from the mirror through the drop-in (it needs the mirror reachable). Catalogs are always embedded.
    no_embed: list[str] = field(default_factory=list)
    # "installed": embed what the device runs (edgebuild.embed); "all": every selected image.
    embed: str = "installed"
    # {pull reference (mirror name@digest): sum of layer sizes}, when the caller could read the manifests.
    image_sizes: dict[str, int | None] = field(default_factory=dict)


@dataclass(slots=True)
class RenderResult:
    """Paths written and the warnings raised; `blueprint` is the main blueprint file."""

    outdir: Path
    blueprint: Path
    installer_blueprint: Path
    dropin: Path
    manifest_dirs: list[Path] = field(default_factory=list)
    cluster_resources: list[Path] = field(default_factory=list)
    containers: int = 0
    embed_totals: EmbedTotals | None = None
    warnings: list[str] = field(default_factory=list)
