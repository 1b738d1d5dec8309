"""The image set of a configuration and its source -> mirror mapping.

`build_plan` is pure: it takes catalogs that are already loaded and never touches the network, so
it can be tested on data alone. Mirroring later fills in digests of images referenced by tag
(`PlanImage.digest`) and of rebuilt catalogs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from .catalog.model import Catalog
from .catalog.select import select
from .catalog.selection import Selection
from .config import AdditionalImage, ImageSetConfig, OperatorSpec, catalog_unique_name
from .errors import EdgebuildError
from .reference import ImageReference, MirrorTarget, ReferenceError, v1_tag, v2_tag

ImageType = Literal["catalog", "bundle", "related", "additional", "release"]
_TYPE_ORDER: dict[str, int] = {"catalog": 0, "bundle": 1, "related": 2, "additional": 3, "release": 4}


@dataclass(slots=True)
class PlanImage:
    """One image of the set.

    `source` is the reference as the catalog or configuration gives it (tag and/or digest): it is
    what a pod, OLM or the device asks for. `destination` is where it lives in the mirror (by
    digest when the digest is known, else by tag), `destination_tag` the tag pushed there under
    oc-mirror's naming, so that a tag-only registry browser still shows it.
    """

    source: str
    type: ImageType
    destination: str | None = None
    destination_tag: str | None = None
    digest: str | None = None
    needed_by: list[str] = field(default_factory=list)  # "package/bundle" or "catalog <ref>" or "additionalImages"

    @property
    def reference(self) -> ImageReference:
        return ImageReference.parse(self.source)

    @property
    def device_reference(self) -> str:
        """The string the device asks for, under which the image must be embedded.

        That is `name@digest` for an image referenced by digest, and the reference itself
        (`name:tag`) for one referenced by tag: a CSV or a pod that names a tag asks CRI-O for the
        tag, and only an image stored under that tag is found offline.
        """
        ref = self.reference
        if ref.tag and not ref.digest:
            return f"{ref.name}:{ref.tag}"
        if not self.digest:
            raise EdgebuildError(f"{self.source}: digest unknown; mirror the image first to resolve it")
        return f"{ref.name}@{self.digest}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "destination": self.destination, "type": self.type}
        if self.destination_tag:
            out["destinationTag"] = self.destination_tag
        if self.digest:
            out["digest"] = self.digest
        if self.needed_by:
            out["neededBy"] = sorted(self.needed_by)
        return out


@dataclass(slots=True)
class CatalogPlan:
    """One `mirror.operators[]` entry: the catalog, its selection and where the catalog image goes."""

    spec: OperatorSpec
    selection: Selection | None
    destination: str | None = None  # mirror reference of the (rebuilt) catalog image, by tag
    error: str | None = None

    @property
    def catalog(self) -> str:
        return self.spec.catalog

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"catalog": self.spec.catalog,
                               "packages": self.selection.summary() if self.selection else {}}
        if self.destination:
            out["destination"] = self.destination
        if self.error:
            out["error"] = self.error
        return out


@dataclass(slots=True)
class Plan:
    api_version: str
    operators: list[CatalogPlan] = field(default_factory=list)
    images: list[PlanImage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    mirror: MirrorTarget | None = None

    @property
    def semantics(self) -> str:
        return "v1" if self.api_version.endswith("v1alpha2") else "v2"

    def images_of(self, *types: ImageType) -> list[PlanImage]:
        return [img for img in self.images if img.type in types]

    def to_json(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "operators": [op.to_json() for op in self.operators],
            "images": [img.to_json() for img in self.images],
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    def mapping_lines(self) -> list[str]:
        """oc-mirror's mapping.txt: `source=destination:tag`, one line per image."""
        lines = []
        for img in self.images:
            if img.destination is None:
                continue
            dest = ImageReference.parse(img.destination)
            tag = img.destination_tag or dest.tag
            lines.append(f"{img.source}={dest.name}:{tag}" if tag else f"{img.source}={dest}")
        return lines


def catalog_destination(spec: OperatorSpec, semantics: str, mirror: MirrorTarget) -> str:
    """Where the catalog image goes: its path under the mirror, with targetCatalog/targetName/targetTag."""
    if spec.is_oci:
        path = spec.catalog.removeprefix("oci://").rstrip("/")
        repo = spec.target_catalog or path.rsplit("/", 1)[-1].lower()
        tag = spec.target_tag or "latest"
        return f"{mirror.registry}/{mirror.repository_for(repo)}:{tag}"
    unique = ImageReference.parse(catalog_unique_name(spec))
    tag = spec.target_tag or (v1_tag(unique) if semantics == "v1" else v2_tag(unique))
    return f"{mirror.registry}/{mirror.repository_for(unique.repository)}:{tag}"


def image_destination(ref: ImageReference, semantics: str, mirror: MirrorTarget,
                      target_repo: str | None = None, target_tag: str | None = None) -> tuple[str, str]:
    """(destination reference, pushed tag) for an image under oc-mirror's naming of that semantics."""
    repo = mirror.repository_for(target_repo or ref.repository)
    tag = target_tag or (v1_tag(ref) if semantics == "v1" else v2_tag(ref))
    base = f"{mirror.registry}/{repo}"
    return (f"{base}@{ref.digest}" if ref.digest else f"{base}:{tag}"), tag


def build_plan(config: ImageSetConfig, catalogs: dict[str, Catalog], mirror: MirrorTarget | None = None,
               previous: dict[str, Any] | None = None) -> Plan:
    """The image set of `config`, using `catalogs` keyed by `mirror.operators[].catalog`.

    `previous` is the storageConfig state of earlier runs (`registry.state`); its per-catalog
    selections drive oc-mirror v1's incremental heads-only mirroring.

    Selection errors do not stop the plan: they are collected in `Plan.errors` (the CLI exits 1),
    so one broken package does not hide what the rest of the configuration would mirror.
    """
    semantics = config.semantics
    plan = Plan(api_version=config.api_version, warnings=list(config.warnings), mirror=mirror)
    images: dict[str, PlanImage] = {}

    def add(source: str, kind: ImageType, needed_by: str) -> None:
        existing = images.get(source)
        if existing is None:
            existing = images[source] = PlanImage(source=source, type=kind)
        elif _TYPE_ORDER[kind] < _TYPE_ORDER[existing.type]:
            existing.type = kind
        if needed_by not in existing.needed_by:
            existing.needed_by.append(needed_by)

    for spec in config.operators:
        catalog = catalogs.get(spec.catalog)
        if catalog is None:
            raise EdgebuildError(f"catalog {spec.catalog} was not loaded")
        try:
            earlier = ((previous or {}).get("catalogs") or {}).get(catalog_unique_name(spec))
            selection = select(catalog, spec, semantics, previous=earlier)
        except EdgebuildError as exc:
            plan.operators.append(CatalogPlan(spec, None, error=str(exc)))
            plan.errors.append(f"catalog {spec.catalog}: {exc}")
            continue
        cplan = CatalogPlan(spec, selection)
        if mirror is not None:
            cplan.destination = catalog_destination(spec, semantics, mirror)
        plan.operators.append(cplan)
        plan.warnings.extend(f"catalog {spec.catalog}: {w}" for w in selection.warnings)
        add(spec.catalog, "catalog", f"catalog {spec.catalog}")
        for bundle in selection.bundles():
            owner = f"{bundle.package}/{bundle.name}"
            if bundle.image:
                add(bundle.image, "bundle", owner)
            for rel in bundle.related_images:
                if rel.image != bundle.image:
                    add(rel.image, "related", owner)
    for extra in config.additional_images:
        add(extra.name, "additional", "additionalImages")

    target_of = {a.name: a for a in config.additional_images}
    catalog_destination_of = {op.spec.catalog: op.destination for op in plan.operators}
    for source in sorted(images):
        img = images[source]
        if config.is_blocked(source):
            plan.warnings.append(f"{source}: blocked by mirror.blockedImages, not mirrored "
                                 f"(needed by {', '.join(sorted(img.needed_by))})")
            continue
        if img.type == "catalog":
            # Named by its CatalogPlan (targetCatalog/targetTag); an oci:// layout has no digest yet.
            img.destination = catalog_destination_of.get(source)
            img.destination_tag = ImageReference.parse(img.destination).tag if img.destination else None
            if not source.startswith("oci://"):
                img.digest = ImageReference.parse(source).digest  # validated with the configuration
            plan.images.append(img)
            continue
        try:
            ref = ImageReference.parse(source)
        except ReferenceError as exc:
            plan.errors.append(f"{exc} (needed by {', '.join(sorted(img.needed_by))})")
            continue
        img.digest = ref.digest
        if mirror is not None:
            wanted: AdditionalImage | None = target_of.get(source) if img.type == "additional" else None
            img.destination, img.destination_tag = image_destination(
                ref, semantics, mirror, wanted.target_repo if wanted else None, wanted.target_tag if wanted else None)
        plan.images.append(img)
    return plan


def add_release_images(plan: Plan, references: dict[str, str]) -> None:
    """Add MicroShift/OLM release images ({reference: who needs it}, from release-info files) to the set.

    They are mirrored like any other image so the build host can pull them from the mirror; render
    embeds them under their own reference, which is what MicroShift's manifests ask for.
    """
    known = {img.source for img in plan.images}
    for source, needed_by in sorted(references.items()):
        if source in known:
            continue
        ref = ImageReference.parse(source)
        img = PlanImage(source=source, type="release", digest=ref.digest, needed_by=[needed_by])
        if plan.mirror is not None:
            img.destination, img.destination_tag = image_destination(ref, plan.semantics, plan.mirror)
        plan.images.append(img)
    plan.images.sort(key=lambda i: i.source)
