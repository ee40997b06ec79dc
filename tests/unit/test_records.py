"""Typed records at the store boundary (``treue.core.records``): webhook endpoints and events.

The store returns and accepts ``WebhookEndpoint``; the items it writes keep their attribute names, an
item written before reads back as the same endpoint, and the API's view of it is what it was.
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from tests.support import create_table
from treue.core import times
from treue.core.records import Event, WebhookEndpoint, WebhookSecret
from treue.core.statuses import EndpointStatus, EventType
from treue.logic import webhooks
from treue.logic.models import WebhookRequest
from treue.store.dynamodb import Store
from treue.store.events import EventLog, event_put, new_event
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import webhook_pk
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
