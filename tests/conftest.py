"""Shared test setup: where ../shared is, and tools that must exist.

In CI (CI=true) a missing tool fails the test instead of skipping it: a green run must mean the
real registry, skopeo, kustomize and podman were exercised. Tests of ../shared data (oc-mirror
conformance cases, real catalogs) skip without it, all through require_shared().
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# Fixtures with servers of their own: a real docker-registry per test, and the composer stand-in;
# crd_schemas validates every render output a test writes under tmp_path (CRD schemas, OLM rules).
pytest_plugins = ["tests.registry_fixtures", "tests.composer_standin", "tests.crd_schemas"]


def require_tool(name: str) -> str:
    """The path of a command-line tool; skip (or fail in CI) when it is not installed."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if path is None:
        message = f"{name} is not installed (scripts/setup.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_shared(*parts: str, module: bool = False) -> Path:
    """`../shared/<parts>` beside the repo: the oc-mirror conformance cases and the real catalogs, the only
    data the suite does not carry. A clean clone, CI's included, may not have it: the test (or with
    `module=True`, called at import, the whole module) skips then, always with the same message."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        where = "/".join(("../shared", *parts))
        pytest.skip(f"{where} is not beside this clone (oc-mirror conformance data and real catalogs are not "
                    "part of the repository)", allow_module_level=module)
    return path


@pytest.fixture
def shared_dir() -> Path:
    return require_shared()
