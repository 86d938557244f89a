"""One OpenTelemetry span per executed step of an interpreter run (docs/runtime.md, "Tracing").

Runs whose artifact asks for tracing (`tracing.enabled`, carried in the run payload) get the
spans, through temporalio's contrib API for spans in workflow code (`workflow.completed_span`):
it records nothing while a run replays its history, so a span is exported once, when the step
ends, parented under the span of the client that started the run. Such a span starts and ends
at once (the contrib's interceptor keeps no span open across workflow tasks); the step's
duration on the workflow clock is its `cpl.duration_ms` attribute.

Imported by the workflow sandbox: OpenTelemetry is passed through, as the interceptor that
reads the context is, so both see one context.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import opentelemetry.trace
    from temporalio.contrib.opentelemetry import workflow as traced_workflow

SPAN_PREFIX = "cpl.step:"


class StepSpans:
    """The spans of one run's steps (no span when the run is not traced)."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.enabled = bool(payload.get("tracing"))
        metadata = payload.get("workflow", {}).get("metadata", {})
        tenant, name = str(metadata.get("tenant", "")), str(metadata.get("name", ""))
        self._attributes = {
            "cpl.workflow": f"{tenant}/{name}",
            "cpl.tenant": tenant,
            "cpl.version": str(payload.get("version", "")),
        }

    @contextmanager
    def step(self, step: Mapping[str, Any]) -> Iterator[None]:
        """Span the step executed inside: succeeded, failed (with the error) or cancelled."""
        if not self._traced():
            yield
            return
        started = workflow.now()
        attributes = {
            **self._attributes,
            "cpl.run_id": workflow.info().workflow_id,
            "cpl.step": str(step.get("name")),
            "cpl.step_type": str(step.get("type")),
        }
        try:
            yield
        except BaseException as error:
            failure = getattr(error, "error", None)  # a StepFailure's error name
            outcome = "cancelled" if isinstance(error, asyncio.CancelledError) else "failed"
            extra = {"cpl.error": str(failure)} if isinstance(failure, str) else {}
            self._end(attributes, started, outcome, extra)
            raise
        self._end(attributes, started, "succeeded", {})

    def _traced(self) -> bool:
        # Without the contrib interceptor on the worker, or without a client span to hang
        # the run's spans under, there is no current span here: no step span either.
        current = opentelemetry.trace.get_current_span()
        return self.enabled and current is not opentelemetry.trace.INVALID_SPAN

    def _end(
        self,
        attributes: dict[str, str],
        started: Any,
        outcome: str,
        extra: dict[str, str],
    ) -> None:
        elapsed = workflow.now() - started
        traced_workflow.completed_span(
            SPAN_PREFIX + attributes["cpl.step"],
            attributes={
                **attributes,
                **extra,
                "cpl.outcome": outcome,
                "cpl.duration_ms": int(elapsed.total_seconds() * 1000),
            },
        )
