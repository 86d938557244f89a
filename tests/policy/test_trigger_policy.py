"""CPL-P022 through `cpl check`: a phi workflow triggered from an unauthenticated source is
denied at the trigger, and passes once the source is authenticated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from controlplane.cli import run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "workflows/health/appointment-reminders.yaml"  # phi, compliant on `local`


def _repo(root: Path, trigger: str) -> Path:
    (root / "environments").mkdir(parents=True)
    shutil.copy(ROOT / "environments/local.yaml", root / "environments/local.yaml")
    text = (ROOT / EXAMPLE).read_text()
    assert "\nspec:\n" in text
    target = root / EXAMPLE
    target.parent.mkdir(parents=True)
    target.write_text(text.replace("\nspec:\n", f"\nspec:\n  triggers:\n    - {trigger}\n", 1))
    return root


@pytest.mark.parametrize(
    ("trigger", "pointer"),
    [
        ("{name: booked, source: com.acme.clinic, type: booked}", "/spec/triggers/0"),
        (
            "{name: booked, source: com.acme.clinic, type: booked, authenticated: false}",
            "/spec/triggers/0/authenticated",
        ),
    ],
)
def test_a_phi_workflow_with_an_unauthenticated_trigger_is_denied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trigger: str, pointer: str
) -> None:
    repo = _repo(tmp_path, trigger)
    assert run(["check", "--env", "local", "--repo", str(repo), "--format", "json"]) == 3
    report = json.loads(capsys.readouterr().out)
    violations = [v for r in report["results"] for v in r["violations"]]
    assert [(v["rule"], v["path"], v["line"]) for v in violations] == [("CPL-P022", pointer, 16)]
    assert violations[0]["message"] == (
        "workflow 'appointment-reminders' is classified phi but trigger 'booked' accepts events "
        "from an unauthenticated source (com.acme.clinic)"
    )


def test_an_authenticated_source_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = _repo(tmp_path, "{name: booked, source: com.acme.clinic, type: b, authenticated: true}")
    assert run(["check", "--env", "local", "--repo", str(repo)]) == 0, capsys.readouterr().out
