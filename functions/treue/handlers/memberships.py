"""Memberships function: paid memberships (``treue.logic.memberships``) — start, list, renew, cancel.

POST /v1/members/{member_id}/memberships, GET /v1/members/{member_id}/memberships,
POST /v1/members/{member_id}/memberships/{membership_id}/renew, POST .../cancel. The daily end of lapsed
memberships is the MembershipReview function (``treue.handlers.membership_review``).
"""

from typing import Annotated, Any

from treue import runtime
from treue.handlers.http import Body, Path, Response, caller, dispatch, make_app, responses
from treue.handlers.logs import API_GATEWAY_REST, Logger, Metrics, MetricUnit
from treue.handlers.models import memberships as m
from treue.handlers.tracing import Tracer
from treue.logic import memberships

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
app = make_app("Memberships")

MembershipId = Annotated[str, Path(pattern=r"^msh_[0-9a-z]{26}$", description="The membership's id (msh_…)")]


@responses({201: {"description": "Started (200: a replay of this payment_reference)"}})
@tracer.capture_method
def start_membership(member_id: str, body: Annotated[m.MembershipStart, Body()]) -> Response[m.MembershipAnswer]:
    who = caller(app)
    answer = memberships.start(runtime.store(), runtime.program(who.program_id), member_id, body.plan_id,
                               body.payment_reference, body.starts_at, who.actor, runtime.now())
    if not answer["replayed"]:
        metrics.add_metric(name="MembershipsStarted", unit=MetricUnit.Count, value=1)
        logger.info("membership started", extra={"membership_id": answer["membership_id"],
                                                  "plan_id": answer["plan_id"]})
    return Response(status_code=200 if answer["replayed"] else 201, content_type="application/json",
                    body=m.MembershipAnswer(**answer),
                    headers={"Location": f"/v1/members/{member_id}/memberships/{answer['membership_id']}"})


@tracer.capture_method
def list_memberships(member_id: str) -> m.MembershipList:
    who = caller(app)
    found = memberships.of_member(runtime.store(), who.program_id, member_id, runtime.now())
    return m.MembershipList.model_validate({"items": found})


@tracer.capture_method
def renew_membership(member_id: str, membership_id: MembershipId,
                     body: Annotated[m.MembershipRenewal, Body()]) -> m.MembershipAnswer:
    who = caller(app)
    answer = memberships.renew(runtime.store(), runtime.program(who.program_id), member_id, membership_id,
                               body.payment_reference, who.actor, runtime.now())
    if not answer["replayed"]:
        metrics.add_metric(name="MembershipsRenewed", unit=MetricUnit.Count, value=1)
    return m.MembershipAnswer(**answer)


@tracer.capture_method
def cancel_membership(member_id: str, membership_id: MembershipId) -> m.MembershipAnswer:
    who = caller(app)
    return m.MembershipAnswer(**memberships.cancel(runtime.store(), runtime.program(who.program_id), member_id,
                                                   membership_id, who.actor, runtime.now()))


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
