"""Lambda calls that carry the task's idempotency key (docs/runtime.md, "Idempotency keys").

A task step with `idempotencyKey` on a Lambda function is rendered with the `lambda:invoke`
integration instead of the function ARN as `Resource`: `Payload` is the task input (so the
function's event is unchanged) and `ClientContext` is the base64 of
`{"custom": {"idempotencyKey": <key>}}`, which the function reads as
`context.client_context.custom["idempotencyKey"]`. The key is the value at the step's
`idempotencyKey` path, resolved on every attempt, so every retry and every run that resolves
the same key passes the same one.

The context is built with intrinsic functions only. Its constant parts are decoded from base64
literals because a `{` in an intrinsic string literal is read differently by engines (AWS
unescapes `\\{`, the emulator keeps the backslash); base64 has no such character.

The integration answers with an envelope (`{"StatusCode", "Payload", ...}`): the result is
unwrapped so the data document looks exactly as with the plain ARN (SPEC: the function's
return value is the result): with `resultPath: $` by `OutputPath: $.Payload`; elsewhere a
`ResultSelector` keeps `{"value": Payload}` at the result path and a Pass state after the task
lifts `value` into its place.
"""

from __future__ import annotations

import base64
from typing import Any

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"

_PREFIX = base64.b64encode(b'{"custom":{"idempotencyKey":').decode()
_SUFFIX = base64.b64encode(b"}}").decode()


def client_context(key_path: str) -> str:
    """The intrinsic expression of the base64 client context carrying the key at `key_path`."""
    json_text = (
        f"States.Format('{{}}{{}}{{}}', States.Base64Decode('{_PREFIX}'), "
        f"States.JsonToString({key_path}), States.Base64Decode('{_SUFFIX}'))"
    )
    return f"States.Base64Encode({json_text})"


def keyed_invocation(state: dict[str, Any], key_path: str) -> dict[str, Any]:
    """`state` (a Task on a Lambda ARN) as a `lambda:invoke` task passing the key.

    Returns the new state; when its result path is neither `$` nor null it keeps
    `{"value": <result>}` there and `unwrap(state)` gives the Pass state that must follow.
    """
    keyed = {k: v for k, v in state.items() if k not in ("Resource", "Parameters")}
    parameters: dict[str, Any] = {"FunctionName": state["Resource"]}
    if "Parameters" in state:
        parameters["Payload"] = state["Parameters"]
    else:
        parameters["Payload.$"] = "$"
    parameters["ClientContext.$"] = client_context(key_path)
    keyed = {"Type": "Task", "Resource": LAMBDA_INVOKE, "Parameters": parameters, **keyed}
    result_path = state.get("ResultPath", "$")
    if result_path == "$":
        keyed["OutputPath"] = "$.Payload"
    elif result_path is not None:
        keyed["ResultSelector"] = {"value.$": "$.Payload"}
    return keyed


def unwrap(state: dict[str, Any]) -> dict[str, Any] | None:
    """The Pass state lifting the function's result into the task's result path, if needed."""
    if "ResultSelector" not in state or state.get("Resource") != LAMBDA_INVOKE:
        return None
    result_path = state["ResultPath"]
    return {"Type": "Pass", "InputPath": f"{result_path}.value", "ResultPath": result_path}
