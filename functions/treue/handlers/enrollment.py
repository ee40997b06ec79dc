"""Enrollment function: POST /v1/members, GET /v1/members/{member_id}, GET /v1/members?<identifier>=…,
GET /v1/members/{member_id}/referrals"""


from typing import Annotated, Any

from treue import runtime
from treue.errors import MalformedRequest
from treue.handlers.http import Body, Query, Response, caller, dispatch, header, make_app, responses
from treue.handlers.logs import API_GATEWAY_REST, Logger, Metrics, MetricUnit
from treue.handlers.models.members import EnrolledMember, Member, MemberList, Referrals
from treue.handlers.tracing import Tracer
from treue.logic import members
from treue.logic.models import Enrollment

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Treue")
app = make_app("Enrollment")


@responses({201: {"description": "Enrolled"}})
@tracer.capture_method
def enroll(body: Annotated[Enrollment, Body()]) -> Response[EnrolledMember]:
    who = caller(app)
    key = header(app, "Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise MalformedRequest("Idempotency-Key must have 1 to 255 characters")
    store, now = runtime.store(), runtime.now()
    rules, welcome = members.welcome_rules(runtime.rules().in_force, who.program_id, now), None
    if rules:  # the earning engine loads only for a program with enrollment rules in force
        from treue.logic.welcome import bonus

        welcome = bonus(store, runtime.program(who.program_id), rules, who.actor, now)
    member, created = members.enroll(store, who.program_id, body, now, key, welcome)
    if created:
        metrics.add_metric(name="MembersEnrolled", unit=MetricUnit.Count, value=1)
        logger.info("member enrolled", extra={"member_id": member["id"], "program_id": who.program_id})
    return Response(
        status_code=201 if created else 200,
        content_type="application/json",
        body=EnrolledMember(**member),
        headers={"Location": f"/v1/members/{member['id']}"},
    )


@tracer.capture_method
def get_member(member_id: str) -> Member:
    who = caller(app)
    return Member(**members.get(runtime.store(), who.program_id, member_id))


@tracer.capture_method
def find_member(
    email: Annotated[str | None, Query(max_length=254)] = None,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    card_number: Annotated[str | None, Query(max_length=32)] = None,
    external_id: Annotated[str | None, Query(max_length=128)] = None,
    qr_token: Annotated[str | None, Query(max_length=64)] = None,
    referral_code: Annotated[str | None, Query(max_length=16)] = None,
) -> MemberList:
    who = caller(app)
    given = {
        k: v
        for k, v in {
            "email": email,
            "phone": phone,
            "card_number": card_number,
            "external_id": external_id,
            "qr_token": qr_token,
            "referral_code": referral_code,
        }.items()
        if v is not None
    }
    if len(given) != 1:
        raise MalformedRequest(
            "give exactly one of the query parameters email, phone, card_number, external_id, qr_token, referral_code"
        )
    (kind, value), = given.items()
    try:
        found = members.find(runtime.store(), who.program_id, kind, value)
    except ValueError as err:
        raise MalformedRequest(f"{kind}: {err}", parameter=kind) from err
    return MemberList(items=[Member(**found)] if found else [], next_cursor=None)


@tracer.capture_method
def member_referrals(
    member_id: str,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Referrals:
    who = caller(app)
    return Referrals(**members.referrals(runtime.store(), who.program_id, member_id, limit, cursor))


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
