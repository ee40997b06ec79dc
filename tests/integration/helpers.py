from tests.support import LambdaContext, api_event, body_of
from treue.handlers import accrual, enrollment


def call(module, sample, auth, **kw):
    response = module.handler(api_event(sample, auth=auth, **kw), LambdaContext())
    return response["statusCode"], body_of(response), response


def enroll(auth, body, headers=None):
    """POST /v1/members; the sample's Idempotency-Key is only sent when ``headers`` give one."""
    event = api_event("enrollment/post_member.json", auth=auth, body=body)
    event["headers"].pop("Idempotency-Key")
    event["multiValueHeaders"].pop("Idempotency-Key")
    for k, v in (headers or {}).items():
        event["headers"][k] = v
        event["multiValueHeaders"][k] = [v]
    response = enrollment.handler(event, LambdaContext())
    return response["statusCode"], body_of(response), response


def purchase(auth, member_id, body):
    return call(
        accrual,
        "accrual/post_purchase.json",
        auth,
        path=f"/v1/members/{member_id}/purchases",
        path_parameters={"member_id": member_id},
        body=body,
    )


def member_call(module, sample, auth, member_id, suffix="", **kw):
    return call(
        module, sample, auth, path=f"/v1/members/{member_id}{suffix}", path_parameters={"member_id": member_id}, **kw
    )


def buy(txn, value, currency="EUR"):
    return {
        "transaction_id": txn,
        "amount": {"value": value, "currency": currency},
        "occurred_at": "2026-11-01T12:00:00Z",
    }


def events_of(shop, types=None):
    """Every event of the shop's program so far, oldest first (settled or not), each as a dict: what
    receivers see (id, type, created_at, data), its program and its expiry."""
    from treue import runtime
    from treue.store.events import EventLog

    found, _ = EventLog(runtime.store()).page(shop["program_id"], None, set(types) if types else None, 10_000,
                                              "2999-01-01T00:00:00Z")
    return [{**e.public(), "program_id": e.program_id, "expires_at": e.expires_at} for e in found]
