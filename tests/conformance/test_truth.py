"""Truth in claims: every `exact` Support record of an engine cpl runs here is proven there.

An auditor reads `exact` in `cpl compat`, docs/portability.md and the compliance report as
"the engine carries this out". Here a claim is any construct a translator's FEATURES table
calls exact, or records as exact (a construct the table does not list is exact), when
rendering the example repo or the conformance scenarios. Each must be proven by a
conformance scenario that runs on the engine, or by a dedicated test on the real engine
(tests/conformance/proofs.py): a claim without proof fails here, and must be proven or
downgraded with its reason.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from controlplane.engines import ENGINES
from controlplane.engines.translator import BindingError
from controlplane.spec.environment import EngineName, Environment
from controlplane.spec.load import load_environment, load_repo

from .proofs import DEDICATED, exact_features, scenario_proofs
from .scenarios import RUN_ENGINES, SCENARIOS, environment

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def conformance() -> Environment:
    return environment()


def _claims(engine: EngineName, conformance: Environment) -> set[str]:
    """Every construct claimed exact on `engine`: its table, the examples, the scenarios."""
    table = ENGINES[engine].translator.FEATURES
    claims = {feature for feature, verdict in table.items() if verdict.support == "exact"}
    local = load_environment(REPO, "local")
    target = next(t for t in local.spec.targets if t.engine == engine)
    for loaded in load_repo(REPO).workflows:
        try:
            artifact = ENGINES[engine].translator.render(loaded.model, target, local)
        except BindingError:
            continue
        claims |= {r.feature for r in artifact.support if r.support == "exact"}
    for scenario in SCENARIOS:
        claims |= exact_features(scenario.workflow(), engine, conformance)
    return claims


@pytest.mark.parametrize("engine", RUN_ENGINES)
def test_every_exact_claim_is_proven_on_the_engine(
    engine: EngineName, conformance: Environment
) -> None:
    proven = set(scenario_proofs(conformance)[engine]) | set(DEDICATED.get(engine, {}))
    unproven = sorted(_claims(engine, conformance) - proven)
    assert not unproven, (
        f"exact on {engine} without a conformance scenario or a dedicated test proving it: "
        f"{unproven} (prove each in tests/conformance, or make it approximated with the reason)"
    )


@pytest.mark.parametrize("engine", RUN_ENGINES)
def test_dedicated_proofs_name_claims_and_tests_on_the_real_engine(
    engine: EngineName, conformance: Environment
) -> None:
    claims = _claims(engine, conformance)
    for feature, proofs in DEDICATED.get(engine, {}).items():
        assert feature in claims, f"{feature} is not exact on {engine}: drop its proof"
        for proof in proofs:
            path, _, name = proof.test.partition("::")
            module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
            assert callable(getattr(module, name, None)), f"{proof.test} does not exist"
            marks = getattr(module, "pytestmark", None)
            marks = marks if isinstance(marks, list) else [marks]
            assert any(getattr(mark, "name", None) == "integration" for mark in marks), (
                f"{proof.test} does not run on a real engine (not an integration test)"
            )
