"""The one OCI model (registry/manifest.py) that catalog loading and mirroring share: platform choice and caps.

Platform choice follows containers/image (internal/manifest/oci_index.go chooseInstance,
docker_schema2_list.go ChooseInstance): a matching child wins; in an OCI index a child without a
platform is the fallback when none matches; a Docker manifest list has no fallback.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebuild.catalog.sources import CATALOG_LABEL, open_catalog_image
from edgebuild.errors import CatalogError, RegistryError
from edgebuild.registry.manifest import (
    DOCKER_LIST,
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    Descriptor,
    choose_instance,
    filter_index,
    parse_config,
    parse_manifest,
    sha256_digest,
)
from tests.ocibuild import OciLayout
from tests.test_catalog_sources import demo_files


def _child(n: int, platform: dict[str, str] | None) -> dict[str, object]:
    child: dict[str, object] = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "digest": "sha256:" + f"{n:x}" * 64, "size": 100 + n}
    if platform:
        child["platform"] = platform
    return child


def _index(media_type: str, *children: dict[str, object]):
    return parse_manifest(json.dumps({"schemaVersion": 2, "mediaType": media_type,
                                      "manifests": list(children)}).encode(), None, "test")


AMD, ARM = {"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64"}


def test_a_matching_child_wins_over_one_without_platform() -> None:
    index = _index(OCI_INDEX, _child(1, None), _child(2, ARM), _child(3, AMD))
    assert choose_instance(index, "amd64", "x").digest == "sha256:" + "3" * 64


def test_oci_index_child_without_platform_is_the_fallback_even_beside_others() -> None:
    lone = _index(OCI_INDEX, _child(1, None))
    assert choose_instance(lone, "arm64", "x").digest == "sha256:" + "1" * 64
    mixed = _index(OCI_INDEX, _child(2, AMD), _child(1, None), _child(3, None))
    assert choose_instance(mixed, "s390x", "x").digest == "sha256:" + "1" * 64
    assert [c.digest for c in filter_index(mixed, "s390x", "x").children] == ["sha256:" + "1" * 64]


def test_docker_manifest_list_has_no_platformless_fallback() -> None:
    index = _index(DOCKER_LIST, _child(1, None), _child(2, AMD))
    with pytest.raises(RegistryError, match=r"no linux/arm64 manifest \(it has: \?/\?, linux/amd64\)") as info:
        choose_instance(index, "arm64", "x")
    assert "--arch" in (info.value.hint or "")
    with pytest.raises(RegistryError, match="no linux/arm64 manifest"):
        filter_index(index, "arm64", "x")


def test_one_manifest_cap_for_everyone() -> None:
    assert MAX_MANIFEST_BYTES == MAX_CONFIG_BYTES == 4 * 1024 * 1024
    with pytest.raises(RegistryError, match="over the 4 MiB limit"):
        parse_manifest(b" " * (MAX_MANIFEST_BYTES + 1), None, "big")
    big = b"{" + b" " * MAX_CONFIG_BYTES + b"}"
    with pytest.raises(RegistryError, match="is over 4194304 bytes; that is not an image config"):
        parse_config(big, Descriptor("", sha256_digest(big), len(big)), "cfg")
    good = b'{"config":{}}'
    with pytest.raises(RegistryError, match="config content digest is sha256:"):
        parse_config(good, Descriptor("", sha256_digest(b"other"), len(good)), "cfg")


def test_catalog_in_an_index_whose_lone_child_has_no_platform(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "l")
    image = layout.add_image([demo_files()], labels={CATALOG_LABEL: "/configs"})
    index = layout.add_index([{k: v for k, v in image.items() if k != "platform"}])
    layout.tag(index)
    loaded = open_catalog_image(f"oci://{tmp_path / 'l'}", arch="arm64")
    assert loaded.digest == index["digest"] and loaded.manifest_digest == image["digest"]
    assert list(loaded.catalog.packages) == ["demo"]


def test_catalog_errors_of_the_shared_model_stay_catalog_errors(tmp_path: Path) -> None:
    layout = OciLayout.create(tmp_path / "l")
    schema1 = "application/vnd.docker.distribution.manifest.v1+json"
    layout.tag(layout.add_json({"schemaVersion": 1, "name": "x"}, schema1))
    with pytest.raises(CatalogError, match="unsupported manifest media type"):
        open_catalog_image(f"oci://{tmp_path / 'l'}")
