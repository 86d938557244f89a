"""cpl's Temporal interpreter: one workflow type that runs any normalized workflow document.

`payload` is the contract between the Temporal translator and the interpreter, `interpreter`
holds the workflow (kept free of side effects: Temporal's sandbox re-imports it),
`activities` the activities cpl hosts itself, `worker` builds the worker that runs both, and
`devserver` starts the real Temporal dev server for tests and `cpl local up`.
"""

from controlplane.engines.temporal.runtime.payload import (
    DEAD_LETTER_ACTIVITY,
    INTERPRETER_WORKFLOW,
    ActivityBinding,
    DeadLetterBinding,
    DeadLetterMessage,
    InterpreterPayload,
    RunResult,
    RunStatus,
    SpecPayload,
    make_run_payload,
)

__all__ = [
    "DEAD_LETTER_ACTIVITY",
    "INTERPRETER_WORKFLOW",
    "ActivityBinding",
    "DeadLetterBinding",
    "DeadLetterMessage",
    "InterpreterPayload",
    "RunResult",
    "RunStatus",
    "SpecPayload",
    "make_run_payload",
]
