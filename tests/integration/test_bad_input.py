"""Bad input of every kind on every route: a 4xx problem+json, never a 5xx."""

import json

import pytest

from tests.support import LambdaContext, api_event, body_of
from treue import runtime
from treue.handlers import accrual, batches, enrollment, orders, rewards, vouchers, webhooks

ROUTES = [
    (enrollment, "enrollment/post_member.json"),
    (enrollment, "enrollment/get_member.json"),
    (enrollment, "enrollment/find_member.json"),
    (accrual, "accrual/post_purchase.json"),
    (accrual, "accrual/post_adjustment.json"),
    (accrual, "accrual/get_balance.json"),
    (accrual, "accrual/get_ledger.json"),
]
BODIES = [
    "{",
    "[]",
    "null",
    "42",
    '"text"',
    json.dumps({"email": None, "phone": 5}),
    json.dumps({"transaction_id": {"$ne": 1}, "amount": {"value": 1e30, "currency": "EUR"}}),
    json.dumps({"points": "lots", "reason": None}),
    json.dumps({"amount": {"value": 10, "currency": "EUR"}, "occurred_at": "yesterday", "transaction_id": "x"}),
    json.dumps({"email": "x" * 100_000}),
    "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),
]
QUERIES = [{"limit": "-1"}, {"limit": "abc"}, {"cursor": "%%%"}, {"email": ""}, {"qr_token": "x" * 500}]
PATH_IDS = ["mbr_" + "x" * 300, "../../etc/passwd", "%00", " "]


def problem_of(response):
    assert 400 <= response["statusCode"] < 500, (response["statusCode"], response.get("body"))
    content_type = (response.get("headers") or {}).get("Content-Type") or response["multiValueHeaders"][
        "Content-Type"
    ][0]
    assert content_type == "application/problem+json"
    body = body_of(response)
    assert body["type"].startswith("https://treue.dev/problems/") and body["status"] == response["statusCode"]
    return body


@pytest.mark.parametrize("module, sample", ROUTES)
def test_bad_bodies_queries_and_ids(program, module, sample):
    auth = program["auth"]["admin"]
    base = api_event(sample, auth=auth)
    method = base["httpMethod"]
    cases = []
    if method == "POST":
        cases += [api_event(sample, auth=auth, body=b) for b in BODIES]
        wrong_type = api_event(sample, auth=auth, body="email=a@example.com")
        wrong_type["headers"]["Content-Type"] = "application/x-www-form-urlencoded"
        cases.append(wrong_type)
    else:
        cases += [api_event(sample, auth=auth, query=q) for q in QUERIES if "members/{" in base["resource"]
                  or "limit" not in q]
    if base.get("pathParameters"):
        for bad in PATH_IDS:
            ev = api_event(sample, auth=auth, body=base["body"] if method == "POST" else None)
            ev["pathParameters"] = {"member_id": bad}
            ev["path"] = base["resource"].replace("{member_id}", bad)
            cases.append(ev)
    assert cases
    for event in cases:
        problem_of(module.handler(event, LambdaContext()))


def test_unknown_routes_are_404_problems(program):
    event = api_event("accrual/get_balance.json", auth=program["auth"]["partner"], path="/v1/nothing")
    event["resource"] = "/v1/nothing"
    assert problem_of(accrual.handler(event, LambdaContext()))["status"] == 404


@pytest.mark.parametrize("depth", [33, 100_000])
def test_deeply_nested_bodies_are_400_problems_not_recursion_errors(program, depth):
    body = '{"email": "ada@example.com", "name": ' + "[" * depth + "]" * depth + "}"
    event = api_event("enrollment/post_member.json", auth=program["auth"]["admin"], body=body)
    problem = problem_of(enrollment.handler(event, LambdaContext()))
    assert problem["status"] == 400 and "deeper than 32 levels" in problem["detail"]


def test_nesting_up_to_the_limit_is_read_and_judged_by_the_model(program):
    body = '{"email": "ada@example.com", "name": ' + "[" * 31 + "]" * 31 + "}"
    event = api_event("enrollment/post_member.json", auth=program["auth"]["admin"], body=body)
    problem = problem_of(enrollment.handler(event, LambdaContext()))
    assert problem["status"] == 422 and problem["errors"][0]["field"] == "name"


def test_a_body_over_the_size_limit_is_a_413_problem(program):
    body = json.dumps({"email": "ada@example.com", "name": "x" * 5_000_001})
    event = api_event("enrollment/post_member.json", auth=program["auth"]["admin"], body=body)
    problem = problem_of(enrollment.handler(event, LambdaContext()))
    assert problem["status"] == 413 and "5,000,000 bytes" in problem["detail"]


def test_emails_are_trimmed_lower_cased_and_their_domain_in_ascii(program):
    auth = program["auth"]["partner"]
    event = api_event("enrollment/post_member.json", auth=auth, body={"email": "  Ada.Lovelace@Bücher.DE "})
    response = enrollment.handler(event, LambdaContext())
    assert response["statusCode"] == 201, response["body"]
    assert body_of(response)["email"] == "ada.lovelace@xn--bcher-kva.de"
    for spelled in ("ADA.LOVELACE@bücher.de", "ada.lovelace@XN--BCHER-KVA.DE"):
        found = enrollment.handler(api_event("enrollment/find_member.json", auth=auth, query={"email": spelled}),
                                   LambdaContext())
        assert [m["id"] for m in body_of(found)["items"]] == [body_of(response)["id"]], spelled
    for bad in ("ada@bücher..de", "ada\x00@example.com", "ada@" + "x" * 64 + ".de"):
        event = api_event("enrollment/post_member.json", auth=auth, body={"email": bad})
        assert problem_of(enrollment.handler(event, LambdaContext()))["errors"][0]["field"] == "email"


CONTROL = ["\x00", "\x07", "\x1b[2J", "\x7f", "\x85", "\u202e", "\r", "\n", "\t"]
FREE_TEXT = [  # (module, sample, the body's free-text field as a path into the body)
    (enrollment, "enrollment/post_member.json", ("name",)),
    (accrual, "accrual/post_adjustment.json", ("reason",)),
    (accrual, "accrual/post_purchase.json", ("transaction_id",)),
    (orders, "orders/cancel_order.json", ("reason",)),
    (vouchers, "vouchers/void.json", ("reason",)),
    (rewards, "rewards/post_reward.json", ("message",)),
    (rewards, "rewards/post_reward.json", ("recipient", "name")),
    (rewards, "rewards/post_reward.json", ("reference",)),
    (webhooks, "webhooks/post_webhook.json", ("description",)),
    (batches, "batches/post_batch.json", ("name",)),
    (batches, "batches/post_batch.json", ("lines", 0, "message")),
]


@pytest.mark.parametrize("module, sample, field", FREE_TEXT, ids=lambda v: getattr(v, "__name__", str(v)))
def test_control_characters_are_refused_in_free_text(program, module, sample, field, monkeypatch):
    monkeypatch.setenv("BATCH_BUCKET", "treue-batches")  # the batches handler wires these before validating
    monkeypatch.setenv("BATCH_STATE_MACHINE_ARN", "arn:aws:states:eu-central-1:123456789012:stateMachine:batch")
    runtime.reset()
    auth = program["auth"]["admin"]
    for char in CONTROL:
        if char == "\n" and field[-1] == "message":
            continue  # a message may run over lines
        body = json.loads(api_event(sample, auth=auth)["body"])
        target = body
        for part in field[:-1]:
            target = target[part]
        target[field[-1]] = f"Ada{char}Lovelace"
        problem = problem_of(module.handler(api_event(sample, auth=auth, body=body), LambdaContext()))
        reason = problem["errors"][0]["reason"]
        # references and ids are held to their pattern already; names, reasons and messages to plain text
        assert problem["status"] == 422 and ("control character" in reason or "match pattern" in reason), problem
        assert str(field[-1]) in json.dumps(problem["errors"][0]), problem
