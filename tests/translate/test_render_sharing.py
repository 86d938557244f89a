"""Rendered documents share nothing mutable with the environment or with each other."""

from __future__ import annotations

import json
from pathlib import Path

from bench.corpus import generate
from bench.render import selecting_everything
from controlplane.engines import ENGINES
from controlplane.spec.load import load_environment, load_repo


def _containers(document: dict) -> list[dict]:
    (manifest,) = document["manifests"]
    spec = manifest["spec"].get("workflowSpec", manifest["spec"])
    return [t["container"] for t in spec["templates"] if t["name"].startswith("task-")]


def test_argo_manifests_hold_copies_of_the_environment(tmp_path: Path) -> None:
    generate(tmp_path, 8, seed=3)
    environment = selecting_everything(load_environment(tmp_path, "local"))
    (target,) = [t for t in environment.spec.targets if t.engine == "argo"]
    workflows = [entry.model for entry in load_repo(tmp_path, [tmp_path / "workflows"]).workflows]
    translator = ENGINES["argo"].translator
    first = [translator.render(w, target, environment) for w in workflows]
    bindings = json.dumps(environment.spec.bindings.model_dump(mode="json"), sort_keys=True)

    for artifact in first:  # a consumer changing its document changes nothing else
        for container in _containers(artifact.document):
            container["command"].append("changed")
    assert json.dumps(environment.spec.bindings.model_dump(mode="json"), sort_keys=True) == (
        bindings
    )
    again = [translator.render(w, target, environment) for w in workflows]
    assert all("changed" not in c["command"] for a in again for c in _containers(a.document))

    for artifact in again:  # one activity used twice: still no YAML anchors in the files
        assert not any("&id" in text or "*id" in text for text in artifact.files.values())


def test_support_records_are_shared_but_equal_to_fresh_ones(tmp_path: Path) -> None:
    generate(tmp_path, 4, seed=5)
    environment = selecting_everything(load_environment(tmp_path, "local"))
    (target,) = [t for t in environment.spec.targets if t.engine == "stepfunctions"]
    (workflow, *_) = [e.model for e in load_repo(tmp_path, [tmp_path / "workflows"]).workflows]
    translator = ENGINES["stepfunctions"].translator
    one = translator.render(workflow, target, environment).support
    two = translator.render(workflow, target, environment).support
    assert one == two and all(a is b for a, b in zip(one, two, strict=True))
    assert [s.to_json() for s in one] == [
        {"feature": s.feature, "support": s.support, "path": s.path, "reason": s.reason}
        for s in one
    ]
