"""Run the jobs of ci/github/ the way GitHub Actions would, as far as they do not need GitHub.

`run:` steps run in bash as the runner runs them (`bash -e` for a workflow's steps, `bash
--noprofile --norc -eo pipefail` for the action's `shell: bash`), with `${{ ... }}`
expressions replaced from a context, GITHUB_OUTPUT read back into `steps.<id>.outputs`, and
`if:` conditions evaluated (the forms these workflows use). `uses: ./.github/actions/cpl`
runs the steps of the repo's action.yml with its inputs. Other `uses:` steps (checkout,
setup-python, the uploads) are GitHub's: recorded with their expanded `with:`, not run. The
steps that call the GitHub API through `gh` run against a `gh` on PATH that answers from
JSON fixtures with the real `jq` and logs every call (tests/ci/gh).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

ACTION = ROOT / "action.yml"
WORKFLOWS = ROOT / "ci" / "github"
LOCAL_ACTION = "./.github/actions/cpl"
WORKFLOW_SHELL = ["bash", "-e"]
ACTION_SHELL = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path}: not a mapping"
    # YAML 1.1 reads the key `on` as True
    if True in document:
        document["on"] = document.pop(True)
    return document


@dataclass
class Step:
    name: str
    id: str | None
    ran: bool
    code: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    with_: dict[str, str] = field(default_factory=dict)
    github: bool = False  # a `uses:` step of GitHub's, recorded but not run

    @property
    def outcome(self) -> str:
        if not self.ran:
            return "skipped"
        return "success" if self.code == 0 else "failure"


@dataclass
class Job:
    steps: list[Step]

    @property
    def failed(self) -> bool:
        return any(s.outcome == "failure" for s in self.steps)

    def step(self, name: str) -> Step:
        (found,) = [s for s in self.steps if s.name == name]
        return found


class Runner:
    """Runs a job's steps in `workdir` with `context` for the expressions (`github.*`,
    `env.*`, `matrix.*`); `environment` is the process environment (PATH with cpl)."""

    def __init__(self, workdir: Path, context: dict[str, str], environment: dict[str, str]):
        self.workdir = workdir
        self.context = dict(context)
        self.environment = environment

    def job(self, workflow: Path, job: str, *, env: dict[str, str] | None = None) -> Job:
        """Run `job` of `workflow`; `env` overrides the workflow's `env:` (CPL_ENV)."""
        document = load(workflow)
        definition = document["jobs"][job]
        env = {**document.get("env", {}), **definition.get("env", {}), **(env or {})}
        for key, value in env.items():
            self.context[f"env.{key}"] = self.expand(str(value), {})
        done = Job([])
        for step in definition["steps"]:
            done.steps.append(self._step(step, done, {}, WORKFLOW_SHELL, env))
        return done

    def action(self, **with_: str) -> Step:
        """Run the action alone, as a step `uses: ./.github/actions/cpl` with `with_`."""
        return self._step({"name": "cpl", "uses": LOCAL_ACTION, "with": with_}, Job([]), {}, [], {})

    # -- steps -------------------------------------------------------------------------------

    def _step(
        self,
        step: dict[str, Any],
        job: Job,
        scope: dict[str, str],
        shell: list[str],
        env: dict[str, Any],
    ) -> Step:
        name = self.expand(str(step.get("name") or step.get("uses") or step.get("run")), scope)
        record = Step(name, step.get("id"), ran=False)
        if not self.condition(step.get("if"), job, scope):
            return self._remember(record, scope)
        uses = step.get("uses")
        with_ = {k: self.expand(str(v), scope) for k, v in (step.get("with") or {}).items()}
        record.with_ = with_
        if uses == LOCAL_ACTION:
            record = self._action(record, with_)
        elif uses is not None:
            record.ran = record.github = True  # GitHub's to run: taken as succeeding
        else:
            record.ran = True
            values = {**env, **(step.get("env") or {})}
            variables = {k: self.expand(str(v), scope) for k, v in values.items()}
            directory = self.workdir / self.expand(step.get("working-directory", "."), scope)
            script_shell = ACTION_SHELL if step.get("shell") == "bash" else shell
            self._run(record, str(step["run"]), variables, directory, script_shell, scope)
        return self._remember(record, scope)

    def _remember(self, record: Step, scope: dict[str, str]) -> Step:
        if record.id:
            # inside the action (a scope of its inputs) its steps are its own
            target = scope if scope else self.context
            target[f"steps.{record.id}.outcome"] = record.outcome
            for key, value in record.outputs.items():
                target[f"steps.{record.id}.outputs.{key}"] = value
        return record

    def _action(self, record: Step, with_: dict[str, str]) -> Step:
        action = load(ACTION)
        unknown = set(with_) - set(action["inputs"])
        assert not unknown, f"{record.name}: the action has no input {unknown}"
        scope = {f"inputs.{k}": str(v.get("default", "")) for k, v in action["inputs"].items()}
        scope.update({f"inputs.{k}": v for k, v in with_.items()})
        inner = Job([])
        for step in action["runs"]["steps"]:
            if step.get("name") == "Install cpl":
                continue  # the checkout's cpl is on PATH; the lines are compared with README's
            inner.steps.append(self._step(step, inner, scope, ACTION_SHELL, {}))
        record.ran = True
        failed = [s for s in inner.steps if s.outcome == "failure"]
        record.code = failed[0].code if failed else 0
        record.stdout = "".join(s.stdout for s in inner.steps)
        record.stderr = "".join(s.stderr for s in inner.steps)
        for key, output in action["outputs"].items():
            record.outputs[key] = self.expand(output["value"], scope)
        return record

    def _run(
        self,
        record: Step,
        script: str,
        variables: dict[str, str],
        directory: Path,
        shell: list[str],
        scope: dict[str, str],
    ) -> None:
        script = self.expand(script, scope)
        with tempfile.TemporaryDirectory() as scratch:
            outputs = Path(scratch) / "output"
            outputs.touch()
            path = Path(scratch) / "step.sh"
            path.write_text(script, encoding="utf-8")
            done = subprocess.run(
                [*shell, str(path)],
                cwd=directory,
                env={
                    **self.environment,
                    **variables,
                    "GITHUB_OUTPUT": str(outputs),
                    "GITHUB_REPOSITORY": self.context.get("github.repository", "o/r"),
                },
                capture_output=True,
                text=True,
                timeout=300,
            )
            record.code = done.returncode
            record.stdout, record.stderr = done.stdout, done.stderr
            for line in outputs.read_text(encoding="utf-8").splitlines():
                key, _, value = line.partition("=")
                record.outputs[key] = value

    # -- expressions -------------------------------------------------------------------------

    def value(self, expression: str, scope: dict[str, str]) -> str:
        if expression in scope:
            return scope[expression]
        if expression.startswith("steps."):  # a skipped step's output is empty
            return (scope if scope else self.context).get(expression, "")
        assert expression in self.context, f"no value for the expression {expression!r}"
        return self.context[expression]

    def expand(self, text: str, scope: dict[str, str]) -> str:
        return _EXPRESSION.sub(lambda m: self.value(m.group(1), scope), text)

    def condition(self, condition: Any, job: Job, scope: dict[str, str]) -> bool:
        """The forms of `if:` used here: `!cancelled()`, `A == 'x'`, `A != 'x'`, joined by
        `&&`. As on GitHub, a condition without a status function (and no `if:`) also needs
        every earlier step to have succeeded."""
        if condition is None:
            return not job.failed
        text = str(condition).strip()
        match = _EXPRESSION.fullmatch(text)
        text = match.group(1) if match else text
        result = "cancelled()" in text or not job.failed
        for term in (t.strip() for t in text.split("&&")):
            if term == "!cancelled()":
                continue
            compared = re.fullmatch(r"([\w.-]+) (==|!=) '([^']*)'", term)
            assert compared, f"unknown condition {term!r}"
            left = self.value(compared.group(1), scope)
            equal = left == compared.group(3)
            result = result and (equal if compared.group(2) == "==" else not equal)
        return result


def environment_with_cpl(extra_path: Path | None = None) -> dict[str, str]:
    """The process environment: this checkout's `cpl` and `python` first on PATH."""
    paths = [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    if extra_path is not None:
        paths.insert(0, str(extra_path))
    return {
        **os.environ,
        "PATH": os.pathsep.join(paths),
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
