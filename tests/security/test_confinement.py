"""Every path an environment names stays inside the control repo unless the mapping that
names it says `allowOutsideRepo: true`: on paper (absolute paths, `..`) when the environment
loads, and through symbolic links when the path is used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlplane.cli import run
from tests.security.conftest import environment_text

# (what the environment says, the JSON pointer of the offending path)
ESCAPES = {
    "state": (
        environment_text(extra="  deploy: {state: @PATH}\n"),
        "/spec/deploy/state",
    ),
    "audit sink": (
        environment_text(extra="  audit:\n    sinks:\n      - file: @PATH\n"),
        "/spec/audit/sinks/0/file",
    ),
    "gitops path": (environment_text(target="      path: @PATH"), "/spec/targets/0/path"),
    "policy paths": (
        environment_text(extra="  policy: {paths: [policies, @PATH]}\n"),
        "/spec/policy/paths/1",
    ),
}


def _write_environment(repo: Path, template: str, path: str) -> None:
    text = template.replace("@PATH", path)
    (repo / "environments" / "files.yaml").write_text(text, encoding="utf-8")


def _line_of(repo: Path, needle: str) -> int:
    lines = (repo / "environments" / "files.yaml").read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize("field", sorted(ESCAPES))
@pytest.mark.parametrize("path", ["../../outside", "/tmp/cpl-outside", "a/../../outside"])
def test_a_path_leading_out_of_the_repo_is_a_validation_error(
    files_repo: Path, field: str, path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    template, pointer = ESCAPES[field]
    _write_environment(files_repo, template, path)
    assert run(["validate", "--repo", str(files_repo), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    found = [d for d in report["diagnostics"] if d["code"] == "CPL-S040"]
    assert len(found) == 1, report["diagnostics"]
    assert found[0]["file"] == "environments/files.yaml"
    assert found[0]["path"] == pointer
    assert found[0]["line"] == _line_of(files_repo, path)
    assert "outside the control repo" in found[0]["message"]
    # Nothing is written anywhere when a command refuses the environment.
    assert run(["apply", "--repo", str(files_repo), "--env", "files", "--yes"]) == 1
    assert not (files_repo.parent / "outside").exists()


def test_a_symlink_out_of_the_repo_is_refused_before_anything_is_written(
    files_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (files_repo / "deploy").symlink_to(outside)
    assert run(["apply", "--repo", str(files_repo), "--env", "files", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "environments/files.yaml:" in err and "CPL-S040" in err
    assert "deploy/argo" in err and "symbolic link" in err
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("field", ["state", "audit sink"])
def test_symlinked_state_and_audit_folders_are_refused(
    files_repo: Path, tmp_path: Path, field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (files_repo / "link").symlink_to(outside)
    template, _ = ESCAPES[field]
    _write_environment(files_repo, template, "link/files.out")
    assert run(["apply", "--repo", str(files_repo), "--env", "files", "--yes"]) == 1
    assert "CPL-S040" in capsys.readouterr().err
    assert list(outside.iterdir()) == []


def test_allow_outside_repo_lets_a_mapping_name_a_path_outside(
    files_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "gitops"
    target = f"      allowOutsideRepo: true\n      path: {outside}"
    (files_repo / "environments" / "files.yaml").write_text(
        environment_text(target=target), encoding="utf-8"
    )
    assert run(["validate", "--repo", str(files_repo)]) == 0
    assert run(["apply", "--repo", str(files_repo), "--env", "files", "--yes"]) == 0
    assert sorted(p.name for p in outside.rglob("*.yaml")) == [
        "retail-price-feed-export.identity.yaml",
        "retail-price-feed-export.yaml",
    ]
