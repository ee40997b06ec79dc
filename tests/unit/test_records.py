"""Typed records at the store boundary: webhook endpoints, events, batches, batch lines and orders (rewards
too) of ``treue.core.records``, vouchers, donations and their totals (``treue.core.issued_records``),
report jobs (``treue.core.report_records``), and the order summaries a reconciliation keeps
(``treue.logic.finance.OrderSummary``).

The stores return and accept ``WebhookEndpoint``, ``Batch`` and ``BatchLine``; the items they write keep
their attribute names, an item written before reads back as the same record and writes the same item,
and the API's views of them (JSON, and the CSV of batch lines) are what they were.
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from tests.support import create_table
from treue.core import times
from treue.core.issued_records import CharityTotal, Donation, Voucher
from treue.core.records import Batch, BatchLine, Event, Order, WebhookEndpoint, WebhookSecret
from treue.core.report_records import Report
from treue.core.statuses import (
    BatchStatus,
    EndpointStatus,
    EventType,
    ItemType,
    LineStatus,
    OrderStatus,
    ReportFormat,
    ReportStatus,
    ReportType,
    VoucherState,
)
from treue.logic import batches, finance, report_jobs, webhooks
from treue.logic import orders as order_logic
from treue.logic import rewards as reward_logic
from treue.logic import vouchers as voucher_logic
from treue.logic.finance import to_csv
from treue.logic.models import WebhookRequest
from treue.providers.charities import RecordingCharityAdapter
from treue.store.batches import BatchStore
from treue.store.dynamodb import Store
from treue.store.events import EventLog, event_put, new_event
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.orders import OrderStore
from treue.store.report_jobs import ReportJobs
from treue.store.schema import batch_pk, donation_pk, order_pk, report_pk, voucher_pk, webhook_pk
from treue.store.webhooks import WebhookStore

PID = "prg_records"
NOW = "2026-03-01T10:00:00.000000Z"

# An endpoint as the store wrote it before it had a record type (and still writes it)
STORED = {
    "id": "whk_1", "program_id": PID, "url": "https://hooks.example.com/treue", "event_types": ["order.completed"],
    "description": "orders", "status": "active", "consecutive_failures": 0, "deliveries": 0,
    "secrets": [{"sealed": "sealed-1", "created_at": NOW}], "created_at": NOW, "created_by": "key:admin",
}


class Vault:
    def seal(self, code: str, program_id: str, order_id: str) -> str:
        return f"sealed:{code}:{program_id}:{order_id}"


@pytest.fixture
def store():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        yield WebhookStore(Store(create_table(ddb, "records-test"), ddb))


def _raw(store: WebhookStore, endpoint_id: str) -> dict:
    out = store.ddb.get_item(TableName=store.table, Key=item_key(webhook_pk(PID), endpoint_id))
    return strip_keys(from_item(out["Item"]))


def test_an_endpoint_stored_before_reads_back_typed_and_writes_the_same_item():
    endpoint = WebhookEndpoint.from_item(STORED)
    assert endpoint.status is EndpointStatus.ACTIVE
    assert endpoint.event_types == ("order.completed",)
    assert endpoint.secrets == (WebhookSecret("sealed-1", NOW),)
    assert endpoint.item() == STORED
    assert to_item(endpoint.item()) == to_item(STORED)


def test_missing_health_fields_read_as_a_new_endpoint_s():
    bare = {k: v for k, v in STORED.items() if k not in ("status", "consecutive_failures", "deliveries")}
    endpoint = WebhookEndpoint.from_item(bare)
    assert (endpoint.status, endpoint.consecutive_failures, endpoint.deliveries) == ("active", 0, 0)


def test_the_store_returns_endpoints_and_the_view_is_unchanged(store):
    store.ddb.put_item(TableName=store.table, Item={**item_key(webhook_pk(PID), "whk_1"), **to_item(STORED)})
    [listed] = store.list(PID)
    assert isinstance(listed, WebhookEndpoint) and listed == store.require(PID, "whk_1")
    assert webhooks.view(listed) == {
        "id": "whk_1", "url": STORED["url"], "event_types": ["order.completed"], "description": "orders",
        "status": "active", "created_at": NOW, "consecutive_failures": 0, "deliveries": 0,
        "secrets": [{"created_at": NOW, "expires_at": None}],
    }
    store.record_attempt(PID, "whk_1", False, NOW, {"attempt": 1, "status_code": 500, "error": "HTTP 500"})
    failing = store.require(PID, "whk_1")
    assert failing.status is EndpointStatus.FAILING and failing.consecutive_failures == 1
    assert failing.last_failure == {"attempt": 1, "status_code": 500, "error": "HTTP 500", "at": NOW}
    last = times.parse(NOW).timestamp()
    assert webhooks.circuit_open_seconds(failing, last + 1, 30, 1) == 29  # backoff 30 s after one failure
    assert webhooks.circuit_open_seconds(failing, last + 31, 30, 1) == 0
    assert webhooks.circuit_open_seconds(failing, last + 1, 30, 2) == 0  # below the threshold
    assert failing.subscribes(EventType.ORDER_COMPLETED) and not failing.subscribes(EventType.BUDGET_LOW)


def test_create_and_rotate_write_the_attribute_names_of_before(store):
    request = WebhookRequest(url="https://hooks.example.com/all", event_types=["*", "budget.low"])
    created = webhooks.create(store, Vault(), PID, request, False, "key:admin", NOW)
    raw = _raw(store, created["id"])
    assert raw == {
        "id": created["id"], "program_id": PID, "url": request.url, "event_types": ["*"], "status": "active",
        "consecutive_failures": 0, "deliveries": 0, "created_at": NOW, "created_by": "key:admin",
        "secrets": [{"sealed": f"sealed:{created['secret']}:{PID}:{created['id']}", "created_at": NOW}],
    }
    assert created["secrets"] == [{"created_at": NOW, "expires_at": None}]
    later = "2026-03-01T11:00:00.000000Z"
    rotated = webhooks.rotate(store, Vault(), PID, created["id"], 24, later)
    secrets = _raw(store, created["id"])["secrets"]
    assert [s["created_at"] for s in secrets] == [later, NOW]
    assert secrets[1] == {**raw["secrets"][0], "expires_at": "2026-03-02T11:00:00Z"}
    assert rotated["secrets"] == [{"created_at": later, "expires_at": None},
                                  {"created_at": NOW, "expires_at": "2026-03-02T11:00:00Z"}]
    assert store.require(PID, created["id"]).subscribes("member.enrolled")


def test_an_event_item_reads_back_as_an_event_and_receivers_see_what_they_saw():
    item = new_event(PID, EventType.POINTS_EARNED, {"member_id": "mbr_1", "points": 50}, NOW, "evt_1")
    event = Event.from_item(from_item(to_item(item)))
    assert event == Event(id="evt_1", program_id=PID, type=EventType.POINTS_EARNED, created_at=NOW,
                          data={"member_id": "mbr_1", "points": 50}, position=item["gsi1sk"],
                          expires_at=item["expires_at"])
    assert event.public() == {"id": "evt_1", "type": "points.earned", "created_at": NOW,
                              "data": {"member_id": "mbr_1", "points": 50}}
    assert type(event.public()["type"]) is str
    with pytest.raises(ValueError):
        Event.from_item({**item, "type": "points.burned"})


def test_the_event_log_returns_events(store):
    store.store.transact([event_put(store.table, PID, EventType.BUDGET_LOW, {"currency": "EUR"}, NOW, "evt_2")])
    log = EventLog(store.store)
    event = log.get(PID, "evt_2")
    assert isinstance(event, Event) and event.type is EventType.BUDGET_LOW and event.data == {"currency": "EUR"}
    assert event.position and event.position.endswith("#evt_2")
    found, cursor = log.page(PID, None, None, 10, "2999-01-01T00:00:00Z")
    assert found == [event] and cursor
    assert log.page(PID, None, {"member.enrolled"}, 10, "2999-01-01T00:00:00Z")[0] == []


# A batch and its lines as the store wrote them before they had record types (and still writes them)
STORED_BATCH = {
    "id": "bat_1", "program_id": PID, "name": "March thanks", "status": "queued", "queued_run": 1, "runs": 0,
    "lines": 3, "accepted": 2, "rejected": 1, "cost": {"EUR": 2050}, "tolerated_failure_percentage": 10,
    "partial": True, "source": "inline", "actor": "key:partner", "client_reference": "idem-1", "created_at": NOW,
    "updated_at": NOW,
}
REQUEST = {"reference": "r-1", "item_id": "kaffeekranz-eur", "face_value": 1000,
           "recipient": {"email": "ada@example.com", "name": "Ada"}}
STORED_LINE = {  # accepted, pending its first attempt
    "program_id": PID, "batch_id": "bat_1", "line": 1, "reference": "r-1", "request": REQUEST, "type": "gift_card",
    "item_id": "kaffeekranz-eur", "face_value": 1000, "currency": "EUR", "cost": 1025, "status": "pending",
    "attempt": 1, "run": 0, "updated_at": NOW,
}
STORED_REJECTED = {
    "program_id": PID, "batch_id": "bat_1", "line": 2, "reference": "r-2", "request": {}, "status": "rejected",
    "attempt": 0, "run": 0, "failure_reason": "item_id: item nope does not exist", "updated_at": NOW,
}
LATER = "2026-03-01T10:05:00.000000Z"
STORED_FAILED = {  # a line whose second attempt failed in run 2
    **STORED_LINE, "line": 3, "reference": "r-3", "status": "failed", "attempt": 2, "run": 2,
    "reward_id": "rwd_3", "failure_reason": "not_orderable", "failure_detail": "item retired",
    "updated_at": LATER,
}
COUNTED = {"pending": 1, "processing": 0, "issued": 0, "failed": 0, "rejected": 1}


@pytest.fixture
def batch_store():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        yield BatchStore(Store(create_table(ddb, "records-batches"), ddb))


@pytest.mark.parametrize("stored", [STORED_BATCH, {**STORED_BATCH, "name": None},
                                    {**STORED_BATCH, "status": "halted", "runs": 1, "completed_at": LATER,
                                     "halted_reason": "ExceedToleratedFailureThreshold: 2 of 3 lines failed"}])
def test_a_batch_stored_before_reads_back_typed_and_writes_the_same_item(stored):
    stored = {k: v for k, v in stored.items() if v is not None}  # the codec leaves out an absent name
    batch = Batch.from_item(stored)
    assert isinstance(batch.status, BatchStatus) and batch.status == stored["status"]
    assert batch.cost == {"EUR": 2050} and batch.runs == stored["runs"]
    assert batch.item() == stored
    assert to_item(batch.item()) == to_item(stored)


def test_a_batch_s_view_is_what_the_api_answered():
    assert batches.view(Batch.from_item(STORED_BATCH), COUNTED) == {
        "batch_id": "bat_1", "status": "queued", "name": "March thanks", "lines": 3, "counts": COUNTED,
        "rejected": 1, "runs": 0, "cost": [{"value": 2050, "currency": "EUR"}], "tolerated_failure_percentage": 10,
        "created_at": NOW, "updated_at": NOW,
    }
    ended = Batch.from_item({**STORED_BATCH, "status": "completed", "runs": 1, "completed_at": LATER})
    view = batches.view(ended, COUNTED)
    assert (view["status"], view["runs"], view["completed_at"]) == ("completed", 1, LATER)
    assert type(view["status"]) is str and "halted_reason" not in view
    assert batches.current_run(Batch.from_item(STORED_BATCH)) == 1 and batches.current_run(ended) is None


@pytest.mark.parametrize("stored", [STORED_LINE, STORED_REJECTED, STORED_FAILED,
                                    {**STORED_LINE, "status": "issued", "reward_id": "rwd_1", "issued_at": LATER}])
def test_a_line_stored_before_reads_back_typed_and_writes_the_same_item(stored):
    line = BatchLine.from_item(stored)
    assert isinstance(line.status, LineStatus) and line.status == stored["status"]
    assert line.item() == stored
    assert to_item(line.item()) == to_item(stored)


def test_a_line_s_view_and_csv_row_are_what_the_api_answered():
    failed = BatchLine.from_item(STORED_FAILED)
    assert failed.type is ItemType.GIFT_CARD and failed.recipient == REQUEST["recipient"]
    assert batches.line_view(failed) == {
        "line": 3, "reference": "r-3", "status": "failed", "attempt": 2,
        "recipient": {"email": "ada@example.com", "name": "Ada"}, "updated_at": LATER, "item_id": "kaffeekranz-eur",
        "face_value": {"value": 1000, "currency": "EUR"}, "reward_id": "rwd_3", "failure_reason": "not_orderable",
    }
    rejected = BatchLine.from_item(STORED_REJECTED)
    assert batches.line_view(rejected) == {
        "line": 2, "reference": "r-2", "status": "rejected", "attempt": 0, "recipient": {}, "updated_at": NOW,
        "failure_reason": "item_id: item nope does not exist",
    }
    rows = [batches.line_row(failed), batches.line_row(rejected)]
    assert to_csv(batches.LINE_CSV_COLUMNS, rows) == (
        "line,reference,status,attempt,reward_id,item_id,face_value,currency,recipient_email,recipient_member_id,"
        "recipient_external_id,failure_reason,updated_at\r\n"
        f"3,r-3,failed,2,rwd_3,kaffeekranz-eur,1000,EUR,ada@example.com,,,not_orderable,{LATER}\r\n"
        f"2,r-2,rejected,0,,,,,,,,item_id: item nope does not exist,{NOW}\r\n"
    )
    assert batches.costs([BatchLine.from_item(STORED_LINE), failed, rejected]) == {"EUR": 2050}


def _raw_batch_item(store: BatchStore, sk: str) -> dict:
    out = store.ddb.get_item(TableName=store.table, Key=item_key(batch_pk(PID, "bat_1"), sk))
    return strip_keys(from_item(out["Item"]), index=True)


def test_the_batch_store_writes_the_items_of_before_and_returns_records(batch_store):
    batch = Batch.from_item(STORED_BATCH)
    lines = [BatchLine.from_item(STORED_LINE), BatchLine.from_item(STORED_REJECTED)]
    batch_store.put_lines(batch, lines)
    assert batch_store.create(batch, lines, ("batch", "idem-1", "fp"), {"batch_id": "bat_1"}) is None
    assert _raw_batch_item(batch_store, "BATCH") == STORED_BATCH
    assert _raw_batch_item(batch_store, "LINE#000001") == STORED_LINE
    assert _raw_batch_item(batch_store, "LINE#000002") == STORED_REJECTED
    assert batches.counts(batch_store.counters(PID, "bat_1")) == COUNTED

    assert batch_store.require(PID, "bat_1") == batch and batch_store.get(PID, "bat_nope") is None
    assert batch_store.page(PID, None, 10) == ([batch], None)
    assert batch_store.line(PID, "bat_1", 1) == lines[0] and batch_store.line(PID, "bat_1", 9) is None
    assert list(batch_store.lines(PID, "bat_1")) == lines
    assert list(batch_store.lines(PID, "bat_1", statuses=(LineStatus.REJECTED,))) == [lines[1]]

    # a line's attempt starts: the fields it sets read back on the record, the counts follow
    batch_store.transact(batch_store.line_move(PID, "bat_1", 1, LineStatus.PENDING, LineStatus.PROCESSING, 1, LATER,
                                               {"reward_id": "rwd_1", "run": 1, "failure_reason": None}))
    started = batch_store.line(PID, "bat_1", 1)
    assert started == BatchLine.from_item({**STORED_LINE, "status": "processing", "reward_id": "rwd_1", "run": 1,
                                           "updated_at": LATER})
    assert batches.counts(batch_store.counters(PID, "bat_1"))["processing"] == 1
    assert batch_store.begin_run(PID, "bat_1", 1, LATER)
    running = batch_store.require(PID, "bat_1")
    assert (running.status, running.runs, running.updated_at) == (BatchStatus.RUNNING, 1, LATER)
    assert _raw_batch_item(batch_store, "BATCH") == {**STORED_BATCH, "status": "running", "runs": 1,
                                                      "updated_at": LATER}


# ---------------------------------------------------------------- orders and rewards

GIFT_CARD = {  # the catalog item as an order keeps it
    "id": "atelier-mode-eur", "type": "gift_card", "brand": "Atelier Mode", "name": "Atelier Mode gift card",
    "category": "fashion", "countries": ["FR", "DE"], "currency": "EUR", "denominations": [2500, 5000],
    "fee": {"fixed": 0, "percent_bps": 150}, "expiry": {"policy": "months_after_issue", "months": 24},
    "delivery_methods": ["email", "api"], "cancel_policy": {"policy": "unredeemed_within_days", "days": 14},
}
# A points order as the store wrote it before it had a record type (and still writes it): completed,
# with its codes and delivery
STORED_ORDER = {
    "id": "ord_1", "program_id": PID, "member_id": "mbr_1", "type": "voucher", "item_id": "kaffeekranz-eur",
    "item": {"id": "kaffeekranz-eur", "name": "Kaffeekranz 10 €", "type": "voucher", "currency": "EUR"},
    "face_value": 1000, "currency": "EUR", "quantity": 2, "points": 2000, "points_each": 1000,
    "delivery": {"method": "email", "email": "ada@example.com"}, "status": "COMPLETED",
    "history": [{"status": "PENDING", "at": NOW, "reason": "points held"},
                {"status": "COMPLETED", "at": LATER, "reason": "points captured"}],
    "client_reference": "key-1", "actor": "partner:key_1", "created_at": NOW, "updated_at": LATER,
    "codes": [{"sealed": "s1", "hash": "h1", "masked": "***-1111", "expires_at": LATER},
              {"sealed": "s2", "hash": "h2", "masked": "***-2222", "expires_at": LATER}],
    "issued_at": NOW, "delivered": {"event_id": "evt_1", "method": "email", "at": LATER, "to": "a***@example.com"},
    "completed_at": LATER,
}
# A gift card order a release failed: the claim, the budget's funds given back, the provider's reference
STORED_FAILED_ORDER = {
    **STORED_ORDER, "id": "ord_2", "type": "gift_card", "item_id": GIFT_CARD["id"], "item": GIFT_CARD,
    "face_value": 2500, "quantity": 1, "points": 2500, "points_each": 2500, "status": "FAILED", "codes": [],
    "delivered": None, "completed_at": None, "issued_at": None,
    "provider": {"name": "simulated", "reference": "sim_1"},
    "funds": {"currency": "EUR", "face": 2500, "fee": 25, "at": NOW}, "funds_returned_at": LATER,
    "releasing": {"at": LATER, "reason": "provider_timeout", "error": "ProviderTimeout", "detail": "slow"},
    "failure_reason": "provider_timeout", "failure_detail": "slow",
}
# A completed order a cancel claimed and canceled
STORED_CANCELED_ORDER = {
    **STORED_FAILED_ORDER, "id": "ord_3", "status": "CANCELED", "releasing": None, "failure_reason": None,
    "failure_detail": None, "completed_at": LATER, "canceled_reason": "changed mind", "canceled_by": "partner:key_1",
    "canceling": {"id": "ccl_1", "at": LATER, "by": "partner:key_1"},
}
STORED_DONATION_ORDER = {**STORED_ORDER, "id": "ord_4", "type": "charity", "codes": [], "donation_id": "don_4"}
# A reward (no points; its recipient need not be a member) and a batch line's reward
STORED_REWARD = {
    "kind": "reward", "id": "rwd_1", "program_id": PID, "type": "gift_card", "item_id": GIFT_CARD["id"],
    "item": GIFT_CARD, "face_value": 2500, "currency": "EUR", "quantity": 1, "points": 0, "points_each": 0,
    "recipient": {"email": "grace@example.com", "name": "Grace"}, "delivery": {"method": "api"},
    "reference": "thanks-1", "message": "Thank you!", "status": "PENDING",
    "history": [{"status": "PENDING", "at": NOW, "reason": "reward accepted (paid from the budget)"}],
    "actor": "partner:key_1", "created_at": NOW, "updated_at": NOW, "codes": [], "client_reference": "key-r1",
}
STORED_BATCH_REWARD = {
    **STORED_REWARD, "id": "rwd_bat_1_3_2", "recipient": {}, "reference": "r-3", "message": None,
    "member_id": "mbr_1", "batch_id": "bat_1", "batch_line": 3, "attempt": 2, "client_reference": "bat_1:r-3",
    "actor": "batch:bat_1", "status": "PROCESSING",
}
ORDERS = [STORED_ORDER, STORED_FAILED_ORDER, STORED_CANCELED_ORDER, STORED_DONATION_ORDER, STORED_REWARD,
          STORED_BATCH_REWARD]


def _present(stored: dict) -> dict:
    return {k: v for k, v in stored.items() if v is not None}  # the codec leaves out absent values


@pytest.mark.parametrize("stored", ORDERS, ids=lambda s: s["id"])
def test_an_order_stored_before_reads_back_typed_and_writes_the_same_item(stored):
    stored = _present(stored)
    order = Order.from_item(stored)
    assert isinstance(order.status, OrderStatus) and order.status == stored["status"]
    assert isinstance(order.type, ItemType) and order.type == stored["type"]
    assert order.is_reward == (stored.get("kind") == "reward")
    assert order.attributes() == stored
    assert to_item(order.attributes()) == to_item(stored)
    # read from the table: its keys and the time index's are not attributes of the order
    keyed = {"pk": f"P#{PID}#ORDER#{stored['id']}", "sk": "ORDER", "gsi1pk": f"P#{PID}#ORDERS",
             "gsi1sk": f"{stored['created_at']}#{stored['id']}", **stored}
    assert Order.from_item(keyed) == order


def test_an_order_of_an_unknown_status_or_type_is_refused():
    with pytest.raises(ValueError):
        Order.from_item({**STORED_ORDER, "status": "LOST"})
    with pytest.raises(ValueError):
        Order.from_item({**STORED_ORDER, "type": "cash"})


def test_a_reward_without_a_member_holds_no_points():
    reward = Order.from_item(STORED_REWARD)
    assert reward.member_id is None
    with pytest.raises(ValueError):
        reward.holder  # noqa: B018 (a points step on a reward is a bug, not a posting for member None)
    assert Order.from_item(STORED_ORDER).holder == "mbr_1"


def test_an_order_s_view_is_what_the_api_answered():
    assert order_logic.view(Order.from_item(_present(STORED_ORDER))) == {
        "order_id": "ord_1", "member_id": "mbr_1", "type": "voucher",
        "item": {"id": "kaffeekranz-eur", "name": "Kaffeekranz 10 €", "type": "voucher"},
        "status": "COMPLETED", "history": STORED_ORDER["history"], "points": 2000,
        "face_value": {"value": 1000, "currency": "EUR"}, "quantity": 2,
        "delivery": {"method": "email", "email": "ada@example.com"},
        "codes": [{"masked": "***-1111", "expires_at": LATER}, {"masked": "***-2222", "expires_at": LATER}],
        "created_at": NOW, "updated_at": LATER, "delivered": STORED_ORDER["delivered"],
    }
    failed = order_logic.view(Order.from_item(_present(STORED_FAILED_ORDER)))
    assert failed["failure_reason"] == "provider_timeout" and failed["provider"] == STORED_FAILED_ORDER["provider"]
    assert "funds" not in failed and "releasing" not in failed and failed["codes"] == []
    canceled = order_logic.view(Order.from_item(_present(STORED_CANCELED_ORDER)))
    assert canceled["canceled_reason"] == "changed mind" and "canceling" not in canceled
    assert order_logic.view(Order.from_item(_present(STORED_DONATION_ORDER)))["donation_id"] == "don_4"


def test_a_reward_s_view_and_payout_row_are_what_the_api_answered():
    assert reward_logic.view(Order.from_item(_present(STORED_REWARD))) == {
        "reward_id": "rwd_1", "type": "gift_card",
        "item": {"id": "atelier-mode-eur", "name": "Atelier Mode gift card", "type": "gift_card"},
        "recipient": {"email": "grace@example.com", "name": "Grace"}, "reference": "thanks-1",
        "status": "PENDING", "history": STORED_REWARD["history"],
        "face_value": {"value": 2500, "currency": "EUR"}, "delivery": {"method": "api"}, "codes": [],
        "created_at": NOW, "updated_at": NOW, "message": "Thank you!",
    }
    batch_reward = reward_logic.view(Order.from_item(_present(STORED_BATCH_REWARD)))
    assert batch_reward["recipient"] == {} and batch_reward["batch_id"] == "bat_1"
    assert batch_reward["member_id"] == "mbr_1" and "message" not in batch_reward
    assert finance.payout_row(Order.from_item(_present(STORED_FAILED_ORDER))) == {
        "order_id": "ord_2", "created_at": NOW, "status": "FAILED", "type": "gift_card",
        "item_id": "atelier-mode-eur", "item_name": "Atelier Mode gift card", "member_id": "mbr_1", "quantity": 1,
        "face_value": 2500, "fee": 25, "currency": "EUR", "points": 2500, "provider": "simulated",
        "provider_reference": "sim_1", "failure_reason": "provider_timeout", "completed_at": None,
        "cash_value": None, "cash_reference": None, "cash_owed_back": None, "cash_refunded": None,  # points only
    }


@pytest.fixture
def order_store():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        yield OrderStore(Store(create_table(ddb, "records-orders"), ddb))


def _raw_order(store: OrderStore, order_id: str) -> dict:
    out = store.ddb.get_item(TableName=store.table, Key=item_key(order_pk(PID, order_id), "ORDER"))
    return from_item(out["Item"])


def test_the_order_store_writes_the_item_of_before_and_returns_orders(order_store):
    reward = Order.from_item(_present(STORED_REWARD))
    assert order_store.create_reward(reward, ("reward", "key-r1", "fp"), {"reward_id": "rwd_1"}) is None
    assert _raw_order(order_store, "rwd_1") == {
        "pk": order_pk(PID, "rwd_1"), "sk": "ORDER", "gsi1pk": f"P#{PID}#ORDERS", "gsi1sk": f"{NOW}#rwd_1",
        **_present(STORED_REWARD)}
    assert order_store.get(PID, "rwd_1") == reward and order_store.require(PID, "rwd_1") == reward
    assert order_store.get(PID, "rwd_nothing") is None
    batch_reward = Order.from_item(_present(STORED_BATCH_REWARD))
    assert order_store.create_batch_reward(batch_reward, []) is True
    assert order_store.create_batch_reward(batch_reward, []) is False  # a re-driven line finds it
    assert strip_keys(_raw_order(order_store, batch_reward.id), index=True) == _present(STORED_BATCH_REWARD)


def test_a_release_claim_returns_the_claimed_order_and_an_update_reads_back(order_store):
    reward = Order.from_item(_present(STORED_BATCH_REWARD))
    order_store.create_batch_reward(reward, [])
    claim = {"at": LATER, "reason": "provider_timeout", "error": "ProviderTimeout", "detail": "slow"}
    claimed = order_store.claim_release(PID, reward.id, claim, LATER)
    assert isinstance(claimed, Order) and claimed.releasing == claim and claimed.updated_at == LATER
    assert claimed.status is OrderStatus.PROCESSING and claimed.batch_line == 3
    order_store.transact([order_store.order_update(PID, reward.id, OrderStatus.FAILED, (OrderStatus.PROCESSING,),
                                                   LATER, "provider_timeout", {"failure_reason": "provider_timeout"})])
    failed = order_store.require(PID, reward.id)
    assert failed.status is OrderStatus.FAILED and failed.failure_reason == "provider_timeout"
    assert failed.history[-1] == {"status": "FAILED", "at": LATER, "reason": "provider_timeout"}
    assert order_store.claim_release(PID, reward.id, claim, LATER) is None  # failed: nothing to claim


# ---------------------------------------------------------------- vouchers

# A voucher as the payout workflow wrote it when its order was issued (and still writes it), then redeemed
# at a till, voided, and a reward's voucher that has no member
STORED_VOUCHER = {
    "order_id": "ord_1", "member_id": "mbr_1", "item_id": "kaffeekranz-eur", "name": "Kaffeekranz 10 €",
    "discount": {"kind": "fixed", "amount": 1000}, "currency": "EUR", "face_value": 1000, "minimum_spend": 2000,
    "status": "ACTIVE", "masked": "***-1111", "issued_at": NOW, "expires_at": "2026-06-01T10:00:00.000000Z",
}
STORED_REDEEMED_VOUCHER = {**STORED_VOUCHER, "status": "REDEEMED", "redeemed_at": LATER,
                           "redemption_reference": "till-7", "redeemed_by": "key:till"}
STORED_VOID_VOUCHER = {**STORED_VOUCHER, "status": "VOID", "voided_at": LATER, "void_reason": "order canceled",
                       "voided_by": "key:admin"}
STORED_REWARD_VOUCHER = {k: v for k, v in STORED_VOUCHER.items() if k != "member_id"} | {"order_id": "rwd_1"}
VOUCHERS = [STORED_VOUCHER, STORED_REDEEMED_VOUCHER, STORED_VOID_VOUCHER, STORED_REWARD_VOUCHER]


@pytest.mark.parametrize("stored", VOUCHERS, ids=lambda s: f"{s['order_id']}-{s['status']}")
def test_a_voucher_stored_before_reads_back_typed_and_writes_the_same_item(stored):
    voucher = Voucher.from_item(stored)
    assert isinstance(voucher.status, VoucherState) and voucher.status == stored["status"]
    assert voucher.item() == stored
    assert to_item(voucher.item()) == to_item(stored)
    assert Voucher.from_item({"pk": f"P#{PID}#VOUCHER#h1", "sk": "VOUCHER", **stored}) == voucher


def test_a_voucher_of_an_unknown_status_is_refused_and_expired_is_never_stored():
    with pytest.raises(ValueError):
        Voucher.from_item({**STORED_VOUCHER, "status": "SPENT"})
    with pytest.raises(ValueError):
        Voucher.from_item({**STORED_VOUCHER, "status": "EXPIRED"})


def test_a_voucher_s_view_is_what_the_till_was_answered():
    voucher = Voucher.from_item(STORED_VOUCHER)
    assert voucher_logic.view(voucher, LATER) == {
        "code": "***-1111", "status": "ACTIVE", "name": "Kaffeekranz 10 €",
        "discount": {"kind": "fixed", "amount": 1000},
        "value": {"value": 1000, "currency": "EUR"}, "minimum_spend": {"value": 2000, "currency": "EUR"},
        "expires_at": STORED_VOUCHER["expires_at"], "order_id": "ord_1",
    }
    assert voucher_logic.view(voucher, "2026-07-01T00:00:00Z")["status"] is VoucherState.EXPIRED
    redeemed = voucher_logic.view(Voucher.from_item(STORED_REDEEMED_VOUCHER), "2026-07-01T00:00:00Z")
    assert redeemed["status"] == "REDEEMED" and redeemed["redemption_reference"] == "till-7"
    assert redeemed["redeemed_at"] == LATER and "redeemed_by" not in redeemed
    voided = voucher_logic.view(Voucher.from_item(STORED_VOID_VOUCHER), LATER)
    assert (voided["status"], voided["void_reason"], voided["voided_at"]) == ("VOID", "order canceled", LATER)
    assert "voided_by" not in voided


def _raw_voucher(store: OrderStore, code_hash: str) -> dict:
    out = store.ddb.get_item(TableName=store.table, Key=item_key(voucher_pk(PID, code_hash), "VOUCHER"))
    return strip_keys(from_item(out["Item"]))


def test_the_order_store_writes_vouchers_as_before_and_returns_them(order_store):
    voucher = Voucher.from_item(STORED_VOUCHER)
    order_store.transact([order_store.voucher_put(PID, "h1", voucher)])
    assert _raw_voucher(order_store, "h1") == STORED_VOUCHER
    assert order_store.get_voucher(PID, "h1") == voucher and order_store.get_voucher(PID, "h2") is None
    redeemed = order_store.voucher_change(
        PID, "h1", VoucherState.REDEEMED, (VoucherState.ACTIVE,),
        {"redeemed_at": LATER, "redemption_reference": "till-7", "redeemed_by": "key:till"},
        extra_condition="expires_at >= :now", extra_values={":now": LATER})
    assert redeemed == Voucher.from_item(STORED_REDEEMED_VOUCHER)
    assert _raw_voucher(order_store, "h1") == STORED_REDEEMED_VOUCHER
    assert redeemed.redeemed_with("till-7") and not redeemed.redeemed_with("till-8")
    assert order_store.voucher_change(PID, "h1", VoucherState.VOID, (VoucherState.ACTIVE,), {}) is None


# ---------------------------------------------------------------- donations

CHARITY = {"id": "bienenretter-eur", "name": "Bienenretter e.V.", "type": "charity", "registration_id": "VR 4711",
           "country": "DE", "currency": "EUR", "cause": "biodiversity", "min_value": 100, "max_value": 100000}
# A donation order of three times 5 € being issued
STORED_CHARITY_ORDER = {**_present(STORED_DONATION_ORDER), "id": "ord_01hq3x7k2m9v8c6b5n4t3r2w1y",
                        "item_id": CHARITY["id"], "item": CHARITY, "face_value": 500, "quantity": 3,
                        "status": "ISSUED", "donation_id": "don_01hq3x7k2m9v8c6b5n4t3r2w1y"}
# A donation receipt as the charity adapter gave it and the store wrote it (and still writes it)
STORED_DONATION = {
    "id": "don_01hq3x7k2m9v8c6b5n4t3r2w1y", "order_id": "ord_01hq3x7k2m9v8c6b5n4t3r2w1y", "member_id": "mbr_1",
    "charity_id": "bienenretter-eur", "charity_name": "Bienenretter e.V.", "registration_id": "VR 4711",
    "country": "DE", "amount": 1500, "currency": "EUR", "receipt_number": "TRD-20260301-4T3R2W1Y",
    "adapter": "recorded", "created_at": NOW,
}


def test_a_donation_stored_before_reads_back_and_writes_the_same_item():
    donation = Donation.from_item(STORED_DONATION)
    assert donation.amount == 1500 and donation.member_id == "mbr_1"
    assert donation.item() == STORED_DONATION
    assert to_item(donation.item()) == to_item(STORED_DONATION)


def test_the_charity_adapter_gives_the_receipt_of_before():
    order = Order.from_item({**STORED_CHARITY_ORDER, "status": "PROCESSING", "donation_id": None})
    donation = RecordingCharityAdapter().donate(order, NOW)
    assert isinstance(donation, Donation)
    assert donation.item() == STORED_DONATION


def test_the_order_store_writes_donations_as_before_and_returns_them_with_the_totals(order_store):
    donation = Donation.from_item(STORED_DONATION)
    order_store.transact(order_store.donation_items(PID, donation))
    second = Donation.from_item({**STORED_DONATION, "id": "don_2", "order_id": "ord_2", "amount": 500})
    order_store.transact(order_store.donation_items(PID, second))
    out = order_store.ddb.get_item(TableName=order_store.table, Key=item_key(donation_pk(PID, donation.id), "DONATION"))
    assert strip_keys(from_item(out["Item"])) == STORED_DONATION
    assert order_store.get_donation(PID, donation.id) == donation
    assert order_store.get_donation(PID, "don_nothing") is None
    [total] = order_store.donation_totals(PID)
    assert total == CharityTotal("bienenretter-eur", "Bienenretter e.V.", "EUR", 2000, 2)
    assert total.item() == {"charity_id": "bienenretter-eur", "charity_name": "Bienenretter e.V.", "currency": "EUR",
                            "total": 2000, "donations": 2}


# ---------------------------------------------------------------- report jobs

# A report job as requested, and as its worker completed it (the store writes and still writes these)
STORED_REPORT = {
    "id": "rpt_1", "program_id": PID, "type": "reconciliation", "params": {"date": "2026-03-01"}, "format": "csv",
    "status": "queued", "created_at": NOW, "updated_at": NOW, "requested_by": "key:finance", "step": 0,
    "progress": {"phase": 0, "phase_name": None, "after": None, "items": 0, "pages": 0, "checked": 0, "done": False},
}
STORED_COMPLETED_REPORT = {
    **STORED_REPORT, "id": "rpt_2", "type": "payouts", "params": {"from": "2026-03-01", "to": None},
    "format": "json", "status": "completed", "step": 2, "started_at": NOW, "completed_at": LATER,
    "updated_at": LATER,
    "progress": {"phase": 1, "phase_name": "done", "after": None, "items": 1200, "pages": 2, "checked": 0,
                 "done": True},
    "state_key": f"reports/{PID}/rpt_2/state-2-abcd.json", "summary": {"rows": 1200},
    "result": {"key": f"reports/{PID}/rpt_2/payouts-2026-03-01.json", "content_type": "application/json",
               "bytes": 4096},
}
STORED_FAILED_REPORT = {**STORED_REPORT, "id": "rpt_3", "type": "kpis", "params": {"date": "2026-03-01"},
                        "status": "failed", "failure_reason": "StorageTimeout (step 0, attempt 3)",
                        "completed_at": LATER}
REPORTS = [STORED_REPORT, STORED_COMPLETED_REPORT, STORED_FAILED_REPORT]


@pytest.mark.parametrize("stored", REPORTS, ids=lambda s: s["id"])
def test_a_report_stored_before_reads_back_typed_and_writes_the_same_item(stored):
    report = Report.from_item(stored)
    assert isinstance(report.status, ReportStatus) and report.status == stored["status"]
    assert isinstance(report.type, ReportType) and isinstance(report.format, ReportFormat)
    assert report.item() == stored
    assert to_item(report.item()) == to_item(stored)


def test_a_report_of_an_unknown_status_type_or_format_is_refused():
    for name, value in (("status", "paused"), ("type", "ledger"), ("format", "xlsx")):
        with pytest.raises(ValueError):
            Report.from_item({**STORED_REPORT, name: value})


def test_a_report_s_view_is_what_the_api_answered():
    def download(key: str) -> tuple[str, str]:
        return f"https://bucket.example.com/{key}?signed", LATER

    assert report_jobs.view(Report.from_item(STORED_COMPLETED_REPORT), download) == {
        "report_id": "rpt_2", "type": "payouts", "params": {"from": "2026-03-01", "to": None}, "format": "json",
        "status": "completed", "created_at": NOW, "updated_at": LATER, "started_at": NOW, "completed_at": LATER,
        "progress": {"phase": "done", "items": 1200, "pages": 2, "orders_checked": 0, "continuations": 2},
        "summary": {"rows": 1200}, "failure_reason": None,
        "result": {"url": f"https://bucket.example.com/reports/{PID}/rpt_2/payouts-2026-03-01.json?signed",
                   "expires_at": LATER, "content_type": "application/json", "bytes": 4096,
                   "file_name": "payouts-2026-03-01.json"},
    }
    failed = report_jobs.view(Report.from_item(STORED_FAILED_REPORT), download)
    assert failed["status"] == "failed" and failed["result"] is None
    assert failed["failure_reason"] == "StorageTimeout (step 0, attempt 3)"


def test_the_report_store_writes_the_item_of_before_and_returns_reports(order_store):
    jobs = ReportJobs(order_store.store)
    report = Report.from_item(STORED_REPORT)
    assert jobs.create(report, ("key-1", "fp"), {"report_id": "rpt_1"}, 1_780_000_000) is None
    out = jobs.ddb.get_item(TableName=jobs.table, Key=item_key(report_pk(PID, "rpt_1"), "REPORT"))
    assert from_item(out["Item"]) == {"pk": report_pk(PID, "rpt_1"), "sk": "REPORT", **STORED_REPORT,
                                      "gsi1pk": f"P#{PID}#REPORTS", "gsi1sk": f"{NOW}#rpt_1",
                                      "expires_at": 1_780_000_000}
    assert jobs.get(PID, "rpt_1") == report and jobs.get(PID, "rpt_nothing") is None
    assert jobs.page(PID, None, 10) == ([report], None)
    assert jobs.start(PID, "rpt_1", LATER)
    assert jobs.checkpoint(PID, "rpt_1", 0, {"status": ReportStatus.RUNNING, "state_key": "reports/s.json"})
    running = jobs.get(PID, "rpt_1")
    assert running.status is ReportStatus.RUNNING and running.step == 1 and running.started_at == LATER
    assert running.state_key == "reports/s.json"


def test_a_report_request_stores_a_queued_report():
    class Jobs:
        def __init__(self) -> None:
            self.created: list[Report] = []

        def create(self, report, idempotency, answer, expires_at):
            self.created.append(report)

    class Queue:
        def __init__(self) -> None:
            self.sent: list[tuple[str, str, int]] = []

        def send(self, program_id, report_id, step):
            self.sent.append((program_id, report_id, step))

    jobs, queue = Jobs(), Queue()
    report, replayed = report_jobs.request(jobs, queue, PID, "kpis", {"date": "2026-03-01"}, "csv", "key-1",
                                           "key:finance", NOW, 1_700_000_000)
    assert not replayed and jobs.created == [report] and queue.sent == [(PID, report.id, 0)]
    assert report.item() == {"id": report.id, "program_id": PID, "type": "kpis", "params": {"date": "2026-03-01"},
                             "format": "csv", "status": "queued", "created_at": NOW, "updated_at": NOW,
                             "requested_by": "key:finance", "step": 0, "progress": report_jobs.new_progress()}


# ---------------------------------------------------------------- order summaries (reconciliation)


def test_an_order_summary_is_kept_in_a_report_s_state_as_before():
    summary = finance.order_summary(Order.from_item(_present(STORED_FAILED_ORDER)))
    assert isinstance(summary, finance.OrderSummary) and summary.status is OrderStatus.FAILED
    state = {"id": "ord_2", "status": "FAILED", "type": "gift_card", "points": 2500, "currency": "EUR",
             "draws": True, "face": 2500, "fee": 38, "reference": "sim_1", "donation_id": None}
    assert summary.state() == state and json.loads(json.dumps(summary.state())) == state
    assert all(type(v) in (str, int, bool, type(None)) for v in summary.state().values())
    assert finance.OrderSummary.from_state(state) == summary
    assert summary.needs_provider and not summary.needs_receipt
    with pytest.raises(ValueError):
        finance.OrderSummary.from_state({**state, "status": "LOST"})
    donation = finance.order_summary(Order.from_item(STORED_CHARITY_ORDER))
    assert donation.state() == {"id": STORED_CHARITY_ORDER["id"], "status": "ISSUED", "type": "charity",
                                "points": 2000, "currency": "EUR", "draws": True, "face": 1500, "fee": 0,
                                "reference": None, "donation_id": STORED_CHARITY_ORDER["donation_id"]}
    assert donation.needs_receipt and not donation.needs_provider


def test_the_reconciliation_keeps_its_orders_as_plain_state_and_checks_records():
    run = finance.Reconciliation("2026-03-01")
    for stored in (STORED_ORDER, STORED_FAILED_ORDER, STORED_CHARITY_ORDER):
        run.add_order(Order.from_item(_present(stored)))
    state = json.loads(json.dumps(run.state()))
    charity_id = STORED_CHARITY_ORDER["id"]
    assert [o["id"] for o in state["orders"]] == ["ord_1", "ord_2", charity_id]
    again = finance.Reconciliation("2026-03-01", state)
    first = again.unchecked(2)
    assert [s.id for s in first] == ["ord_1", "ord_2"] and all(isinstance(s, finance.OrderSummary) for s in first)
    for summary in first:
        again.check(summary)
    assert again.left() == 1 and [s.id for s in again.unchecked()] == [charity_id]
    again.check(again.unchecked()[0], None, Donation.from_item({**STORED_DONATION, "amount": 999}))
    assert {"check": "donation", "order_id": charity_id, "unit": "EUR", "expected": 1500, "actual": 999,
            "detail": "the charity receipt"} in again.differences
    assert not [d for d in again.differences if d["check"] == "donation" and d["order_id"] != charity_id]
