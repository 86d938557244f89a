"""Step Functions: the state machine (definition, configuration, tags), its CloudWatch Logs
log group with the retention policy, its EventBridge Scheduler schedule, the EventBridge
rules of its triggers (stepfunctions/triggers.py) and the CloudWatch alarms of its alerts and
SLOs (stepfunctions/alarms.py).

The live document is rebuilt in the artifact's shape from `describe_state_machine` (the
definition parsed back to JSON), `list_tags_for_resource`, `describe_log_groups`,
`get_schedule`, the rules and the alarms, then normalized (`normalize.STEPFUNCTIONS_RULES`).
The resource id is the state machine's ARN.

Deleting keeps the log group: its retention policy is the evidence-keeping control
(`retention` maps onto it), and the logs of past executions must outlive the state machine.
The schedule, the rules and the alarms of the state machine go with it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from controlplane.engines.live import (
    DIGEST_TAG,
    MANAGED_TAG,
    Change,
    LiveResource,
    ResourceError,
    diff_documents,
)
from controlplane.engines.normalize import normalize
from controlplane.engines.retry import (
    DEFAULT_POLICY,
    RetryPolicy,
    is_transient,
    is_unanswered,
    retry,
)
from controlplane.engines.stepfunctions.alarms import CloudWatchAlarms
from controlplane.engines.stepfunctions.aws import aws_client
from controlplane.engines.stepfunctions.breaker import breaker_tables, ensure_circuit_table
from controlplane.engines.stepfunctions.iam import role_name
from controlplane.engines.stepfunctions.roles import Roles
from controlplane.engines.stepfunctions.triggers import EventRules
from controlplane.engines.timeouts import TargetClock, TargetSilent, Timeouts
from controlplane.engines.translator import Artifact
from controlplane.spec.environment import EngineName, Environment, Target

Result = TypeVar("Result")

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_NOT_FOUND = frozenset(
    {"StateMachineDoesNotExist", "ResourceNotFoundException", "ResourceNotFound"}
)
_MACHINE_FIELDS = (
    "roleArn",
    "type",
    "loggingConfiguration",
    "tracingConfiguration",
    "encryptionConfiguration",
)


class StepFunctionsEngine:
    """The live Step Functions resources of one target."""

    engine: EngineName = "stepfunctions"

    def __init__(
        self,
        target: Target,
        environment: Environment,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        ignore: tuple[str, ...] = (),
        clients: dict[str, Any] | None = None,
    ) -> None:
        self.target = target
        self.environment = environment
        self.policy = policy
        self.ignore = ignore
        given = clients or {}
        self.sfn = given.get("stepfunctions") or aws_client(target, "stepfunctions")
        self.logs = given.get("logs") or aws_client(target, "logs")
        self.scheduler = given.get("scheduler") or aws_client(target, "scheduler")
        self.dynamodb = given.get("dynamodb")  # made when a definition has circuit breakers
        self.events = given.get("events") or aws_client(target, "events")
        self.cloudwatch = given.get("cloudwatch") or aws_client(target, "cloudwatch")
        self.iam = given.get("iam")  # made when a role is read or written
        where = target.endpoint or f"AWS {target.region}"
        self.clock = TargetClock(f"{target.name} ({where})", Timeouts.of(target))

    # -- the contract -----------------------------------------------------------------------

    def read(self, artifact: Artifact) -> LiveResource | None:
        document = artifact.document
        schedule = document.get("schedule") or {}
        return self._read(
            self.arn(artifact.resource),
            artifact.resource,
            log_group=document["logGroup"]["name"],
            schedule=(
                schedule.get("GroupName", "default"),
                schedule.get("Name", artifact.resource),
            ),
            role=document.get("role"),
        )

    def create(self, artifact: Artifact) -> LiveResource:
        name = artifact.resource
        document = artifact.document
        config = document["configuration"]
        _check_definition(document["definition"], self._error_for(name))
        self._check_identity(name, document)
        self._ensure_log_group(name, document["logGroup"], config["tags"])
        self._ensure_circuit_tables(name, document["definition"])
        self._roles(name).put(document.get("role"), config["tags"])
        arguments = {
            "name": name,
            "definition": json.dumps(document["definition"], ensure_ascii=False),
            **{key: config[key] for key in _MACHINE_FIELDS if key in config},
            "tags": _tag_list({**config["tags"], DIGEST_TAG: artifact.digest}),
        }
        try:
            self._call(
                name, "create the state machine", lambda: self.sfn.create_state_machine(**arguments)
            )
        except ResourceError as error:
            if "StateMachineAlreadyExists" not in error.message:
                raise
            live = self.read(artifact)  # converge: a re-run after a crash finds it created
            if live is None:
                raise
            return self.update(artifact, live)
        self._put_schedule(name, document.get("schedule"), exists=False)
        self._rules(name).put(document.get("triggers", []), live=[])
        self._alarms(name).put(name, self.arn(name), document.get("alarms", {}))
        return self._must_read(artifact)

    def update(self, artifact: Artifact, live: LiveResource) -> LiveResource:
        name = artifact.resource
        document = artifact.document
        config = document["configuration"]
        _check_definition(document["definition"], self._error_for(name))
        self._check_identity(name, document)
        if config.get("type") != live.document.get("configuration", {}).get("type"):
            before = live.document.get("configuration", {}).get("type")
            raise self._permanent(
                name,
                f"the workflow type cannot change in place ({before} → {config.get('type')}): "
                "delete and create the state machine",
            )
        self._ensure_circuit_tables(name, document["definition"])
        self._roles(name).put(document.get("role"), config["tags"])
        arn = live.id
        fields = {key: config[key] for key in _MACHINE_FIELDS if key in config and key != "type"}
        self._call(
            name,
            "update the state machine",
            lambda: self.sfn.update_state_machine(
                stateMachineArn=arn,
                definition=json.dumps(document["definition"], ensure_ascii=False),
                **fields,
            ),
        )
        wanted = {**config["tags"], DIGEST_TAG: artifact.digest}
        stale = [key for key in live.tags if key not in wanted and not key.startswith("aws:")]
        if stale:
            self._call(
                name, "untag", lambda: self.sfn.untag_resource(resourceArn=arn, tagKeys=stale)
            )
        self._call(
            name,
            "tag",
            lambda: self.sfn.tag_resource(resourceArn=arn, tags=_tag_list(wanted)),
        )
        self._ensure_log_group(name, document["logGroup"], config["tags"])
        desired_schedule = document.get("schedule")
        live_schedule = live.document.get("schedule")
        if desired_schedule is not None:
            self._put_schedule(name, desired_schedule, exists=live_schedule is not None)
        elif live_schedule is not None:
            self._delete_schedule(name, live_schedule["GroupName"], live_schedule["Name"])
        self._rules(name).put(document.get("triggers", []), live.document.get("triggers", []))
        self._alarms(name).put(name, arn, document.get("alarms", {}))
        return self._must_read(artifact)

    def delete(self, resource_id: str) -> None:
        name = resource_id.rsplit(":", 1)[-1]
        for group, schedule in self._schedules_targeting(name, resource_id):
            self._delete_schedule(name, group, schedule)
        rules = self._rules(name)
        for rule in rules.read(resource_id):
            rules.delete(rule)
        self._alarms(name).delete_all(name, resource_id)
        try:
            self._call(
                name,
                "delete the state machine",
                lambda: self.sfn.delete_state_machine(stateMachineArn=resource_id),
            )
        except ResourceError as error:
            if not any(code in error.message for code in _NOT_FOUND):
                raise
        self._roles(name).delete(role_name(name))

    def diff(self, artifact: Artifact, live: LiveResource) -> list[Change]:
        return diff_documents(self.desired_document(artifact, live), live.document)

    def desired_document(self, artifact: Artifact, live: LiveResource) -> dict[str, Any]:
        desired = normalize(self.engine, _plain(artifact.document), self.ignore)
        role = desired.get("role")
        if isinstance(role, dict) and not role.get("managed"):
            # A target's own role is not cpl's to set: what it grants is judged by CPL-P021
            # on the live document, and a live read without the artifact (a listing) has
            # no role block at all.
            live_role = live.document.get("role")
            if not isinstance(live_role, dict):
                desired.pop("role")
            elif "Granted" in live_role:
                role["Granted"] = live_role["Granted"]
        return desired

    def list_managed(self) -> list[LiveResource]:
        """State machines tagged `cpl:managed=true` for this environment (or for none)."""
        found: list[LiveResource] = []
        for machine in self._pages(
            "list state machines", self.sfn.list_state_machines, "stateMachines"
        ):
            arn = machine["stateMachineArn"]
            tags = self._tags(machine["name"], arn)
            if tags.get(MANAGED_TAG) != "true":
                continue
            if tags.get("cpl:environment", self.environment.name) != self.environment.name:
                continue
            live = self._read(
                arn,
                machine["name"],
                log_group=None,
                schedule=("default", machine["name"]),
                role=None,
            )
            if live is not None:
                found.append(live)
        return found

    def inventory(self, known: set[str]) -> list[LiveResource]:
        """State machines tagged `cpl:managed=true` for this environment (or for none) that
        are not in `known`: one listing, then tags for the others only, no descriptions."""
        found: list[LiveResource] = []
        for machine in self._pages(
            "list state machines", self.sfn.list_state_machines, "stateMachines"
        ):
            name, arn = machine["name"], machine["stateMachineArn"]
            if name in known:
                continue
            tags = self._tags(name, arn)
            if tags.get(MANAGED_TAG) != "true":
                continue
            if tags.get("cpl:environment", self.environment.name) != self.environment.name:
                continue
            document = {"kind": "stepfunctions", "name": name}
            found.append(LiveResource(self.engine, self.target.name, name, arn, document, tags))
        return found

    # -- reading ----------------------------------------------------------------------------

    def arn(self, name: str) -> str:
        """`arn:aws:states:<region>:<account>:stateMachine:<name>` (the target's `account`, or
        that of its roleArn)."""
        parts = (self.target.role_arn or "").split(":")
        account = self.target.account or (
            parts[4] if len(parts) > 4 and parts[4] else "123456789012"
        )
        return f"arn:aws:states:{self.target.region}:{account}:stateMachine:{name}"

    def _read(
        self,
        arn: str,
        name: str,
        *,
        log_group: str | None,
        schedule: tuple[str, str],
        role: dict[str, Any] | None,
    ) -> LiveResource | None:
        try:
            described = self._call(
                name, "describe", lambda: self.sfn.describe_state_machine(stateMachineArn=arn)
            )
        except ResourceError as error:
            if any(code in error.message for code in _NOT_FOUND):
                return None
            raise
        described = _plain(described)
        described.pop("ResponseMetadata", None)
        definition = described.pop("definition")
        tags = self._tags(name, arn)
        if log_group is None:
            log_group = _log_group_of(described)
        document: dict[str, Any] = {
            "kind": "stepfunctions",
            "name": described.get("name", name),
            "definition": json.loads(definition),
            "configuration": {**described, "tags": tags},
            "logGroup": self._log_group(name, log_group) if log_group else None,
        }
        live_schedule = self._schedule(name, *schedule)
        if live_schedule is not None:
            document["schedule"] = live_schedule
        live_rules = self._rules(name).read(arn)
        if live_rules:
            document["triggers"] = _plain(live_rules)
        live_alarms = self._alarms(name).read(name, arn)
        if live_alarms:
            document["alarms"] = _plain(live_alarms)
        live_role = self._roles(name).read(role, described.get("roleArn"))
        if live_role is not None:
            document["role"] = _plain(live_role)
        return LiveResource(
            engine=self.engine,
            target=self.target.name,
            resource=name,
            id=arn,
            document=normalize(self.engine, document, self.ignore),
            tags=tags,
        )

    def _must_read(self, artifact: Artifact) -> LiveResource:
        live = self.read(artifact)
        if live is None:
            raise self._permanent(artifact.resource, "the state machine vanished right after apply")
        return live

    def _tags(self, name: str, arn: str) -> dict[str, str]:
        response = self._call(
            name, "list tags", lambda: self.sfn.list_tags_for_resource(resourceArn=arn)
        )
        return {tag["key"]: tag["value"] for tag in response.get("tags", [])}

    def _log_group(self, name: str, group: str) -> dict[str, Any] | None:
        for entry in self._pages(
            f"describe log group {group}",
            lambda **kw: self.logs.describe_log_groups(logGroupNamePrefix=group, **kw),
            "logGroups",
            token="nextToken",
        ):
            if entry["logGroupName"] == group:
                found: dict[str, Any] = _plain(entry)
                found["name"] = found.pop("logGroupName")
                return found
        return None

    def _schedule(self, name: str, group: str, schedule: str) -> dict[str, Any] | None:
        try:
            response = self._call(
                name,
                "get the schedule",
                lambda: self.scheduler.get_schedule(Name=schedule, GroupName=group),
            )
        except ResourceError as error:
            if any(code in error.message for code in _NOT_FOUND):
                return None
            raise
        found: dict[str, Any] = _plain(response)
        found.pop("ResponseMetadata", None)
        return found

    def _schedules_targeting(self, name: str, arn: str) -> list[tuple[str, str]]:
        return [
            (entry.get("GroupName", "default"), entry["Name"])
            for entry in self._pages(
                "list schedules", self.scheduler.list_schedules, "Schedules", token="NextToken"
            )
            if entry.get("Target", {}).get("Arn") == arn
        ]

    # -- writing ----------------------------------------------------------------------------

    def _check_identity(self, name: str, document: dict[str, Any]) -> None:
        """A role to run as: the target's roleArn, or its own in the target's account."""
        managed = (document.get("role") or {}).get("managed")
        if managed and not self.target.account:
            raise self._permanent(
                name,
                f"target '{self.target.name}' has no roleArn and no account: set roleArn, or "
                "account (the AWS account of the per-workflow roles)",
            )
        if not managed and not document["configuration"].get("roleArn"):
            raise self._permanent(name, f"target '{self.target.name}' has no roleArn")

    def _ensure_circuit_tables(self, name: str, definition: dict[str, Any]) -> None:
        """The DynamoDB tables of the definition's circuit breakers (breaker.py) exist."""
        for table in sorted(breaker_tables(definition)):
            if self.dynamodb is None:
                self.dynamodb = aws_client(self.target, "dynamodb")
            ensure = functools.partial(ensure_circuit_table, self.dynamodb, table)
            self._call(name, f"create the circuit table {table}", ensure)

    def _ensure_log_group(self, name: str, group: dict[str, Any], tags: dict[str, str]) -> None:
        group_name = group["name"]
        try:
            self._call(
                name,
                f"create log group {group_name}",
                lambda: self.logs.create_log_group(logGroupName=group_name, tags=tags),
            )
        except ResourceError as error:
            if "ResourceAlreadyExistsException" not in error.message:
                raise
        retention = group.get("retentionInDays")
        if retention is None:
            self._call(
                name,
                f"remove the retention of {group_name}",
                lambda: self.logs.delete_retention_policy(logGroupName=group_name),
            )
        else:
            self._call(
                name,
                f"set the retention of {group_name}",
                lambda: self.logs.put_retention_policy(
                    logGroupName=group_name, retentionInDays=retention
                ),
            )

    def _put_schedule(self, name: str, schedule: dict[str, Any] | None, *, exists: bool) -> None:
        if schedule is None:
            return
        if exists:
            self._call(
                name, "update the schedule", lambda: self.scheduler.update_schedule(**schedule)
            )
            return
        try:
            self._call(
                name, "create the schedule", lambda: self.scheduler.create_schedule(**schedule)
            )
        except ResourceError as error:
            if "ConflictException" not in error.message:
                raise
            self._call(
                name, "update the schedule", lambda: self.scheduler.update_schedule(**schedule)
            )

    def _delete_schedule(self, name: str, group: str, schedule: str) -> None:
        try:
            self._call(
                name,
                "delete the schedule",
                lambda: self.scheduler.delete_schedule(Name=schedule, GroupName=group),
            )
        except ResourceError as error:
            if not any(code in error.message for code in _NOT_FOUND):
                raise

    def _roles(self, name: str) -> Roles:
        """The IAM role of state machine `name` (stepfunctions/roles.py)."""
        if self.iam is None:
            self.iam = aws_client(self.target, "iam")
        return Roles(self.iam, lambda action, call: self._call(name, action, call))

    def _rules(self, name: str) -> EventRules:
        """The EventBridge rules of state machine `name` (stepfunctions/triggers.py)."""
        return EventRules(self.events, lambda action, call: self._call(name, action, call))

    def _alarms(self, name: str) -> CloudWatchAlarms:
        """The CloudWatch alarms of state machine `name` (stepfunctions/alarms.py)."""
        return CloudWatchAlarms(
            self.cloudwatch, lambda action, call: self._call(name, action, call)
        )

    # -- calls ------------------------------------------------------------------------------

    def _call(self, resource: str, action: str, operation: Callable[[], Result]) -> Result:
        """One API call with retries until the target's deadline; any failure becomes a
        ResourceError naming `resource`."""
        try:
            deadline = self.clock.start()
        except TargetSilent as silent:
            raise ResourceError(
                f"stepfunctions target '{self.target.name}': cannot {action} of "
                f"'{resource}': {silent}",
                engine=self.engine,
                target=self.target.name,
                resource=resource,
                transient=True,
            ) from None

        def waiting(error: BaseException) -> None:
            if is_unanswered(error):
                self.clock.not_answering(deadline)

        try:
            try:
                return retry(operation, self.policy, deadline=deadline, on_transient=waiting)
            except Exception as error:
                if is_unanswered(error):
                    self.clock.fell_silent()  # the rest of this command fails at once
                raise
        except NoCredentialsError:
            raise self._permanent(
                resource,
                f"cannot {action}: no AWS credentials (configure a profile or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
            ) from None
        except ClientError as error:
            details = error.response.get("Error", {})
            raise ResourceError(
                f"stepfunctions target '{self.target.name}': cannot {action} of "
                f"'{resource}': {details.get('Code', '?')}: {details.get('Message', error)}",
                engine=self.engine,
                target=self.target.name,
                resource=resource,
                transient=is_transient(error),
            ) from None
        except BotoCoreError as error:
            where = self.target.endpoint or f"AWS in {self.target.region}"
            raise ResourceError(
                f"stepfunctions target '{self.target.name}': cannot {action} of '{resource}' "
                f"at {where}: {error}",
                engine=self.engine,
                target=self.target.name,
                resource=resource,
                transient=is_transient(error),
            ) from None

    def _pages(
        self,
        action: str,
        call: Callable[..., dict[str, Any]],
        key: str,
        token: str = "nextToken",
    ) -> Iterator[dict[str, Any]]:
        options: dict[str, Any] = {}
        while True:
            page = self._call(self.target.name, action, functools.partial(call, **options))
            yield from page.get(key, [])
            if not page.get(token):
                return
            options = {token: page[token]}

    def _permanent(self, resource: str, message: str) -> ResourceError:
        return ResourceError(
            f"stepfunctions target '{self.target.name}': '{resource}': {message}",
            engine=self.engine,
            target=self.target.name,
            resource=resource,
        )

    def _error_for(self, resource: str) -> Callable[[str], ResourceError]:
        return lambda message: self._permanent(resource, message)


def create_client(
    target: Target, environment: Environment, *, repo: Path | None = None
) -> StepFunctionsEngine:
    """The registry's factory (`repo` is unused: nothing of Step Functions lives in files)."""
    return StepFunctionsEngine(target, environment)


def _check_definition(definition: Any, error: Callable[[str], ResourceError]) -> None:
    """The structural checks Step Functions makes on create and the emulator skips.

    moto accepts any definition (even text that is not JSON); AWS rejects these with
    InvalidDefinition, so they are caught here before any call, the same on both.
    """
    if not isinstance(definition, dict) or not isinstance(definition.get("States"), dict):
        raise error("invalid definition: no States object")
    states: dict[str, Any] = definition["States"]
    if definition.get("StartAt") not in states:
        raise error(f"invalid definition: StartAt '{definition.get('StartAt')}' is not a state")
    for state_name, state in _all_states(states):
        target = state.get("Next") if isinstance(state, dict) else None
        if target is not None and target not in _sibling_names(states, state_name):
            raise error(
                f"invalid definition: state '{state_name}' has Next '{target}', no such state"
            )


def _all_states(states: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for name, state in states.items():
        yield name, state
        if not isinstance(state, dict):
            continue
        for branch in state.get("Branches", []):
            yield from _all_states(branch.get("States", {}))
        for key in ("Iterator", "ItemProcessor"):
            if isinstance(state.get(key), dict):
                yield from _all_states(state[key].get("States", {}))


def _sibling_names(states: dict[str, Any], name: str) -> set[str]:
    """The state names of the scope that holds `name` (Next never leaves its scope)."""
    if name in states:
        return set(states)
    for state in states.values():
        if not isinstance(state, dict):
            continue
        scopes = [b.get("States", {}) for b in state.get("Branches", [])]
        scopes += [
            state[k].get("States", {})
            for k in ("Iterator", "ItemProcessor")
            if isinstance(state.get(k), dict)
        ]
        for scope in scopes:
            found = _sibling_names(scope, name)
            if found:
                return found
    return set()


def _log_group_of(described: dict[str, Any]) -> str | None:
    """The log group name of the first logging destination (`...:log-group:<name>:*`)."""
    destinations = (described.get("loggingConfiguration") or {}).get("destinations") or []
    for destination in destinations:
        arn = destination.get("cloudWatchLogsLogGroup", {}).get("logGroupArn", "")
        if ":log-group:" in arn:
            return str(arn.split(":log-group:", 1)[1].removesuffix(":*"))
    return None


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in sorted(tags.items())]


def _plain(value: Any) -> Any:
    """JSON values only (datetimes as ISO text), a deep copy."""
    return json.loads(json.dumps(value, default=str))
