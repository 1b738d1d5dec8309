"""YAML documents as node trees, composed without recursion.

PyYAML's composer recurses once per nesting level: 1000 nested `[` raise RecursionError in the
pure-Python loader and crash the C loader (a segfault near 100,000). Configurations and catalogs
are untrusted input, so their node trees are built here from the parser's event stream with an
explicit stack: depth costs memory, never the call stack. Tags are resolved by the loader's own
resolver, so the nodes are the ones the loader's composer would have built.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.composer import ComposerError


def compose_documents(loader: Any) -> Iterator[yaml.Node | None]:
    """Each document of the loader's stream as a node (None for an empty document), in order."""
    get_event = loader.get_event
    get_event()  # StreamStartEvent
    while type(get_event()) is not yaml.StreamEndEvent:  # a DocumentStartEvent otherwise
        yield _compose_one(loader, get_event)


def _compose_one(loader: Any, get_event: Any) -> yaml.Node | None:
    """The nodes up to the DocumentEndEvent (consumed)."""
    anchors: dict[str, yaml.Node] = {}
    stack: list[Any] = []  # open collections, innermost last
    keys: list[Any] = []  # per open collection: a mapping's key waiting for its value (None: none)
    root: yaml.Node | None = None
    scalar, seq_start, map_start = yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent
    ends = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    resolve, ScalarNode = loader.resolve, yaml.ScalarNode
    while True:
        event = get_event()
        cls = type(event)
        if cls is scalar and event.anchor is None:  # the common case, inline
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolve(ScalarNode, event.value, event.implicit)
            node: Any = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        elif cls in ends:
            closed = stack.pop()
            keys.pop()
            closed.end_mark = event.end_mark
            continue
        elif cls is yaml.DocumentEndEvent:
            return root
        else:
            node = _node_of(loader, event, anchors)
        if stack:
            parent = stack[-1]
            if type(parent) is yaml.SequenceNode:
                parent.value.append(node)
            elif keys[-1] is None:
                keys[-1] = node
            else:
                parent.value.append((keys[-1], node))
                keys[-1] = None
        else:
            root = node
        if cls is seq_start or cls is map_start:
            stack.append(node)
            keys.append(None)


def _node_of(loader: Any, event: Any, anchors: dict[str, yaml.Node]) -> yaml.Node:
    if isinstance(event, yaml.AliasEvent):
        if event.anchor not in anchors:
            mark: Any = event.start_mark
            raise ComposerError(None, None, f"found undefined alias {event.anchor!r}", mark)
        return anchors[event.anchor]
    node: yaml.Node
    tag = event.tag
    start: Any = event.start_mark  # libyaml's Mark and PyYAML's differ in the stubs, not at run time
    end: Any = event.end_mark
    if isinstance(event, yaml.ScalarEvent):
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(tag, event.value, start, end, style=event.style)
    elif isinstance(event, yaml.SequenceStartEvent):
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.SequenceNode, None, event.implicit)
        node = yaml.SequenceNode(tag, [], start, None, flow_style=event.flow_style)
    elif isinstance(event, yaml.MappingStartEvent):
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.MappingNode, None, event.implicit)
        node = yaml.MappingNode(tag, [], start, None, flow_style=event.flow_style)
    else:
        raise ComposerError(None, None, f"unexpected {type(event).__name__}", start)
    if event.anchor is not None:
        anchors[event.anchor] = node
    return node
