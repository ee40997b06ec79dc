"""End-to-end: signed webhooks from the table stream through the delivery queue to a local receiver,
retries after receiver errors, catch-up through /v1/events after an outage, redelivery, rotation;
and budget-paid rewards."""

import time
import uuid

import pytest

from infra.twin.receiver import Receiver
from tests.e2e.test_rewards import member_with


def until(check, timeout=60, every=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError("not reached in time")


@pytest.fixture
def hooked(twin):
    """A receiver with an endpoint for every event type; deleted afterwards."""
    receiver = Receiver().start()
    status, headers, created = twin.request("POST", "/v1/webhooks", {"url": receiver.url, "event_types": ["*"],
                                                                     "description": "e2e receiver"})
    assert status == 201, created
    assert created["secret"].startswith("whsec_") and created["status"] == "active"
    assert headers["Location"] == f"/v1/webhooks/{created['id']}"
    receiver.secrets.append(created["secret"])
    yield receiver, created
    twin.request("DELETE", f"/v1/webhooks/{created['id']}")
    receiver.stop()


def enroll(twin):
    status, _, member = twin.request("POST", "/v1/members", {"email": f"{uuid.uuid4().hex}@example.com"})
    assert status == 201
    return member["id"]


def enrolled(receiver, member_id):
    return [e for e in receiver.events("member.enrolled") if e["data"]["member_id"] == member_id]


def test_a_signed_event_reaches_the_receiver_and_is_in_the_log(twin, hooked):
    receiver, endpoint = hooked
    mid = enroll(twin)
    got = until(lambda: enrolled(receiver, mid))
    assert len(got) == 1 and receiver.rejected == 0
    event = got[0]
    status, _, same = twin.request("GET", f"/v1/events/{event['id']}")
    assert status == 200 and same == event
    status, _, page = until(lambda: (r := twin.request("GET", "/v1/events?type=member.enrolled&limit=500"))
                            and any(e["id"] == event["id"] for e in r[2]["items"]) and r)
    assert all(e["type"] == "member.enrolled" for e in page["items"])
    status, _, health = twin.request("GET", f"/v1/webhooks/{endpoint['id']}")
    assert health["status"] == "active" and health["deliveries"] >= 1 and "secret" not in health


def test_a_receiver_error_is_retried_and_the_endpoint_shows_failing_meanwhile(twin, hooked):
    receiver, endpoint = hooked
    receiver.fail_next(2)
    mid = enroll(twin)
    until(lambda: twin.request("GET", f"/v1/webhooks/{endpoint['id']}")[2]["status"] == "failing")
    got = until(lambda: enrolled(receiver, mid))
    assert len(got) == 1
    health = until(lambda: (h := twin.request("GET", f"/v1/webhooks/{endpoint['id']}")[2])["status"] == "active"
                   and h)
    assert health["consecutive_failures"] == 0 and health["last_failure"]["status_code"] == 503


def test_after_an_outage_the_log_has_everything_and_retries_deliver_it(twin, hooked):
    receiver, endpoint = hooked
    status, _, page = twin.request("GET", "/v1/events?limit=500")
    cursor = page["next_after"]
    while page["items"]:
        status, _, page = twin.request("GET", f"/v1/events?limit=500&after={cursor}")
        cursor = page["next_after"]
    port = receiver.port
    receiver.stop()
    members = [enroll(twin) for _ in range(3)]
    until(lambda: twin.request("GET", f"/v1/webhooks/{endpoint['id']}")[2]["status"] == "failing")
    time.sleep(2.5)  # let the newest events settle into the log
    status, _, caught_up = twin.request("GET", f"/v1/events?type=member.enrolled&after={cursor}")
    assert status == 200
    assert {e["data"]["member_id"] for e in caught_up["items"]} >= set(members)
    receiver.port = port
    receiver.start()
    until(lambda: all(enrolled(receiver, m) for m in members), timeout=90)
    assert receiver.rejected == 0


def test_redelivery_and_secret_rotation(twin, hooked):
    receiver, endpoint = hooked
    mid = enroll(twin)
    event = until(lambda: enrolled(receiver, mid))[0]
    status, _, rotated = twin.request("POST", f"/v1/webhooks/{endpoint['id']}/rotate-secret",
                                      {"expire_previous_in_hours": 24})
    assert status == 200 and rotated["secret"] != endpoint["secret"] and len(rotated["secrets"]) == 2
    receiver.secrets[:] = [rotated["secret"]]  # only the new secret is accepted from now on
    status, _, queued = twin.request("POST", f"/v1/events/{event['id']}/redeliver", {})
    assert status == 202 and endpoint["id"] in queued["endpoints"]
    until(lambda: len(enrolled(receiver, mid)) == 2)
    signature = [r for r in receiver.received if r["event"]["id"] == event["id"]][-1]["signature"]
    assert signature.count("v1=") == 2  # the old secret still signs during the overlap
    assert twin.request("POST", "/v1/events/evt_00000000000000000000000000/redeliver", {})[0] == 404


def test_webhook_input_is_checked(twin):
    assert twin.request("POST", "/v1/webhooks", {"url": "http://example.com/x", "event_types": ["*"]})[0] == 400
    status, _, problem = twin.request("POST", "/v1/webhooks", {"url": "https://example.com/x",
                                                               "event_types": ["order.shipped"]})
    assert status == 422 and problem["type"].endswith("validation-failed")
    assert twin.request("GET", "/v1/events?type=nope")[0] == 400
    assert twin.request("GET", "/v1/events?after=garbage")[0] == 400
    assert twin.request("GET", "/v1/webhooks/whk_00000000000000000000000000")[0] == 404


def reward(twin, body, key=None):
    status, headers, out = twin.request("POST", "/v1/rewards", body,
                                        headers={"Idempotency-Key": key or uuid.uuid4().hex})
    return status, headers, out


def test_a_brand_issues_a_gift_card_reward_paid_from_the_budget(twin, hooked):
    receiver, _ = hooked
    reference = f"welcome-{uuid.uuid4().hex[:8]}"
    body = {"recipient": {"email": "new.hire@example.com", "name": "Ada"}, "item_id": "kaffeekranz-eur",
            "face_value": 2000, "reference": reference, "message": "Welcome aboard"}
    key = uuid.uuid4().hex
    status, headers, accepted = reward(twin, body, key)
    assert status == 202 and accepted["reward_id"].startswith("rwd_") and not accepted["replayed"]
    assert headers["Location"] == f"/v1/rewards/{accepted['reward_id']}"
    assert reward(twin, body, key)[2]["replayed"] is True
    assert reward(twin, {**body, "face_value": 1000}, key)[0] == 409
    rid = accepted["reward_id"]
    done = until(lambda: (r := twin.request("GET", f"/v1/rewards/{rid}")[2])["status"] in ("COMPLETED", "FAILED")
                 and r)
    assert done["status"] == "COMPLETED", done
    assert done["funds"]["face"] == 2000 and done["reference"] == reference and done["codes"]
    assert done["delivered"]["method"] == "email"
    status, _, codes = twin.request("GET", f"/v1/rewards/{rid}/codes")
    assert status == 200 and codes["codes"][0]["code"]
    types = until(lambda: {e["type"] for e in receiver.events() if e["data"].get("order_id") == rid}
                  >= {"reward.delivered", "order.completed"})
    assert types


def test_rewards_are_refused_when_they_cannot_be_paid_or_are_not_rewards(twin):
    base = {"recipient": {"email": "x@example.com"}, "reference": "r-1"}
    status, _, problem = reward(twin, {**base, "item_id": "kaffeekranz-eur", "face_value": 10**9})
    assert status in (409, 422), problem
    status, _, problem = reward(twin, {**base, "item_id": "kaffeekranz-eur", "face_value": 500,
                                       "recipient": {"name": "nobody"}})
    assert status == 422
    status, _, problem = reward(twin, {**base, "item_id": "kaffeekranz-eur", "face_value": 500,
                                       "recipient": {"member_id": "mbr_00000000000000000000000000"}})
    assert status == 404 and problem["type"].endswith("member-not-found")
    mid = member_with(twin, 10)
    status, _, accepted = reward(twin, {**base, "item_id": "kaffeekranz-eur", "face_value": 500,
                                        "recipient": {"member_id": mid}})
    assert status == 202
    done = until(lambda: (r := twin.request("GET", f"/v1/rewards/{accepted['reward_id']}")[2])["status"]
                 in ("COMPLETED", "FAILED") and r)
    assert done["status"] == "COMPLETED" and done["member_id"] == mid and done["delivery"]["method"] == "email"
    assert twin.request("GET", f"/v1/members/{mid}/balance")[2]["available"] == 10  # no points involved
    assert twin.request("GET", "/v1/rewards/rwd_00000000000000000000000000")[0] == 404
    status, _, _ = twin.request("POST", "/v1/rewards", {**base, "item_id": "kaffeekranz-eur", "face_value": 500})
    assert status == 400  # no Idempotency-Key
