"""Process-wide defaults of the run's registry clients, set once from the command line.

Kept apart from client.py so that setting them costs no import of the HTTP stack: every command
applies the options, and most of them (verify, render, plan --offline) never open a connection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Process-wide defaults from the command line (`configure`), for every client a run creates."""

    retry: RetryPolicy = RetryPolicy()
    max_per_registry: int | None = None  # concurrent requests per registry (oc-mirror's --max-per-registry)
    fast_http: bool = True  # --no-fast-http / EDGEBUILD_FAST_HTTP=0 turn the fast transport off


_settings = ClientSettings()


def configure(**changes: Any) -> ClientSettings:
    """Set the defaults of clients created from now on; returns the previous settings."""
    global _settings
    previous, _settings = _settings, replace(_settings, **changes)
    return previous


def settings() -> ClientSettings:
    return _settings
