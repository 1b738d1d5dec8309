"""YAML output in the block style kubectl and oc-mirror write, keys in the order given."""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Indents sequences under their key, as kubectl does, so diffs against oc-mirror output are small."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        """Never write anchors/aliases: a shared Python object must still read as plain YAML."""
        return True


def dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=4096)


def dump_all(objects: list[Any]) -> str:
    """Documents each preceded by `---`, as oc-mirror joins its ICSPs and mirror sets."""
    return "".join("---\n" + dump(obj) for obj in objects)
