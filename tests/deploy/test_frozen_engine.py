"""A frozen engine (process stopped, socket open) makes `cpl plan` and `cpl drift` end soon,
naming the target that does not answer, instead of hanging.

The engines here are this module's own moto server and Temporal dev server (a frozen
session engine would hang every other test): each test stops one with SIGSTOP — the kernel
still accepts connections, nothing answers — runs cpl in a subprocess with small timeouts in
the environment, and lets the engine go on with SIGCONT afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from controlplane.engines.stepfunctions.emulator import MotoServer, start_moto_server
from controlplane.engines.temporal.devserver import DevServer, start_dev_server
from tests.deploy.conftest import ControlRepo, write_repo

TIMEOUTS = "timeouts: {connect: 1s, call: 1s, deadline: 3s}"
BOUND = 25.0
"""Seconds a command may take against a frozen engine: the deadline, one last call, and the
start of a Python process with OPA (a few seconds on a busy machine). Without timeouts it
took more than a quarter of an hour."""


@pytest.fixture(scope="module")
def own_moto() -> Iterator[MotoServer]:
    server = start_moto_server()
    try:
        yield server
    finally:
        server.process.send_signal(signal.SIGCONT)
        server.stop(grace=5.0)


@pytest.fixture(scope="module")
def own_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    directory = tmp_path_factory.mktemp("frozen-temporal")
    server = asyncio.run(start_dev_server(log_path=directory / "server.log"))
    try:
        yield server
    finally:
        server.process.send_signal(signal.SIGCONT)
        server.stop(grace=5.0)


@pytest.fixture
def repo(tmp_path: Path, own_moto: MotoServer, own_temporal: DevServer) -> ControlRepo:
    control = write_repo(tmp_path / "repo", own_moto.url, own_temporal.address)
    environment = control.root / "environments/local.yaml"
    text = environment.read_text()
    # every target gets small timeouts, right under its `engine:` line
    text = re.sub(r"(?m)^(\s+)engine: (\w+)$", rf"\1engine: \2\n\1{TIMEOUTS}", text)
    environment.write_text(text)
    return control


@contextmanager
def frozen(process: subprocess.Popen[bytes]) -> Iterator[None]:
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


def timed(repo: ControlRepo, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    finished = subprocess.run(
        repo.command(*args), capture_output=True, text=True, timeout=300, check=False
    )
    return finished, time.monotonic() - began


def test_plan_names_a_frozen_step_functions_target_and_ends(
    repo: ControlRepo, own_moto: MotoServer
) -> None:
    with frozen(own_moto.process):
        finished, seconds = timed(repo, "plan", "--env", "local")
    assert finished.returncode == 1, finished.stderr
    assert seconds < BOUND
    where = f"sfn-local ({own_moto.url})"
    assert f"{where} is not answering; retrying until" in finished.stderr
    assert "sfn-local" in finished.stderr.split("not answering", 1)[1]  # the error names it
    assert "Traceback" not in finished.stderr


def test_plan_names_a_frozen_temporal_target_and_ends(
    repo: ControlRepo, own_temporal: DevServer
) -> None:
    with frozen(own_temporal.process):
        finished, seconds = timed(repo, "plan", "--env", "local")
    assert finished.returncode == 1, finished.stderr
    assert seconds < BOUND
    where = f"temporal-local ({own_temporal.address})"
    assert f"{where} is not answering; retrying until" in finished.stderr
    assert "temporal target 'temporal-local'" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_drift_reports_both_frozen_targets_and_ends(
    repo: ControlRepo, own_moto: MotoServer, own_temporal: DevServer
) -> None:
    with frozen(own_moto.process), frozen(own_temporal.process):
        finished, seconds = timed(repo, "drift", "--env", "local")
    assert finished.returncode == 1, finished.stderr
    assert seconds < BOUND
    output = finished.stdout + finished.stderr
    assert f"sfn-local ({own_moto.url}) is not answering" in finished.stderr
    assert f"temporal-local ({own_temporal.address}) is not answering" in finished.stderr
    assert "sfn-local" in finished.stdout and "temporal-local" in finished.stdout, output


def test_engines_answer_again_after_the_freeze(repo: ControlRepo) -> None:
    """Nothing of the timeouts sticks: the same repo plans normally once the engines run."""
    finished, _ = timed(repo, "plan", "--env", "local")
    assert finished.returncode == 4, finished.stderr  # everything to create
