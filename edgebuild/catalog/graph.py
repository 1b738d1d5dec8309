"""Channel upgrade graphs as operator-registry's model sees them (oc-mirror v1 validation).

A channel head is the entry that no other entry of the same channel `replaces` or `skips`;
`skipRange` never counts. Every function here is linear in the number of edges so that channels
with thousands of bundles and entries with 90+ skips stay cheap (oc-mirror OCPBUGS-52471 ran out
of memory on such channels).
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import ChannelEntry


def channel_heads(entries: Iterable[ChannelEntry]) -> list[str]:
    """Sorted names of the entries that no other entry of the same list replaces or skips."""
    entries = list(entries)
    names = {e.name for e in entries}
    replaced: set[str] = set()
    for e in entries:
        if e.replaces:
            replaced.add(e.replaces)
        replaced.update(e.skips)
    return sorted(names - replaced)
