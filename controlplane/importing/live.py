"""Reading a state machine's definition from a Step Functions target of an environment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controlplane.engines import engine_client
from controlplane.errors import ConfigError, EngineError
from controlplane.spec.bounds import beyond_bounds
from controlplane.spec.environment import Environment, Target

MAX_DEFINITION_BYTES = 1024 * 1024
"""Step Functions keeps definitions up to 1 MiB: a longer answer is not one."""


@dataclass(frozen=True)
class LiveMachine:
    """A state machine as read: its ARN, name, definition and tags."""

    arn: str
    name: str
    definition: dict[str, Any]
    tags: dict[str, str]
    target: Target


def stepfunctions_target(environment: Environment, name: str | None) -> Target:
    """The Step Functions target `name`, or the environment's first one."""
    targets = [t for t in environment.spec.targets if t.engine == "stepfunctions"]
    if name is not None:
        targets = [t for t in targets if t.name == name]
    if not targets:
        which = f"named '{name}' " if name else ""
        raise ConfigError(f"environment '{environment.name}' has no stepfunctions target {which}")
    return targets[0]


def read_state_machine(environment: Environment, target: Target, resource: str) -> LiveMachine:
    """The state machine `resource` (an ARN, or a name on `target`)."""
    client: Any = engine_client(target, environment)
    arn = resource if resource.startswith("arn:") else client.arn(resource)
    try:
        described = client.sfn.describe_state_machine(stateMachineArn=arn)
        tags = client.sfn.list_tags_for_resource(resourceArn=arn).get("tags", [])
    except ClientError as error:
        details = error.response.get("Error", {})
        raise ConfigError(
            f"stepfunctions target '{target.name}': cannot read '{resource}': "
            f"{details.get('Code', '?')}: {details.get('Message', error)}"
        ) from None
    except BotoCoreError as error:
        raise EngineError(
            f"stepfunctions target '{target.name}' at {target.endpoint or target.region}: {error}"
        ) from None
    text = str(described.get("definition", ""))
    if len(text.encode("utf-8")) > MAX_DEFINITION_BYTES:
        raise EngineError(f"'{resource}': the definition is larger than Step Functions allows")
    excess = beyond_bounds(text)
    if excess is not None:
        raise EngineError(f"'{resource}': the live definition is {excess.message}")
    try:
        definition = json.loads(text)
    except ValueError:
        raise EngineError(f"'{resource}': the live definition is not JSON") from None
    return LiveMachine(
        arn=arn,
        name=str(described.get("name") or arn.rsplit(":", 1)[-1]),
        definition=definition,
        tags={str(t["key"]): str(t["value"]) for t in tags if isinstance(t, dict)},
        target=target,
    )
