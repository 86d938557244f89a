"""`security.isolation: regulated` end to end with `cpl check` (CPL-P010): such a workflow goes
only to regulated targets, and on Temporal to a namespace no workflow without it shares (the
namespace is the shared resource the pipeline derives: `input.shared`)."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest

from controlplane.cli import run

from .conftest import PROJECT

ISOLATED = "finance/month-end-close"  # security.isolation: regulated, on temporal-local
NEIGHBOUR = "finance/fx-rates-refresh"  # on temporal-local too
ISOLATION = (
    "  security:\n"
    "    # it shares its Temporal namespace with regulated workflows (CPL-P010)\n"
    "    isolation: regulated\n"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "environments").mkdir()
    shutil.copy(PROJECT / "environments/local.yaml", tmp_path / "environments/local.yaml")
    (tmp_path / "workflows/finance").mkdir(parents=True)
    shutil.copy(PROJECT / f"workflows/{ISOLATED}.yaml", tmp_path / f"workflows/{ISOLATED}.yaml")
    return tmp_path


def _check(repo: Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = run(["check", "--env", "local", "--repo", str(repo), "--no-color"])
    return code, out.getvalue()


def _add_neighbour(repo: Path, isolated: bool) -> None:
    text = (PROJECT / f"workflows/{NEIGHBOUR}.yaml").read_text()
    assert ISOLATION in text
    if not isolated:
        text = text.replace(ISOLATION, "")
    (repo / f"workflows/{NEIGHBOUR}.yaml").write_text(text)


def test_an_isolated_workflow_alone_in_its_namespace_passes(repo: Path) -> None:
    code, out = _check(repo)
    assert code == 0, out
    assert "CPL-P010" not in out


def test_a_standard_workflow_in_the_namespace_denies_the_isolated_one(repo: Path) -> None:
    _add_neighbour(repo, isolated=False)
    code, out = _check(repo)
    assert code == 3, out
    # the namespace; the target's Prometheus rules file is shared too (a finding of its own)
    (finding,) = [line for line in out.splitlines() if "CPL-P010" in line and "namespace" in line]
    assert "month-end-close.yaml" in finding and "denied" in finding
    assert (
        "workflow 'month-end-close' has security.isolation regulated but on target "
        "'temporal-local' it shares temporal namespace 'cpl-local' (managed through target "
        "'temporal-local') with workflows that are not isolated: finance/fx-rates-refresh"
    ) in finding


def test_isolated_neighbours_may_share(repo: Path) -> None:
    _add_neighbour(repo, isolated=True)
    code, out = _check(repo)
    assert "CPL-P010" not in out  # (fx-rates-refresh is denied for other rules)
    assert code == 3 and "CPL-P016" in out


def test_an_isolated_workflow_on_an_unregulated_target_is_denied(repo: Path) -> None:
    environment = repo / "environments/local.yaml"
    text = environment.read_text()
    temporal = "      taskQueue: cpl-interpreter\n      regulated: true\n"
    assert temporal in text
    environment.write_text(text.replace(temporal, temporal.replace("true", "false")))
    code, out = _check(repo)
    assert code == 3, out
    assert (
        "workflow 'month-end-close' has security.isolation regulated but target "
        "'temporal-local' (temporal) is not regulated"
    ) in out
