"""Shared test setup: where ../shared is, and tools that must exist.

In CI (CI=true) a missing tool fails the test instead of skipping it: a green run must mean the
real registry, skopeo, kustomize and podman were exercised. Tests of ../shared data skip without it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# Fixtures with servers of their own: a real docker-registry per test, and the composer stand-in.
pytest_plugins = ["tests.registry_fixtures", "tests.composer_standin", "tests.bpcheck"]


def require_tool(name: str) -> str:
    """The path of a command-line tool; skip (or fail in CI) when it is not installed."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if path is None:
        message = f"{name} is not installed (scripts/setup.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_shared() -> Path:
    """../shared beside the repo (real catalogs, conformance cases, schemas). It is not part of the
    repository and a clean clone, CI's included, may not have it: tests that read it skip then."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} (the workspace's shared data) is not present beside the repository")
    return SHARED


@pytest.fixture
def shared_dir() -> Path:
    return require_shared()
