"""The state of earlier runs kept by `storageConfig`, so a run knows what is new (oc-mirror v1 style).

The state is a JSON-serialisable dict. It is stored either as `<local.path>/edgebuild-state.json`
(written atomically) or as a one-layer OCI artifact at `registry.imageURL` (config + one JSON
layer, pushed blobs first and the tag last, so a reader never sees half a state). What the dict
holds is decided by its users; `state_from_run` writes the shape mirroring and selection use:
`{"version": 1, "images": {source: digest}, "catalogs": {catalog unique name: select_v1.selection_state}}`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..catalog.select_v1 import selection_state
from ..config import ImageSetConfig, catalog_unique_name
from ..errors import RegistryError
from ..fsutil import write_atomic
from ..plan import Plan
from ..reference import ImageReference
from .client import RegistryClient
from .manifest import OCI_MANIFEST, sha256_digest

STATE_FILE = "edgebuild-state.json"
STATE_MEDIA_TYPE = "application/vnd.edgebuild.mirror.state.v1+json"
STATE_ARTIFACT = "application/vnd.edgebuild.mirror.state"
EMPTY_CONFIG = b"{}"


def _client(config: ImageSetConfig, authfile: str | None) -> tuple[RegistryClient, ImageReference]:
    assert config.storage and config.storage.registry_image
    ref = ImageReference.parse(config.storage.registry_image)
    client = RegistryClient(ref.registry, tls_verify=not config.storage.registry_skip_tls, authfile=authfile)
    return client, ref


def load_state(config: ImageSetConfig, *, authfile: str | None = None) -> dict[str, Any] | None:
    """The state an earlier run saved, or None when there is no storageConfig or nothing saved yet."""
    storage = config.storage
    if storage is None:
        return None
    if storage.local_path:
        path = Path(storage.local_path) / STATE_FILE
        try:
            if not path.is_file():
                return None
            state = json.loads(path.read_text())
        except OSError as exc:  # e.g. a name too long for the filesystem, a directory not readable
            raise RegistryError(f"storageConfig state {path}: cannot read it: {exc.strerror}",
                                hint="check storageConfig.local.path") from None
        except ValueError as exc:
            raise RegistryError(f"storageConfig state {path} is not valid JSON: {exc}",
                                hint="delete it to start over (the next run mirrors everything)") from None
        return state if isinstance(state, dict) else None
    if storage.registry_image:
        client, ref = _client(config, authfile)
        with client:
            reference = ref.digest or ref.tag or "latest"
            if client.head_manifest(ref.repository, reference) is None:
                return None
            manifest = client.get_manifest(ref.repository, reference)
            layers = manifest.body.get("layers") or []
            if manifest.is_index or len(layers) != 1 or layers[0].get("mediaType") != STATE_MEDIA_TYPE:
                raise RegistryError(f"storageConfig image {ref} is not an edgebuild state artifact",
                                    hint="point storageConfig.registry.imageURL at an image only edgebuild writes")
            with client.open_blob(ref.repository, layers[0]["digest"]) as (chunks, _size):
                data = b"".join(chunks)
            if sha256_digest(data) != layers[0]["digest"]:
                raise RegistryError(f"storageConfig image {ref}: state blob does not match its digest")
            return json.loads(data)
    return None


def save_state(config: ImageSetConfig, state: dict[str, Any], *, authfile: str | None = None) -> None:
    """Store `state` where storageConfig says; no-op without a storageConfig."""
    storage = config.storage
    if storage is None:
        return
    data = (json.dumps(state, indent=1, sort_keys=True) + "\n").encode()
    if storage.local_path:
        try:
            write_atomic(Path(storage.local_path) / STATE_FILE, data, durable=True)
        except OSError as exc:
            raise RegistryError(f"storageConfig state {Path(storage.local_path) / STATE_FILE}: cannot write it: "
                                f"{exc.strerror}", hint="check storageConfig.local.path: it must be writable") from None
        return
    if storage.registry_image:
        client, ref = _client(config, authfile)
        with client:
            for blob in (EMPTY_CONFIG, data):
                digest = sha256_digest(blob)
                if client.head_blob(ref.repository, digest) is None:
                    location = client.start_upload(ref.repository)
                    assert location is not None
                    client.finish_upload(location, ref.repository, digest, blob, len(blob))
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": STATE_ARTIFACT,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(EMPTY_CONFIG),
                           "size": len(EMPTY_CONFIG)},
                "layers": [{"mediaType": STATE_MEDIA_TYPE, "digest": sha256_digest(data), "size": len(data)}],
            }).encode()
            client.put_manifest(ref.repository, ref.tag or "latest", manifest, OCI_MANIFEST)


def state_from_run(plan: Plan, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The state after a successful run: earlier images plus this plan's, and this run's selections."""
    images = dict((previous or {}).get("images") or {})
    images.update({img.source: img.digest for img in plan.images if img.digest})
    catalogs = dict((previous or {}).get("catalogs") or {})
    for op in plan.operators:
        # Only oc-mirror v1 semantics continue from an earlier run (v2 re-filters from scratch), and
        # they read the per-channel starting points that select_v1 records.
        if op.selection is not None and plan.semantics == "v1":
            catalogs[catalog_unique_name(op.spec)] = selection_state(op.selection)
    return {"version": 1, "images": images, "catalogs": catalogs}
