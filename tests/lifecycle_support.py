"""What the pruning and delete tests share: the quickstart operator pushed to an upstream registry, a
mirror registry (deletes enabled or not), and a skopeo existence check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, require_tool
from tests.registry_fixtures import RegistryServer
from tests.registry_images import skopeo


def quickstart_registries(registry_factory, tmp_path: Path, delete: bool = True
                          ) -> tuple[RegistryServer, RegistryServer, str]:
    """(upstream, mirror, app image reference): the quickstart's catalog, two bundles sharing one operator
    image, and its app image, pushed to a fresh upstream registry by examples/quickstart/make_example.py."""
    require_tool("skopeo")
    up = registry_factory("upstream")
    mirror = registry_factory("mirror", delete=delete)
    example = tmp_path / "example-isc.yaml"
    subprocess.run([sys.executable, str(REPO / "examples/quickstart/make_example.py"), "--upstream", up.host,
                    "--workdir", str(tmp_path / "example"), "--config", str(example)], check=True, capture_output=True)
    app = next(line.split("name: ")[1] for line in example.read_text().splitlines() if "hello-app@" in line)
    return up, mirror, app


def exists(ref: str) -> bool:
    """skopeo finds the manifest `ref` (HOST/REPO:TAG or @DIGEST, plain HTTP)."""
    return skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}", check=False).returncode == 0
