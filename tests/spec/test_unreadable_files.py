"""Document files that cannot be read are errors, never absent documents.

A workflow that silently disappears from the load is planned as a delete, so a broken link,
a link loop, a link out of the repository, a FIFO, an unreadable or non-UTF-8 file each
make `cpl validate` exit 1 with a CPL-S006 diagnostic naming the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import git
import pytest

from controlplane.cli import run
from controlplane.spec.load import load_repo, load_workflows
from tests.conftest import MakeRepo

WORKFLOW = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {{name: {name}, tenant: acme, version: 1.0.0, owner: a}}
spec:
  start: a
  steps:
    - {{name: a, type: task, activity: x.y, end: true}}
"""


def _validate(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, str]]]:
    code = run(["validate", "--repo", str(repo), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)["diagnostics"]


def _unreadable(diagnostics: list[dict[str, str]]) -> dict[str, str]:
    return {d["file"]: d["message"] for d in diagnostics if d["code"] == "CPL-S006"}


@pytest.fixture
def repo(make_repo: MakeRepo) -> Path:
    return make_repo({"workflows/acme/ok.yaml": WORKFLOW.format(name="ok")})


def test_a_broken_link_is_an_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "workflows/acme/gone.yaml").symlink_to("nowhere.yaml")
    code, diagnostics = _validate(repo, capsys)
    assert code == 1
    assert "broken symbolic link" in _unreadable(diagnostics)["workflows/acme/gone.yaml"]


def test_a_broken_link_without_a_document_name_is_an_error(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It may have been a folder of workflows."""
    (repo / "workflows/team").symlink_to("../teams/gone")
    code, diagnostics = _validate(repo, capsys)
    assert code == 1 and "workflows/team" in _unreadable(diagnostics)


def test_link_loops_are_reported_not_followed(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "workflows/acme/a.yaml").symlink_to("b.yaml")
    (repo / "workflows/acme/b.yaml").symlink_to("a.yaml")
    (repo / "workflows/acme/again").symlink_to("..")
    code, diagnostics = _validate(repo, capsys)
    found = _unreadable(diagnostics)
    assert code == 1
    assert "loop" in found["workflows/acme/a.yaml"] and "loop" in found["workflows/acme/b.yaml"]
    assert "loop" in found["workflows/acme/again"]


def test_links_out_of_the_repository_are_refused(
    repo: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "stolen.yaml").write_text(WORKFLOW.format(name="stolen"), encoding="utf-8")
    (repo / "workflows/acme/direct.yaml").symlink_to(outside / "stolen.yaml")
    (repo / "workflows/linked").symlink_to(outside)
    code, diagnostics = _validate(repo, capsys)
    found = _unreadable(diagnostics)
    assert code == 1
    assert "out of the repository" in found["workflows/acme/direct.yaml"]
    assert "out of the repository" in found["workflows/linked"]


def test_links_inside_the_repository_are_followed(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = repo / "shared/team"
    shared.mkdir(parents=True)
    (shared / "flow.yaml").write_text(WORKFLOW.format(name="flow"), encoding="utf-8")
    (repo / "workflows/team").symlink_to("../shared/team")
    loaded = load_repo(repo)
    assert loaded.ok, loaded.diagnostics
    assert sorted(w.file for w in loaded.workflows) == [
        "workflows/acme/ok.yaml",
        "workflows/team/flow.yaml",
    ]


def test_a_fifo_is_refused_without_waiting(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(repo / "workflows/acme/pipe.yaml")
    code, diagnostics = _validate(repo, capsys)
    assert (
        code == 1 and "not a regular file" in _unreadable(diagnostics)["workflows/acme/pipe.yaml"]
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission_is_an_error(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = repo / "workflows/acme/locked.yaml"
    secret.write_text(WORKFLOW.format(name="locked"), encoding="utf-8")
    secret.chmod(0)
    code, diagnostics = _validate(repo, capsys)
    assert code == 1 and "cannot be read" in _unreadable(diagnostics)["workflows/acme/locked.yaml"]


def test_non_utf8_is_a_diagnostic_beside_the_other_files(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "workflows/acme/latin1.yaml").write_bytes(b"name: caf\xe9\n")
    (repo / "workflows/acme/broken.yaml").write_text("a: [", encoding="utf-8")
    code, diagnostics = _validate(repo, capsys)
    assert code == 1
    assert "not UTF-8" in _unreadable(diagnostics)["workflows/acme/latin1.yaml"]
    assert any(d["file"] == "workflows/acme/broken.yaml" for d in diagnostics)


def test_links_at_a_git_ref_are_followed_inside_the_tree_only(repo: Path) -> None:
    shared = repo / "shared"
    shared.mkdir()
    (shared / "flow.yaml").write_text(WORKFLOW.format(name="flow"), encoding="utf-8")
    (repo / "workflows/acme/flow.yaml").symlink_to("../../shared/flow.yaml")
    (repo / "shared/team").mkdir()
    (repo / "shared/team/linked.yaml").write_text(WORKFLOW.format(name="linked"), "utf-8")
    (repo / "workflows/team").symlink_to("../shared/team")
    (repo / "workflows/acme/loop").symlink_to("..")
    (repo / "workflows/acme/gone.yaml").symlink_to("nowhere.yaml")
    (repo / "workflows/acme/out.yaml").symlink_to("../../../../etc/hostname")
    git_repo = git.Repo.init(repo)
    git_repo.git.add(A=True)
    git_repo.git.commit(m="init", author="t <t@t>", env={"GIT_COMMITTER_NAME": "t"})
    loaded = load_workflows(repo, ref="HEAD")
    assert sorted(w.file for w in loaded.workflows) == [
        "workflows/acme/flow.yaml",
        "workflows/acme/ok.yaml",
        "workflows/team/linked.yaml",
    ]
    problems = {d.file: d.message for d in loaded.diagnostics if d.code == "CPL-S006"}
    assert "broken symbolic link" in problems["workflows/acme/gone.yaml"]
    assert "out of the repository" in problems["workflows/acme/out.yaml"]
    assert "loop" in problems["workflows/acme/loop"]
