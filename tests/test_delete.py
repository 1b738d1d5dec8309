"""`edgebuild delete` (oc-mirror v2's DeleteImageSetConfiguration, --generate then --delete-yaml-file) against
real docker-registry processes, with skopeo as the independent checker.

The quickstart operator's two bundles share one operator image: deleting the older bundle while the
current ImageSetConfiguration keeps the newer one must leave the operator image (and the catalog)
in place.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edgebuild.cli import main
from tests.lifecycle_support import exists, quickstart_registries
from tests.registry_images import verify_pull

pytestmark = pytest.mark.usefixtures("isolated_auth_env")
V2 = "mirror.openshift.io/v2alpha1"


def _operators(upstream: str, versions: str) -> str:
    return (f"  operators:\n  - catalog: {upstream}/edgebuild-example/catalog:v1\n    packages:\n"
            f"    - name: edge-hello\n      channels:\n      - name: stable\n{versions}")


_exists = exists


def _delete(*args: str) -> int:
    return main(["delete", "--src-tls-verify=false", "--dest-tls-verify=false", *args])


@pytest.fixture
def mirrored(registry_factory, tmp_path: Path, request) -> dict:
    """Both bundles and the app image mirrored with v2alpha1; the delete and keep configurations."""
    up, mirror, app = quickstart_registries(registry_factory, tmp_path, getattr(request, "param", True))
    everything = tmp_path / "all.yaml"
    everything.write_text(f"apiVersion: {V2}\nkind: ImageSetConfiguration\nmirror:\n"
                          + _operators(up.host, "        minVersion: 0.1.0\n")
                          + f"  additionalImages:\n  - name: {app}\n")
    dest = f"docker://{mirror.host}/edge"
    assert main(["mirror", "-c", str(everything), "--to", dest, "--src-tls-verify=false",
                 "--dest-tls-verify=false", "-q"]) == 0
    disc = tmp_path / "delete-isc.yaml"
    disc.write_text(f"apiVersion: {V2}\nkind: DeleteImageSetConfiguration\ndelete:\n"
                    + _operators(up.host, "        minVersion: 0.1.0\n        maxVersion: 0.1.0\n")
                    + f"  additionalImages:\n  - name: {app}\n")
    keep = tmp_path / "keep.yaml"
    keep.write_text(f"apiVersion: {V2}\nkind: ImageSetConfiguration\nmirror:\n"
                    + _operators(up.host, "        minVersion: 0.2.0\n"))
    host = mirror.host
    return {"dest": dest, "disc": disc, "keep": keep, "ws": tmp_path / "ws", "host": host, "tmp": tmp_path,
            "app": f"{host}/edge/edgebuild-example/hello-app@{app.rsplit('@', 1)[1]}"}


def _items(path: Path) -> list[dict]:
    doc = yaml.safe_load(path.read_text())
    assert doc["kind"] == "DeleteImageList" and doc["apiVersion"] == V2
    refs = [i["imageReference"] for i in doc["items"]]
    assert refs == sorted(refs)
    return doc["items"]


def _generate(m: dict, *configs: Path) -> Path:
    args = [a for c in configs for a in ("-c", str(c))]
    assert _delete(*args, "--generate", "--workspace", f"file://{m['ws']}", m["dest"]) == 0
    return m["ws"] / "working-dir" / "delete" / "delete-images.yaml"


def test_generate_review_delete_keeps_what_the_current_config_selects(mirrored: dict, capsys) -> None:
    m = mirrored
    listing = _generate(m, m["disc"], m["keep"])
    err = capsys.readouterr().err
    items = _items(listing)
    assert (m["ws"] / "working-dir" / "delete" / "delete-imageset-config.yaml").read_text() == m["disc"].read_text()
    types = sorted(i["type"] for i in items)
    assert types == ["generic", "operatorBundle"], items  # the operator image and the catalog stay
    assert "keeping docker://" in err and "edge-hello-operator" in err
    bundle = next(i for i in items if i["type"] == "operatorBundle")
    bundle_ref = bundle["imageReference"].removeprefix("docker://")
    assert _exists(bundle_ref) and _exists(m["app"])  # --generate deletes nothing

    assert _delete("-c", str(m["keep"]), "--delete-yaml-file", str(listing), m["dest"]) == 0
    assert "garbage collection" in capsys.readouterr().out
    assert not _exists(bundle_ref) and not _exists(m["app"])
    # what the current configuration selects passes skopeo: catalog, newer bundle, the shared operator image
    assert main(["plan", "-c", str(m["keep"]), "--to", m["dest"], "--format", "json",
                 "--src-tls-verify=false"]) == 0
    kept = json.loads(capsys.readouterr().out)["images"]
    assert sorted(i["type"] for i in kept) == ["bundle", "catalog", "related"]
    (m["tmp"] / "pulled").mkdir()
    for n, img in enumerate(kept):
        verify_pull(img["destination"], m["tmp"] / "pulled" / str(n))


def test_a_reviewed_list_naming_a_kept_image_is_refused_whole(mirrored: dict, capsys) -> None:
    m = mirrored
    listing = _generate(m, m["disc"])  # no keep config: the shared operator image is listed too
    items = _items(listing)
    assert any("edge-hello-operator" in i["imageReference"] for i in items)
    capsys.readouterr()
    assert _delete("-c", str(m["keep"]), "--delete-yaml-file", str(listing), m["dest"]) == 2
    err = capsys.readouterr().err
    assert "refusing to delete" in err and "edge-hello-operator" in err and "nothing was deleted" in err
    assert all(_exists(i["imageReference"].removeprefix("docker://")) for i in items)


def test_delete_needs_the_yaml_file_or_generate(mirrored: dict, capsys) -> None:
    assert _delete(mirrored["dest"]) == 2
    assert "the --delete-yaml-file flag is mandatory when not using the --generate flag" in capsys.readouterr().err
    assert _delete("-c", str(mirrored["keep"]), "--generate", "--workspace", "file:///tmp/x", mirrored["dest"]) == 2


@pytest.mark.parametrize("mirrored", [False], indirect=True)
def test_registry_that_refuses_deletes_names_the_setting(mirrored: dict, capsys) -> None:
    listing = _generate(mirrored, mirrored["disc"], mirrored["keep"])
    capsys.readouterr()
    assert _delete("--delete-yaml-file", str(listing), mirrored["dest"]) == 1
    err = capsys.readouterr().err
    assert "HTTP 405: deletes are disabled" in err and "REGISTRY_STORAGE_DELETE_ENABLED=true" in err
    assert _exists(mirrored["app"])


def test_wrong_kind_is_an_invalid_configuration(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "d.yaml"
    bad.write_text(f"apiVersion: {V2}\nkind: DeleteImageSetConfiguration\ndelete:\n  additionalImages:\n"
                   "  - nme: quay.io/a/b:1\n")
    assert _delete("-c", str(bad), "--generate", "--workspace", f"file://{tmp_path}", "docker://127.0.0.1:1") == 2
    err = capsys.readouterr().err
    assert "d.yaml:5" in err and "delete.additionalImages[0].nme" in err
