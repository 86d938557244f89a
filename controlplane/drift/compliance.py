"""Is the live state still compliant? The policy library evaluated on the *live* documents.

Each item with a live document gets the policy input `cpl check` builds for its
(workflow, target) — same assembly (`policy.inputs.build_inputs`), same waivers and
enforcement — except that `rendered` is the live document read back from the engine instead
of the artifact rendered from the spec. The workflow part is the spec at the ref drift runs
on: on Step Functions the live definition and configuration are checked as they are; on
Temporal the engine keeps the published spec by digest only, so what the rules see of the live
state is its configuration (tracing, encryption codec, limits), and a changed published
version shows as drift, not as a policy finding.

`compliant` is False when a mandatory, unwaived rule denies on the live input. Missing
resources have nothing live that could violate a rule (compliant); unmanaged resources have
no spec, so no policy can vouch for them (not compliant).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from controlplane.drift.model import DriftItem
from controlplane.engines.translator import Artifact
from controlplane.errors import CplError
from controlplane.policy.decision import evaluate
from controlplane.policy.engine import PolicyEngine
from controlplane.policy.inputs import Rendered, build_inputs
from controlplane.spec.environment import Environment, Target
from controlplane.spec.load import LoadResult
from controlplane.spec.model import Workflow


class _NotLive(CplError):
    """No live document for this (workflow, target): nothing to evaluate there."""


class LiveCompliance:
    """The `assess` step of `detect_drift`: policy verdicts on the live documents."""

    def __init__(
        self,
        loaded: LoadResult,
        environment: Environment,
        engine: PolicyEngine,
        desired: Sequence[Artifact] = (),
        today: dt.date | None = None,
    ) -> None:
        self.loaded = loaded
        self.environment = environment
        self.engine = engine
        self.today = today
        self._compat = {(a.workflow, a.target): [s.to_json() for s in a.support] for a in desired}
        self._files = {w.model.key: w.file for w in loaded.workflows}

    def __call__(self, items: Sequence[DriftItem]) -> list[DriftItem]:
        live = {
            (item.workflow, item.target): item.live
            for item in items
            if item.status in ("in-sync", "modified") and item.live is not None
        }
        wanted = {workflow for workflow, _ in live}
        subset = LoadResult(
            workflows=[w for w in self.loaded.workflows if w.model.key in wanted],
            waivers=self.loaded.waivers,
            texts=self.loaded.texts,
        )

        def rendered(workflow: Workflow, target: Target, _: Environment) -> Rendered:
            document = live.get((workflow.key, target.name))
            if document is None:
                raise _NotLive(f"nothing live for {workflow.key} on {target.name}")
            return Rendered(dict(document), self._compat.get((workflow.key, target.name), []))

        inputs, _ = build_inputs(subset, self.environment, render=rendered)
        decision = evaluate(
            inputs,
            self.environment,
            subset.waivers,
            self.today,
            engine=self.engine,
            locate=self.loaded.locate,
        )
        verdicts = {(r.workflow, r.target): r for r in decision.results}
        assessed = []
        for item in items:
            file = self._files.get(item.workflow or "")
            if item.status == "unmanaged":
                assessed.append(dataclasses.replace(item, compliant=False, file=file))
                continue
            result = verdicts.get((item.workflow or "", item.target))
            if result is None:  # missing: nothing live
                assessed.append(dataclasses.replace(item, compliant=True, file=file))
                continue
            assessed.append(
                dataclasses.replace(
                    item,
                    compliant=not result.denied,
                    violations=tuple(v for v in result.violations if v.denies),
                    file=file,
                )
            )
        return assessed
