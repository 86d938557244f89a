"""`cpl serve events`: a CloudEvents HTTP receiver that starts interpreter runs on Temporal
targets for the workflows whose triggers match (docs/triggers.md).

Temporal has no event source of its own, so cpl hosts one: it accepts CloudEvents over HTTP
(structured mode, `Content-Type: application/cloudevents+json`, or binary mode with `ce-*`
headers and JSON data), matches them against the triggers of the workflows an environment
places on its Temporal targets (`engines/triggers.py`), and starts a run per match with
signal-with-start (`start_run` with the `cpl.event` start signal carrying the event's id,
source and type, never its data).

The run's workflow id is `<tenant>-<name>-<event id>` with the id reuse policy
REJECT_DUPLICATE, so a redelivered event (same id) starts no second run while Temporal keeps
the first run's history (the namespace's retention): the answer says `duplicate`.

Requests are bounded (`MAX_EVENT_BYTES`, a socket timeout), bad events get a 4xx answer that
says what is wrong without echoing the event, and the log names event ids, triggers and run
ids only, never event data.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from cloudevents.core.exceptions import BaseCloudEventException
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from controlplane.engines.temporal.encryption import EncryptionError
from controlplane.engines.temporal.runner import connect, start_run
from controlplane.engines.temporal.runtime.payload import SpecPayload
from controlplane.engines.temporal.translate import TemporalTranslator, spec_payload
from controlplane.engines.timeouts import Timeouts
from controlplane.engines.triggers import matches, run_input
from controlplane.errors import EngineError
from controlplane.spec.environment import Environment, Target
from controlplane.spec.model import Trigger, Workflow

Result = TypeVar("Result")

MAX_EVENT_BYTES = 1024 * 1024
"""The largest request body accepted (413 beyond)."""
MAX_ID_CHARS = 200
"""The longest event id accepted: it becomes part of a workflow id."""
SOCKET_TIMEOUT = 10.0
"""Seconds a client may take to send its request before the connection is closed."""
START_TIMEOUT = 30.0
"""Seconds to wait for Temporal to start (or refuse) the runs of one event."""
START_SIGNAL = "cpl.event"
"""The signal sent with start: the event's id, source, type and the trigger's name."""
STRUCTURED = "application/cloudevents+json"


class BadEvent(Exception):
    """A request cpl answers with a 4xx status and `message` (which never quotes data)."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- events ---------------------------------------------------------------------------------


def parse_event(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The CloudEvent of an HTTP request in structured form: attributes and `data`.

    Structured mode when the content type is `application/cloudevents+json`, else binary
    mode (`ce-*` headers, JSON data). `id` must be given: the SDK would invent one, and the
    id is what deduplicates redeliveries.
    """
    lower = {key.lower(): value for key, value in headers.items()}
    content_type = lower.get("content-type", "").split(";")[0].strip().lower()
    if content_type == STRUCTURED:
        try:
            raw = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadEvent(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(raw, dict):
            raise BadEvent(HTTPStatus.BAD_REQUEST, "a structured CloudEvent is a JSON object")
        given = {key for key, value in raw.items() if value not in (None, "")}
    else:
        if "ce-specversion" not in lower:
            raise BadEvent(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"send a CloudEvent: Content-Type {STRUCTURED} (structured mode) or ce-* "
                "headers with JSON data (binary mode)",
            )
        if content_type and not _is_json(content_type):
            raise BadEvent(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "binary-mode data must be JSON (Content-Type application/json), "
                f"not {content_type}",
            )
        given = {key[3:] for key, value in lower.items() if key.startswith("ce-") and value}
    missing = [name for name in ("specversion", "id", "source", "type") if name not in given]
    if missing:
        raise BadEvent(
            HTTPStatus.BAD_REQUEST,
            f"the CloudEvent lacks required attribute(s): {', '.join(missing)}",
        )
    try:
        event = from_http_event(HTTPMessage(dict(headers), body))
        attributes = dict(event.get_attributes())
        data = event.get_data()
    except (BaseCloudEventException, ValueError, TypeError, AttributeError, KeyError) as error:
        raise BadEvent(
            HTTPStatus.BAD_REQUEST, f"not a valid CloudEvent: {_first_line(error)}"
        ) from None
    if isinstance(data, bytes | bytearray):
        raise BadEvent(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the event's data must be JSON")
    event_id = attributes.get("id")
    if not isinstance(event_id, str) or not event_id.isprintable() or len(event_id) > MAX_ID_CHARS:
        raise BadEvent(
            HTTPStatus.BAD_REQUEST,
            f"the event id must be printable text of at most {MAX_ID_CHARS} characters",
        )
    attributes.pop("time", None)  # the SDK fills it in when absent; no trigger reads it
    return {
        **{k: v for k, v in attributes.items() if isinstance(v, str | int | bool)},
        "data": data,
    }


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def _first_line(error: BaseException) -> str:
    # The SDK's messages name attributes, not values; keep them short anyway.
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


# --- routes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One trigger of a workflow on one Temporal target, with the spec payload it runs."""

    workflow: Workflow
    trigger: Trigger
    target: Target
    spec: SpecPayload

    def workflow_id(self, event_id: str) -> str:
        return f"{self.workflow.metadata.tenant}-{self.workflow.metadata.name}-{event_id}"


def event_routes(
    workflows: Sequence[Workflow], environment: Environment, target_name: str | None = None
) -> list[Route]:
    """The triggers of the workflows `environment` places on its Temporal targets (or on
    `target_name` only), each with the spec payload `cpl run` would start."""
    translator = TemporalTranslator()
    routes: list[Route] = []
    for workflow in workflows:
        if not workflow.spec.triggers:
            continue
        for target in environment.targets_for(workflow):
            if target.engine != "temporal" or target_name not in (None, target.name):
                continue
            payload = spec_payload(translator.render(workflow, target, environment))
            routes.extend(Route(workflow, t, target, payload) for t in workflow.spec.triggers)
    return routes


# --- starting runs ----------------------------------------------------------------------------


class EventDispatcher:
    """Starts the runs of an event on the routes it matches (one client per namespace)."""

    def __init__(
        self,
        routes: Sequence[Route],
        converter: Callable[[Target], DataConverter | None] = lambda target: None,
    ) -> None:
        self.routes = list(routes)
        self.converter = converter  # a target's payload codecs (offload, encryption)
        self._clients: dict[tuple[str, str], Client] = {}

    async def dispatch(self, event: dict[str, Any], authenticated: bool) -> list[dict[str, str]]:
        matched = [route for route in self.routes if matches(route.trigger, event)]
        allowed = [route for route in matched if authenticated or not route.trigger.authenticated]
        if matched and not allowed:
            names = ", ".join(sorted({route.trigger.name for route in matched}))
            raise BadEvent(
                HTTPStatus.UNAUTHORIZED,
                f"the matching trigger(s) ({names}) accept events from authenticated sources "
                "only: send Authorization: Bearer <token>",
            )
        runs: list[dict[str, str]] = []
        started: set[str] = set()
        for route in allowed:
            workflow_id = route.workflow_id(str(event["id"]))
            if workflow_id in started:
                status = "duplicate"  # two triggers of one workflow: one run per event
            else:
                status = await self._start(route, workflow_id, event)
                started.add(workflow_id)
            runs.append(
                {
                    "workflow": route.workflow.key,
                    "trigger": route.trigger.name,
                    "target": route.target.name,
                    "runId": workflow_id,
                    "status": status,
                }
            )
        return runs

    async def _start(self, route: Route, workflow_id: str, event: dict[str, Any]) -> str:
        client = await self._client(route.target)
        if await _exists(client, workflow_id):
            return "duplicate"
        signal = {
            "id": event["id"],
            "source": event["source"],
            "type": event["type"],
            "trigger": route.trigger.name,
        }
        assert route.target.task_queue
        try:
            await start_run(
                client,
                route.spec,
                run_input(route.trigger, event),
                task_queue=route.target.task_queue,
                workflow_id=workflow_id,
                start_signal=START_SIGNAL,
                start_signal_args=[signal],
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return "duplicate"  # a closed run of this event, or a concurrent redelivery
        except EncryptionError as error:
            raise EngineError(f"cannot start {route.workflow.key}: {error}") from None
        except RPCError as error:
            raise EngineError(
                f"Temporal refused to start {route.workflow.key} on target "
                f"'{route.target.name}': {error.message}"
            ) from None
        return "started"

    async def _client(self, target: Target) -> Client:
        assert target.address and target.namespace
        key = (target.address, target.namespace)
        if key not in self._clients:
            timeout = Timeouts.of(target).connect
            self._clients[key] = await connect(
                target.address, target.namespace, timeout, self.converter(target)
            )
        return self._clients[key]


async def _exists(client: Client, workflow_id: str) -> bool:
    """Whether a run with this id is open, or closed and still kept."""
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise EngineError(
            f"Temporal could not describe run {workflow_id}: {error.message}"
        ) from None
    return True


# --- the HTTP server ------------------------------------------------------------------------


class EventServer:
    """The receiver: an HTTP server (one thread per request) in front of an asyncio loop (its
    own thread) that holds the Temporal clients."""

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        token: str | None = None,
        log: Callable[[str], None] = lambda line: None,
        converter: Callable[[Target], DataConverter | None] = lambda target: None,
    ) -> None:
        self.dispatcher = EventDispatcher(routes, converter)
        self.token = token
        self.log = log
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.http = ThreadingHTTPServer((host, port), _handler_for(self))
        self.http.daemon_threads = True

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.http.server_address[:2]
        return str(host), int(port)

    def serve_forever(self) -> None:
        self._loop_thread.start()
        try:
            self.http.serve_forever(poll_interval=0.2)
        finally:
            self.http.server_close()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._loop_thread.join(5)

    def shutdown(self) -> None:
        """Stop serving (from another thread); requests being answered finish first."""
        self.http.shutdown()

    def run(self, coroutine: Coroutine[Any, Any, Result]) -> Result:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(START_TIMEOUT)

    def answer(self, headers: Mapping[str, str], body: bytes) -> tuple[HTTPStatus, dict[str, Any]]:
        """The status and JSON answer to one POSTed event."""
        authenticated = self._authenticated(headers.get("Authorization"))
        event = parse_event(headers, body)
        try:
            runs = self.run(self.dispatcher.dispatch(event, authenticated))
        except EngineError as error:
            return HTTPStatus.BAD_GATEWAY, {"error": str(error)}
        except TimeoutError:
            return HTTPStatus.GATEWAY_TIMEOUT, {"error": "Temporal did not answer in time"}
        started = sum(run["status"] == "started" for run in runs)
        self.log(
            f"event {event['id']}: {started} run(s) started, {len(runs) - started} duplicate(s)"
            + "".join(f"; {run['status']} {run['runId']}" for run in runs)
        )
        answer: dict[str, Any] = {"id": event["id"], "runs": runs}
        if not runs:
            answer["message"] = "the event matched no trigger"
        return HTTPStatus.ACCEPTED, answer

    def _authenticated(self, authorization: str | None) -> bool:
        if authorization is None:
            return False
        scheme, _, credential = authorization.partition(" ")
        if self.token is None or scheme.lower() != "bearer":
            raise BadEvent(HTTPStatus.UNAUTHORIZED, "unknown credentials")
        if not hmac.compare_digest(credential.strip().encode(), self.token.encode()):
            raise BadEvent(HTTPStatus.UNAUTHORIZED, "unknown credentials")
        return True


def _handler_for(server: EventServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = SOCKET_TIMEOUT
        server_version = "cpl-events"
        sys_version = ""

        def do_POST(self) -> None:
            try:
                if self.path.split("?")[0] not in ("/", "/events"):
                    raise BadEvent(HTTPStatus.NOT_FOUND, "POST events to / or /events")
                status, answer = server.answer(dict(self.headers.items()), self._body())
            except BadEvent as bad:
                status, answer = bad.status, {"error": bad.message}
            self._send(status, answer)

        def do_GET(self) -> None:
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST CloudEvents to /"})

        def _body(self) -> bytes:
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise BadEvent(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is required")
            if int(length) > MAX_EVENT_BYTES:
                self.close_connection = True  # the unread body must not be parsed as a request
                raise BadEvent(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"the event is larger than {MAX_EVENT_BYTES} bytes",
                )
            return self.rfile.read(int(length))

        def _send(self, status: HTTPStatus, answer: dict[str, Any]) -> None:
            body = json.dumps(answer, sort_keys=True).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # The request line only (method, path, status): never headers or bodies.
            server.log(
                f"{self.command} {self.path.split('?')[0]} {args[1] if len(args) > 1 else ''}"
            )

    return Handler
