"""Webhooks function: endpoints (register, list, read, delete, rotate the secret) and the event log
(``GET /v1/events`` to catch up, redelivery of one event)."""

from typing import Annotated, Any

from treue import runtime
from treue.core import ids
from treue.core.records import Event
from treue.errors import EventNotFound, MalformedRequest, WebhookNotFound
from treue.handlers.http import Body, Query, Response, caller, dispatch, make_app, responses
from treue.handlers.logs import API_GATEWAY_REST, Logger
from treue.handlers.models import webhooks as m
from treue.handlers.tracing import Tracer
from treue.logic import webhooks
from treue.logic.models import Redelivery, SecretRotation, WebhookRequest
from treue.store import events as event_log
from treue.store import queues

logger = Logger()
tracer = Tracer()
app = make_app("Webhooks")


def _endpoint_id(endpoint_id: str) -> str:
    if not ids.well_formed(endpoint_id, "whk"):
        raise WebhookNotFound(f"webhook endpoint {endpoint_id[:40]} does not exist")
    return endpoint_id


def _event(program_id: str, event_id: str) -> Event:
    found = runtime.events().get(program_id, event_id) if ids.well_formed(event_id, "evt") else None
    if found is None:
        raise EventNotFound(f"event {event_id[:40]} does not exist (events are kept 90 days)")
    return found


@responses({201: {"description": "Registered", "content": {"application/json": {"model": m.WebhookCreated}}}})
@tracer.capture_method
def register(body: Annotated[WebhookRequest, Body()]) -> Response[Any]:
    who = caller(app)
    settings = runtime.settings()
    created = webhooks.create(runtime.webhooks(), runtime.vault(), who.program_id, body,
                              settings.allow_local_webhooks, who.actor, runtime.now(),
                              settings.reserved_local_webhook_ports)
    logger.info("webhook registered", extra={"endpoint_id": created["id"], "types": created["event_types"]})
    return Response(201, "application/json", m.WebhookCreated(**created).model_dump(mode="json", exclude_none=True),
                    headers={"Location": f"/v1/webhooks/{created['id']}"})


@tracer.capture_method
def list_endpoints() -> m.WebhookList:
    who = caller(app)
    return m.WebhookList(items=[m.Webhook(**webhooks.view(e)) for e in runtime.webhooks().list(who.program_id)])


@tracer.capture_method
def get_endpoint(endpoint_id: str) -> m.Webhook:
    who = caller(app)
    return m.Webhook(**webhooks.view(runtime.webhooks().require(who.program_id, _endpoint_id(endpoint_id))))


@responses({204: {"description": "Deleted"}})
@tracer.capture_method
def delete_endpoint(endpoint_id: str) -> Response[Any]:
    who = caller(app)
    runtime.webhooks().delete(who.program_id, _endpoint_id(endpoint_id), runtime.now())
    logger.info("webhook deleted", extra={"endpoint_id": endpoint_id, "actor": who.actor})
    return Response(204, "application/json", "")


@tracer.capture_method
def rotate(endpoint_id: str, body: Annotated[SecretRotation, Body()]) -> m.WebhookCreated:
    who = caller(app)
    out = webhooks.rotate(runtime.webhooks(), runtime.vault(), who.program_id, _endpoint_id(endpoint_id),
                          body.expire_previous_in_hours, runtime.now())
    return m.WebhookCreated(**out)


@tracer.capture_method
def list_events(
    after: Annotated[str | None, Query(max_length=200)] = None,
    type: Annotated[str | None, Query(max_length=200, description="Comma-separated event types")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> m.EventPage:
    who = caller(app)
    types = None
    if type:
        types = {t.strip() for t in type.split(",") if t.strip()}
        unknown = types - set(event_log.EVENT_TYPES)
        if unknown:
            raise MalformedRequest(f"unknown event type(s): {', '.join(sorted(unknown))}", parameter="type",
                                   types=list(event_log.EVENT_TYPES))
    found, cursor = runtime.events().page(who.program_id, after, types, limit, runtime.now())
    return m.EventPage(items=[m.Event(**e.public()) for e in found], next_after=cursor or after or "",
                       settle_seconds=event_log.SETTLE_SECONDS)


@tracer.capture_method
def get_event(event_id: str) -> m.Event:
    who = caller(app)
    return m.Event(**_event(who.program_id, event_id).public())


@responses({202: {"description": "Queued", "content": {"application/json": {"model": m.Redelivered}}}})
@tracer.capture_method
def redeliver(event_id: str, body: Annotated[Redelivery, Body()]) -> Response[Any]:
    who = caller(app)
    event = _event(who.program_id, event_id)
    store = runtime.webhooks()
    if body.endpoint_id:
        targets = [store.require(who.program_id, _endpoint_id(body.endpoint_id))]
    else:
        targets = [e for e in store.list(who.program_id) if e.subscribes(event.type)]
    queues.send_all(runtime.required("webhook_queue_url"),
                    [webhooks.delivery_message(who.program_id, e.id, event_id, redelivery=True) for e in targets])
    logger.info("event redelivery queued", extra={"event_id": event_id, "endpoints": len(targets)})
    return Response(202, "application/json",
                    m.Redelivered(event_id=event_id, endpoints=[e.id for e in targets]).model_dump(mode="json"))


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
