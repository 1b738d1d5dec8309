"""`edgebuild delete`: oc-mirror v2's two-step delete of mirrored images (v2alpha1).

As oc-mirror v2 (internal/pkg/cli/delete.go: ValidateDelete, CompleteDelete, RunDelete;
internal/pkg/delete/delete_images.go: WriteDeleteMetaData, ReadDeleteMetaData, DeleteRegistryImages):

1. `--generate -c delete-isc.yaml --workspace file://DIR docker://MIRROR` reads a
   `DeleteImageSetConfiguration` (its `delete:` is what an ImageSetConfiguration's `mirror:` would
   select), plans it with the v2 rules and writes `DIR/working-dir/delete/delete-images.yaml`
   (`kind: DeleteImageList`, items of imageName / imageReference / type, sorted by imageReference)
   and `delete-imageset-config.yaml` beside it, for a person to review;
2. `--delete-yaml-file FILE docker://MIRROR` deletes those manifests from the mirror: each
   reference is resolved to its digest and the manifest deleted by digest (its tags go with it). Blobs
   stay for the registry's garbage collection.

edgebuild adds a guard oc-mirror lacks: `-c` may also name the current ImageSetConfiguration, and
no image it still selects (the same digest in any repository) is listed or deleted; a reviewed file
that lists one is refused whole, before anything is deleted.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import API_V2, ImageSetConfig, field_name, parse_config
from .errors import ConfigError, ConfigErrors, UsageError
from .fsutil import write_atomic
from .plan import Plan
from .prune import delete_manifests
from .reference import ImageReference, MirrorTarget, ReferenceError
from .registry.client import RegistryClient

DELETE_KIND = "DeleteImageSetConfiguration"
LIST_KIND = "DeleteImageList"
DELETE_DIR = Path("working-dir") / "delete"
TYPES = {"catalog": "operatorCatalog", "bundle": "operatorBundle", "related": "operatorRelatedImage",
         "additional": "generic", "release": "ocpRelease"}


@dataclass(frozen=True, slots=True)
class DeleteItem:
    image_name: str  # the source reference
    image_reference: str  # docker://mirror/repo:tag or @digest
    type: str

    def to_json(self) -> dict[str, str]:
        return {"imageName": self.image_name, "imageReference": self.image_reference, "type": self.type}


# --------------------------------------------------------------------------------------------------
# Reading the configurations


def read_delete_config(path: Path) -> ImageSetConfig:
    """A DeleteImageSetConfiguration as the ImageSetConfiguration its `delete:` describes.

    The file's text is kept (only `kind` and the `delete` key are renamed where they stand), so every
    error still names the file and line; fields are reported under `delete.`."""
    text = _read(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigErrors([ConfigError(f"not valid YAML: {exc}", file=str(path))]) from None
    if not isinstance(root, yaml.MappingNode):
        raise ConfigErrors([ConfigError("the document must be a mapping", file=str(path))])
    top = {field_name(k.value, ("apiVersion", "kind", "delete")) or k.value: (k, v) for k, v in root.value}
    api = top.get("apiVersion", (None, None))[1]
    kind = top.get("kind", (None, None))[1]
    if getattr(api, "value", None) != API_V2:
        raise ConfigErrors([ConfigError(f"apiVersion must be {API_V2!r}", file=str(path), field="apiVersion",
                                        hint="oc-mirror v2's delete reads v2alpha1 only")])
    if getattr(kind, "value", None) != DELETE_KIND or "delete" not in top:
        raise ConfigErrors([ConfigError(
            "using the delete functionality requires the 'DeleteImageSetConfiguration' kind set in the yaml file",
            file=str(path), field="kind", hint=f"write 'kind: {DELETE_KIND}' and put the images to delete under "
                                               "'delete:' (operators, additionalImages), as oc-mirror v2 does")])
    edits = sorted([(kind.start_mark.index, kind.end_mark.index, "ImageSetConfiguration"),
                    (top["delete"][0].start_mark.index, top["delete"][0].end_mark.index, "mirror")], reverse=True)
    for start, end, new in edits:
        text = text[:start] + new + text[end:]
    try:
        return parse_config(text, str(path))
    except ConfigErrors as exc:
        for err in exc.errors:
            if err.field and err.field.startswith("mirror"):
                err.field = "delete" + err.field[len("mirror"):]
        raise ConfigErrors(exc.errors) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigErrors([ConfigError(f"cannot read the file: {exc.strerror}", file=str(path))]) from None


def split_configs(paths: list[str]) -> tuple[Path | None, Path | None]:
    """(-c DeleteImageSetConfiguration, -c ImageSetConfiguration to keep), told apart by their kind."""
    delete_cfg = keep_cfg = None
    for text in paths:
        path = Path(text)
        try:
            doc = yaml.safe_load(_read(path)) or {}
        except yaml.YAMLError as exc:
            raise ConfigErrors([ConfigError(f"not valid YAML: {exc}", file=text)]) from None
        kind = next((v for k, v in doc.items() if isinstance(k, str) and k.casefold() == "kind"), None) \
            if isinstance(doc, dict) else None
        if kind == DELETE_KIND and delete_cfg is None:
            delete_cfg = path
        elif kind == "ImageSetConfiguration" and keep_cfg is None:
            keep_cfg = path
        else:
            raise UsageError(f"-c {text}: expected one {DELETE_KIND} (what to delete) and at most one "
                             f"ImageSetConfiguration (what to keep), found kind {kind!r}")
    return delete_cfg, keep_cfg


# --------------------------------------------------------------------------------------------------
# The delete list


def delete_items(plan: Plan) -> list[DeleteItem]:
    """The plan's images as oc-mirror's DeleteImageList items: one per destination, by tag as v2 names them."""
    items: dict[str, DeleteItem] = {}
    for img in plan.images:
        if not img.destination:
            continue
        dest = ImageReference.parse(img.destination)
        ref = f"{dest.registry}/{dest.repository}"
        ref = f"{ref}:{img.destination_tag}" if img.destination_tag else img.destination
        items.setdefault(ref, DeleteItem(img.source, f"docker://{ref}", TYPES.get(img.type, "generic")))
    return sorted(items.values(), key=lambda i: i.image_reference)


def write_delete_files(workspace: Path, items: list[DeleteItem], config_text: str, delete_id: str | None) -> Path:
    """delete-images.yaml (and the DeleteImageSetConfiguration beside it) under the workspace."""
    suffix = f"-{delete_id}" if delete_id else ""
    folder = workspace / DELETE_DIR
    listing = {"kind": LIST_KIND, "apiVersion": API_V2, "items": [i.to_json() for i in items]}
    path = folder / f"delete-images{suffix}.yaml"
    write_atomic(folder / f"delete-imageset-config{suffix}.yaml", config_text.encode())
    write_atomic(path, yaml.safe_dump(listing, sort_keys=False).encode())
    return path


def read_delete_file(path: Path) -> list[DeleteItem]:
    """A reviewed delete-images.yaml; malformed entries are errors naming the item."""
    try:
        doc = yaml.safe_load(_read(path))
    except yaml.YAMLError as exc:
        raise ConfigErrors([ConfigError(f"not valid YAML: {exc}", file=str(path))]) from None
    if not isinstance(doc, dict) or doc.get("kind") != LIST_KIND:
        raise ConfigErrors([ConfigError(f"not a {LIST_KIND}", file=str(path), field="kind",
                                        hint="give the delete-images.yaml that 'edgebuild delete --generate' wrote")])
    items, errors = [], []
    for i, entry in enumerate(doc.get("items") or []):
        ref = entry.get("imageReference") if isinstance(entry, dict) else None
        if not isinstance(ref, str) or not ref.startswith("docker://"):
            errors.append(ConfigError("imageReference must be docker://HOST/REPO:TAG or @DIGEST", file=str(path),
                                      field=f"items[{i}].imageReference"))
            continue
        items.append(DeleteItem(str(entry.get("imageName", "")), ref, str(entry.get("type", "generic"))))
    if errors:
        raise ConfigErrors(errors)
    return items


# --------------------------------------------------------------------------------------------------
# Against the registry


def _target(ref: str) -> ImageReference:
    try:
        return ImageReference.parse(ref.removeprefix("docker://"))
    except ReferenceError as exc:
        raise UsageError(f"{ref}: {exc}") from None


def resolve(client: RegistryClient, items: list[DeleteItem], mirror: MirrorTarget) -> tuple[dict[str, str], list[str]]:
    """{imageReference: digest in the mirror} and the references not found there.

    Every item must be under the destination given (oc-mirror: "delete destination … does not match")."""
    prefix = f"{mirror}/"
    found, missing = {}, []
    for item in items:
        body = item.image_reference.removeprefix("docker://")
        if not body.startswith(prefix):
            raise UsageError(f"delete destination docker://{mirror} does not match {item.image_reference} in the "
                             f"delete-images yaml file", "give the mirror the list was generated for")
        ref = _target(item.image_reference)
        digest = ref.digest or client.head_manifest(ref.repository, ref.tag or "latest")
        if digest is None:
            missing.append(item.image_reference)
        else:
            found[item.image_reference] = digest
    return found, missing


def kept_digests(keep_plan: Plan | None, client: RegistryClient) -> dict[str, str]:
    """{digest: source} of every image the current ImageSetConfiguration selects, read from the mirror."""
    if keep_plan is None:
        return {}
    found, _ = resolve(client, delete_items(keep_plan), keep_plan.mirror) if keep_plan.mirror else ({}, [])
    sources = {i.image_reference: i.image_name for i in delete_items(keep_plan)}
    return {digest: sources[ref] for ref, digest in found.items()}


def run_delete(args: argparse.Namespace, plan_for: Any) -> int:
    """The `delete` command; `plan_for(config, mirror)` builds a plan (pipeline's catalog loading)."""
    mirror = _mirror(args.destination)
    delete_cfg, keep_cfg = split_configs(args.config or [])
    say = (lambda _t: None) if args.quiet else (lambda t: print(t, file=sys.stderr))
    keep_plan = plan_for(parse_config(_read(keep_cfg), str(keep_cfg)), mirror) if keep_cfg else None
    client = RegistryClient(mirror.registry, tls_verify=args.dest_tls_verify, cert_dir=args.dest_cert_dir
                            or args.cert_dir, authfile=args.authfile)
    with client:
        kept = kept_digests(keep_plan, client)
        if args.generate:
            if delete_cfg is None or not args.workspace:
                raise UsageError("--generate needs -c DELETE-ISC (kind DeleteImageSetConfiguration) and "
                                 "--workspace file://DIR")
            items = delete_items(plan_for(read_delete_config(delete_cfg), mirror))
            found, missing = resolve(client, items, mirror)
            for ref in missing:
                say(f"warning: {ref} is not in the mirror; left out of the list")
            listed = []
            for item in items:
                digest = found.get(item.image_reference)
                if digest is None:
                    continue
                if digest in kept:
                    say(f"keeping {item.image_reference}: the current ImageSetConfiguration still selects "
                        f"it ({kept[digest]})")
                    continue
                listed.append(item)
            path = write_delete_files(_workspace(args.workspace), listed, _read(delete_cfg), args.delete_id)
            print(f"{len(listed)} image(s) to delete listed in {path}; review it, then run: edgebuild delete "
                  f"--delete-yaml-file {path} docker://{mirror}")
            return 0
        if not args.delete_yaml_file:
            raise UsageError("the --delete-yaml-file flag is mandatory when not using the --generate flag")
        items = read_delete_file(Path(args.delete_yaml_file))
        found, missing = resolve(client, items, mirror)
        refused = [f"{ref} ({kept[d]})" for ref, d in found.items() if d in kept]
        if refused:
            raise UsageError(f"refusing to delete {len(refused)} image(s) the current ImageSetConfiguration "
                             f"{keep_cfg} still selects; nothing was deleted:\n  " + "\n  ".join(refused),
                             "remove them from the delete-images yaml, or regenerate it with the same -c")
        for ref in missing:
            say(f"{ref}: not in the mirror (already deleted)")
        manifests: dict[str, list[str]] = {}
        for ref, digest in found.items():
            digests = manifests.setdefault(_target(ref).repository, [])
            if digest not in digests:
                digests.append(digest)
        report = delete_manifests(client, manifests, "delete")
    print(f"deleted {len(report.deleted)} manifest(s) from {mirror}; remember to run the registry's garbage "
          f"collection (docker-registry: 'registry garbage-collect CONFIG') to free the blobs")
    return 0


def _mirror(text: str) -> MirrorTarget:
    if not text.startswith("docker://"):
        raise UsageError("the destination registry argument must have a docker:// protocol prefix")
    try:
        return MirrorTarget.parse(text)
    except ReferenceError as exc:
        raise UsageError(str(exc)) from None


def _workspace(text: str) -> Path:
    if not text.startswith("file://"):
        raise UsageError("--workspace flag must have a file:// protocol prefix")
    return Path(text.removeprefix("file://"))
