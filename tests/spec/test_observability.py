"""`spec.observability.tracing` of an environment: exactly one exporter, a file confined to
the repo (also through symbolic links, when used), and what the file exporter writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from controlplane.errors import ConfigError
from controlplane.spec.environment import TracingSettings
from controlplane.spec.load import load_environment
from controlplane.tracing import command_span, tracing
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "exactly one of `otlp` or `file`"),
        ({"otlp": "http://collector:4317", "file": "spans.jsonl"}, "exactly one of"),
        ({"otlp": "collector:4317"}, "should match pattern"),
        ({"file": "/var/log/spans.jsonl"}, "leads outside the control repo"),
        ({"file": "../spans.jsonl"}, "leads outside the control repo"),
    ],
)
def test_bad_tracing_settings_are_named(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TracingSettings.model_validate(settings)


def _repo(tmp_path: Path, tracing_settings: dict[str, Any]) -> Path:
    data = yaml.safe_load((ROOT / "environments" / "local.yaml").read_text())
    data["spec"]["observability"] = {"tracing": tracing_settings}
    (tmp_path / "environments").mkdir(parents=True)
    (tmp_path / "environments" / "local.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return tmp_path


def test_the_file_exporter_writes_one_json_line_per_span(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"file": "traces/spans.jsonl"})
    environment = load_environment(repo, "local")
    with command_span(environment, repo, "cpl run", {"cpl.workflow": "retail/orders"}):
        pass
    (line,) = (repo / "traces" / "spans.jsonl").read_text().splitlines()
    span = json.loads(line)
    assert span["name"] == "cpl run"
    assert span["parentSpanId"] is None and len(span["traceId"]) == 32
    assert span["attributes"] == {"cpl.workflow": "retail/orders"}
    assert span["service"] == "cpl" and span["end"] >= span["start"]


def test_no_tracing_section_traces_nothing(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "environments" / "local.yaml").read_text())
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "local.yaml").write_text(yaml.safe_dump(data))
    environment = load_environment(tmp_path, "local")
    with tracing(environment, tmp_path) as tracer:
        assert tracer is None


def test_a_spans_file_linked_outside_the_repo_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = _repo(tmp_path / "repo", {"file": "traces/spans.jsonl"})
    (repo / "traces").symlink_to(outside)
    environment = load_environment(repo, "local")
    with pytest.raises(ConfigError) as raised, tracing(environment, repo):
        pass
    assert "outside the repo" in str(raised.value)
    assert not list(outside.iterdir())
