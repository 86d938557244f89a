"""`cpl worker`, `cpl run` and `cpl signal`: run deployed workflows on their engines.

`run` starts a run of one workflow on its target through the engine's runner (Temporal: the
interpreter with the workflow's published spec payload; Step Functions: StartExecution of its
state machine) and, with `--wait`, reports the run JSON (docs/runtime.md). `worker` hosts cpl's side
of runs (Temporal: the interpreter on the target's task queue); `signal` talks to a running
run. Engines without a runner or worker say so; the engine bundles are in `engines/`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from controlplane.cli.access import token_option
from controlplane.cli.output import (
    Duration,
    console_for,
    echo,
    emit,
    format_option,
    repo_option,
    to_json,
)
from controlplane.cli.selection import find_workflow, select_target, target_named
from controlplane.engines import ENGINES, engine_named
from controlplane.engines.faults import FaultPlan, load_fault_plan
from controlplane.engines.runs import RUNNING, Runner, spec_steps, spec_trace
from controlplane.errors import ConfigError, ExitCode
from controlplane.outages import carry_out_outages, check_outages
from controlplane.redaction import mask_secrets, redact_run_error
from controlplane.runstats import format_seconds, seconds_between
from controlplane.spec.environment import Environment, Target
from controlplane.spec.load import load_environment, load_workflows
from controlplane.spec.model import Workflow
from controlplane.spec.run_input import check_run_input
from controlplane.tracing import command_span, tracing

if TYPE_CHECKING:
    from controlplane.identity.abac import Operation

DEFAULT_WAIT = "10m"
MAX_WAIT = 7 * 86400.0


def _env_option(func: Any) -> Any:
    return click.option("--env", "env_name", required=True, help="The environment.")(func)


# --- cpl worker ---------------------------------------------------------------------------


@click.command("worker")
@_env_option
@click.option(
    "--target", "target_name", required=True, help="A target of ENV whose engine has a worker."
)
@click.option(
    "--metrics-port",
    "metrics",
    default=None,
    metavar="[HOST:]PORT",
    envvar="CPL_WORKER_METRICS",
    help="Serve Prometheus metrics there (default: the target's prometheus.workerMetrics; "
    "a bare PORT listens on 127.0.0.1).",
)
@repo_option
def worker_command(env_name: str, target_name: str, metrics: str | None, repo: Path) -> int:
    """Run the worker that hosts cpl's workflow interpreter (Temporal targets).

    Polls the target's task queue in its namespace until Ctrl-C (or SIGTERM), then lets
    running workflow tasks finish and exits 0. Dead letters go to the queues bound in ENV
    (SQS through spec.aws), else to the spool under .cpl/dlq/ENV (see cpl dlq).
    """
    from controlplane.cli.drift_fanout import FanoutHost
    from controlplane.deadletters.outbox import Outbox

    environment = load_environment(repo, env_name)
    target = target_named(environment, target_name)
    worker = engine_named(target.engine).worker
    if worker is None:
        hosts = [e.name for e in ENGINES.values() if e.worker is not None]
        raise ConfigError(
            f"target '{target.name}' of environment '{environment.name}' is a {target.engine} "
            f"target; cpl worker serves {_either(hosts)} targets"
        )
    # the worker's payload codec offloads by the thresholds of the target's workflows
    workflows = tuple(loaded.model for loaded in load_workflows(repo).workflows)
    from controlplane.audit import Auditor

    auditor = Auditor.for_environment(repo, environment)
    with tracing(environment, repo):  # the runs' spans, where the environment asks for them
        worker()(
            target,
            dead_letters=Outbox.for_repo(repo, environment),
            announce=lambda line: echo(line, err=True),
            environment=environment,
            workflows=workflows,
            drift=FanoutHost(repo),  # the shards of `cpl drift --on temporal`
            repo=repo,  # the local key rings of payload encryption
            metrics=_metrics_address(metrics, target),
            # the interpreter's signal events (accepted, refused) go to the environment's trail
            audit=lambda kind, subject, data, classification: auditor.emit(
                kind, subject, data, classification=classification
            ),
        )
    echo("worker stopped", err=True)
    return int(ExitCode.OK)


def _metrics_address(option: str | None, target: Target) -> str | None:
    """`--metrics-port` as `host:port`, else the target's `prometheus.workerMetrics`."""
    if option is None:
        return target.prometheus.worker_metrics if target.prometheus is not None else None
    host, _, port = option.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--metrics-port {option!r}: expected PORT or HOST:PORT (1-65535)")
    return f"{host or '127.0.0.1'}:{port}"


# --- cpl run ------------------------------------------------------------------------------


@click.command("run")
@click.argument("workflow_ref", metavar="WORKFLOW")
@_env_option
@click.option("--target", "target_name", default=None, help="Required if several targets match.")
@click.option(
    "--input",
    "input_text",
    default=None,
    metavar="JSON|@FILE",
    help="The run's input document (JSON text, or @FILE). Default: {}.",
)
@click.option("--wait", is_flag=True, help="Wait for the run to end and report it.")
@click.option(
    "--inject",
    "inject",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Inject the faults of a fault plan (YAML/JSON) into the run (development only).",
)
@click.option(
    "--timeout",
    type=Duration(min=0.001, max=MAX_WAIT),
    default=DEFAULT_WAIT,
    show_default=True,
    metavar="D",
    help="With --wait: how long to wait (a duration such as 90s, 10m).",
)
@token_option
@repo_option
@format_option("json")
def run_command(
    workflow_ref: str,
    env_name: str,
    target_name: str | None,
    input_text: str | None,
    wait: bool,
    inject: Path | None,
    timeout: float,
    token: str | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Start a run of a deployed workflow on its target (WORKFLOW: tenant/name or a file).

    Prints the run id; with --wait, waits (at most --timeout) and reports status, output,
    error, trace, step timings and events (secrets masked; the error text of a pii/phi/pci workflow
    redacted, see docs/security.md). Exits 1 if the run failed, was cancelled or is still
    running when the wait ends. --inject FILE runs the fault plan of FILE (development
    environments only, see docs/runtime.md). Where ENV declares spec.identity, --token (or
    CPL_TOKEN) must be a valid token allowed by the workflow's access.start (exit 3 if not).
    """
    run_input = _input(input_text)
    environment = load_environment(repo, env_name)
    workflow = find_workflow(repo, workflow_ref)
    target = select_target(environment, workflow, target_name)
    allowed = _authorize(repo, environment, workflow, target, token, "start")
    faults = _fault_plan(inject, environment, workflow) if inject is not None else None
    if faults is not None and faults.outages:
        if not wait:
            raise ConfigError(
                "--inject: outages happen while cpl run waits for the run: add --wait"
            )
        check_outages(faults, str(inject), repo, environment, target)
    runner = _runner(target, workflow, environment, repo)
    check_run_input(workflow, run_input)
    # the command's span is the root of the run's trace (docs/runtime.md, "Tracing")
    attributes = {"cpl.workflow": workflow.key, "cpl.target": target.name}
    with command_span(environment, repo, "cpl run", attributes):
        run_id = runner.start(workflow, target, environment, run_input, faults=faults)
    _audit_start(repo, environment, workflow, target, run_id, allowed)
    if faults is not None and faults.outages:
        deadline = time.monotonic() + timeout
        announce = lambda line: echo(line, err=True)  # noqa: E731
        carry_out_outages(faults, runner, target, repo, environment, run_id, deadline, announce)
        timeout = max(deadline - time.monotonic(), 0.001)
    outcome = runner.outcome(target, run_id, timeout) if wait else RUNNING
    report: dict[str, Any] = {
        "workflow": workflow.key,
        "target": target.name,
        "engine": target.engine,
        "runId": run_id,
        **outcome,
        "trace": spec_trace(outcome["trace"], workflow),
        "steps": spec_steps(outcome.get("steps", []), workflow),
        # engines echo run data in error text: redacted by the workflow's classification
        "error": redact_run_error(outcome["error"], workflow.metadata.classification),
        "output": mask_secrets(outcome["output"]),
    }
    if output_format == "json":
        emit(to_json(report), output_file)
    else:
        _print_run(report, waited=wait)
        if output_file is not None:
            emit(to_json(report), output_file)
    if outcome["status"] == "succeeded" or (not wait and outcome["status"] == "running"):
        return int(ExitCode.OK)
    if outcome["status"] == "running":
        echo(f"error: run {run_id} still running after {timeout:g}s", err=True)
    return int(ExitCode.ERROR)


def _fault_plan(path: Path, environment: Environment, workflow: Workflow) -> FaultPlan:
    """The fault plan in `path`, checked against the workflow; never outside development."""
    if environment.tier != "development":
        raise ConfigError(
            f"--inject: environment '{environment.name}' is a {environment.tier} environment; "
            "faults are injected only into runs on development environments"
        )
    plan = load_fault_plan(path)
    plan.check(workflow, str(path))
    return plan


def _runner(target: Target, workflow: Workflow, environment: Environment, repo: Path) -> Runner:
    """The runner of the target's engine; a ConfigError saying how to run it otherwise."""
    engine = engine_named(target.engine)
    if engine.runner is None:
        runnable = [e.title for e in ENGINES.values() if e.runner is not None]
        hint = f": {engine.run_hint(workflow)}" if engine.run_hint is not None else ""
        raise ConfigError(
            f"cpl run starts {_either(runnable, 'and')} runs; target '{target.name}' is "
            f"{target.engine}{hint}"
        )
    return engine.runner(environment, repo)


def _either(names: list[str], word: str = "or") -> str:
    """`a`, `a or b`, `a, b or c`."""
    if len(names) < 2:
        return "".join(names) or "no"
    return f"{', '.join(names[:-1])} {word} {names[-1]}"


def _print_run(report: dict[str, Any], waited: bool) -> None:
    console = console_for()
    head = f"{report['workflow']} on {report['target']} ({report['engine']})"
    if not waited:
        console.print(f"started {head}", markup=False)
        console.print(f"run id: {report['runId']}", markup=False)
        return
    style = {"succeeded": "green", "running": "yellow"}.get(report["status"], "red")
    console.print(f"{head}: run {report['runId']}", markup=False)
    console.print(f"status: {report['status']}", style=style, markup=False)
    if report["trace"]:
        console.print("trace: " + " → ".join(report["trace"]), markup=False)
    for step in report["steps"]:
        took = format_seconds(seconds_between(step["started"], step["ended"]))
        console.print(
            f"step: {step['name']} {step['status']} {took} (started {step['started']})",
            style="red" if step["status"] == "failed" else None,
            markup=False,
        )
    if report["error"]:
        error = report["error"]
        console.print(f"error: {error['error']}: {error['cause']}", style="red", markup=False)
    for event in report.get("events") or []:
        detail = "".join(
            [
                f" attempt {event['attempt']}" if event["attempt"] is not None else "",
                f" ({event['error']})" if event["error"] else "",
            ]
        )
        console.print(f"event: {event['step']} {event['kind']}{detail}", markup=False)
    if report["output"] is not None:
        console.print("output: " + json.dumps(report["output"], indent=2), markup=False)


def _input(text: str | None) -> Any:
    if text is None:
        return {}
    source = "--input"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise click.BadParameter(f"cannot read {path}: {error}", param_hint="--input") from None
        source = str(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"{source} is not JSON: {error}", param_hint="--input") from None


# --- cpl signal ---------------------------------------------------------------------------


@click.command("signal")
@click.argument("run_id")
@click.argument("signal_name", metavar="SIGNAL")
@click.argument("argument", metavar="[JSON]", required=False)
@_env_option
@click.option("--target", "target_name", required=True, help="The target of the run.")
@click.option(
    "--workflow",
    "workflow_ref",
    default=None,
    help="The run's workflow (tenant/name; default: found from the run id).",
)
@token_option
@repo_option
@format_option("json")
def signal_command(
    run_id: str,
    signal_name: str,
    argument: str | None,
    env_name: str,
    target_name: str,
    workflow_ref: str | None,
    token: str | None,
    repo: Path,
    output_format: str,
    output_file: Path | None,
) -> int:
    """Send a signal to a running run (Temporal: approvals, `pause`, `resume`, `skip`).

    An approval takes `{"approved": true}`: where ENV declares spec.identity, cpl adds your
    token (--token or CPL_TOKEN) and the interpreter verifies it; elsewhere the self-declared
    `{"approved": true, "by": "alice", "roles": ["controller"]}`. `skip` takes a step name
    (plain or as a JSON string); `pause` and `resume` take nothing. Checked against the
    workflow's access.signal (approvals) or access.admin (pause, resume, skip): exit 3 if
    denied.
    """
    args = _signal_args(signal_name, argument)
    environment = load_environment(repo, env_name)
    target = target_named(environment, target_name)
    workflow = _run_workflow(repo, run_id, workflow_ref)
    operation: Operation = "admin" if signal_name in ADMIN_SIGNALS else "signal"
    allowed = _authorize(repo, environment, workflow, target, token, operation)
    args = _signed_args(signal_name, args, environment, allowed, token)
    engine = engine_named(target.engine)
    runner = engine.runner(environment, repo) if engine.runner is not None else None
    if runner is None or not runner.signals:
        takers = [
            e.name
            for e in ENGINES.values()
            if e.runner is not None and e.runner(environment).signals
        ]
        raise ConfigError(
            f"target '{target.name}' of environment '{environment.name}' is a {target.engine} "
            f"target; its runs take no signals (cpl signal needs a {_either(takers)} target)"
        )
    attributes = {"cpl.run_id": run_id, "cpl.signal": signal_name, "cpl.target": target.name}
    with command_span(environment, repo, "cpl signal", attributes):
        runner.signal(target, run_id, signal_name, args)
    report = {"runId": run_id, "target": target.name, "signal": signal_name, "sent": True}
    if output_format == "json":
        emit(to_json(report), output_file)
    else:
        console_for().print(f"sent {signal_name} to run {run_id} on {target.name}", markup=False)
    return int(ExitCode.OK)


def _signal_args(name: str, argument: str | None) -> list[Any]:
    if name in ("pause", "resume"):
        if argument is not None:
            raise click.BadParameter(f"{name} takes no argument", param_hint="JSON")
        return []
    if argument is None:
        if name == "skip":
            raise click.BadParameter("skip needs the name of the step to skip", param_hint="JSON")
        return []
    try:
        return [json.loads(argument)]
    except json.JSONDecodeError as error:
        if name == "skip":  # a bare step name
            return [argument]
        raise click.BadParameter(f"not JSON: {error}", param_hint="JSON") from None


# --- who runs and signals (docs/security.md, "Identity" and "Access") ----------------------

ADMIN_SIGNALS = frozenset({"pause", "resume", "skip"})


def _run_workflow(repo: Path, run_id: str, reference: str | None) -> Workflow | None:
    """The workflow of a run: `--workflow`, else the one whose `<tenant>-<name>-` prefixes
    the run id (the longest such), else None."""
    if reference is not None:
        return find_workflow(repo, reference)
    found = [
        loaded.model
        for loaded in load_workflows(repo).workflows
        if run_id.startswith(f"{loaded.model.metadata.tenant}-{loaded.model.metadata.name}-")
    ]
    return max(found, key=lambda w: len(w.key), default=None)


def _authorize(
    repo: Path,
    environment: Environment,
    workflow: Workflow | None,
    target: Target,
    token: str | None,
    operation: Operation,
) -> Any:
    """The `Allowed` of the command's principal (exit 3 when denied). Without spec.identity:
    development keeps self-declared principals, staging warns, production refuses
    self-declared approvals and admin signals."""
    from controlplane.identity.abac import authorize, deny, principal_for
    from controlplane.identity.principal import token_from

    if environment.spec.identity is None:
        principal = principal_for(repo, environment, None, operation)
        if environment.tier == "production" and operation in ("signal", "admin"):
            deny(repo, environment, principal, operation, workflow,
                 target=target.name, rule="spec.identity",
                 reason="production signals need verified principals",
                 message=f"access denied: environment '{environment.name}' is a production "
                 "environment without spec.identity: approvals and admin signals need verified "
                 "principals (declare spec.identity)")  # fmt: skip
        if environment.tier != "development":
            echo(
                f"warning: environment '{environment.name}' declares no spec.identity: "
                f"{operation} by a self-declared principal is not verified",
                err=True,
            )
        return authorize(repo, environment, principal, operation, workflow)
    if workflow is None:
        raise ConfigError("cannot tell the run's workflow from its id: give --workflow tenant/name")
    principal = principal_for(
        repo,
        environment,
        token_from(token),
        operation,
        workflow,
        target=target.name,
    )
    return authorize(
        repo,
        environment,
        principal,
        operation,
        workflow,
        target=target.name,
    )


def _audit_start(
    repo: Path,
    environment: Environment,
    workflow: Workflow,
    target: Target,
    run_id: str,
    allowed: Any,
) -> None:
    from controlplane.audit import RUN_STARTED, Auditor

    Auditor.for_environment(repo, environment).emit(
        RUN_STARTED,
        workflow.key,
        {
            **allowed.audit(),
            "operation": "start",
            "workflow": workflow.key,
            "target": target.name,
            "runId": run_id,
        },
        classification=workflow.metadata.classification,
    )


def _signed_args(
    name: str, args: list[Any], environment: Environment, allowed: Any, token: str | None
) -> list[Any]:
    """The signal's arguments with the sender's token where the environment declares an
    identity (the interpreter verifies it); self-declared `by`/`roles` are dropped."""
    from controlplane.identity.principal import token_from

    if environment.spec.identity is None:
        return args
    auth: dict[str, Any] = {"token": token_from(token)}
    if allowed.grant is not None:
        auth["grant"] = allowed.grant
    if name in ("pause", "resume"):
        return [auth]
    if name == "skip":
        return [{"step": args[0], **auth}]
    answer = args[0] if args else None
    if not isinstance(answer, dict) or not isinstance(answer.get("approved"), bool):
        raise click.BadParameter(
            'an approval takes {"approved": true} or {"approved": false}', param_hint="JSON"
        )
    return [{"approved": answer["approved"], **auth}]
