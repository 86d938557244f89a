"""Text a document carries cannot drive the reader's terminal: control characters (ESC
sequences that retitle or clear it, CR, C1 controls, bidirectional overrides) are shown as
escapes in every human output, while JSON stays exact JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from controlplane.cli import run
from controlplane.cli.output import console_for, echo, emit, escape_controls

# Retitle the terminal, clear it, a one-byte C1 CSI, and a right-to-left override.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\r"


def _assert_harmless(text: str) -> None:
    for character in ("\x1b", "\x07", "\x9b", "\u202e", "\r"):
        assert character not in text, repr(text)


def test_escape_controls_keeps_text_layout_and_shows_the_rest() -> None:
    assert escape_controls("a\tb\nc") == "a\tb\nc"
    assert escape_controls(HOSTILE) == ("\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil\\x0d")


def test_every_human_output_channel_escapes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    console_for().print(f"title {HOSTILE}", markup=False)
    console_for(err=True).print(f"error {HOSTILE}", style="bold red", markup=False)
    echo(f"echo {HOSTILE}", err=True)
    emit(f"report {HOSTILE}", None)
    out, err = capsys.readouterr()
    _assert_harmless(out + err)
    assert out.count("\\x1b]0;pwned") == 2 and err.count("\\x1b]0;pwned") == 2


def test_a_colour_terminal_keeps_colours_but_not_document_escapes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(stream, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr("sys.stdout", stream)
    console_for().print(f"[bold]{HOSTILE}[/bold]")
    text = stream.getvalue()
    assert "\x1b[1m" in text  # rich's own styling still reaches the terminal
    assert "\x1b]0;" not in text and "\x1b[2J" not in text and "\\x1b]0;pwned" in text


WORKFLOW = r"""apiVersion: cpl.dev/v1
kind: Workflow
metadata:
  name: hostile
  tenant: acme
  version: 1.0.0
  owner: a
  "label\e]0;pwned\a\e[2J": x
spec:
  start: a
  steps:
    - {name: a, type: "tusk\e]0;pwned\a\x9b2J\u202e", activity: x.y}
"""


def test_validate_diagnostics_show_hostile_keys_and_values_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "workflows" / "acme").mkdir(parents=True)
    (tmp_path / "workflows" / "acme" / "hostile.yaml").write_text(WORKFLOW, encoding="utf-8")
    assert run(["validate", "--repo", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    _assert_harmless(out + err)
    # (rich drops BEL and backspace itself; everything else is shown as an escape)
    assert "CPL-S002 unknown key 'label\\x1b]0;pwned\\x1b[2J'" in out
    assert "unknown step type 'tusk\\x1b]0;pwned\\x9b2J\\u202e'" in out
    # JSON output stays exact: a program reading it gets the real characters back.
    assert run(["validate", "--repo", str(tmp_path), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert any("tusk\x1b]0;pwned" in d["message"] for d in report["diagnostics"])


def test_errors_of_commands_show_hostile_text_escaped(
    files_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environment = files_repo / "environments" / "files.yaml"
    text = environment.read_text(encoding="utf-8")
    environment.write_text(text + '  "x\\e]0;pwned\\a": 1\n', encoding="utf-8")
    assert run(["plan", "--repo", str(files_repo), "--env", "files"]) == 1
    out, err = capsys.readouterr()
    _assert_harmless(out + err)
    assert "unknown key 'x\\x1b]0;pwned'" in err
