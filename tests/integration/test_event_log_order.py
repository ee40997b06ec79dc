"""Issue 13, item 7: the event log is ordered by write, not by business time, so a reader paging with
``after`` never skips an event that was written after it paged, however old the event's business
time is; a write slow enough for a reader to pass its position moves its event after the commit."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.integration.helpers import call, enroll
from treue import runtime
from treue.handlers import webhooks
from treue.store import positions
from treue.store.events import EventLog, event_put


def at(offset_seconds: float) -> str:
    """The clock ``offset_seconds`` from now, as the API writes times."""
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read(shop, after, monkeypatch, ahead=3.0):
    """GET /v1/events?after= as a reader whose clock is ``ahead`` seconds on (past the settle window)."""
    monkeypatch.setattr(runtime, "now", lambda: at(ahead))
    query = {"limit": "500", **({"after": after} if after else {})}
    status, page, _ = call(webhooks, "webhooks/list_events.json", shop["auth"]["partner"], query=query)
    monkeypatch.undo()
    assert status == 200, page
    return page


def budget_low(shop, business_time):
    return event_put(runtime.store().table, shop["program_id"], "budget.low", {
        "currency": "EUR", "balance": {"value": 10, "currency": "EUR"},
        "threshold": {"value": 100, "currency": "EUR"}, "batch_id": "bat_late"}, business_time)


def test_an_event_with_an_old_business_time_written_now_reaches_a_reader_who_paged_past_that_time(shop,
                                                                                                   monkeypatch):
    business_time = at(-30)  # e.g. a batch's budget.low stamped when its request began
    status, member, _ = enroll(shop["auth"]["partner"], {"email": "early@example.com"})
    assert status == 201
    first = read(shop, None, monkeypatch)
    assert "member.enrolled" in [e["type"] for e in first["items"]]
    assert first["items"][-1]["created_at"] > business_time  # the reader is past the business time

    runtime.store().transact([budget_low(shop, business_time)])  # written now, long after its time

    later = read(shop, first["next_after"], monkeypatch)
    [late] = [e for e in later["items"] if e["type"] == "budget.low"]  # was missed for good
    assert late["created_at"] == business_time  # the business time stays the event's data
    seen = [e["id"] for e in first["items"] + later["items"]]
    assert len(seen) == len(set(seen))
    assert read(shop, later["next_after"], monkeypatch)["items"] == []


def test_a_write_slower_than_the_window_moves_its_event_past_a_reader_who_paged_meanwhile(shop, monkeypatch):
    store = runtime.store()
    log = EventLog(store)
    slow, quick = budget_low(shop, at(0)), budget_low(shop, at(0))
    reader = {}
    monkeypatch.setattr(positions, "LATE_SECONDS", 0.05)

    def slow_send():  # e.g. an SDK retry after a timeout: the event's position was taken, then ...
        time.sleep(0.01)
        store.transact([quick])  # ... a concurrent writer commits an event at a later position, ...
        found, reader["cursor"] = log.page(shop["program_id"], None, None, 500, at(positions.SETTLE_SECONDS + 1))
        reader["seen"] = [e.id for e in found]  # ... a reader pages past both positions, ...
        time.sleep(0.1)
        return store.ddb.transact_write_items(TransactItems=[slow])  # ... and only then this one commits

    positions.write(slow_send, [slow], store.ddb, store.table)
    slow_id, quick_id = slow["Put"]["Item"]["id"]["S"], quick["Put"]["Item"]["id"]["S"]
    assert quick_id in reader["seen"] and slow_id not in reader["seen"]
    later, _ = log.page(shop["program_id"], reader["cursor"], None, 500, at(10))
    assert [e.id for e in later] == [slow_id]  # without the move it sat behind the reader's cursor


def test_concurrent_writers_positions_follow_the_send_not_the_business_time(shop):
    store = runtime.store()
    log = EventLog(store)
    older, newer = budget_low(shop, at(-60)), budget_low(shop, at(-1))
    store.transact([newer])
    store.transact([older])  # sent second: listed second, though its business time is a minute earlier
    found, _ = log.page(shop["program_id"], None, {"budget.low"}, 500, at(10))
    ids = [e.id for e in found]
    assert ids == [newer["Put"]["Item"]["id"]["S"], older["Put"]["Item"]["id"]["S"]]
