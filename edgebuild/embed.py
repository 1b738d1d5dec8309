"""`--embed installed|all`: which selected images go into the image, and which stay with the mirror.

The device installs one bundle per Subscription: the `startingCSV` that render pins
(`render.manifests.choose_subscription`, the function the manifests are written with). OLM then
pulls that bundle and the related images of its CSV, and nothing else of the selected range. So
`installed` (the default) embeds the catalog image, the bundle of each Subscription's startingCSV
and that bundle's related images, the additionalImages and the release images. Dependencies are
covered by the same rule: oc-mirror v1 dependency resolution adds the needed packages to the
selection, render subscribes each of them at its head, and OLM satisfies the dependency from that
Subscription. Every other selected image is left to the mirror drop-in (`embedded: false` in
images.json); `all` embeds everything selected, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from .errors import UsageError
from .plan import Plan

EmbedMode = Literal["installed", "all"]
EMBED_MODES: tuple[str, ...] = ("installed", "all")
ALWAYS_EMBEDDED = ("catalog", "additional", "release")


def check_mode(mode: str) -> EmbedMode:
    if mode not in EMBED_MODES:
        raise UsageError(f"--embed {mode!r}: must be one of {', '.join(EMBED_MODES)}")
    return mode  # type: ignore[return-value]


def installed_bundles(plan: Plan, subscription_config: object | None = None) -> set[str]:
    """{"package/bundle"} the device's Subscriptions install (their startingCSV), over every catalog."""
    from .render.manifests import choose_subscription
    from .render.subscriptions import PackageOverride, SubscriptionConfig

    config = subscription_config if isinstance(subscription_config, SubscriptionConfig) else SubscriptionConfig()
    out: set[str] = set()
    for cplan in plan.operators:
        selection = cplan.selection
        if selection is None:
            continue
        for package in selection.packages:
            choice, _warnings = choose_subscription(selection, package, config.packages.get(package, PackageOverride()))
            out.add(f"{package}/{choice.starting_csv}")
    return out


def is_installed(kind: str, needed_by: Iterable[str], installed: set[str]) -> bool:
    """True when the device will run this image: always-embedded kinds, or needed by an installed bundle."""
    return kind in ALWAYS_EMBEDDED or any(owner in installed for owner in needed_by)


@dataclass(frozen=True, slots=True)
class EmbedTotals:
    """Count and bytes (sum of layer sizes; None when some size is unknown) on each side."""

    embedded: int
    mirror: int
    embedded_bytes: int | None = None
    mirror_bytes: int | None = None

    def to_json(self) -> dict[str, int | None]:
        return {"embedded": self.embedded, "embeddedBytes": self.embedded_bytes,
                "leftToMirror": self.mirror, "leftToMirrorBytes": self.mirror_bytes}

    def format_text(self) -> str:
        def size(value: int | None) -> str:
            return "" if value is None else f", {value / 1e6:.1f} MB"
        return (f"embedded: {self.embedded} image(s){size(self.embedded_bytes)}; left to the mirror: "
                f"{self.mirror} image(s){size(self.mirror_bytes)}")


def plan_split(plan: Plan, mode: EmbedMode, subscription_config: object | None = None) -> tuple[list[str], list[str]]:
    """(embedded sources, mirror-only sources) of the plan's images under `mode`."""
    installed = installed_bundles(plan, subscription_config) if mode == "installed" else set()
    embedded: list[str] = []
    mirror: list[str] = []
    for img in plan.images:
        keep = mode == "all" or is_installed(img.type, img.needed_by, installed)
        (embedded if keep else mirror).append(img.source)
    return embedded, mirror


def totals(sizes: dict[str, int | None], embedded: Iterable[str], mirror: Iterable[str]) -> EmbedTotals:
    """Counts and byte sums; a side's bytes are None when any of its sizes is unknown."""
    def total(refs: list[str]) -> int | None:
        values = [sizes.get(r) for r in refs]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)
    e, m = list(embedded), list(mirror)
    return EmbedTotals(len(e), len(m), total(e), total(m))


def split_embedded(images: list[Any], plan: Plan, mode: EmbedMode,
                   subscription_config: object | None = None) -> tuple[list[Any], list[Any]]:
    """(embedded, left to the mirror) of render's EmbeddedImage list under `mode`.

    An EmbeddedImage's `origin` is the plan image's source, whose `needed_by` names the bundles
    that need it; catalog, additional and release images are always embedded.
    """
    if mode == "all":
        return list(images), []
    installed = installed_bundles(plan, subscription_config)
    needed_by = {img.source: img.needed_by for img in plan.images}
    keep: list[Any] = []
    left: list[Any] = []
    for image in images:
        wanted = is_installed(image.kind, needed_by.get(image.origin, ()), installed)
        (keep if wanted else left).append(image)
    return keep, left


def image_sizes(references: dict[str, str], client: object, arch: str = "amd64",
                workers: int = 8) -> dict[str, int | None]:
    """{key: sum of layer sizes} of mirror references ({key: 'repository@digest'}), read from manifests.

    For a manifest list the instance of `arch` counts (osbuild embeds the device's platform only).
    None when the manifest cannot be read.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .registry.manifest import platform_matches

    def size(item: tuple[str, str]) -> tuple[str, int | None]:
        key, ref = item
        repository, _, digest = ref.partition("@")
        try:
            manifest = client.get_manifest(repository, digest)  # type: ignore[attr-defined]
            if manifest.is_index:
                child = next((c for c in manifest.children if platform_matches(c.platform, arch)), None)
                if child is None:
                    return key, None
                manifest = client.get_manifest(repository, child.digest)  # type: ignore[attr-defined]
            layers = manifest.body.get("layers") or []
            return key, sum(int(layer.get("size") or 0) for layer in layers)
        except Exception:  # noqa: BLE001 - an unknown size is reported as unknown, not as a failure
            return key, None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return dict(pool.map(size, references.items()))
