"""Problems 5 and 6 of issue 12: the configuration reader and blockedImages on hostile input.

Each input is run through the real CLI (`plan`): exit 2, an `error:` line with FILE:LINE and the
field, no traceback; a catastrophic regex in blockedImages is matched in linear time (RE2, as
oc-mirror's Go regexp does) and a pattern Go refuses is a configuration error with its line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edgebuild.config import parse_config
from edgebuild.errors import ConfigErrors
from tests.hostile_support import V1, V2, assert_clean_failure, run_cli

ADD = "mirror:\n  additionalImages:\n  - name: quay.io/team/app:1\n"


def plan(tmp_path: Path, data: bytes | str, *extra: str):
    isc = tmp_path / "isc.yaml"
    isc.write_bytes(data if isinstance(data, bytes) else data.encode())
    return run_cli(["plan", "-c", str(isc), *extra]), str(isc)


@pytest.mark.parametrize("data, line, words", [
    (V2.encode() + b"mirror:\n  additionalImages:\n  - name: quay.io/a/b:\xff\xfe\n", 5,
     "not UTF-8 text: byte 0xff cannot be decoded"),
    (V2 + "mirror:\n  helm: " + "[" * 1000 + "]" * 1000 + "\n", 4, "mirror.helm: must be a mapping, found a list"),
    (V2 + "mirror:\n  operators: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", 4,
     "mirror.operators: must be a list, found a mapping"),
    (V2 + "mirror:\n  additionalImages:\n  - name: \"abc\x07\"\n", 5, "control character U+0007 is not allowed"),
    (V2 + "mirror:\n  operators:\n  - catalog: 12345\n", 5,
     "mirror.operators[0].catalog: must be a string, found number '12345'"),
    (V2 + "mirror:\n  operators:\n  - catalog: quay.io/a/b:1\n    targetTag: 12345\n", 6,
     "mirror.operators[0].targetTag: must be a string, found number '12345'"),
    (V2 + "mirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n    targetTag: 'bad tag!'\n", 6,
     "mirror.additionalImages[0].targetTag: invalid tag 'bad tag!'"),
    (V2 + "mirror:\n  additionalImages:\n  - name: quay.io/a/b:1\n    targetRepo: Bad/Repo\n", 6,
     "mirror.additionalImages[0].targetRepo: invalid repository path 'Bad/Repo'"),
    (V1 + "storageConfig:\n  local:\n    path: /tmp/" + "a" * 300 + "\n" + ADD, 5,
     "storageConfig.local.path: path component"),
    (V2 + "mirror:\n  operators:\n  - catalog: oci:///tmp/" + "c" * 300 + "\n", 5,
     "is 300 bytes; Linux allows at most 255"),
    (V2 + "mirror:\n  additionalImages:\n  - name: quay.io/" + "/".join(["abcdefgh"] * 40) + ":1\n", 5,
     "at most 255 are allowed"),
    (V2 + "mirror:\n  blockedImages:\n  - name: '(?<=x)a'\n" + ADD[8:], 5,
     "mirror.blockedImages[0].name: not a valid regular expression: invalid perl operator: (?<="),
    (V2 + "mirror:\n  blockedImages:\n  - name: 'a\\C'\n" + ADD[8:], 5, "invalid escape sequence: \\C"),
    (V2 + "mirror:\n  blockedImages:\n  - name: 'x**'\n" + ADD[8:], 5, "bad repetition operator"),
    (V2 + "mirror: {}\n---\n" + V2 + ADD, 5, "more than one YAML document"),
])
def test_bad_configurations_are_exit_2_with_file_and_line(tmp_path: Path, data, line: int, words: str) -> None:
    result, isc = plan(tmp_path, data)
    assert_clean_failure(result, 2, f"{isc}:{line}: ", words)


def test_a_100_kb_value_is_shown_cut(tmp_path: Path) -> None:
    result, isc = plan(tmp_path, V2 + "mirror:\n  additionalImages:\n  - name: " + "A" * 100_000 + "\n")
    assert_clean_failure(result, 2, f"{isc}:5: mirror.additionalImages[0].name: invalid image reference",
                         "(100003 characters)")
    assert len(result.stderr) < 2000


def test_quoted_number_is_still_a_docker_hub_name() -> None:
    """Only the unquoted number is refused (oc-mirror's YAML-to-JSON reader does the same)."""
    config = parse_config(V2 + "mirror:\n  additionalImages:\n  - name: \"12345\"\n")
    assert config.additional_images[0].name == "12345"


def test_catastrophic_blocked_regex_is_matched_in_linear_time(tmp_path: Path) -> None:
    name = "quay.io/" + "a" * 50_000 + "/b:1"
    start = time.monotonic()
    result, _ = plan(tmp_path, V2 + "mirror:\n  additionalImages:\n  - name: quay.io/aaaaaaaaaaaaaaaaaaaaaaaa!/b:1\n"
                     "  blockedImages:\n  - name: (a+)+$\n")
    assert_clean_failure(result, 2, "path component")  # the name is invalid; the regex compiles fine
    config = parse_config(V2 + "mirror:\n  additionalImages:\n  - name: quay.io/team/app:1\n"
                          "  blockedImages:\n  - name: '(a+)+!$'\n  - name: 'team/app'\n")
    assert not config.blocked_images[0].matches(name + "?")
    assert config.is_blocked("quay.io/team/app:1")
    assert time.monotonic() - start < 30
    start = time.monotonic()
    for _ in range(20):
        assert not config.blocked_images[0].matches("a" * 100_000 + "?")
    assert time.monotonic() - start < 2, "RE2 matching is linear; Python's re would not return here"


def test_blocked_images_plan_warns_and_skips(tmp_path: Path) -> None:
    result, _ = plan(tmp_path, V2 + "mirror:\n  additionalImages:\n  - name: quay.io/team/app:1\n"
                     "  - name: quay.io/team/other:1\n  blockedImages:\n  - name: '(o+)+ther'\n",
                     "--format", "json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert [i["source"] for i in out["images"]] == ["quay.io/team/app:1"]
    assert "blocked by mirror.blockedImages" in result.stdout + result.stderr


def test_go_syntax_accepted_as_oc_mirror_does() -> None:
    config = parse_config(V2 + ADD + "  blockedImages:\n  - name: '(?P<n>a)[[:alpha:]]\\pL(?i)x'\n"
                          "  - name: '(?<name>b)\\z'\n")
    assert len(config.blocked_images) == 2
    with pytest.raises(ConfigErrors, match="invalid escape sequence"):
        parse_config(V2 + ADD + "  blockedImages:\n  - name: 'a\\Z'\n")


def test_overlong_paths_on_the_command_line(tmp_path: Path) -> None:
    isc = tmp_path / "isc.yaml"
    isc.write_text(V2 + ADD)
    long = str(tmp_path / ("d" * 300))
    result = run_cli(["plan", "-c", str(isc), "--catalog-content", f"quay.io/a/b:1={long}"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --catalog-content: PATH of quay.io/a/b:1: path component" in result.stderr
    assert "is 300 bytes; Linux allows at most 255 per name" in result.stderr
    result = run_cli(["mirror", "-c", str(isc), "--to", f"file://{long}"])
    assert_clean_failure(result, 2, "is 300 bytes; Linux allows at most 255 per name")
