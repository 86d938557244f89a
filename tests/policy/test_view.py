"""The evaluation view: what the built-in rules read of an input, and only that."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from controlplane.policy.engine import EmbeddedOpa
from controlplane.policy.inputs import build_inputs
from controlplane.policy.library import load_library
from controlplane.policy.view import evaluation_view
from controlplane.spec.load import load_environment, load_repo

from .conftest import PROJECT


def _document() -> dict[str, Any]:
    return {
        "workflow": {"metadata": {"name": "w"}, "spec": {"steps": []}},
        "change": {"action": "none"},
        "rendered": {
            "kind": "argo",
            "tracing": {"enabled": True},
            "spec": {"workflow": {"huge": "copy"}},
            "manifests": [
                {
                    "kind": "CronWorkflow",
                    "metadata": {"name": "m", "labels": {"a": "b"}},
                    "spec": {
                        "schedule": "* * * * *",
                        "workflowSpec": {
                            "podGC": {"strategy": "x"},
                            "serviceAccountName": "cpl-m",
                            "volumes": [{"name": "v", "emptyDir": {}}],
                            "templates": [
                                {
                                    "name": "t",
                                    "inputs": {"parameters": []},
                                    "container": {
                                        "image": "i",
                                        "securityContext": {"readOnlyRootFilesystem": True},
                                    },
                                },
                                {"name": "main", "steps": [[{"name": "a"}]]},
                            ],
                        },
                    },
                }
            ],
        },
        "compat": [
            {"feature": "retry", "support": "exact", "path": "/a", "reason": ""},
            {"feature": "retry.jitter", "support": "approximated", "path": "/b", "reason": "r"},
            {"feature": "retry.jitter", "support": "approximated", "path": "/c", "reason": "r"},
            {"feature": "retry.jitter", "support": "unsupported", "path": "/d", "reason": "u"},
        ],
        "bindings": {
            "activities": {"a": {"temporal": {"x": 1}, "external": True}, "b": {"argo": {}}},
            "queues": {"q": {"temporal": "x"}},
        },
    }


def test_view_keeps_what_rules_read() -> None:
    document = _document()
    original = copy.deepcopy(document)
    view = evaluation_view(document)
    assert document == original  # not modified in place
    assert view["workflow"] is document["workflow"] and view["change"] is document["change"]
    assert view["rendered"] == {
        "kind": "argo",
        "tracing": {"enabled": True},
        "manifests": [
            {
                "kind": "CronWorkflow",
                "metadata": {"name": "m"},
                "spec": {
                    "workflowSpec": {
                        "podGC": {"strategy": "x"},
                        "serviceAccountName": "cpl-m",
                        "templates": [
                            {
                                "name": "t",
                                "container": {"securityContext": {"readOnlyRootFilesystem": True}},
                            },
                            {"name": "main"},
                        ],
                    }
                },
            }
        ],
    }
    assert view["compat"] == [
        {"feature": "retry.jitter", "support": "approximated", "path": "/b", "reason": "r"},
        {"feature": "retry.jitter", "support": "approximated", "path": "/c"},
        {"feature": "retry.jitter", "support": "unsupported", "path": "/d", "reason": "u"},
    ]
    assert view["bindings"] == {"activities": {"a": {"external": True}, "b": {}}}


def test_only_the_builtin_library_gets_the_view(tmp_path: Path) -> None:
    assert load_library().builtin_only
    listed_again = PROJECT / "controlplane" / "policies"
    assert load_library([listed_again]).builtin_only  # listed again: still built-in
    (tmp_path / "team.rego").write_text("package team.extra\n\nimport rego.v1\n\nx := 1\n")
    assert not load_library([tmp_path]).builtin_only
    assert not load_library(builtin=False).builtin_only


def test_findings_are_the_same_on_the_full_input() -> None:
    environment = load_environment(PROJECT, "prod")
    loaded = load_repo(PROJECT, [PROJECT / "workflows"])
    inputs, _ = build_inputs(loaded, environment)
    documents = [i.document for i in inputs]
    full = load_library()
    full.builtin_only = False  # as if an environment added modules: the full input
    with EmbeddedOpa(load_library()) as slim, EmbeddedOpa(full) as whole:
        assert slim.evaluate(documents) == whole.evaluate(documents)


def test_large_batches_on_several_engines_give_the_same_findings() -> None:
    environment = load_environment(PROJECT, "prod")
    loaded = load_repo(PROJECT, [PROJECT / "workflows"])
    inputs, _ = build_inputs(loaded, environment)
    documents = [i.document for i in inputs] * (400 // len(inputs) + 1)
    with (
        EmbeddedOpa(load_library(), workers=1) as one,
        EmbeddedOpa(load_library(), workers=2) as two,
    ):
        assert two.evaluate(documents) == one.evaluate(documents)
