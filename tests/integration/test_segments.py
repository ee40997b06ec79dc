"""Segments, offers and the KPIs per rule and tier on moto, each call as its function's role allows it: a seeded
member's segments with their reasons, custom segments created, replayed, refused, versioned and retired, the
scheduled count's snapshot (skipped when nothing changed, continued across runs, never a page counted twice),
offers led by a segment-targeted rule, and the KPIs' points per rule with the books at zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.helpers import call, enroll, member_call, purchase
from tests.support import LambdaContext, load_event
from treue import runtime
from treue.core import keys
from treue.handlers import accrual, finance, segment_counts
from treue.handlers import rules as rules_handler
from treue.handlers import segments as handler
from treue.logic import provisioning, segment_admin
from treue.logic.catalog import load_dir
from treue.logic.segments import months_back, stamp
from treue.store.items import item_key, to_item
from treue.store.orders import OrderStore
from treue.store.schema import member_pk, month_sk

ROOT = Path(__file__).resolve().parents[2]
GOLD_FANS = {"id": "gold-fans", "name": "Gold fans", "conditions": {"tier": ["gold"]}}
READERS = {"id": "readers", "name": "Readers", "conditions": {"category_bought": {"category": "books", "days": 90}}}


@pytest.fixture
def shop(store):
    """A program in Germany with its keys and the catalog loaded."""
    created = provisioning.create_program(store, "Segment Shop", "EUR", runtime.now(), country="DE")
    auth = {}
    for scope, key in created["api_keys"].items():
        key_id, _ = keys.parse(key)
        auth[scope] = {"program_id": created["program_id"], "key_id": key_id, "scope": scope}
    version, items = load_dir(ROOT / "catalog")
    OrderStore(store).put_catalog(version, [i.model_dump() for i in items], runtime.now())
    runtime.reset()
    return {**created, "auth": auth}


def now() -> datetime:
    return datetime.fromisoformat(runtime.now().replace("Z", "+00:00")).astimezone(UTC)


def member(shop, name: str, enrolled_days: float = 0, active_days: float | None = None) -> str:
    status, body, _ = enroll(shop["auth"]["partner"], {"email": f"{name}@example.com"})
    assert status == 201, body
    mid = body["id"]
    if enrolled_days:
        enrolled = stamp(now() - timedelta(days=enrolled_days))
        updated = stamp(now() - timedelta(days=active_days)) if active_days is not None else enrolled
        runtime.store().ddb.update_item(
            TableName=runtime.store().table, Key=item_key(member_pk(shop["program_id"], mid), "BALANCE"),
            UpdateExpression="SET enrolled_at = :e, updated_at = :u",
            ExpressionAttributeValues={":e": {"S": enrolled}, ":u": {"S": updated}})
    return mid


def seed(shop, mid: str, sk: str, categories: set[str] | None = None, **data) -> None:
    """An item of the member's partition as accrual and the tier review write them (MONTH#… with its categories
    as a string set, TIER)."""
    item = {**item_key(member_pk(shop["program_id"], mid), sk), **to_item(data)}
    if categories:
        item["categories"] = {"SS": sorted(categories)}
    runtime.store().ddb.put_item(TableName=runtime.store().table, Item=item)


def segments_call(shop, sample: str, scope: str = "admin", **kw):
    return call(handler, f"segments/{sample}.json", shop["auth"][scope], **kw)


def create(shop, body, scope="admin"):
    return segments_call(shop, "create_segment", scope, body=body)


def at(shop, sample, segment_id, scope="admin", **kw):
    return segments_call(shop, sample, scope, path=f"/v1/segments/{segment_id}",
                         path_parameters={"segment_id": segment_id}, **kw)


def member_segments(shop, mid):
    return member_call(handler, "segments/member_segments.json", shop["auth"]["partner"], mid, "/segments")


def count(**event):
    return segment_counts.handler({**load_event("segment_counts/scheduled.json"), **event}, LambdaContext())


def test_a_seeded_members_segments_name_their_reasons(shop):
    for body in (GOLD_FANS, READERS):
        assert create(shop, body)[0] == 201
    this = now().strftime("%Y-%m")
    mid = member(shop, "ada", enrolled_days=400, active_days=5)
    seed(shop, mid, "TIER", tier="gold", since="2026-06-01T00:00:00.000Z", version=1)
    seed(shop, mid, month_sk(months_back(this, 4)), qualifying_points=1200, spend=120_000, purchases=4,
         categories={"wine"})
    seed(shop, mid, month_sk(this), qualifying_points=10, spend=1000, purchases=1, categories={"books"})
    status, body, _ = member_segments(shop, mid)
    assert status == 200, body
    assert [(s["id"], s["kind"]) for s in body["segments"]] == [
        ("active", "builtin"), ("at_risk", "builtin"), ("gold-fans", "custom"), ("readers", "custom")]
    reasons = {s["id"]: s["reason"] for s in body["segments"]}
    assert reasons["at_risk"].startswith("0 qualifying points in ") and "1200 points, 4 purchases" in reasons["at_risk"]
    assert reasons["gold-fans"] == "tier gold" and reasons["readers"].startswith("bought books in ")
    fresh = member(shop, "bea")
    assert [s["id"] for s in member_segments(shop, fresh)[1]["segments"]] == ["new"]
    assert member_segments(shop, "mbr_01jzzzzzzzzzzzzzzzzzzzzzzz")[0] == 404
    assert member_segments(shop, "not-a-member")[0] == 404


def test_custom_segments_are_created_once_versioned_and_retired(shop):
    status, made, response = create(shop, GOLD_FANS)
    assert status == 201 and made["version"] == 1 and made["status"] == "active" and made["kind"] == "custom"
    assert response["multiValueHeaders"]["Location"] == ["/v1/segments/gold-fans"]
    assert create(shop, {**GOLD_FANS, "conditions": {"tier": "gold"}})[0] == 200  # the same definition
    status, problem, _ = create(shop, {**GOLD_FANS, "conditions": {"tier": ["silver"]}})
    assert status == 409 and problem["type"].endswith("/segment-taken")
    assert create(shop, {**GOLD_FANS, "id": "premium"})[0] == 422
    assert create(shop, {**GOLD_FANS, "conditions": {}})[0] == 422
    assert create(shop, {**GOLD_FANS, "id": "other"}, scope="partner")[0] == 403
    change = {"name": "Gold and platinum", "conditions": {"tier": ["gold", "platinum"]}}
    status, v2, _ = at(shop, "put_segment", "gold-fans", body=change, headers={"If-Match": '"1"'})
    assert status == 200 and v2["version"] == 2 and v2["conditions"]["tier"] == ["gold", "platinum"]
    status, problem, _ = at(shop, "put_segment", "gold-fans", body=change | {"name": "x"}, headers={"If-Match": '"1"'})
    assert status == 412 and problem["current_version"] == 2
    status, detail, _ = at(shop, "get_segment", "gold-fans", scope="finance")
    assert status == 200 and [v["version"] for v in detail["versions"]] == [1, 2]
    status, first, _ = segments_call(shop, "get_segment_version", "finance", path="/v1/segments/gold-fans/versions/1",
                                     path_parameters={"segment_id": "gold-fans", "version": "1"})
    assert status == 200 and first["conditions"]["tier"] == ["gold"]
    event = load_event("segments/delete_segment.json")
    assert event["httpMethod"] == "DELETE"
    status, retired, _ = at(shop, "delete_segment", "gold-fans")
    assert status == 200 and retired["status"] == "retired" and retired["retired_at"]
    assert at(shop, "delete_segment", "gold-fans")[1]["retired_at"] == retired["retired_at"]  # twice: as it is
    assert at(shop, "put_segment", "gold-fans", body=change | {"name": "y"}, headers={"If-Match": "\"2\""})[0] == 409
    assert at(shop, "get_segment", "nobody", scope="finance")[0] == 404
    status, listed, _ = segments_call(shop, "list_segments", "finance")
    assert status == 200 and [s["id"] for s in listed["segments"]] == [
        "new", "active", "inactive", "at_risk", "premium", "gold-fans"]
    assert listed["segments"][-1]["status"] == "retired" and listed["computed_at"] is None
    assert segments_call(shop, "list_segments", "partner")[0] == 403
    trail = runtime.audit_trail()
    trail.seal_program(shop["program_id"])
    actions = [r["action"] for r in trail.chain(shop["program_id"]) if r["subject_type"] == "segment"]
    assert actions == ["segment.created", "segment.updated", "segment.retired"]


def test_the_scheduled_count_writes_a_snapshot_cheaply_and_continues_a_walk(shop, monkeypatch):
    assert create(shop, GOLD_FANS)[0] == 201
    member(shop, "new")
    regular = member(shop, "regular", enrolled_days=400, active_days=5)
    member(shop, "gone", enrolled_days=400, active_days=200)
    seed(shop, regular, "TIER", tier="gold", since="2026-06-01T00:00:00.000Z", version=1)
    status, before, _ = segments_call(shop, "list_segments", "finance")
    assert status == 200 and before["computed_at"] is None and before["members"] is None
    first = count()
    assert [c["reason"] for c in first["counted"]] == ["never counted"], first
    status, snap, _ = segments_call(shop, "list_segments", "finance")
    counted = {s["id"]: s["members"] for s in snap["segments"]}
    assert snap["members"] == 3 and snap["computed_at"] and not snap["counting"]
    assert counted == {"new": 1, "active": 1, "inactive": 1, "at_risk": 0, "premium": 0, "gold-fans": 1}
    assert snap["tiers"] == [{"tier": "gold", "members": 1}, {"tier": None, "members": 2}]
    assert count()["counted"] == []  # nothing changed: one index query and one event read
    member(shop, "late")
    assert count()["counted"] == []  # a change, but the last walk began less than MIN_SECONDS ago
    monkeypatch.setattr(segment_admin, "MIN_SECONDS", 0)
    assert [c["reason"] for c in count()["counted"]] == ["events since the last count"]
    assert segments_call(shop, "list_segments", "finance")[1]["members"] == 4
    # a walk one member a page, two pages a run: the snapshot stays as it was until the walk ends
    monkeypatch.setattr(segment_admin, "PAGE", 1)
    pages = iter([True, True, False] * 10)
    store, pid = runtime.segments(), shop["program_id"]
    runs = [segment_admin.count_programs(store, runtime.program, runtime.now, lambda: next(pages), force=True,
                                         only=pid)]
    assert runs[0][0]["finished"] is False and store.snapshot(pid)["counts"]["members"] == 4
    assert segments_call(shop, "list_segments", "finance")[1]["counting"] is True
    # two runs that read the same checkpoint: the first moves the walk on a page, the second loses and counts nothing
    stale = store.snapshot(pid)
    one_page = [True, False]
    first_run = segment_admin.count_program(store, runtime.program(pid), stale, None, runtime.now(), False,
                                            lambda: one_page.pop(0))
    assert first_run["pages"] == 1 and first_run["finished"] is False, first_run
    lost = segment_admin.count_program(store, runtime.program(pid), stale, None, runtime.now(), False, lambda: True)
    assert lost.get("lost") == "another run moved the walk on", lost
    runs.append([first_run])
    while True:
        runs.append(segment_admin.count_programs(store, runtime.program, runtime.now, lambda: next(pages), only=pid))
        if runs[-1][0].get("finished"):
            break
    final = store.snapshot(pid)
    assert final["counts"]["members"] == 4 and final["counts"]["segments"]["new"] == 2 and "walk_id" not in final
    assert sum(r[0]["members"] for r in runs) == 4


def test_a_program_whose_count_fails_does_not_stop_the_others(shop):
    store = runtime.segments()
    store.request("prg_01aaaaaaaaaaaaaaaaaaaaaaaa", runtime.now())  # listed, but no such program: it fails
    member(shop, "counted")
    store.request(shop["program_id"], runtime.now())
    with pytest.raises(segment_admin.CountFailed) as failed:
        count()
    assert list(failed.value.failed) == ["prg_01aaaaaaaaaaaaaaaaaaaaaaaa"] and "ProgramNotFound" in str(failed.value)
    assert [d["program_id"] for d in failed.value.done] == [shop["program_id"]]
    assert store.snapshot(shop["program_id"])["counts"]["members"] == 1


def rule(shop, body, key):
    status, made, _ = call(rules_handler, "rules/create_rule.json", shop["auth"]["admin"], body=body,
                           headers={"Idempotency-Key": key})
    assert status == 201, made
    return made["id"]


def test_offers_lead_with_the_rule_and_the_catalog_item_targeted_at_the_members_segment(shop):
    assert create(shop, {**GOLD_FANS, "catalog_items": ["atelier-mode-eur"]})[0] == 201
    targeted = rule(shop, {"name": "Gold fans get 75", "trigger": "purchase", "conditions": {"segment": "gold-fans"},
                           "effect": {"points": 75}}, "fans")
    books = rule(shop, {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
                        "effect": {"multiplier_bps": 20000}}, "books")
    rule(shop, {"name": "Silver only", "trigger": "purchase", "conditions": {"segment": "silver-fans"},
                "effect": {"points": 500}}, "silver")
    mid = member(shop, "fan", enrolled_days=100, active_days=1)
    seed(shop, mid, "TIER", tier="gold", since="2026-06-01T00:00:00.000Z", version=1)
    status, _, _ = member_call(accrual, "accrual/post_adjustment.json", shop["auth"]["admin"], mid, "/adjustments",
                               body={"points": 2200, "reason": "goodwill", "reference": "adj-1"})
    assert status in (200, 201)
    status, body, _ = member_call(handler, "segments/member_offers.json", shop["auth"]["partner"], mid, "/offers",
                                  query={"limit": "50"})
    assert status == 200, body
    assert [(r["rule_id"], r["targeted"], r["potential_points"]) for r in body["rules"]] == [
        (targeted, True, 75), (books, False, 100)]
    assert body["available_points"] == 2200 and body["tier"] == "gold" and "gold-fans" in body["segments"]
    first, catalog = body["catalog"][0], body["catalog"][1:]
    assert (first["item_id"], first["targeted"], first["segments"]) == ("atelier-mode-eur", True, ["gold-fans"])
    affordable = [c for c in catalog if c["affordable"]]
    nearly = [c for c in catalog if not c["affordable"]]
    assert affordable and nearly and catalog == affordable + nearly and not any(c["targeted"] for c in catalog)
    assert all(c["min_points"] <= 2200 and c["best"]["points"] <= 2200 for c in affordable)
    assert all(2200 * 10_000 >= c["min_points"] * 8_000 and c["points_missing"] == c["min_points"] - 2200
               for c in nearly)
    assert [c["points_missing"] for c in nearly] == sorted(c["points_missing"] for c in nearly)
    unknown = "mbr_01jzzzzzzzzzzzzzzzzzzzzzzz"
    assert member_call(handler, "segments/member_offers.json", shop["auth"]["partner"], unknown, "/offers")[0] == 404


def test_kpis_show_points_per_rule_and_members_per_tier_with_the_books_at_zero(shop):
    books = rule(shop, {"name": "Books count double", "trigger": "purchase", "conditions": {"category": "books"},
                        "effect": {"multiplier_bps": 20000}}, "books")
    big = rule(shop, {"name": "Fifty for a big basket", "trigger": "purchase", "conditions": {"min_amount": 5000},
                      "effect": {"points": 50}}, "big")
    mids = [member(shop, f"buyer{n}") for n in range(2)]
    seed(shop, mids[0], "TIER", tier="gold", since="2026-06-01T00:00:00.000Z", version=1)
    at = runtime.now()
    for n, mid in enumerate(mids):
        status, paid, _ = purchase(shop["auth"]["partner"], mid, {
            "transaction_id": f"t{n}", "amount": {"value": 6000, "currency": "EUR"}, "occurred_at": at,
            "lines": [{"sku": "B1", "category": "books", "quantity": 1, "amount": {"value": 3000, "currency": "EUR"}}]})
        assert status in (200, 201) and paid["points_earned"] == 60 + 30 + 50, paid
    count(force=True, program_id=shop["program_id"])
    status, kpis, _ = call(finance, "finance/get_kpis.json", shop["auth"]["finance"], query={})
    assert status == 200, kpis
    assert kpis["points_by_rule"] == [
        {"rule_id": "base", "name": "Base rate", "points": 120},
        {"rule_id": big, "name": "Fifty for a big basket", "points": 100},
        {"rule_id": books, "name": "Books count double", "points": 60}]
    assert kpis["points_earned"] == sum(r["points"] for r in kpis["points_by_rule"])
    assert kpis["members_by_tier"]["computed_at"] and kpis["members_by_tier"]["tiers"] == [
        {"tier": "gold", "members": 1}, {"tier": None, "members": 1}]
    status, trial, _ = call(finance, "finance/get_trial_balance.json", shop["auth"]["finance"])
    points = next(u for u in trial["units"] if u["unit"] == "points")
    accounts = {a["account"]: a["balance"] for a in points["accounts"]}
    assert points["total"] == 0
    assert accounts[f"program:bonus:{books}"] == -60 and accounts[f"program:bonus:{big}"] == -100
    assert accounts["program:issued"] == -120
    status, recon, _ = call(finance, "finance/get_reconciliation.json", shop["auth"]["finance"],
                            query={"date": at[:10]})
    assert status == 200 and recon["differences"] == [], recon
