"""The engine adapters: compile errors, metadata, `cpl policy test`, and the remote adapter."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from opa_bindings import OpaEngine, OpaError

from controlplane.cli.policy import policy_test_command
from controlplane.errors import ConfigError
from controlplane.policy.engine import EmbeddedOpa
from controlplane.policy.library import load_library
from controlplane.policy.remote import RemoteOpa
from controlplane.policy.testing import run_tests
from tests.policy.conftest import WORKFLOW, WORKFLOW_FILE, load, mutate, spec_only

BAD = """package cpl.rules.broken

import rego.v1

deny contains v if {
  v := {"msg": "x", "path": }
}
"""

TYPE_ERROR = """# METADATA
# custom: {id: CPL-X001, severity: low, controls: []}
package cpl.rules.typed

import rego.v1

deny contains v if {
  v := {"msg": count(1), "path": ""}
}
"""

EXTRA_RULE = """# METADATA
# title: Owners are teams
# custom:
#   id: CPL-X100
#   severity: medium
#   controls: [internal ownership policy]
package cpl.rules.team_owner

import rego.v1

deny contains {"msg": "owner must start with team-", "path": "/metadata/owner"} if {
  not startswith(input.workflow.metadata.owner, "team-")
}
"""

EXTRA_TEST = """package cpl.rules.team_owner_test

import rego.v1

import data.cpl.rules.team_owner

test_flags_non_team if {
  count(team_owner.deny) == 1 with input as {"workflow": {"metadata": {"owner": "bob"}}}
}

test_deliberately_failing if {
  count(team_owner.deny) == 0 with input as {"workflow": {"metadata": {"owner": "bob"}}}
}
"""


def _write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


@pytest.mark.parametrize(
    ("source", "line", "code"), [(BAD, 6, "rego_parse_error"), (TYPE_ERROR, 8, "rego_type_error")]
)
def test_a_broken_module_names_its_file_and_line(
    tmp_path: Path, source: str, line: int, code: str
) -> None:
    _write(tmp_path, {"broken.rego": source})
    with pytest.raises(ConfigError) as raised:
        EmbeddedOpa(load_library([tmp_path], base=tmp_path.parent))
    (diagnostic,) = raised.value.diagnostics
    assert diagnostic.file == f"{tmp_path.name}/broken.rego"
    assert (diagnostic.line, code in diagnostic.message) == (line, True)
    assert f"{tmp_path.name}/broken.rego:{line}" in str(raised.value)


def test_rule_metadata_comes_from_opa_annotations(engine: EmbeddedOpa) -> None:
    jitter = engine.rules["CPL-P002"]
    assert jitter.package == "cpl.rules.retry_jitter"
    assert jitter.severity == "low" and jitter.title.startswith("Retries use full jitter")
    assert jitter.controls and jitter.file.endswith("retry_jitter.rego")
    assert len(engine.rules) == 22


def test_a_rule_without_an_id_is_rejected(tmp_path: Path) -> None:
    _write(tmp_path, {"anon.rego": "package cpl.rules.anon\n\nimport rego.v1\n\ndeny := set()\n"})
    with pytest.raises(ConfigError) as raised:
        EmbeddedOpa(load_library([tmp_path], builtin=False))
    assert "custom.id" in raised.value.diagnostics[0].message


def test_extra_rules_load_next_to_the_library(tmp_path: Path) -> None:
    _write(tmp_path, {"team_owner.rego": EXTRA_RULE})
    result, environment = load()
    from controlplane.policy.inputs import build_inputs

    inputs, _ = build_inputs(result, environment, render=spec_only)
    with EmbeddedOpa(load_library([tmp_path, tmp_path / "team_owner.rego"])) as opa:
        assert "CPL-X100" in opa.rules and len(opa.rules) == 23  # loaded once
        (findings,) = opa.evaluate([i.document for i in inputs])
    assert [(f.rule, f.path) for f in findings] == [("CPL-X100", "/metadata/owner")]


def test_the_builtin_rego_tests_pass_on_real_opa() -> None:
    report = run_tests()
    assert report.ok, [(c.file, c.name, c.detail) for c in report.cases if not c.passed]
    assert len(report.cases) > 50


def test_policy_test_reports_failures(tmp_path: Path) -> None:
    _write(tmp_path, {"team_owner.rego": EXTRA_RULE, "team_owner_test.rego": EXTRA_TEST})
    result = CliRunner().invoke(
        policy_test_command, [str(tmp_path), "--format", "json"], standalone_mode=False
    )
    assert result.return_value == 1
    report = json.loads(result.output)
    mine = {t["name"]: t["status"] for t in report["tests"] if "team_owner" in t["package"]}
    assert mine == {"test_flags_non_team": "pass", "test_deliberately_failing": "fail"}


# --- remote -------------------------------------------------------------------------------


class _OpaApi(BaseHTTPRequestHandler):
    """Speaks the shape of OPA's Policy and Data APIs, delegating to an embedded engine.

    A fake by necessity: no OPA server binary can be installed here. Like the server, it
    compiles on every policy upload and answers 400 with located errors.
    """

    engine: OpaEngine
    requests: list[tuple[str, str]]

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_PUT(self) -> None:
        self.requests.append(("PUT", self.path))
        body = self._body()
        if self.path.startswith("/v1/policies/"):
            policy_id = self.path[len("/v1/policies/") :]
            try:
                self.engine.add_policy(policy_id, body.decode())
                self.engine.eval_query("true")
            except OpaError as exc:
                row = exc.message.split(".rego:", 1)[1].split(":", 1)[0]
                location = {"file": policy_id, "row": int(row), "col": 1}
                error = {"code": "rego_parse_error", "message": exc.message, "location": location}
                self._reply(
                    400, {"code": "invalid_parameter", "message": "compile", "errors": [error]}
                )
                return
            self._reply(200, {})
        elif self.path.startswith("/v1/data/"):
            path = self.path[len("/v1/data/") :].replace("/", ".")
            self.engine.add_data(json.loads(body), path)
            self._reply(204)

    def do_POST(self) -> None:
        self.requests.append(("POST", self.path))
        path = self.path[len("/v1/data/") :].replace("/", ".")
        payload = json.loads(self._body())
        self._reply(200, {"result": self.engine.eval_document(path, payload.get("input"))})


@pytest.fixture
def opa_server() -> Iterator[tuple[str, type[_OpaApi]]]:
    handler: type[_OpaApi] = type("Handler", (_OpaApi,), {"engine": OpaEngine(), "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        handler.engine.close()


def test_remote_opa_gives_the_same_findings_as_embedded(
    engine: EmbeddedOpa, opa_server: tuple[str, type[_OpaApi]]
) -> None:
    url, handler = opa_server
    workflows = {
        WORKFLOW_FILE: mutate(WORKFLOW, lambda d: d["spec"].update(retention="400d")),
        "workflows/retail/b.yaml": WORKFLOW.replace("name: orders,", "name: b,"),
    }
    result, environment = load(workflows)
    from controlplane.policy.inputs import build_inputs

    inputs, _ = build_inputs(result, environment, render=spec_only)
    documents = [i.document for i in inputs] * 3
    remote = RemoteOpa(url, load_library(), {"maxJit": 3600}, chunk=4)
    try:
        assert {r: i.title for r, i in remote.rules.items()} == {
            r: i.title for r, i in engine.rules.items()
        }
        assert remote.evaluate(documents) == engine.evaluate(documents)
    finally:
        remote.close()
    posts = [p for method, p in handler.requests if method == "POST"]
    assert posts.count("/v1/data/cpl/gate/batch") == 2  # 6 inputs in chunks of 4
    assert ("PUT", "/v1/data/cpl/config") in handler.requests


def test_remote_compile_errors_name_the_file(
    tmp_path: Path, opa_server: tuple[str, type[_OpaApi]]
) -> None:
    url, _ = opa_server
    _write(tmp_path, {"broken.rego": BAD})
    with pytest.raises(ConfigError) as raised:
        RemoteOpa(url, load_library([tmp_path], base=tmp_path.parent))
    assert raised.value.diagnostics[0].file == f"{tmp_path.name}/broken.rego"
    assert raised.value.diagnostics[0].line == 6
