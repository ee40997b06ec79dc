"""Segments function: custom segments (admin), the program's member counts, a member's segments and offers.

A function of its own: it loads the segments' store and logic, the rules in force and the catalog's pricing for
offers, and nothing of the accrual path (whose cold start stays as it is).
"""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from treue import runtime
from treue.core.memberships import effective_tier
from treue.handlers.http import Body, Path, Query, Response, caller, dispatch, header, make_app, responses
from treue.handlers.logs import API_GATEWAY_REST, Logger
from treue.handlers.models import segments as m
from treue.handlers.tracing import Tracer
from treue.logic import catalog, offers, rule_admin, segment_admin
from treue.logic.members import require_id
from treue.logic.points import rule_counters
from treue.logic.segments import NewSegment, SegmentDefinition, segment_ids, targeted_items

logger = Logger()
tracer = Tracer()
app = make_app("Segments")

SegmentIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_STALE = {412: {"description": "If-Match names a version that is no longer the current one; nothing was written",
                "content": _PROBLEM}}


def _now() -> datetime:
    return datetime.fromisoformat(runtime.now().replace("Z", "+00:00")).astimezone(UTC)


def _segment(status: int, segment: dict[str, Any]) -> Response[m.Segment]:
    return Response(status, "application/json", m.Segment.model_validate(segment).model_dump(mode="json"),
                    headers={"ETag": f'"{segment["version"]}"'})


@responses({201: {"description": "Created: version 1, active", "content": {"application/json": {"model": m.Segment}}},
            200: {"description": "The segment exists with this definition: it as it stands",
                  "content": {"application/json": {"model": m.Segment}}},
            409: {"description": "The id is taken by another definition", "content": _PROBLEM}})
@tracer.capture_method
def create_segment(body: Annotated[NewSegment, Body()]) -> Response[m.Segment]:
    who = caller(app)
    segment, existed = segment_admin.create(runtime.segments(), who.program_id, body, who.actor, runtime.now())
    logger.info("segment exists" if existed else "segment created", extra={"segment_id": body.id})
    answer = _segment(200 if existed else 201, segment)
    answer.headers["Location"] = f"/v1/segments/{body.id}"
    return answer


@tracer.capture_method
def list_segments() -> m.SegmentCounts:
    who = caller(app)
    store = runtime.segments()
    snapshot = store.snapshot(who.program_id)
    if snapshot is None:  # listed for the scheduled count from now on
        store.request(who.program_id, runtime.now())
    data = segment_admin.snapshot_view(snapshot, store.definitions(who.program_id), runtime.program(who.program_id))
    return m.SegmentCounts.model_validate(data)


@tracer.capture_method
def get_segment(segment_id: SegmentIdPath) -> Response[m.SegmentDetail]:
    who = caller(app)
    found = segment_admin.detail(runtime.segments(), who.program_id, segment_id)
    return Response(200, "application/json", m.SegmentDetail.model_validate(found).model_dump(mode="json"),
                    headers={"ETag": f'"{found["version"]}"'})


@tracer.capture_method
def get_segment_version(segment_id: SegmentIdPath,
                        version: Annotated[int, Path(ge=1, le=9_999_999_999)]) -> m.SegmentVersion:
    who = caller(app)
    return m.SegmentVersion.model_validate(segment_admin.version(runtime.segments(), who.program_id, segment_id,
                                                                 version))


@responses(_STALE)
@tracer.capture_method
def put_segment(segment_id: SegmentIdPath, body: Annotated[SegmentDefinition, Body()]) -> Response[m.Segment]:
    who = caller(app)
    expected = rule_admin.if_match(header(app, "If-Match"))
    segment, written = segment_admin.replace(runtime.segments(), who.program_id, segment_id, body, expected,
                                             who.actor, runtime.now())
    logger.info("segment changed" if written else "segment unchanged", extra={"segment_id": segment_id})
    return _segment(200, segment)


@responses(_STALE)
@tracer.capture_method
def delete_segment(segment_id: SegmentIdPath) -> Response[m.Segment]:
    who = caller(app)
    expected = rule_admin.if_match(header(app, "If-Match"))
    segment, retired = segment_admin.retire(runtime.segments(), who.program_id, segment_id, expected, who.actor,
                                            runtime.now())
    logger.info("segment retired" if retired else "segment already retired", extra={"segment_id": segment_id})
    return _segment(200, segment)


@tracer.capture_method
def member_segments(member_id: str) -> m.MemberSegments:
    who = caller(app)
    now = _now()
    _, found = segment_admin.member_segments(runtime.segments(), runtime.program(who.program_id),
                                             require_id(member_id), now)
    return m.MemberSegments.model_validate({"member_id": member_id, "segments": [s.view() for s in found],
                                            "computed_at": runtime.now()})


@tracer.capture_method
def member_offers(member_id: str, limit: Annotated[int, Query(ge=1, le=50)] = 10) -> m.Offers:
    who = caller(app)
    program = runtime.program(who.program_id)
    now = _now()
    store = runtime.store()
    facts, found, customs = segment_admin.member_view(runtime.segments(), program, require_id(member_id), now)
    if facts.membership:  # an active paid membership's tier, when higher, is the one the offers are for
        state = {"tier": facts.tier, "membership": facts.membership}
        facts = replace(facts, tier=effective_tier(program.tier_config(), state, now) or facts.tier)
    ids = segment_ids(found)
    rules = runtime.rules().in_force(who.program_id, runtime.now())
    candidates = [r for r in rules if r.trigger in offers.TRIGGERS]
    counters = rule_counters(store, who.program_id, member_id, candidates, now)
    member = store.get_member(who.program_id, member_id) or {}
    earn = offers.rule_offers(program, candidates, facts, ids, now, counters)
    redeem = offers.catalog_offers(program, runtime.parsed_catalog(), facts.available,
                                   member.get("country") or program.country or None,
                                   targeted_items(customs, found), catalog.tier_discount(program, facts.tier))
    return m.Offers.model_validate({
        "member_id": member_id, "computed_at": runtime.now(), "available_points": facts.available,
        "tier": facts.tier, "segments": [s.id for s in found], "rules": [o.view() for o in earn[:limit]],
        "catalog": redeem[:limit]})


@logger.inject_lambda_context(correlation_id_path=API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(app, event, context)
