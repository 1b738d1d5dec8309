"""Channel upgrade graphs as operator-registry's model sees them (oc-mirror v1 validation).

A channel head is the entry that no other entry of the same channel `replaces` or `skips`;
`skipRange` never counts. Every function here is linear in the number of edges so that channels
with thousands of bundles and entries with 90+ skips stay cheap (oc-mirror OCPBUGS-52471 ran out
of memory on such channels; operator-registry's own cycle check keeps a path per visited node).

Error texts are operator-registry's (`alpha/model/model.go`), because users search for them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .model import Catalog, ChannelEntry

MSG_NO_HEAD = "no channel head found in graph"
MSG_EMPTY_CHANNEL = "channel must contain at least one bundle"


class ChannelGraphError(ValueError):
    """A channel whose upgrade graph breaks one of operator-registry's rules (oc-mirror v1 validation) or
    catalog-filter's (v2 newChannel / filterByVersionRange): the message, plus the heads found."""

    def __init__(self, message: str, heads: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.heads = list(heads)


def channel_heads(entries: Iterable[ChannelEntry]) -> list[str]:
    """Sorted names of the entries that no other entry of the same list replaces or skips."""
    entries = list(entries)
    replaced: set[str] = set()
    for e in entries:
        if e.replaces:
            replaced.add(e.replaces)
        replaced.update(e.skips)
    return sorted({e.name for e in entries} - replaced)


def channel_head(entries: Iterable[ChannelEntry]) -> ChannelEntry:
    """The single head of a channel, or ChannelGraphError with operator-registry's message."""
    entries = list(entries)
    heads = channel_heads(entries)
    if not heads:
        raise ChannelGraphError(MSG_NO_HEAD)
    if len(heads) > 1:
        raise ChannelGraphError("multiple channel heads found in graph: " + ", ".join(heads), heads)
    return next(e for e in entries if e.name == heads[0])


def validate_channel(entries: Sequence[ChannelEntry]) -> str | None:
    """operator-registry Channel.validateReplacesChain: one head, no cycle, nothing stranded.

    Returns the error message, or None for a valid channel.
    """
    if not entries:
        return MSG_EMPTY_CHANNEL
    try:
        head = channel_head(entries)
    except ChannelGraphError as exc:
        return str(exc)
    by_name = {e.name: e for e in entries}
    on_chain: dict[str, int] = {head.name: 0}  # name -> position on the replaces chain from the head
    chain = [head.name]
    cur: ChannelEntry | None = head
    while cur is not None:
        nxt = cur.replaces or ""
        if nxt in on_chain:
            # operator-registry prints the chain from the first repeated node back to itself.
            loop = chain[on_chain[nxt]:] + [nxt]
            return "detected cycle in replaces chain of upgrade graph: " + " -> ".join(loop)
        on_chain[nxt] = len(chain)
        chain.append(nxt)
        cur = by_name.get(nxt)
    skipped = {s for e in entries for s in e.skips}
    stranded = sorted(n for n in by_name if n not in on_chain and n not in skipped)
    if stranded:
        return "channel contains one or more stranded bundles: " + ", ".join(stranded)
    return None


@dataclass(slots=True)
class ValidationNode:
    """One level of operator-registry's nested validation error (index > package > channel)."""

    message: str
    children: list[ValidationNode | str] = field(default_factory=list)

    def render(self) -> str:
        lines = [self.message + (":" if self.children else "")]
        _render_children(self.children, "", lines)
        return "\n".join(lines)


def _render_children(children: list[ValidationNode | str], prefix: str, lines: list[str]) -> None:
    for i, child in enumerate(children):
        last = i == len(children) - 1
        branch = "└── " if last else "├── "
        if isinstance(child, ValidationNode):
            lines.append(prefix + branch + child.message + (":" if child.children else ""))
            _render_children(child.children, prefix + ("    " if last else "│   "), lines)
        else:
            lines.append(prefix + branch + child)


@dataclass(slots=True)
class PackageView:
    """What package validation needs: default channel name and channel entries by channel name."""

    name: str
    default_channel: str | None
    channels: Mapping[str, Sequence[ChannelEntry]]


def validate_packages(packages: Iterable[PackageView]) -> ValidationNode | None:
    """operator-registry Model.Validate over packages (sorted for a stable message).

    A default channel without a channel blob is validated as an empty channel, because
    `declcfg.ConvertToModel` creates it as a placeholder (fixture v1-33).
    """
    root = ValidationNode("invalid index")
    for pkg in sorted(packages, key=lambda p: p.name):
        node = ValidationNode(f"invalid package {pkg.name!r}".replace("'", '"'))
        channels: dict[str, Sequence[ChannelEntry]] = dict(pkg.channels)
        if not pkg.default_channel:
            node.children.append("default channel must be set")
        elif pkg.default_channel not in channels:
            channels[pkg.default_channel] = ()
        if not channels:
            node.children.append("package must contain at least one channel")
        for ch_name in sorted(channels):
            message = validate_channel(channels[ch_name])
            if message:
                node.children.append(ValidationNode(f'invalid channel "{ch_name}"', [message]))
        if node.children:
            root.children.append(node)
    return root if root.children else None


def validate_catalog(catalog: Catalog) -> str | None:
    """The operator-registry validation error of a whole catalog (as `declcfg.ConvertToModel`), or None."""
    tree = validate_packages(PackageView(p.name, p.default_channel, {c.name: c.entries for c in p.channels.values()})
                             for p in catalog.packages.values())
    return tree.render() if tree is not None else None


def replaced_by(entries: Iterable[ChannelEntry]) -> dict[str, list[ChannelEntry]]:
    """Map bundle name -> entries whose `replaces` is that bundle (the upgrade DAG, upwards)."""
    graph: dict[str, list[ChannelEntry]] = {}
    for e in entries:
        if e.replaces:
            graph.setdefault(e.replaces, []).append(e)
    return graph


def intersecting_bundles(by_name: Mapping[str, ChannelEntry], start: ChannelEntry, end: ChannelEntry,
                         graph: Mapping[str, list[ChannelEntry]]) -> list[ChannelEntry] | None:
    """oc-mirror v1 findIntersectingBundles: the bundles that fill the graph from `start` up to `end`.

    Find where the replaces chains of `start` and `end` (the head) meet, then take every bundle
    that replaces the meeting point, transitively (siblings included), minus the bundles strictly
    between `start` and the meeting point, plus `start` and `end`. None if the chains never meet.
    Each walk visits a node at most once, so cycles cannot hang it and the cost stays linear.
    """
    if start.name == end.name:
        return [end]
    start_chain = {start.name}
    cur: ChannelEntry | None = start
    while cur is not None and cur.replaces and cur.replaces not in start_chain:
        start_chain.add(cur.replaces)
        cur = by_name.get(cur.replaces)
    intersection = ""
    if end.name in start_chain:
        intersection = end.name
    else:
        seen = {end.name}
        cur = end
        while cur is not None and cur.replaces and cur.replaces not in seen:
            if cur.replaces in start_chain:
                intersection = cur.replaces
                break
            seen.add(cur.replaces)
            cur = by_name.get(cur.replaces)
    if not intersection:
        return None
    found: dict[str, ChannelEntry] = {}
    queue = deque(graph.get(intersection, ()))
    while queue:
        e = queue.popleft()
        if e.name in found:
            continue
        found[e.name] = e
        queue.extend(graph.get(e.name, ()))
    cur = start
    visited: set[str] = set()
    while cur is not None and cur.name != intersection and cur.name not in visited:
        visited.add(cur.name)
        found.pop(cur.name, None)
        cur = by_name.get(cur.replaces) if cur.replaces else None
    found[start.name] = start
    found[end.name] = end
    return list(found.values())
