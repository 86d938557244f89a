"""What the files of ci/github/ and action.yml promise, read as GitHub reads them: triggers,
least-privilege permissions, the order of the steps, the hidden markers, the plan artifact the
apply finds, and scripts that take no `${{ }}` expressions (values come in through `env:`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ci.actions import ACTION, LOCAL_ACTION, WORKFLOWS, load
from tests.conftest import ROOT

PR, APPLY, DRIFT = (WORKFLOWS / f"cpl-{n}.yml" for n in ("pr", "apply", "drift"))
INSTALL = [
    "pip install --ignore-requires-python opa-golib-python-bindings==0.4.4",
    "pip install controlplane",
]


def _steps(path: Path, job: str) -> list[dict[str, Any]]:
    return list(load(path)["jobs"][job]["steps"])


def _names(path: Path, job: str) -> list[str]:
    return [str(s.get("name") or s.get("uses")) for s in _steps(path, job)]


def _step(path: Path, job: str, name: str) -> dict[str, Any]:
    (found,) = [s for s in _steps(path, job) if s.get("name") == name]
    return found


def test_the_ci_directory_holds_the_three_workflows() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.y*ml")) == [
        "cpl-apply.yml",
        "cpl-drift.yml",
        "cpl-pr.yml",
    ]


@pytest.mark.parametrize(
    ("workflow", "trigger", "permissions"),
    [
        (
            PR,
            {"pull_request"},
            {"contents": "read", "pull-requests": "write", "security-events": "write"},
        ),
        (APPLY, {"push"}, {"contents": "read", "actions": "read", "pull-requests": "read"}),
        (
            DRIFT,
            {"schedule", "workflow_dispatch"},
            {"contents": "read", "issues": "write", "security-events": "write"},
        ),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_triggers_and_least_privilege(
    workflow: Path, trigger: set[str], permissions: dict[str, str]
) -> None:
    document = load(workflow)
    assert set(document["on"]) == trigger
    assert document["permissions"] == permissions  # nothing else: every other scope is none
    for job in document["jobs"].values():
        assert "permissions" not in job, "a job must not widen the workflow's permissions"


def test_apply_runs_on_the_default_branch_one_at_a_time() -> None:
    document = load(APPLY)
    assert document["on"]["push"]["branches"] == ["main"]
    assert document["concurrency"]["cancel-in-progress"] is False
    assert load(PR)["env"]["CPL_ENV"] == document["env"]["CPL_ENV"]
    assert (WORKFLOWS / document["env"]["CPL_PLAN_WORKFLOW"]) == PR


def test_the_pull_request_steps_in_order() -> None:
    assert _names(PR, "plan") == [
        "actions/checkout@v4",
        "Base commit",
        "Validate",
        "Policy check",
        "Upload SARIF to code scanning",
        "Plan",
        "Compose the plan comment",
        "Post or update the plan comment",
        "Keep the plan file",
    ]
    assert _steps(PR, "plan")[0]["with"]["fetch-depth"] == 0  # --base needs the history
    commands = {
        s["name"]: s["with"]["command"] for s in _steps(PR, "plan") if s.get("uses") == LOCAL_ACTION
    }
    assert commands == {"Validate": "validate", "Policy check": "check", "Plan": "plan"}
    plan = _step(PR, "plan", "Plan")
    assert plan["with"]["base-ref"] == "${{ steps.base.outputs.sha }}"
    # the plan and the comment still run after a denied check: the reviewer sees why
    assert "!cancelled()" in plan["if"]
    sarif = _step(PR, "plan", "Upload SARIF to code scanning")
    assert sarif["uses"].startswith("github/codeql-action/upload-sarif@")


def test_one_comment_per_environment_found_by_its_marker() -> None:
    marker = "<!-- cpl-plan:${{ env.CPL_ENV }} -->"
    compose = _step(PR, "plan", "Compose the plan comment")
    post = _step(PR, "plan", "Post or update the plan comment")
    assert compose["env"]["MARKER"] == post["env"]["MARKER"] == marker
    assert 'python -m controlplane.ci.body --marker "$MARKER"' in compose["run"]
    assert 'startswith(\\"$MARKER\\")' in post["run"]
    assert "--method PATCH" in post["run"] and "--method POST" in post["run"]


def test_the_plan_artifact_is_the_one_the_apply_downloads() -> None:
    kept = _step(PR, "plan", "Keep the plan file")
    assert kept["uses"].startswith("actions/upload-artifact@")
    assert kept["with"]["name"] == "cpl-plan-${{ env.CPL_ENV }}"
    find = _step(APPLY, "apply", "Find the reviewed plan")
    assert 'gh run download "$run" --name "cpl-plan-$CPL_ENV" --dir cpl-plan' in find["run"]
    assert "status=success" in find["run"]


def test_apply_applies_only_the_downloaded_plan() -> None:
    assert _names(APPLY, "apply") == [
        "actions/checkout@v4",
        "Find the reviewed plan",
        "Apply the reviewed plan",
    ]
    apply = _step(APPLY, "apply", "Apply the reviewed plan")
    assert apply["uses"] == LOCAL_ACTION and "if" not in apply  # never after a failed find
    assert apply["with"]["command"] == "apply"
    assert apply["with"]["plan-file"] == "cpl-plan/plan.json"
    assert _steps(APPLY, "apply")[0]["with"]["fetch-depth"] == 0  # the plan's base commit
    for step in _steps(APPLY, "apply"):
        assert "cpl apply" not in str(step.get("run", "")), "no apply around the action"


def test_drift_keeps_one_issue_per_environment() -> None:
    assert _names(DRIFT, "drift") == [
        "actions/checkout@v4",
        "Drift",
        "Upload SARIF to code scanning",
        "Compose the issue body",
        "Open, update or close the drift issue",
    ]
    job = load(DRIFT)["jobs"]["drift"]
    assert job["env"]["CPL_ENV"] == "${{ matrix.environment }}"
    upsert = _step(DRIFT, "drift", "Open, update or close the drift issue")
    assert upsert["env"]["MARKER"] == "<!-- cpl-drift:${{ env.CPL_ENV }} -->"
    assert (
        _step(DRIFT, "drift", "Compose the issue body")["env"]["MARKER"] == upsert["env"]["MARKER"]
    )
    for command in ("gh issue close", "gh issue edit", "gh issue create"):
        assert command in upsert["run"]


def _scripts() -> list[tuple[str, str]]:
    found = []
    for path in [*WORKFLOWS.glob("*.yml"), ACTION]:
        document = load(path)
        steps = (
            document["runs"]["steps"]
            if path == ACTION
            else [s for job in document["jobs"].values() for s in job["steps"]]
        )
        found += [(f"{path.name}: {s.get('name')}", s["run"]) for s in steps if "run" in s]
    return found


@pytest.mark.parametrize(("where", "script"), _scripts(), ids=[w for w, _ in _scripts()])
def test_scripts_take_values_through_env_never_expressions(where: str, script: str) -> None:
    """A `${{ }}` inside a script is pasted into the shell: a branch name or a title could
    run code. Every value reaches the scripts as an environment variable."""
    assert "${{" not in script, where


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck is not installed: run `make tools`"
)
@pytest.mark.parametrize(("where", "script"), _scripts(), ids=[w for w, _ in _scripts()])
def test_scripts_pass_shellcheck(tmp_path: Path, where: str, script: str) -> None:
    path = tmp_path / "step.sh"
    path.write_text("#!/bin/bash\n" + script, encoding="utf-8")
    done = subprocess.run(["shellcheck", "-s", "bash", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, f"{where}:\n{done.stdout}"


def test_the_action_declares_what_the_workflows_use() -> None:
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) == {
        "command",
        "environment",
        "base-ref",
        "plan-file",
        "cpl-version",
        "install",
        "python-version",
        "working-directory",
        "cache",
    }
    assert set(action["outputs"]) == {"exit-code", "outcome", "report", "sarif", "plan-file"}
    for path in WORKFLOWS.glob("*.yml"):
        for job in load(path)["jobs"].values():
            for step in job["steps"]:
                if step.get("uses") == LOCAL_ACTION:
                    assert set(step["with"]) <= set(action["inputs"]), path.name
    for step in action["runs"]["steps"]:
        assert step.get("uses") or step.get("shell") == "bash"  # composite run steps need it


def test_the_action_installs_cpl_as_the_readme_says() -> None:
    action = load(ACTION)
    (install,) = [s for s in action["runs"]["steps"] if s.get("name") == "Install cpl"]
    spec = action["inputs"]["cpl-version"]["default"]
    lines = install["run"].replace('"$CPL_PIP_SPEC"', spec).strip().splitlines()
    assert install["env"]["CPL_PIP_SPEC"] == "${{ inputs.cpl-version }}"
    assert lines == INSTALL
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n".join(f"    {line}" for line in INSTALL) in readme
