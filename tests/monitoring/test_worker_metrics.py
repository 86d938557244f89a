"""`cpl worker --metrics-port`: where the worker serves the interpreter's run metrics."""

from __future__ import annotations

import pytest

from controlplane.cli.runs import _metrics_address
from controlplane.engines.temporal import rules
from controlplane.engines.temporal.runtime import metrics
from controlplane.errors import ConfigError
from controlplane.spec.environment import Target


def target(**prometheus: str) -> Target:
    fields = {"name": "t", "engine": "temporal", "address": "127.0.0.1:7233"}
    fields |= {"namespace": "n", "taskQueue": "q"}
    if prometheus:
        fields["prometheus"] = {"rulesDir": "rules", **prometheus}
    return Target.model_validate(fields)


def test_a_bare_port_listens_on_the_loopback_and_the_target_gives_the_default() -> None:
    assert _metrics_address("9464", target()) == "127.0.0.1:9464"
    assert _metrics_address("0.0.0.0:9464", target()) == "0.0.0.0:9464"
    assert _metrics_address(None, target(workerMetrics="127.0.0.1:9999")) == "127.0.0.1:9999"
    assert _metrics_address(None, target()) is None


@pytest.mark.parametrize("value", ["", "metrics", "127.0.0.1:0", "127.0.0.1:70000"])
def test_a_bad_address_is_refused_naming_the_option(value: str) -> None:
    with pytest.raises(ConfigError, match="--metrics-port"):
        _metrics_address(value, target())


def test_the_rules_read_the_names_the_interpreter_exports() -> None:
    # counters get `_total` from the exporter (counters_total_suffix)
    assert rules.RUNS == metrics.RUNS + "_total"
    assert rules.RETRIES == metrics.RETRIES + "_total"
    assert rules.DURATION == metrics.DURATION
