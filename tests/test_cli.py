"""Usage errors of the CLI: exit code 2, a message that names the option and says what to do, and nothing
copied or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebuild.cli import main

ISC = "apiVersion: mirror.openshift.io/v1alpha2\nkind: ImageSetConfiguration\nmirror:\n  additionalImages:\n" \
      "  - name: registry.invalid/team/app:1\n"


@pytest.fixture
def isc(tmp_path: Path) -> Path:
    path = tmp_path / "isc.yaml"
    path.write_text(ISC)
    return path


@pytest.mark.parametrize("argv, words", [
    (["mirror", "-c", "ISC", "--from", "file://DISK", "--to", "docker://127.0.0.1:1", "--dry-run"],
     "--dry-run with --from is not supported"),
    (["mirror", "-c", "ISC", "--from", "/no/scheme", "--to", "docker://127.0.0.1:1"], "--from takes file://DIR"),
    (["mirror", "-c", "ISC", "--to", "s3://bucket"], "expected docker://HOST[:PORT][/NS] or file://DIR"),
    (["build", "-c", "ISC", "--to", "file://DISK", "-o", "OUT"], "build needs a registry the image builder"),
    (["list", "operators", "--catalog", "ISC", "--channel", "stable"], "--channel needs --package"),
])
def test_usage_errors_exit_2_and_write_nothing(argv, words, isc: Path, tmp_path: Path, capsys):
    argv = [a.replace("ISC", str(isc)).replace("DISK", str(tmp_path / "disk")).replace("OUT", str(tmp_path / "out"))
            for a in argv]
    assert main(argv) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "disk").exists() and not (tmp_path / "out").exists()


def test_bad_boolean_option_value(isc: Path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["plan", "-c", str(isc), "--dest-tls-verify=maybe"])
    assert info.value.code == 2
    assert "expected true or false, got 'maybe'" in capsys.readouterr().err


def test_skopeo_style_boolean_flags_parse():
    from edgebuild.cli import build_parser
    args = build_parser().parse_args(["plan", "-c", "x", "--src-tls-verify=false", "--dest-tls-verify"])
    assert (args.src_tls_verify, args.dest_tls_verify) == (False, True)
