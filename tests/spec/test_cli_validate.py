"""`cpl validate`, `cpl schema` and `cpl init` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from controlplane.cli import run
from tests.conftest import ROOT, MakeRepo

BROKEN_WORKFLOW = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: broken, tenant: acme, version: 1.0.0, owner: a}
spec:
  start: a
  steps:
    - {name: a, type: task, activity: x.y, next: nowhere}
"""


def test_validate_the_example_repo_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate", "--repo", str(ROOT)]) == 0
    out = capsys.readouterr().out
    assert "workflows per tenant" in out and out.strip().endswith("valid")


def test_validate_reports_compiler_style_and_exits_1(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"workflows/acme/broken.yaml": BROKEN_WORKFLOW})
    assert run(["validate", "--repo", str(repo)]) == 1
    out = capsys.readouterr().out
    assert "workflows/acme/broken.yaml:7:44: CPL-S010 next 'nowhere'" in out


def test_validate_json_has_the_documented_shape(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"workflows/acme/broken.yaml": BROKEN_WORKFLOW})
    assert run(["validate", "--repo", str(repo), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    for diagnostic in report["diagnostics"]:
        assert set(diagnostic) >= {"code", "severity", "message", "file", "line", "column", "path"}
    dangling = next(d for d in report["diagnostics"] if d["code"] == "CPL-S010")
    assert (dangling["file"], dangling["line"], dangling["path"]) == (
        "workflows/acme/broken.yaml",
        7,
        "/spec/steps/0/next",
    )


def test_validate_given_paths_checks_only_those(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"workflows/acme/broken.yaml": BROKEN_WORKFLOW})
    good = ROOT / "environments" / "local.yaml"
    assert run(["validate", "--repo", str(repo), str(good)]) == 0


def test_validate_an_empty_directory_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["validate", "--repo", str(tmp_path)]) == 1
    assert "nothing to validate" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error() -> None:
    assert run(["validate", "--bogus"]) == 2


def test_schema_prints_a_valid_2020_12_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["schema", "--kind", "Environment"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "cpl Environment"


def test_init_scaffolds_a_repo_that_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "control"
    assert run(["init", str(target)]) == 0
    assert (target / ".github/workflows/cpl.yml").is_file()
    assert run(["validate", "--repo", str(target)]) == 0


def test_init_keeps_cpl_working_files_out_of_git(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = tmp_path / "fresh"
    assert run(["init", str(fresh)]) == 0
    assert ".cpl/" in (fresh / ".gitignore").read_text().splitlines()

    own = tmp_path / "own"
    own.mkdir()
    (own / ".gitignore").write_text("node_modules/\n*.log")  # no final newline
    assert run(["init", str(own)]) == 0
    assert run(["init", str(own), "--force"]) == 0
    assert (own / ".gitignore").read_text() == "node_modules/\n*.log\n.cpl/\n"
    assert f"updated {own / '.gitignore'}" in capsys.readouterr().out


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", str(tmp_path)]) == 0
    readme = tmp_path / "README.md"
    readme.write_text("mine")
    assert run(["init", str(tmp_path)]) == 1
    assert readme.read_text() == "mine"
    assert "--force" in capsys.readouterr().err


def test_an_internal_error_prints_one_line_and_a_log_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("controlplane.cli.validate.validate_repo", explode)
    assert run(["validate", "--repo", str(ROOT)]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: disk on fire" in err
    assert "Traceback" not in err
    log = Path(err.rsplit("written to ", 1)[1].rstrip(")\n"))
    assert "disk on fire" in log.read_text()


def test_a_large_repo_is_validated_in_parallel_with_the_same_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.corpus import generate
    from controlplane.spec.validate import PARALLEL_THRESHOLD, validate_repo

    generate(tmp_path, PARALLEL_THRESHOLD + 20, seed=3)
    broken = sorted((tmp_path / "workflows").rglob("*.yaml"))
    broken[5].write_text(broken[5].read_text().replace("type: task", "type: tsak", 1))
    duplicate = tmp_path / "workflows" / "copy.yaml"
    duplicate.write_text(broken[-1].read_text())
    serial = validate_repo(tmp_path, jobs=1)
    parallel = validate_repo(tmp_path, jobs=2)
    assert parallel.diagnostics == serial.diagnostics
    assert {d.code for d in parallel.diagnostics} == {"CPL-S004", "CPL-S026"}
    assert parallel.step_types == serial.step_types and parallel.files == serial.files
