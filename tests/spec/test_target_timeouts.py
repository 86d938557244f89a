"""A target's `timeouts` (connect, call, deadline): defaults, and values that would bring a
hang back (or fail every call) refused by `cpl validate` at their line."""

from __future__ import annotations

import pytest

from controlplane.cli import run
from controlplane.engines.timeouts import Timeouts
from controlplane.spec.environment import Target
from tests.conftest import MakeRepo

ENVIRONMENT = """
apiVersion: cpl.dev/v1
kind: Environment
metadata: {{name: dev}}
spec:
  tier: development
  targets:
    - name: t
      engine: temporal
      address: 127.0.0.1:7233
      namespace: n
      taskQueue: q
      timeouts: {timeouts}
"""


def test_defaults_are_short() -> None:
    target = Target.model_validate({"name": "t", "engine": "stepfunctions", "region": "us-east-1"})
    assert Timeouts.of(target) == Timeouts(connect=3.0, call=10.0, deadline=60.0)


def test_configured_timeouts_are_used() -> None:
    target = Target.model_validate(
        {
            "name": "t",
            "engine": "stepfunctions",
            "region": "us-east-1",
            "timeouts": {"connect": "500ms", "call": "2s", "deadline": "1m"},
        }
    )
    assert Timeouts.of(target) == Timeouts(connect=0.5, call=2.0, deadline=60.0)


@pytest.mark.parametrize(
    ("timeouts", "message"),
    [
        ("{call: 0s}", "timeouts.call is 0s: it must be between 0.01s and 600s"),
        ("{deadline: 2d}", "timeouts.deadline is 2d: it must be between 0.01s and 3600s"),
        ("{connect: -1s}", "is not a duration"),
        ("{connect: nan}", "is not a duration"),
        ("{read: 5s}", "read"),
    ],
)
def test_bad_timeouts_are_reported_at_their_line(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str], timeouts: str, message: str
) -> None:
    repo = make_repo({"environments/dev.yaml": ENVIRONMENT.format(timeouts=timeouts)})
    assert run(["validate", "--repo", str(repo)]) == 1
    out = capsys.readouterr().out
    assert "environments/dev.yaml:12:" in out, out
    assert message in out, out
