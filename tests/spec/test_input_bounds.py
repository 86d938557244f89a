"""Input bounds: alias expansion, nesting depth and file size fail with a clear CPL-S007.

The hostile documents run through `cpl validate` in a subprocess under an address-space
limit, as a user with a memory limit would run it: a bounded run exits 1 quickly with the
diagnostic; an unbounded one would be killed, abort or print a traceback.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from controlplane.spec.bounds import MAX_ALIAS_BYTES, MAX_DEPTH
from controlplane.spec.files import MAX_FILE_BYTES

MEMORY_LIMIT = 1536 * 2**20

HEAD = """\
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: bomb, tenant: acme, version: 1.0.0, owner: a}
spec:
  start: s
  steps:
    - name: s
      type: task
      activity: x.y
      end: true
      parameters:
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _validate(repo: Path) -> tuple[int, list[dict[str, object]], str]:
    done = subprocess.run(
        [sys.executable, "-m", "controlplane", "validate", "--repo", str(repo), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
    )
    try:
        diagnostics = json.loads(done.stdout)["diagnostics"]
    except ValueError:
        diagnostics = []
    return done.returncode, diagnostics, done.stdout + done.stderr


def _write(repo: Path, text: str) -> None:
    path = repo / "workflows/acme/bomb.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_aliases_repeating_a_large_string_stop_at_the_bound(tmp_path: Path) -> None:
    """1 MB of text whose 20,000 aliases would expand to 1 GB."""
    lines = [HEAD + '        big: &big "' + "x" * 50_000 + '"', "        copies:"]
    lines += ["          - *big"] * 20_000
    _write(tmp_path, "\n".join(lines) + "\n")
    code, diagnostics, output = _validate(tmp_path)
    assert code == 1, output[-2000:]
    (found,) = [d for d in diagnostics if d["code"] == "CPL-S007"]
    assert found["file"] == "workflows/acme/bomb.yaml"
    assert "aliases expand the document by more than" in str(found["message"])
    # the alias that crosses the bound: the 4 MiB / 50 kB-th copy, on its own line
    crossing = 14 + MAX_ALIAS_BYTES // 50_016
    assert found["line"] == crossing, found
    assert "Traceback" not in output and "panic" not in output


def test_nested_aliases_are_measured_without_expanding_them(tmp_path: Path) -> None:
    """The classic billion laughs: ten levels of nine aliases each."""
    lines = [
        HEAD + '        l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'
    ]
    for level in range(1, 10):
        lines.append(f"        l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    _write(tmp_path, "\n".join(lines) + "\n")
    code, diagnostics, output = _validate(tmp_path)
    assert code == 1, output[-2000:]
    assert [d["code"] for d in diagnostics] == ["CPL-S007"], diagnostics


@pytest.mark.parametrize(
    "nesting",
    [
        pytest.param("        deep:\n          " + "- " * 100_000 + "x\n", id="block"),
        pytest.param("        deep: " + "[" * 100_000 + "]" * 100_000 + "\n", id="flow"),
        pytest.param(
            "        deep:\n" + "".join("  " * (5 + i) + f"k{i}:\n" for i in range(200)) + " x\n",
            id="indented",
        ),
    ],
)
def test_nesting_deeper_than_the_bound_is_a_diagnostic(tmp_path: Path, nesting: str) -> None:
    _write(tmp_path, HEAD + nesting)
    code, diagnostics, output = _validate(tmp_path)
    assert code == 1, output[-2000:]
    (found,) = diagnostics
    assert found["code"] == "CPL-S007", found
    assert f"nested deeper than {MAX_DEPTH} levels" in str(found["message"])


def test_a_file_larger_than_the_bound_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, HEAD + "        pad: '" + "x" * MAX_FILE_BYTES + "'\n")
    code, diagnostics, output = _validate(tmp_path)
    assert code == 1, output[-2000:]
    assert [(d["code"], d["file"]) for d in diagnostics] == [
        ("CPL-S007", "workflows/acme/bomb.yaml")
    ]


def test_ordinary_aliases_and_nesting_stay_valid(tmp_path: Path) -> None:
    """Anchors reused a few times and nesting near the bound are fine."""
    lines = [
        HEAD + "        defaults: &defaults {a: 1, b: [1, 2, 3]}",
        "        copies: [*defaults, *defaults, *defaults]",
        "        deep:",
    ]
    lines += ["  " * (5 + i) + f"k{i}:" for i in range(MAX_DEPTH - 10)]
    _write(tmp_path, "\n".join(lines) + " x\n")
    code, _, output = _validate(tmp_path)
    assert code == 0, output[-2000:]
