"""A seeded generator of broken ImageSetConfigurations, and one run of the CLI on each.

Shared by the bounded fuzz test (tests/test_fuzz_config.py, a few hundred cases per CI run) and
bench/fuzz_config.py (10,000 cases). A case starts from a valid v1alpha2 or v2alpha1 document,
gets one to three structural mutations (a field replaced by another type, a huge or deeply
nested value, a bad reference, regex or tag, an unknown or duplicated key), is dumped as YAML,
and may then get a text mutation (cut short, stray bytes, invalid UTF-8, a control character, a
tab, a broken indent). The contract checked: no traceback, exit code 0, 1 or 2, and every
exit-2 message starting with FILE:LINE.

Catalogs point at oci:// paths that do not exist, and registries are reached through a proxy
that refuses connections, so a case never waits on the network.
"""

from __future__ import annotations

import copy
import io
import random
import re
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

V1 = "mirror.openshift.io/v1alpha2"
V2 = "mirror.openshift.io/v2alpha1"
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
              "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "no_proxy": ""}


def _base(rng: random.Random) -> dict[str, Any]:
    api = rng.choice((V1, V2))
    doc: dict[str, Any] = {"apiVersion": api, "kind": "ImageSetConfiguration", "mirror": {
        "operators": [{"catalog": "oci:///nonexistent/edgebuild-fuzz/catalog", "packages": [
            {"name": "demo", "channels": [{"name": "stable", "minVersion": "1.0.0", "maxVersion": "2.0.0"}]}]}],
        "additionalImages": [{"name": "quay.io/team/app:1"},
                             {"name": "quay.io/team/db@sha256:" + "a" * 64}],
        "blockedImages": [{"name": "quay.io/team/blocked.*"}],
    }}
    if api == V1 and rng.random() < 0.3:
        doc["storageConfig"] = {"local": {"path": "/nonexistent/edgebuild-fuzz/state"}}
    if rng.random() < 0.5:
        doc["mirror"].pop("operators")
    return doc


def _hostile_value(rng: random.Random) -> Any:
    kind = rng.randrange(16)
    if kind == 0:
        return rng.randint(-10**6, 10**12)
    if kind == 1:
        return rng.random() * 1000
    if kind == 2:
        return rng.choice((True, False, None))
    if kind == 3:
        return "x" * rng.choice((256, 300, 5000, 100_000))
    if kind == 4:  # spliced in as flow-style text after the dump (the YAML dumper itself recurses)
        return f"__DEEP_{rng.choice((50, 500, 2000, 20000))}__"
    if kind == 5:
        return rng.choice(("(a+)+$", "(?<=x)a", "a\\C", "x**", "[", "a{1001}", "(?P<n>a)\\1", "\\Z"))
    if kind == 6:
        return rng.choice(("Quay.IO/Team/App:1", "quay.io/a/b:bad tag", "quay.io/a/b@sha256:short", "://x", "",
                           " quay.io/a/b:1", "quay.io/" + "/".join(["abcdefgh"] * 40) + ":1", "oci://",
                           "oci:///" + "c" * 300, "docker://quay.io/a/b:1", "12345"))
    if kind == 7:
        return rng.choice(("1.0", "1.0.0-", "v1.2.3", "1.2.3.4", "2.0.0", "0.0.0-rc.1+build", "x.y.z"))
    if kind == 8:
        return [rng.choice((1, "a", None, {"name": 1}))] * rng.randint(0, 5)
    if kind == 9:
        return {rng.choice(("name", "nmae", "catalog", "targetTag", "platforms", "x" * 300)): rng.choice((1, "a"))}
    if kind == 10:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randint(1, 40)))
    if kind == 11:
        return rng.choice(("targetTag", "latest", "v4.17", "a" * 129, "-bad", "ok_tag.1"))
    if kind == 12:
        return {"local": {"path": "/tmp/" + "p" * rng.choice((10, 256, 5000))}}
    if kind == 13:
        return rng.choice(([], {}, "", "~"))
    if kind == 14:
        return {"name": "quay.io/a/b:1", "targetRepo": rng.choice(("Bad/Repo", "ok/repo", "/x", "a//b")),
                "targetTag": rng.choice((1, "t", "bad tag"))}
    return rng.choice((-1, 0, "0x1F", "1e400", ".inf", "0o777"))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, prefix + (i,))
    return out


def _mutate(rng: random.Random, doc: dict[str, Any]) -> None:
    paths = [p for p in _paths(doc) if p and len(p) < 12]
    path = rng.choice(paths)
    parent: Any = doc
    for step in path[:-1]:
        parent = parent[step]
    action = rng.randrange(4)
    if action == 0 or not isinstance(parent, dict):
        parent[path[-1]] = _hostile_value(rng)
    elif action == 1:
        parent[rng.choice(("unknownField", "targetCatalog", "targetTag", "full", "skipDependencies",
                           "archiveSize", "platform", "helm", "samples", "defaultChannel", "minBundle"))] = \
            _hostile_value(rng)
    elif action == 2:
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = copy.deepcopy(parent[path[-1]])
        if isinstance(parent[path[-1]], list):
            parent[path[-1]] *= 2  # duplicates


def _text_mutation(rng: random.Random, data: bytes) -> bytes:
    kind = rng.randrange(9)
    at = rng.randrange(len(data) + 1)
    if kind == 0:
        return data[:at]
    if kind == 1:
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + data[at:]
    if kind == 2:
        return data[:at] + b"\xff\xfe\xc3" + data[at:]
    if kind == 3:
        return data[:at] + bytes([rng.choice((0, 7, 8, 27, 127))]) + data[at:]
    if kind == 4:
        return data.replace(b"  ", b"\t", 1)
    if kind == 5:
        lines = data.split(b"\n")
        i = rng.randrange(len(lines))
        lines[i] = b" " + lines[i]
        return b"\n".join(lines)
    if kind == 6:
        return data + b"---\n" + data
    if kind == 7:
        return data.replace(b"name:", b"name: &a x\n  alias: *a\n  name:", 1)
    return data + b"\n" + b"[" * 1200 + b"]" * 1200 + b"\n"


def _deep_flow(rng: random.Random, depth: int) -> bytes:
    opens = [rng.choice((b"[", b"{k: ")) for _ in range(depth)]
    closes = [b"]" if o == b"[" else b"}" for o in reversed(opens)]
    return b"".join(opens) + b"leaf" + b"".join(closes)


def generate(seed: int) -> bytes:
    """The configuration of case `seed`: the same bytes on every machine and run."""
    rng = random.Random(seed)
    doc = _base(rng)
    for _ in range(rng.randint(1, 3)):
        _mutate(rng, doc)
    data = yaml.safe_dump(doc, sort_keys=False, width=10**6).encode()
    data = re.sub(rb"__DEEP_(\d+)__", lambda m: _deep_flow(rng, int(m.group(1))), data)
    if rng.random() < 0.35:
        data = _text_mutation(rng, data)
    return data


@dataclass
class Outcome:
    code: int | None
    stderr: str
    problem: str | None  # None: the contract holds


def run_case(data: bytes, workdir: Path) -> Outcome:
    """`edgebuild plan -c FILE` in this process on `data`; checks the contract."""
    from edgebuild.cli import main
    isc = workdir / "isc.yaml"
    isc.write_bytes(data)
    err, out = io.StringIO(), io.StringIO()
    try:
        with redirect_stderr(err), redirect_stdout(out):
            code: int | None = main(["plan", "-c", str(isc), "-q"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:  # noqa: BLE001 - a traceback is what the fuzz test looks for
        return Outcome(None, err.getvalue(), "traceback:\n" + traceback.format_exc())
    text = err.getvalue()
    if code not in (0, 1, 2):
        return Outcome(code, text, f"exit code {code}")
    if "Traceback" in text:
        return Outcome(code, text, "traceback on stderr")
    if code == 2:
        first = next((line for line in text.splitlines() if line.startswith("error: ")), "")
        if not re.match(rf"error: {re.escape(str(isc))}:\d+: ", first):
            return Outcome(code, text, "exit 2 without FILE:LINE: " + first[:300])
    return Outcome(code, text, None)
