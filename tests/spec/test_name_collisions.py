"""Two workflows must not derive the same engine names.

`retail/inventory-sync` and `retail-inventory/sync` both name their objects
`retail-inventory-sync`: deployed, one would overwrite the other, and removing one would
delete the other's live objects. `cpl validate` reports the `<tenant>-<name>` class without
an environment (CPL-S029); the pipeline compares every name each engine derives per target.
"""

from __future__ import annotations

import json

import pytest

from controlplane.cli import run
from controlplane.engines.names import name_collisions
from controlplane.pipeline import name_collision_diagnostics, render_all
from controlplane.spec.load import Source, load_environment, load_sources
from tests.conftest import ROOT, MakeRepo

# Each example (one per engine) and a twin whose tenant/name gives the same `<tenant>-<name>`.
TWINS = {
    "retail/inventory-sync": ("retail-inventory", "sync"),
    "finance/month-end-close": ("finance-month", "end-close"),
    "retail/price-feed-export": ("retail-price", "feed-export"),
}


def _twin(key: str) -> tuple[str, str]:
    """The example's text under its twin's tenant and name, and the twin's file."""
    tenant, name = key.split("/")
    twin_tenant, twin_name = TWINS[key]
    text = (ROOT / "workflows" / tenant / f"{name}.yaml").read_text(encoding="utf-8")
    text = text.replace(f"tenant: {tenant}", f"tenant: {twin_tenant}", 1)
    text = text.replace(f"name: {name}", f"name: {twin_name}", 1)
    assert f"tenant: {twin_tenant}" in text and f"name: {twin_name}" in text
    return text, f"workflows/{twin_tenant}/{twin_name}.yaml"


def _example(key: str) -> tuple[str, str]:
    tenant, name = key.split("/")
    path = f"workflows/{tenant}/{name}.yaml"
    return (ROOT / path).read_text(encoding="utf-8"), path


def test_validate_reports_both_workflows_with_file_line_and_pointer(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    text, path = _example("retail/inventory-sync")
    twin_text, twin_path = _twin("retail/inventory-sync")
    repo = make_repo({path: text, twin_path: twin_text})
    assert run(["validate", "--repo", str(repo), "--format", "json"]) == 1
    found = [
        d for d in json.loads(capsys.readouterr().out)["diagnostics"] if d["code"] == "CPL-S029"
    ]
    assert {d["file"] for d in found} == {path, twin_path}
    by_file = {d["file"]: d for d in found}
    for this, other in ((path, twin_path), (twin_path, path)):
        diagnostic = by_file[this]
        assert diagnostic["path"] == "/metadata/name"
        line = diagnostic["line"]
        assert (repo / this).read_text().splitlines()[line - 1].lstrip().startswith("name:")
        assert "'retail-inventory-sync'" in diagnostic["message"]
        assert other in diagnostic["message"]
    assert "retail/inventory-sync" in by_file[twin_path]["message"]
    assert "retail-inventory/sync" in by_file[path]["message"]


def test_distinct_workflows_do_not_collide(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    text, path = _example("retail/inventory-sync")
    other, other_path = _example("retail/order-fulfillment")
    repo = make_repo({path: text, other_path: other})
    assert run(["validate", "--repo", str(repo)]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("key", sorted(TWINS))
def test_every_engine_reports_the_names_that_collide_on_a_target(key: str) -> None:
    text, path = _example(key)
    twin_text, twin_path = _twin(key)
    loaded = load_sources([Source(path, text), Source(twin_path, twin_text)], check_unique=False)
    assert len(loaded.workflows) == 2, loaded.diagnostics
    environment = load_environment(ROOT, "local")
    artifacts = render_all([w.model for w in loaded.workflows], environment)
    collisions = name_collisions(artifacts)
    assert len(collisions) == 1
    collision = collisions[0]
    assert {collision.first, collision.second} == {key, "/".join(TWINS[key])}
    resource = key.replace("/", "-")
    names = dict(collision.names)
    assert resource in " ".join(names.values())
    # the Step Functions log group is /cpl/<env>/<tenant>/<name>: distinct, so not reported
    assert "log group" not in names


def test_check_fails_once_per_workflow_naming_the_collision(
    make_repo: MakeRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    text, path = _example("retail/inventory-sync")
    twin_text, twin_path = _twin("retail/inventory-sync")
    environment = (ROOT / "environments/local.yaml").read_text(encoding="utf-8")
    repo = make_repo({path: text, twin_path: twin_text, "environments/local.yaml": environment})
    code = run(["check", "--env", "local", "--repo", str(repo), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("CPL-S029") == 2, out


def test_the_pipeline_names_the_target_and_the_engine_names() -> None:
    """The per-target comparison, on a load that did not compare keys itself."""
    text, path = _example("retail/inventory-sync")
    twin_text, twin_path = _twin("retail/inventory-sync")
    loaded = load_sources([Source(path, text), Source(twin_path, twin_text)], check_unique=False)
    environment = load_environment(ROOT, "local")
    artifacts = render_all([w.model for w in loaded.workflows], environment)
    found = name_collision_diagnostics(loaded, {(a.workflow, a.target): a for a in artifacts})
    assert {d.file for d in found} == {path, twin_path}
    for diagnostic in found:
        assert diagnostic.code == "CPL-S029" and diagnostic.path == "/metadata/name"
        assert "target 'sfn-local'" in diagnostic.message
        assert "state machine 'retail-inventory-sync'" in diagnostic.message
