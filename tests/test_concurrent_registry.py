"""Two `edgebuild mirror` runs into one registry at the same time both succeed (issue 12, item 4).

Both runs copy the same images (shared base layers, one multi-arch index) into the same
repositories of a real docker-registry, as two separate processes, three rounds, each into a fresh
namespace. Every image is then checked by skopeo, which verifies every blob digest. The race it
exercises: distribution rewrites a blob's link file in place when a run uploads or mounts it, so
the other run's manifest PUT can meet MANIFEST_BLOB_UNKNOWN / DIGEST_INVALID for a blob that is
there (RegistryEndpoint.put_manifest re-checks and retries).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.registry_images import Layout, make_layer, multiarch_image, push, simple_image, verify_pull

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("isolated_auth_env")


@pytest.fixture
def shared_images(registry, tmp_path: Path) -> list[str]:
    layout = Layout(tmp_path / "layout")
    base = [make_layer("ubi", 400_000), make_layer("runtime", 100_000)]
    refs = []
    for n in range(6):
        name = f"app{n}"
        simple_image(layout, name, (30_000, 2_000), base=base)
        push(layout, name, f"{registry.host}/c/{name}:v1")
        refs.append(f"{registry.host}/c/{name}:v1")
    multiarch_image(layout, "multi")
    push(layout, "multi", f"{registry.host}/c/multi:v1")
    refs.append(f"{registry.host}/c/multi:v1")
    return refs


def test_two_concurrent_mirrors_into_one_registry_both_succeed(shared_images, registry, registry2,
                                                              tmp_path: Path) -> None:
    config = tmp_path / "isc.yaml"
    config.write_text("apiVersion: mirror.openshift.io/v2alpha1\nkind: ImageSetConfiguration\nmirror:\n"
                      "  additionalImages:\n" + "".join(f"  - name: {ref}\n" for ref in shared_images))
    for round_ in range(3):
        target = f"docker://{registry2.host}/round{round_}"
        argv = [sys.executable, "-m", "edgebuild", "mirror", "-c", str(config), "--to", target,
                "--src-tls-verify=false", "--dest-tls-verify=false", "-q", "--parallel", "8"]
        runs = [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
        outcomes = [(run.wait(300), run.stderr.read() if run.stderr else "") for run in runs]
        for code, err in outcomes:
            assert code == 0, f"round {round_}: a concurrent run failed:\n{err}"
        for ref in shared_images:
            verify_pull(ref.replace(registry.host, f"{registry2.host}/round{round_}"), tmp_path / f"v{round_}")
