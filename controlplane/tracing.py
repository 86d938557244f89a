"""OpenTelemetry tracing of cpl's own processes, where the environment asks for it
(`spec.observability.tracing`, docs/runtime.md "Tracing").

`cpl run` and `cpl signal` open a span for the command (the root of the run's trace) and
`cpl worker` exports the spans of the runs it executes; the engine packages reach the tracer
through `active_tracer` (Temporal: its client and worker interceptor). The exporter is the
environment's: an OTLP/gRPC collector, or a file of JSON lines inside the repo. cpl keeps its
own tracer provider rather than OpenTelemetry's global one, which a process may set only once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

    from controlplane.spec.environment import Environment

SERVICE_NAME = "cpl"

_active: Tracer | None = None


def active_tracer() -> Tracer | None:
    """The tracer of the command being traced, None when the environment traces nothing."""
    return _active


@contextmanager
def tracing(environment: Environment, repo: Path) -> Iterator[Tracer | None]:
    """Trace what runs inside with the environment's exporter (nothing without one); the
    spans are flushed when it ends."""
    global _active
    settings = environment.spec.observability.tracing
    if settings is None:
        yield None
        return
    provider = _provider(environment, repo)
    previous, _active = _active, provider.get_tracer("controlplane")
    try:
        yield _active
    finally:
        _active = previous
        provider.shutdown()  # flushes the batch of an OTLP exporter


@contextmanager
def command_span(
    environment: Environment, repo: Path, name: str, attributes: Mapping[str, str]
) -> Iterator[None]:
    """Trace a command as one span (the root of its trace) with `attributes`."""
    with tracing(environment, repo) as tracer:
        if tracer is None:
            yield
            return
        with tracer.start_as_current_span(name, attributes=dict(attributes)):
            yield


def _provider(environment: Environment, repo: Path) -> TracerProvider:
    # imported here: most commands never trace, and the SDK takes a while to import
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    from controlplane.spec.environment import confine_to_repo

    settings = environment.spec.observability.tracing
    assert settings is not None
    resource = Resource.create(
        {"service.name": SERVICE_NAME, "deployment.environment": environment.name}
    )
    provider = TracerProvider(resource=resource)
    if settings.file is not None:
        path = confine_to_repo(
            repo,
            settings.file,
            settings.allow_outside_repo,
            environment.name,
            "/spec/observability/tracing/file",
        )
        # written as each span ends: a worker stopped abruptly loses nothing
        from controlplane.spanfile import JsonLinesExporter

        provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(path)))
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        assert settings.otlp is not None
        insecure = settings.otlp.startswith("http://")
        exporter = OTLPSpanExporter(endpoint=settings.otlp, insecure=insecure)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
