"""The Temporal side of cpl's tracing (controlplane/tracing.py): the OpenTelemetry interceptor
of temporalio's contrib package on the clients of `cpl run` / `cpl signal` and on `cpl worker`
(a worker takes its client's interceptors), with the tracer of the command being traced.

The client's interceptor starts a `StartWorkflow` span under the command's span and passes its
context in the run's headers; the worker's opens the run's workflow spans under it, and the
interpreter adds one span per step (runtime/tracing.py).
"""

from __future__ import annotations

from temporalio.client import Interceptor

from controlplane.tracing import active_tracer


def tracing_interceptors() -> list[Interceptor]:
    """The interceptors of a client made while a command is traced (none otherwise)."""
    tracer = active_tracer()
    if tracer is None:
        return []
    # imported here: only traced commands load OpenTelemetry
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(tracer)]
