"""Every blueprint the suite renders goes through the real image-builder code (bpcheck).

A pytest plugin (listed in conftest's `pytest_plugins`): while a test runs, every blueprint that
`render_outputs` writes is recorded with the device references of its images; after the test, each
is run through ../shared/tools/osbuild-images/bpcheck (osbuild/images: blueprint decoding,
`ImageType.Manifest`, `Serialize`) for edge-commit and edge-container (installer blueprints for
edge-installer), and must give no error, no warning, no undecoded key, and stored names
(`stage_local_name`, plus the boot-time names) under which every device reference resolves by
containers/image's lookup. Without ../shared (a user's clone) only these assertions are skipped.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from edgebuild.device_store import resolves_by_rule
from edgebuild.render.blueprint import ALIAS_UNIT_PATH
from tests.conftest import SHARED

BPCHECK = SHARED / "tools" / "osbuild-images" / "bpcheck"
EDGE_TYPES = "edge-commit,edge-container"


def run_bpcheck(text: str, types: str = EDGE_TYPES, ostree_url: str | None = None) -> dict[str, Any]:
    """bpcheck's verdict on one blueprint text."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "blueprint.toml"
        path.write_text(text)
        cmd = [str(BPCHECK), "-types", types] + (["-ostree-url", ostree_url] if ostree_url else []) + [str(path)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)[0]


def problems_of(verdict: dict[str, Any]) -> list[str]:
    """Errors, warnings and undecoded keys of a verdict, each a line."""
    out = [f"{k}: {verdict[k]}" for k in ("decode_error", "weldr_error", "undecoded_keys") if verdict.get(k)]
    for t in verdict.get("types") or []:
        out += [f"{t['image_type']}: {k}: {t[k]}" for k in ("error", "warnings", "serialize_error") if t.get(k)]
    return out


def stored_names(verdict: dict[str, Any], boot_time: list[str]) -> list[tuple[str, str]]:
    """(name, digest) the image really holds: stage_local_name of each image, and the boot-time names."""
    pairs: set[tuple[str, str]] = set()
    for t in verdict.get("types") or []:
        for c in t.get("containers") or []:
            if c.get("stage_local_name"):
                pairs.add((c["stage_local_name"], c["spec"]["digest"]))
    for existing, new in boot_time:
        pairs.add((new, existing.split("@", 1)[1]))
    return sorted(pairs)


def boot_time_names(doc: dict[str, Any]) -> list[tuple[str, str]]:
    from edgebuild.verify import _ALIAS_LINE_RE
    for f in (doc.get("customizations") or {}).get("files") or []:
        if f["path"] == ALIAS_UNIT_PATH:
            return [(m.group(1), m.group(2)) for line in f["data"].splitlines()
                    if (m := _ALIAS_LINE_RE.match(line.strip()))]
    return []


def check_rendered(text: str, doc: dict[str, Any], references: list[str], installer: bool = False) -> None:
    """Assert the real builder accepts the blueprint and stores a name for every device reference."""
    if installer:
        verdict = run_bpcheck(text, "edge-installer", ostree_url="http://example.invalid/repo")
    else:
        verdict = run_bpcheck(text)
    assert problems_of(verdict) == [], problems_of(verdict)
    if installer:
        return
    stored = stored_names(verdict, boot_time_names(doc))
    lost = [r for r in references if not resolves_by_rule(r, stored)]
    assert not lost, f"not resolvable from the stored names {stored}: {lost}"


@pytest.fixture(autouse=True)
def _bpcheck_every_rendered_blueprint(monkeypatch: pytest.MonkeyPatch):
    """Record what render_outputs renders during the test; check it with bpcheck afterwards."""
    import edgebuild.render.output as output

    recorded: list[tuple[str, dict[str, Any], list[str], bool]] = []
    references: dict[int, list[str]] = {}
    real_edge, real_render = output.edge_blueprint, output.render_blueprint

    def edge_blueprint(*args: Any, **kwargs: Any) -> dict[str, Any]:
        doc = real_edge(*args, **kwargs)
        images = kwargs.get("images", args[-1] if args else [])
        references[id(doc)] = [i.name for i in images]
        return doc

    def render_blueprint(doc: dict[str, Any], template: str = output.render_blueprint.__defaults__[0]) -> str:
        text = real_render(doc, template)
        recorded.append((text, doc, references.get(id(doc), []), template == output.INSTALLER_TEMPLATE))
        return text

    monkeypatch.setattr(output, "edge_blueprint", edge_blueprint)
    monkeypatch.setattr(output, "render_blueprint", render_blueprint)
    yield
    if recorded and BPCHECK.is_file():
        for text, doc, refs, installer in recorded:
            check_rendered(text, doc, refs, installer)
