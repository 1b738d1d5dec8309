"""Read the digests of planned images from a mirror that already holds them (for `render` alone).

`build` learns digests while copying; `render` runs after a separate `mirror`, so it asks the
mirror for the manifest digest of every image the plan does not pin by digest (images referenced by
tag, and catalog images, which may have been rebuilt). One HEAD request per such image, run
concurrently.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import RegistryError
from ..plan import Plan, PlanImage
from ..reference import ImageReference, MirrorTarget
from .client import RegistryClient


def resolve_digests(plan: Plan, mirror: MirrorTarget, options: Any, allow_missing: bool = False) -> list[str]:
    """Set `PlanImage.digest` from the mirror for every image without one; fail naming the missing ones,
    or (`allow_missing`, for --continue-on-error) return their plan sources."""
    todo = [img for img in plan.images if img.type == "catalog" or not img.digest]
    if not todo:
        return []
    client = RegistryClient(mirror.registry, tls_verify=options.dest_tls_verify, cert_dir=options.dest_cert_dir or options.cert_dir,
                            authfile=options.authfile)

    def head(img: PlanImage) -> tuple[PlanImage, str | None]:
        assert img.destination is not None
        dest = ImageReference.parse(img.destination)
        reference = img.destination_tag or dest.tag or dest.digest or "latest"
        return img, client.head_manifest(dest.repository, reference)

    with client, ThreadPoolExecutor(max_workers=max(1, min(8, options.parallel))) as pool:
        results = list(pool.map(head, todo))
    missing = [img.destination for img, digest in results if digest is None]
    if missing and allow_missing:
        for img, digest in results:
            img.digest = digest or img.digest
        return [img.source for img, digest in results if digest is None]
    if missing:
        raise RegistryError(f"{len(missing)} planned image(s) are not in the mirror {mirror}: "
                            + ", ".join(str(m) for m in missing[:10]) + (" …" if len(missing) > 10 else ""),
                            hint="run 'edgebuild mirror' with the same configuration first, or use 'edgebuild build'")
    for img, digest in results:
        img.digest = digest
    return []
