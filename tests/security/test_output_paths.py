"""An output file that cannot be written (`-o`, `--out`, drift's metrics and summary files)
is a clear error naming the path, exit 1: never an internal error with a traceback file."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.cli import run

COMMANDS = {
    "validate": ["validate", "-o", "{out}"],
    "schema": ["schema", "-o", "{out}"],
    "render": [
        "render",
        "--env",
        "files",
        "workflows/retail/price-feed-export.yaml",
        "--out",
        "{out}",
    ],
    "check": ["check", "--env", "files", "-o", "{out}"],
    "report": ["report", "--env", "files", "-o", "{out}"],
    "plan": ["plan", "--env", "files", "--out", "{out}"],
    "plan -o": ["plan", "--env", "files", "-o", "{out}"],
    "drift --metrics": ["drift", "--env", "files", "--metrics", "{out}"],
    "drift --summary": ["drift", "--env", "files", "--summary", "{out}"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_output_under_a_regular_file_is_a_clear_error(
    files_repo: Path,
    tmp_path: Path,
    command: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(files_repo)
    blocker = tmp_path / "somefile"
    blocker.write_text("not a folder\n", encoding="utf-8")
    out = blocker / "report.html"
    argv = [part.replace("{out}", str(out)) for part in COMMANDS[command]]
    if command != "schema":
        argv += ["--repo", str(files_repo)]
    assert run(argv) == 1
    err = capsys.readouterr().err
    assert "internal error" not in err and "traceback" not in err
    assert f"cannot write {out}" in err and f"{blocker} is a file, not a folder" in err
    assert blocker.read_text(encoding="utf-8") == "not a folder\n"
