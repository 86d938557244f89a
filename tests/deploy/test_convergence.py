"""The invariant of apply: after a successful apply, `plan` is empty and `drift` is clean.

Hypothesis generates small control repos — workflows on one or two Temporal targets that may
share a namespace (on one server), a Step Functions target, random retentions (none, equal,
conflicting) — applies them to the session's real Temporal dev server and moto, then changes
them (other retentions, a workflow removed, one added) and applies again. After every apply,
`cpl plan` must find nothing to do and `cpl drift` nothing drifted.

Each example gets its own environment name, tenants and namespaces, so examples never see
each other's resources. `derandomize` keeps `make test` repeatable; set
`CPL_CONVERGENCE_EXAMPLES` to explore more (random) examples.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from controlplane.cli import run
from controlplane.engines.temporal.devserver import DevServer
from tests.deploy.conftest import ROOT

pytestmark = pytest.mark.integration

EXPLORE = int(os.environ.get("CPL_CONVERGENCE_EXAMPLES", "0"))
RETENTIONS = (None, "30d", "90d")
TEMPLATES = {"temporal": "finance/month-end-close", "stepfunctions": "retail/inventory-sync"}


@dataclass(frozen=True)
class Spec:
    """One generated workflow: its name, tenant (index), target and retention."""

    name: str
    tenant: int
    target: str  # "t0", "t1" (Temporal) or "sfn"
    retention: str | None


@dataclass(frozen=True)
class Layout:
    """Temporal targets t0/t1 and which namespace (index) each one uses."""

    namespaces: tuple[int, int]


def _specs(names: list[str]) -> st.SearchStrategy[list[Spec]]:
    one = st.builds(
        Spec,
        name=st.sampled_from(names),
        tenant=st.integers(0, 1),
        target=st.sampled_from(["t0", "t0", "t1", "sfn"]),
        retention=st.sampled_from(RETENTIONS),
    )
    return st.lists(one, min_size=1, max_size=4, unique_by=lambda s: (s.tenant, s.name))


layouts = st.builds(Layout, namespaces=st.tuples(st.just(0), st.integers(0, 1)))
rounds = st.tuples(_specs(["a", "b", "c"]), _specs(["a", "b", "d"]))


class Repo:
    """A control repo on the session's engines, written anew for each round."""

    def __init__(self, root: Path, moto: str, temporal: str, layout: Layout) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.root = root
        self.env = f"conv{suffix}"
        self.tenants = [f"ta{suffix}", f"tb{suffix}"]
        namespaces = [f"cpl-conv-{suffix}-{n}" for n in range(2)]
        targets = [
            {
                "name": "sfn",
                "engine": "stepfunctions",
                "region": "us-east-1",
                "endpoint": moto,
                "roleArn": "arn:aws:iam::123456789012:role/cpl-sfn",
                "regulated": True,
                "select": {"labels": {"runtime": "sfn"}},
            },
            *(
                {
                    "name": name,
                    "engine": "temporal",
                    "address": temporal,
                    "namespace": namespaces[layout.namespaces[index]],
                    "taskQueue": "cpl-interpreter",
                    "regulated": True,
                    "select": {"labels": {"runtime": name}},
                }
                for index, name in enumerate(("t0", "t1"))
            ),
        ]
        local = yaml.safe_load((ROOT / "environments/local.yaml").read_text())
        local["metadata"]["name"] = self.env
        local["spec"]["targets"] = targets
        # the invariant is about convergence, not the gates: workflows without retention
        # (CPL-P011) and conflicting retentions in one namespace (CPL-P020) must be applied too
        local["spec"]["policy"]["rules"] = {"CPL-P011": "advisory", "CPL-P020": "advisory"}
        local["spec"]["deploy"]["state"] = f".cpl/state/{self.env}"
        local["spec"]["audit"]["sinks"] = [{"file": f".cpl/audit/{self.env}.jsonl"}]
        (root / "environments").mkdir(parents=True)
        (root / "environments" / f"{self.env}.yaml").write_text(yaml.safe_dump(local))

    def write(self, specs: list[Spec], generation: int) -> None:
        """The workflows of one round; each round is a major version (CPL-P017)."""
        folder = self.root / "workflows"
        for old in folder.rglob("*.yaml") if folder.exists() else []:
            old.unlink()
        for spec in specs:
            engine = "stepfunctions" if spec.target == "sfn" else "temporal"
            tenant, name = TEMPLATES[engine].split("/")
            document = yaml.safe_load((ROOT / "workflows" / tenant / f"{name}.yaml").read_text())
            document["metadata"].update(
                name=spec.name, tenant=self.tenants[spec.tenant], version=f"{generation}.0.0"
            )
            document["metadata"]["labels"]["runtime"] = spec.target
            document["spec"].pop("retention", None)
            if spec.retention is not None:
                document["spec"]["retention"] = spec.retention
            path = folder / self.tenants[spec.tenant] / f"{spec.name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(document, sort_keys=False))

    def cpl(self, *args: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = run([*args, "--env", self.env, "--repo", str(self.root)])
        return code, out.getvalue()

    def converge(self) -> None:
        code, output = self.cpl("apply", "--yes")
        assert code == 0, output
        code, output = self.cpl("plan", "--format", "json")
        assert code == 0, _changes(output)
        code, output = self.cpl("drift", "--format", "json")
        report: dict[str, Any] = json.loads(output[output.index("{") :])
        drifted = [(i["workflow"], i["resource"], i["diff"]) for i in report["items"]]
        assert code == 0 and not report["drifted"], drifted


def _changes(output: str) -> Any:
    try:
        document = json.loads(output[output.index("{") :])
    except ValueError:
        return output
    return [(c["action"], c["workflow"], c["diff"]) for c in document["changes"]]


@settings(
    max_examples=EXPLORE or 6,
    deadline=None,
    derandomize=not EXPLORE,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: an example takes seconds
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(layout=layouts, specs=rounds)
def test_after_apply_plan_is_empty_and_drift_is_clean(
    tmp_path_factory: pytest.TempPathFactory,
    moto_endpoint: str,
    temporal_server: DevServer,
    layout: Layout,
    specs: tuple[list[Spec], list[Spec]],
) -> None:
    root = tmp_path_factory.mktemp("convergence")
    repo = Repo(root, moto_endpoint, temporal_server.address, layout)
    for generation, workflows in enumerate(specs, start=1):
        repo.write(workflows, generation)
        repo.converge()
