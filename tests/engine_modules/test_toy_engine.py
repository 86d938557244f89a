"""A new engine is one bundle plus one registry entry: the made-up `toy` engine
(tests/engine_modules/toy_engine.py, a documented stand-in) is added to `ENGINES` for each
test only, and every command a user runs on a control repo with a toy target sees it, with no
other change to controlplane/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlplane.cli import run
from controlplane.engines import ENGINES
from tests.engine_modules import toy_engine

WORKFLOW = """\
apiVersion: cpl.dev/v1
kind: Workflow
metadata:
  name: greeting
  tenant: acme
  version: 1.0.0
  owner: team-greetings
spec:
  input:
    schema: {type: object, required: [id], properties: {id: {type: string}}}
  timeout: 10m
  retention: 7d
  start: greet
  steps:
    - name: greet
      type: task
      activity: greetings.send
      idempotencyKey: $.id
      timeout: 30s
      retry: {maxAttempts: 3, initialInterval: 1s, backoffRate: 2.0, maxInterval: 10s, jitter: full}
      resultPath: $.sent
      next: answered
    - name: answered
      type: choice
      rules:
        - when: {path: $.sent.ok, eq: true}
          next: done
      default: pause
    - name: pause
      type: wait
      duration: 5m
      next: failed
    - name: done
      type: succeed
    - name: failed
      type: fail
      error: NoAnswer
"""

ENVIRONMENT = """\
apiVersion: cpl.dev/v1
kind: Environment
metadata: {name: dev}
spec:
  tier: development
  targets:
    - name: toy-local
      engine: ENGINE
      path: deploy/toy
  bindings:
    activities:
      greetings.send:
        toy: {function: send_greeting}
"""


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy engine in the registry, for this test only."""
    monkeypatch.setitem(ENGINES, toy_engine.NAME, toy_engine.ENGINE)


def control_repo(root: Path, engine: str = "toy") -> Path:
    (root / "workflows" / "acme").mkdir(parents=True)
    (root / "workflows" / "acme" / "greeting.yaml").write_text(WORKFLOW)
    (root / "environments").mkdir()
    (root / "environments" / "dev.yaml").write_text(ENVIRONMENT.replace("ENGINE", engine))
    return root


def cpl(capsys: pytest.CaptureFixture[str], repo: Path, *args: str) -> tuple[int, str, str]:
    code = run([*args, "--repo", str(repo)])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_unregistered_engine_is_a_diagnostic_at_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = control_repo(tmp_path)
    code, out, _ = cpl(capsys, repo, "validate")
    assert code == 1
    assert "environments/dev.yaml:8:7: CPL-S004 engine: unknown engine 'toy'" in out
    assert "(registered: stepfunctions, temporal, argo)" in out
    # its activity binding is an unknown key until the engine is registered
    assert "environments/dev.yaml:13:9: CPL-S002 unknown key 'toy'" in out


def test_a_misspelt_engine_suggests_the_registered_one(
    registered: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = control_repo(tmp_path, engine="tyo")
    code, out, _ = cpl(capsys, repo, "validate", "--format", "json")
    assert code == 1
    [diagnostic] = [d for d in json.loads(out)["diagnostics"] if d["code"] == "CPL-S004"]
    assert diagnostic["path"] == "/spec/targets/0/engine"
    assert diagnostic["line"] == 8
    assert "did you mean 'toy'?" in diagnostic["message"]


def test_compat_and_render_show_the_registered_engine(
    registered: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = control_repo(tmp_path)
    assert cpl(capsys, repo, "validate")[0] == 0

    code, out, err = cpl(capsys, repo, "compat", "--format", "json")
    assert code == 0, err
    matrix = json.loads(out)
    rows = {row["feature"]: row for row in matrix["workflows"][0]["features"]}
    assert rows["wait"]["toy"]["support"] == "approximated"
    assert rows["wait"]["toy"]["reason"] == toy_engine.WAIT_REASON
    assert rows["task"]["toy"]["support"] == "exact"
    assert matrix["summary"]["toy"] == {"exact": 4, "approximated": 1}

    code, out, _ = cpl(capsys, repo, "compat")
    assert code == 0
    assert "toy: 4 exact, 1 approximated, 0 unsupported" in out
    assert "wait: approx. on toy" in out  # the note of the toy engine's one gap
    assert " ".join(out.split()).count(toy_engine.WAIT_REASON) == 1

    render = ("render", "acme/greeting", "--env", "dev", "--format", "json")
    code, out, err = cpl(capsys, repo, *render)
    assert code == 0, err
    [artifact] = json.loads(out)
    assert (artifact["engine"], artifact["target"]) == ("toy", "toy-local")
    steps = artifact["document"]["steps"]
    assert [s["type"] for s in steps] == ["task", "choice", "wait", "succeed", "fail"]
    assert steps[0]["call"] == "send_greeting"  # the environment's toy binding


def test_plan_apply_and_drift_on_the_registered_engine(
    registered: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = control_repo(tmp_path)
    code, out, err = cpl(capsys, repo, "plan", "--env", "dev")
    assert code == 4, err
    assert "+ create acme/greeting @ toy-local (toy acme-greeting) 1.0.0" in out

    code, out, err = cpl(capsys, repo, "apply", "--env", "dev", "--yes")
    assert code == 0, err
    stored = json.loads((repo / "deploy" / "toy" / "acme-greeting.json").read_text())
    assert stored["marks"]["cpl:workflow"] == "acme/greeting"
    assert "writtenAt" in stored["document"]  # the engine's own field: normalized away
    assert cpl(capsys, repo, "plan", "--env", "dev")[0] == 0

    code, out, err = cpl(capsys, repo, "drift", "--env", "dev", "--format", "json")
    assert code == 0, err
    assert [i["status"] for i in json.loads(out)["items"]] == ["in-sync"]

    # changed by hand, and a marked resource no spec describes
    stored["document"]["steps"][2]["seconds"] = 5
    (repo / "deploy" / "toy" / "acme-greeting.json").write_text(json.dumps(stored))
    leftover = {"document": {"kind": "toy"}, "marks": {"cpl:managed": "true"}}
    (repo / "deploy" / "toy" / "acme-leftover.json").write_text(json.dumps(leftover))
    code, out, err = cpl(capsys, repo, "drift", "--env", "dev", "--format", "json")
    assert code == 5, err
    items = {i["resource"]: i for i in json.loads(out)["items"]}
    assert items["acme-greeting"]["status"] == "modified"
    assert items["acme-greeting"]["diff"] == [
        {"path": "/steps/2/seconds", "expected": 60, "actual": 5}
    ]
    assert items["acme-leftover"]["status"] == "unmanaged"


def test_run_on_an_engine_without_runner_says_how_to_start_one(
    registered: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = control_repo(tmp_path)
    code, _, err = cpl(capsys, repo, "run", "acme/greeting", "--env", "dev")
    assert code == 1
    assert "target 'toy-local' is toy: toy runs start when a file named greeting.go appears" in err
