"""Queue senders function: the IAM principals whose SQS messages accrue points in the program.

The accrual queue consumer takes the program from the message's ``SenderId`` (set by SQS from the
authenticated sender), never from the body; these routes bind a principal id to the caller's program.
"""

from typing import Annotated, Any

from pydantic import Field

from treue import runtime
from treue.handlers.http import Body, Response, caller, dispatch, make_app, responses
from treue.handlers.logs import API_GATEWAY_REST, Logger
from treue.handlers.models import Model
from treue.handlers.tracing import Tracer
from treue.logic import queue_senders
from treue.logic.queue_senders import SenderRegistration

logger = Logger()
tracer = Tracer()
app = make_app("QueueSenders")


class QueueSender(Model):
    principal_id: str = Field(description="IAM unique id of a role (AROA…) or user (AIDA…)")
    description: str
    created_at: str
    updated_at: str
    created_by: str | None = Field(default=None, description="The API key that registered it")


class QueueSenderList(Model):
    items: list[QueueSender]


@tracer.capture_method
def list_senders() -> QueueSenderList:
    who = caller(app)
    found = sorted(runtime.queue_senders().list(who.program_id), key=lambda b: b["principal_id"])
    return QueueSenderList(items=[QueueSender(**queue_senders.view(b)) for b in found])


@tracer.capture_method
def get_sender(principal_id: str) -> QueueSender:
    who = caller(app)
    return QueueSender(**queue_senders.view(queue_senders.require(runtime.queue_senders(), who.program_id,
                                                                  principal_id)))


@responses({200: {"description": "Already registered to this program (description updated)",
                  "content": {"application/json": {"model": QueueSender}}},
            201: {"description": "Registered",
                  "content": {"application/json": {"model": QueueSender}}}})
@tracer.capture_method
def put_sender(principal_id: str, body: Annotated[SenderRegistration, Body()]) -> Response[Any]:
    who = caller(app)
    binding, created = queue_senders.register(runtime.queue_senders(), who.program_id, principal_id, body,
                                              who.actor, runtime.now())
    logger.info("queue sender registered" if created else "queue sender kept",
                extra={"principal_id": principal_id, "actor": who.actor})
    return Response(201 if created else 200, "application/json",
                    QueueSender(**queue_senders.view(binding)).model_dump(mode="json", exclude_none=True),
                    headers={"Location": f"/v1/queue-senders/{principal_id}"})


@responses({204: {"description": "Deleted"}})
@tracer.capture_method
def delete_sender(principal_id: str) -> Response[Any]:
    who = caller(app)
    queue_senders.remove(runtime.queue_senders(), who.program_id, principal_id, runtime.now())
    logger.info("queue sender deleted", extra={"principal_id": principal_id, "actor": who.actor})
    return Response(204, "application/json", "")


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
