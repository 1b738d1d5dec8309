"""Pruning between v1alpha2 runs with a storageConfig (oc-mirror v1 pkg/cli/mirror/prune.go), against real
docker-registry processes, with skopeo as the independent checker.

The quickstart operator has two bundles that share one operator image: run 1 mirrors both bundles
and an additional image, run 2 keeps only the newer bundle, so the older bundle, the additional image
and the old catalog manifest must go while the shared operator image stays.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebuild.cli import main
from edgebuild.plan import Plan, PlanImage
from edgebuild.prune import plan_pruning, run_pruning, with_mirrored
from edgebuild.reference import MirrorTarget
from edgebuild.registry.manifest import sha256_digest
from tests.lifecycle_support import exists, quickstart_registries
from tests.registry_images import (
    Layout,
    inspect_raw,
    multiarch_image,
    push,
    simple_image,
    verify_pull,
)

pytestmark = pytest.mark.usefixtures("isolated_auth_env")
V1 = "mirror.openshift.io/v1alpha2"


def _config(path: Path, upstream: str, meta: Path, min_version: str, app: str | None) -> Path:
    text = (f"apiVersion: {V1}\nkind: ImageSetConfiguration\nstorageConfig:\n  local:\n    path: {meta}\n"
            f"mirror:\n  operators:\n  - catalog: {upstream}/edgebuild-example/catalog:v1\n    packages:\n"
            f"    - name: edge-hello\n      channels:\n      - name: stable\n        minVersion: {min_version}\n")
    if app:
        text += f"  additionalImages:\n  - name: {app}\n"
    path.write_text(text)
    return path


_exists = exists


def _mirror(config: Path, mirror: str, *extra: str) -> int:
    return main(["mirror", "-c", str(config), "--to", f"docker://{mirror}/edge", "--src-tls-verify=false",
                 "--dest-tls-verify=false", "-q", *extra])


@pytest.fixture
def two_runs(registry_factory, tmp_path: Path, request) -> dict:
    """Run 1 mirrored; the configuration of run 2 written; where everything is."""
    up, mirror, app = quickstart_registries(registry_factory, tmp_path, getattr(request, "param", True))
    meta = tmp_path / "meta"
    run1 = _config(tmp_path / "run1.yaml", up.host, meta, "0.1.0", app)
    run2 = _config(tmp_path / "run2.yaml", up.host, meta, "0.2.0", None)
    assert _mirror(run1, mirror.host) == 0
    state = json.loads((meta / "edgebuild-state.json").read_text())
    images = {Path(i["repository"]).name + ("@" + i["source"].rsplit(":", 1)[-1] if "bundle" in i["repository"]
                                            else ""): f"{mirror.host}/{i['repository']}@{i['digest']}"
              for i in state["mirrored"]["images"]}
    return {"mirror": mirror, "run2": run2, "meta": meta, "images": images, "tmp": tmp_path}


def _by_name(images: dict[str, str], part: str) -> list[str]:
    return [ref for key, ref in images.items() if part in key]


def test_dry_run_writes_the_pruning_plan_and_deletes_nothing(two_runs: dict, capsys) -> None:
    images, plan_file = two_runs["images"], two_runs["tmp"] / "plan.json"
    assert _mirror(two_runs["run2"], two_runs["mirror"].host, "--dry-run", "--pruning-plan", str(plan_file)) == 0
    capsys.readouterr()
    plan = json.loads(plan_file.read_text())
    assert plan["registry"] == two_runs["mirror"].host
    pruned = {f"{plan['registry']}/{r['name']}@{d}" for r in plan["repositories"] for d in r["manifests"]}
    [old_bundle] = [ref for ref in _by_name(images, "edge-hello-bundle") if _exists(ref)
                    and ref in pruned]  # exactly one bundle leaves the set
    assert _by_name(images, "hello-app")[0] in pruned
    assert not pruned & set(_by_name(images, "edge-hello-operator"))  # shared with the kept bundle
    assert all(_exists(ref) for ref in images.values())  # a dry run deletes nothing
    assert old_bundle


def test_second_run_prunes_what_left_and_keeps_the_shared_image(two_runs: dict, capsys) -> None:
    images, mirror = two_runs["images"], two_runs["mirror"].host
    bundles = _by_name(images, "edge-hello-bundle")
    assert len(bundles) == 2 and len(_by_name(images, "catalog")) == 1
    assert main(["mirror", "-c", str(two_runs["run2"]), "--to", f"docker://{mirror}/edge",
                 "--src-tls-verify=false", "--dest-tls-verify=false"]) == 0
    err = capsys.readouterr().err
    assert "Pruning 1 manifest(s) from repository edge/edgebuild-example/edge-hello-bundle" in err
    assert "garbage collection" in err
    state = json.loads((two_runs["meta"] / "edgebuild-state.json").read_text())
    kept = {f"{mirror}/{i['repository']}@{i['digest']}" for i in state["mirrored"]["images"]}
    gone = [ref for ref in bundles if not _exists(ref)]
    assert len(gone) == 1 and gone[0] not in kept and set(bundles) - set(gone) <= kept
    assert not _exists(_by_name(images, "hello-app")[0])
    assert not _exists(_by_name(images, "catalog")[0])  # the catalog was rebuilt: the old manifest goes
    # what remains passes skopeo: the newer bundle, the operator image both bundles use, the new catalog
    (two_runs["tmp"] / "pulled").mkdir()
    for ref in [b for b in bundles if b not in gone] + _by_name(images, "edge-hello-operator"):
        verify_pull(ref, two_runs["tmp"] / "pulled" / ref.rsplit("@", 1)[1][7:19])
    assert _exists(f"{mirror}/edge/edgebuild-example/catalog:v1")
    # the next run has nothing left to prune
    assert _mirror(two_runs["run2"], mirror) == 0


def test_skip_pruning_keeps_everything(two_runs: dict) -> None:
    assert _mirror(two_runs["run2"], two_runs["mirror"].host, "--skip-pruning") == 0
    assert all(_exists(ref) for key, ref in two_runs["images"].items() if "catalog" not in key)


@pytest.mark.parametrize("two_runs", [False], indirect=True)
def test_registry_that_refuses_deletes_names_the_setting(two_runs: dict, capsys) -> None:
    assert _mirror(two_runs["run2"], two_runs["mirror"].host) == 1
    err = capsys.readouterr().err
    assert "HTTP 405: deletes are disabled" in err
    assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in err and "storage: delete: enabled: true" in err
    assert "--skip-pruning" in err
    assert all(_exists(ref) for key, ref in two_runs["images"].items() if "catalog" not in key)


def test_same_digest_in_another_repository_is_never_pruned() -> None:
    digest, other = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    mirror = MirrorTarget("m.example:5000", "ns")

    def plan(*images: tuple[str, str, str]) -> Plan:
        return Plan(api_version=V1, mirror=mirror, images=[
            PlanImage(source=src, type="related", destination=f"m.example:5000/ns/{repo}@{d}", digest=d)
            for src, repo, d in images])

    old = with_mirrored({}, plan(("q.io/a/x@" + digest, "a/x", digest), ("q.io/a/y@" + other, "a/y", other)))
    pruning = plan_pruning(old, plan(("q.io/b/x@" + digest, "b/x", digest)))
    assert pruning is not None
    assert pruning.manifests == {"ns/a/y": [other]}
    assert pruning.kept_shared == [f"ns/a/x@{digest} (the same image is still selected as q.io/b/x@{digest})"]
    # an earlier run into another mirror is not pruned from this one
    assert plan_pruning(old, Plan(api_version=V1, mirror=MirrorTarget("else.example"))) is None


def test_children_of_manifest_lists_pruned_with_them_unless_a_kept_list_holds_them(registry, tmp_path: Path) -> None:
    """A pruned index takes its children along; an image that is a child of a kept index stays."""
    layout = Layout(tmp_path / "layout")
    index = multiarch_image(layout, "multi")
    simple_image(layout, "single", (3_000,))
    push(layout, "multi", f"{registry.host}/ns/multi:v1")
    push(layout, "single", f"{registry.host}/ns/single:v1")
    raw = json.loads(inspect_raw(f"{registry.host}/ns/multi:v1"))
    index_digest = sha256_digest(inspect_raw(f"{registry.host}/ns/multi:v1"))
    child = raw["manifests"][0]["digest"]
    single = sha256_digest(inspect_raw(f"{registry.host}/ns/single:v1"))
    mirror = MirrorTarget(registry.host)

    def plan(*images: tuple[str, str]) -> Plan:
        return Plan(api_version=V1, mirror=mirror, images=[
            PlanImage(source=f"q.io/{repo}@{d}", type="additional", destination=f"{registry.host}/{repo}@{d}", digest=d)
            for repo, d in images])

    # run 1 held the index's child as an image of its own and the single image; run 2 keeps the index
    old = with_mirrored({}, plan(("ns/multi", child), ("ns/single", single)))
    current = plan(("ns/multi", index_digest))
    out = tmp_path / "plan.json"
    run_pruning(current, old, dry_run=True, skip=False, plan_file=out, client_options={"tls_verify": False})
    assert json.loads(out.read_text())["repositories"] == [{"name": "ns/single", "manifests": [single]}]
    # and the other way round: the index leaves, its children go with it
    old = with_mirrored({}, plan(("ns/multi", index_digest)))
    report = run_pruning(plan(("ns/single", single)), old, dry_run=False, skip=False, plan_file=out,
                         client_options={"tls_verify": False}, quiet=True)
    assert report is not None and len(report.deleted) == 1 + len(raw["manifests"])
    assert not _exists(f"{registry.host}/ns/multi@{child}") and not _exists(f"{registry.host}/ns/multi:v1")
    verify_pull(f"{registry.host}/ns/single:v1", tmp_path / "single")
    assert index
