"""The rules rendered from slo and alerts: promtool accepts every file, thresholds keep the
spec's units, and each target's file is a shared resource of its own."""

from __future__ import annotations

import http.server
import itertools
import json
import shutil
import subprocess
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.engines import ENGINES
from controlplane.engines.argo import metrics as argo
from controlplane.engines.live import ResourceError
from controlplane.engines.temporal import rules as temporal
from controlplane.engines.temporal.devserver import free_port
from controlplane.monitoring.rules import (
    MetricSource,
    Monitored,
    RuleSettings,
    duration_buckets,
    le,
    prom_duration,
    rules_document,
    rules_text,
)
from controlplane.pipeline import desired_state

ROOT = Path(__file__).resolve().parents[2]
SOURCES: dict[str, tuple[MetricSource, Any]] = {
    "temporal": (temporal.METRICS, temporal.monitored),
    "argo": (argo.METRICS, argo.monitored),
}


def promtool(*files: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (make tools installs it)")
    return subprocess.run(
        [binary, "check", "rules", *map(str, files)], capture_output=True, text=True, timeout=60
    )


EXAMPLE_ENVIRONMENTS = sorted(path.stem for path in (ROOT / "environments").glob("*.yaml"))
NO_METRIC = {"stepfunctions": {"pendingTasks", "retries"}, "argo": {"retries"}}
"""The alert metrics an engine publishes nothing for (docs/alerts.md): no alarm or rule."""


def _example_rules(tmp_path: Path) -> list[Path]:
    """The rules file apply delivers to every Temporal and Argo target of every example
    environment (their `shared:rules/<target>` artifacts)."""
    files = []
    for name in EXAMPLE_ENVIRONMENTS:
        desired = desired_state(ROOT, name)
        for (key, target), artifact in sorted(desired.artifacts.items()):
            if key.startswith("shared:rules/"):
                file = tmp_path / f"{name}-{desired.environment.target(target).engine}-{target}.yml"
                file.write_text(rules_text(artifact.document["rules"]))
                files.append(file)
    return files


def test_promtool_accepts_the_rules_of_every_example_environment_target(tmp_path: Path) -> None:
    files = _example_rules(tmp_path)
    for name in EXAMPLE_ENVIRONMENTS:  # every environment delivers rules to both engines
        engines = {file.name.split("-")[1] for file in files if file.name.startswith(f"{name}-")}
        assert engines == {"temporal", "argo"}, (name, [f.name for f in files])
    checked = promtool(*files)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("SUCCESS") == len(files)


def _expected(workflow: Any) -> list[tuple[str, str, str]]:
    """(feature, alert index or objective, metric) of each alert and SLO objective."""
    spec = workflow.spec
    found = [(f"alerts.{a.metric}", str(i), a.metric) for i, a in enumerate(spec.alerts or [])]
    if spec.slo is not None:
        if spec.slo.success_rate is not None:
            found.append(("slo.successRate", "successRate", ""))
        times = spec.slo.completion_time
        for quantile in ("p50", "p95", "p99"):
            if times is not None and getattr(times, quantile) is not None:
                found.append(("slo.completionTime", f"completionTime.{quantile}", ""))
    return found


def _delivered(desired: Any, workflow: Any, target: str) -> set[str]:
    """The alert indexes and objectives the target's monitoring holds for the workflow."""
    engine = desired.environment.target(target).engine
    tenant, name = workflow.metadata.tenant, workflow.metadata.name
    if engine == "stepfunctions":
        alarms = desired.artifacts[(workflow.key, target)].document.get("alarms") or {}
        prefix = f"cpl-{tenant}-{name}-"
        held = set()
        for alarm in alarms:
            rest = alarm.removeprefix(prefix)
            if rest.startswith("alert"):
                held.add(rest.removeprefix("alert").split("-")[0])
            else:  # slo-successRate, slo-completionTime-p95
                held.add(rest.removeprefix("slo-").replace("-", "."))
        return held
    rules = desired.artifacts.get((f"shared:rules/{target}", target))
    assert rules is not None, f"{desired.environment.name}: no rules file for {target}"
    assert workflow.key in rules.shared_by
    held = set()
    for group in rules.document["rules"]["groups"]:
        for rule in group["rules"]:
            labels = rule.get("labels", {})
            if "alert" in rule and (labels["tenant"], labels["workflow"]) == (tenant, name):
                held.add(labels.get("cpl_alert") or labels["objective"])
    return held


@pytest.mark.parametrize("environment", EXAMPLE_ENVIRONMENTS)
def test_every_alert_and_objective_of_the_example_repo_reaches_its_monitoring(
    environment: str,
) -> None:
    desired = desired_state(ROOT, environment)
    checked = 0
    for workflow in desired.workflows:
        expected = _expected(workflow)
        placed = [t for (key, t) in desired.artifacts if key == workflow.key]
        if not expected:
            continue
        assert placed, f"{environment}: {workflow.key} is placed on no target"
        for target in placed:
            engine = desired.environment.target(target).engine
            held = _delivered(desired, workflow, target)
            support = {r.feature: r for r in desired.artifacts[(workflow.key, target)].support}
            for feature, entry, metric in expected:
                where = f"{environment}: {workflow.key} @ {target}: {entry} ({feature})"
                if metric in NO_METRIC.get(engine, set()):
                    assert entry not in held, where
                    assert support[feature].support != "exact" and support[feature].reason, where
                else:
                    assert entry in held, where
                checked += 1
    assert checked > 20  # the example repo declares alerts and objectives on every engine


def _corpus() -> list[Monitored]:
    """Workflows with every kind of objective and alert, at the edges of their values."""
    alerts: list[list[dict[str, Any]]] = [
        [{"metric": "failureRate", "above": ratio, "window": window}]
        for ratio, window in itertools.product((0.0, 0.005, 0.02, 1.0), (None, 0.25, 90, 5400))
    ]
    alerts += [
        [{"metric": "duration", "above": seconds, "window": 86400}]
        for seconds in (0.25, 1, 90, 5400, 18000, 172800)
    ]
    alerts += [
        [{"metric": metric, "above": count, "window": window}]
        for metric in ("pendingTasks", "retries")
        for count, window in ((0, None), (50, 300), (10**6, 3600))
    ]
    slos: list[dict[str, Any]] = [
        {},
        {"successRate": 1.0},
        {"successRate": 0.995, "completionTime": {"p50": 0.5, "p95": 600, "p99": 5400}},
        {"completionTime": {"p99": 259200}},
    ]
    found = []
    for index, (alert, slo) in enumerate(itertools.product(alerts, slos)):
        found.append(
            Monitored(
                tenant="t-" + str(index % 3),
                name=f"w-{index}",
                namespace='odd "name\\space' if index % 7 == 0 else "payments",
                slo=slo,
                alerts=tuple(alert),
                task_queues=("orders", "orders.v2") if index % 2 else (),
            )
        )
    return found


@pytest.mark.parametrize("engine", sorted(SOURCES))
def test_promtool_accepts_a_generated_corpus(engine: str, tmp_path: Path) -> None:
    source, _ = SOURCES[engine]
    files = []
    for index, settings in enumerate((RuleSettings(), RuleSettings(slo_window=60, interval=1))):
        file = tmp_path / f"corpus-{index}.rules.yml"
        file.write_text(rules_text(rules_document(_corpus(), source, settings)))
        files.append(file)
    checked = promtool(*files)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _rules(monitored: Monitored, source: MetricSource = temporal.METRICS) -> list[dict[str, Any]]:
    document = yaml.safe_load(rules_text(rules_document([monitored], source)))
    (group,) = document["groups"]
    rules: list[dict[str, Any]] = group["rules"]
    return rules


def test_thresholds_and_windows_stay_in_the_specs_units() -> None:
    monitored = Monitored(
        tenant="retail",
        name="orders",
        namespace="shop",
        slo={"successRate": 0.995, "completionTime": {"p95": 600}},
        alerts=(
            {"metric": "failureRate", "above": 0.02, "window": 900},
            {"metric": "duration", "above": 18000},
            {"metric": "retries", "above": 50, "window": 300},
            {"metric": "pendingTasks", "above": 200, "window": 3600},
        ),
        task_queues=("orders",),
    )
    by_name = {rule.get("alert") or rule["record"]: rule for rule in _rules(monitored)}
    failure = by_name["CplFailureRate"]
    assert failure["expr"].endswith("> 0.02") and "[15m]" in failure["expr"]
    assert 'status="failed"' in failure["expr"]
    assert failure["labels"] == {
        "tenant": "retail",
        "workflow": "orders",
        "namespace": "shop",
        "metric": "failureRate",
        "window": "15m",
        "cpl_alert": "0",
    }
    duration = by_name["CplRunDuration"]
    assert 'le="18000"' in duration["expr"] and "[5m]" in duration["expr"]  # default window
    assert by_name["CplRetries"]["expr"].endswith("> 50")
    pending = by_name["CplPendingTasks"]
    assert pending["for"] == "1h" and 'taskqueue=~"orders"' in pending["expr"]
    assert by_name["CplSuccessRateObjective"]["expr"].endswith("< 0.995")
    completion = by_name["CplCompletionTimeObjective"]
    assert 'le="600"' in completion["expr"] and completion["expr"].endswith("< 0.95")
    assert by_name["cpl:run_duration_seconds:p95"]["expr"].startswith("histogram_quantile(0.95,")


def test_engines_without_a_metric_render_no_rule_for_it() -> None:
    monitored = Monitored("retail", "orders", "shop", {}, ({"metric": "retries", "above": 5},))
    assert rules_document([monitored], argo.METRICS) == {"groups": []}


def test_worker_buckets_include_every_duration_threshold() -> None:
    monitored = Monitored(
        "retail",
        "orders",
        "shop",
        {"completionTime": {"p50": 42.5, "p99": 259200}},
        ({"metric": "duration", "above": 18000},),
    )
    buckets = duration_buckets([monitored])
    assert {42.5, 259200.0, 18000.0} <= set(buckets) and list(buckets) == sorted(buckets)
    assert [le(b) for b in (18000.0, 0.5, 42.5)] == ["18000", "0.5", "42.5"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(900, "15m"), (5400, "1h30m"), (0.25, "250ms"), (90, "1m30s"), (172800, "2d")],
)
def test_windows_are_prometheus_durations(seconds: float, text: str) -> None:
    assert prom_duration(seconds) == text


ENVIRONMENT = """
apiVersion: cpl.dev/v1
kind: Environment
metadata: {name: mon}
spec:
  tier: development
  targets:
    - name: temporal-a
      engine: temporal
      address: 127.0.0.1:7233
      namespace: shop
      taskQueue: cpl
      prometheus: {rulesDir: monitoring/rules}
    - name: temporal-b
      engine: temporal
      address: 127.0.0.1:7233
      namespace: shop
      taskQueue: cpl
    - name: argo
      engine: argo
      path: deploy/argo
      namespace: batch
      prometheus: {rulesDir: monitoring/rules}
"""

WORKFLOW = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {{name: {name}, tenant: retail, version: 1.0.0, owner: team-orders}}
spec:
  start: done
  steps:
    - {{name: done, type: succeed}}
{extra}
"""


def _repo(tmp_path: Path) -> Path:
    (tmp_path / "environments").mkdir()
    (tmp_path / "workflows" / "retail").mkdir(parents=True)
    (tmp_path / "environments" / "mon.yaml").write_text(textwrap.dedent(ENVIRONMENT))
    extra = "  alerts:\n    - {metric: failureRate, above: 2%, window: 15m}"
    for name, text in (("orders", extra), ("quiet", "")):
        (tmp_path / "workflows" / "retail" / f"{name}.yaml").write_text(
            WORKFLOW.format(name=name, extra=text)
        )
    return tmp_path


def test_a_target_with_prometheus_settings_gets_one_rules_file_shared_by_its_workflows(
    tmp_path: Path,
) -> None:
    desired = desired_state(_repo(tmp_path), "mon")
    rules = {key: a for key, a in desired.artifacts.items() if key[0].startswith("shared:rules/")}
    assert sorted(rules) == [
        ("shared:rules/argo", "argo"),
        ("shared:rules/temporal-a", "temporal-a"),
    ]
    temporal_rules = rules[("shared:rules/temporal-a", "temporal-a")]
    assert temporal_rules.shared_by == ("retail/orders",)  # `quiet` declares nothing
    assert temporal_rules.document["file"] == "monitoring/rules/temporal-a.rules.yml"
    (group,) = temporal_rules.document["rules"]["groups"]
    assert group["name"] == "cpl/shop/retail/orders"
    argo_rules = rules[("shared:rules/argo", "argo")]
    assert (
        "argo_workflows_cpl_runs_total"
        in argo_rules.document["rules"]["groups"][0]["rules"][0]["expr"]
    )


def test_the_rules_file_is_written_read_back_diffed_and_deleted(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    desired = desired_state(repo, "mon")
    environment = desired.environment
    for target_name in ("temporal-a", "argo"):
        artifact = desired.artifacts[(f"shared:rules/{target_name}", target_name)]
        target = environment.target(target_name)
        client = ENGINES[target.engine].connect(target, environment, repo=repo)
        assert client.read(artifact) is None
        live = client.create(artifact)
        assert live.digest == artifact.digest and client.diff(artifact, live) == []
        assert client.desired_document(artifact, live) == live.document
        path = repo / artifact.document["file"]
        path.write_text(path.read_text().replace("> 0.02", "> 0.2"))
        edited = client.read(artifact)
        assert edited is not None
        (change,) = client.diff(artifact, edited)
        assert change["path"].endswith("/expr")
        client.delete(live.id)
        assert not path.exists() and client.read(artifact) is None


def _reloading(repo: Path, reload_url: str, tier: str = "development") -> None:
    """Give temporal-a of the `mon` environment a reloadUrl, on an environment of `tier`."""
    environment_file = repo / "environments" / "mon.yaml"
    environment_file.write_text(
        environment_file.read_text()
        .replace("tier: development", f"tier: {tier}")
        .replace(
            "prometheus: {rulesDir: monitoring/rules}\n    - name: temporal-b",
            f"prometheus: {{rulesDir: monitoring/rules, reloadUrl: '{reload_url}'}}"
            "\n    - name: temporal-b",
        )
    )


@pytest.mark.parametrize("tier", ["staging", "production"])
def test_a_prometheus_not_running_fails_the_apply_beyond_development(
    tmp_path: Path, tier: str
) -> None:
    repo = _repo(tmp_path)
    _reloading(repo, f"http://127.0.0.1:{free_port()}/-/reload", tier)  # nothing listens
    desired = desired_state(repo, "mon")
    artifact = desired.artifacts[("shared:rules/temporal-a", "temporal-a")]
    target = desired.environment.target("temporal-a")
    client = ENGINES["temporal"].connect(target, desired.environment, repo=repo)
    with pytest.raises(ResourceError, match="the rules are written but Prometheus at") as caught:
        client.create(artifact)
    assert caught.value.transient
    assert (repo / artifact.document["file"]).exists()


def test_a_development_prometheus_not_running_is_a_warning_of_the_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from controlplane.cli import run

    repo = tmp_path
    url = f"http://127.0.0.1:{free_port()}/-/reload"  # nothing listens
    (repo / "environments").mkdir()
    (repo / "workflows" / "retail").mkdir(parents=True)
    (repo / "environments" / "gitops.yaml").write_text(
        textwrap.dedent(ARGO_ONLY).replace(
            "prometheus: {rulesDir: monitoring/rules}",
            f"prometheus: {{rulesDir: monitoring/rules, reloadUrl: '{url}'}}",
        )
    )
    (repo / "workflows" / "retail" / "orders.yaml").write_text(
        textwrap.dedent(COMPLIANT) + "  alerts:\n    - {metric: failureRate, above: 2%}\n"
    )
    apply = ["apply", "--env", "gitops", "--yes", "--repo", str(repo)]
    warning = (
        f"warning: Prometheus at {url} is not running: the rules file "
        "monitoring/rules/argo.rules.yml is written, and Prometheus loads its rules "
        "files when it starts"
    )

    assert run([*apply, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out[out.index("\n{") + 1 :])  # after the plan it applies
    results = {r["workflow"]: r for r in report["results"]}
    rules = results["shared:rules/argo"]
    assert rules["status"] == "applied"
    assert rules["message"] == warning.removeprefix("warning: ")
    assert warning in err  # the lines a person reads, on stderr with --format json
    assert (repo / "monitoring" / "rules" / "argo.rules.yml").exists()
    assert run(["plan", "--env", "gitops", "--repo", str(repo)]) == 0  # recorded: no change


def test_a_development_prometheus_answering_an_error_still_fails_the_apply(
    tmp_path: Path,
) -> None:
    class Refusing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"error loading rules")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        repo = _repo(tmp_path)
        _reloading(repo, f"http://127.0.0.1:{server.server_address[1]}/-/reload")
        desired = desired_state(repo, "mon")
        artifact = desired.artifacts[("shared:rules/temporal-a", "temporal-a")]
        target = desired.environment.target("temporal-a")
        client = ENGINES["temporal"].connect(target, desired.environment, repo=repo)
        with pytest.raises(ResourceError, match=r"refused the reload \(500\)"):
            client.create(artifact)
    finally:
        server.shutdown()
        server.server_close()


def test_support_says_what_each_target_misses(tmp_path: Path) -> None:
    desired = desired_state(_repo(tmp_path), "mon")

    def verdict(target: str) -> tuple[str, str]:
        artifact = desired.artifacts[("retail/orders", target)]
        (record,) = [r for r in artifact.support if r.feature == "alerts.failureRate"]
        return record.support, record.reason

    support, reason = verdict("temporal-a")  # delivered, but blind to runs the server ends
    assert support == "approximated" and "runs the server ends" in reason
    support, reason = verdict("temporal-b")  # no prometheus settings: nothing delivered
    assert support == "approximated"
    assert "target 'temporal-b' names no prometheus.rulesDir" in reason
    assert verdict("argo")[0] == "approximated"  # never run here


ARGO_ONLY = """
apiVersion: cpl.dev/v1
kind: Environment
metadata: {name: gitops}
spec:
  tier: development
  targets:
    - name: argo
      engine: argo
      path: deploy/argo
      namespace: batch
      prometheus: {rulesDir: monitoring/rules}
"""

COMPLIANT = """
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: orders, tenant: retail, version: 1.0.0, owner: team-orders}
spec:
  timeout: 1h
  retention: 7d
  input: {schema: {type: object}}
  start: done
  steps:
    - {name: done, type: succeed}
"""


def test_apply_writes_the_rules_file_and_deletes_it_with_the_last_alert(tmp_path: Path) -> None:
    from controlplane.cli import run

    (tmp_path / "environments").mkdir()
    (tmp_path / "workflows" / "retail").mkdir(parents=True)
    (tmp_path / "environments" / "gitops.yaml").write_text(textwrap.dedent(ARGO_ONLY))
    spec = tmp_path / "workflows" / "retail" / "orders.yaml"
    alerting = COMPLIANT + "  alerts:\n    - {metric: failureRate, above: 2%, window: 15m}\n"
    spec.write_text(textwrap.dedent(alerting))
    rules = tmp_path / "monitoring" / "rules" / "argo.rules.yml"
    apply = ["apply", "--env", "gitops", "--yes", "--repo", str(tmp_path)]

    assert run(apply) == 0
    assert rules.read_text().startswith("# cpl-digest: sha256:")
    assert "argo_workflows_cpl_runs_total" in rules.read_text()
    assert run(["drift", "--env", "gitops", "--repo", str(tmp_path)]) == 0

    spec.write_text(textwrap.dedent(COMPLIANT).replace("1.0.0", "1.0.1"))  # no alert left
    assert run(apply) == 0
    assert not rules.exists()
    assert run(["drift", "--env", "gitops", "--repo", str(tmp_path)]) == 0
