"""Bad input of every kind on every route: a 4xx problem+json, never a 5xx."""

import json

import pytest

from tests.integration.wiring import wired  # noqa: F401 (a fixture)
from tests.support import EVENTS, LambdaContext, api_event, body_of
from treue import runtime
from treue.handlers import (
    API_FUNCTIONS,
    accrual,
    batches,
    enrollment,
    module_of,
    orders,
    rewards,
    rules,
    vouchers,
    webhooks,
)
from treue.routes import ROUTES as TABLE

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
    (rules, "rules/create_rule.json", ("name",)),
    (rules, "rules/put_rule.json", ("conditions", "category")),
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


# ---------------------------------------------------------------- every route, from its sample and the document

OPENAPI = json.loads((EVENTS.parent / "functions" / "treue" / "openapi.json").read_text())
API = {(r.method, r.path): module_of(r.function) for r in TABLE if r.function in API_FUNCTIONS}


def _route_samples() -> list[tuple[str, str, str]]:
    found: dict[tuple[str, str], str] = {}
    for path in sorted(EVENTS.rglob("*.json")):
        event = json.loads(path.read_text())
        route = (event.get("httpMethod"), event.get("resource"))
        if route in API and (route not in found or "csv" in found[route]):
            found[route] = str(path.relative_to(EVENTS))
    return sorted((method, resource, sample) for (method, resource), sample in found.items())


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = OPENAPI["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _operation(method: str, resource: str) -> dict:
    return OPENAPI["paths"][resource][method.lower()]


def _money_objects(value, found=None):
    found = [] if found is None else found
    if isinstance(value, dict):
        if set(value) == {"value", "currency"}:
            found.append(value)
        for child in value.values():
            _money_objects(child, found)
    elif isinstance(value, list):
        for child in value:
            _money_objects(child, found)
    return found


def _body_cases(method: str, resource: str, sample_body: dict) -> list[tuple[str, object]]:
    cases: list[tuple[str, object]] = [("unreadable", b) for b in BODIES]
    if not isinstance(sample_body, dict):
        return cases
    for field, value in sample_body.items():
        cases.append((f"{field}: an object", {**sample_body, field: {"$ne": 1}}))
        cases.append((f"{field}: a nested list", {**sample_body, field: [[1]]}))
        if isinstance(value, str):
            cases.append((f"{field}: huge", {**sample_body, field: "x" * 100_000}))
        elif isinstance(value, int) and not isinstance(value, bool):
            cases.append((f"{field}: huge", {**sample_body, field: 10**30}))
            cases.append((f"{field}: a float", {**sample_body, field: value + 0.5}))
    cases.append(("an extra field", {**sample_body, "unexpected": 1}))
    body_schema = _operation(method, resource).get("requestBody", {}).get("content", {}).get("application/json", {})
    for field in _resolve(body_schema.get("schema", {})).get("required", []):
        cases.append((f"{field}: missing", {k: v for k, v in sample_body.items() if k != field}))
    for index, _ in enumerate(_money_objects(sample_body)):
        for name, change in (("negative money", {"value": -1}), ("fractional money", {"value": 9.99}),
                             ("bad currency", {"currency": "EURO"}), ("lower-case currency", {"currency": "eur"}),
                             ("no currency", {"currency": None})):
            body = json.loads(json.dumps(sample_body))
            _money_objects(body)[index].update(change)
            cases.append((name, body))
    return cases


def _query_cases(method: str, resource: str) -> list[tuple[str, dict[str, str]]]:
    cases = []
    for parameter in _operation(method, resource).get("parameters", []):
        if parameter["in"] != "query":
            continue
        name, schema = parameter["name"], parameter.get("schema", {})
        types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
        if "integer" in types:
            bad = ["-1", "abc", "1.5", "99999999999999999999999" if name == "limit" else "1e400"]
        else:  # a filter may match nothing (an empty page), but never take a huge value; a cursor is ours
            bad = ["x" * 5000] + (["%%%\x00", "bat_x#x"] if name in ("cursor", "after") else [])
        cases += [(f"?{name}={v[:20]}", {name: v}) for v in bad]
    return cases


# routes with a body, a query parameter or a path parameter: something a caller can get wrong
ROUTE_SAMPLES = [(m, r, s) for m, r, s in _route_samples()
                 if m in ("POST", "PUT", "PATCH") or "{" in r or _query_cases(m, r)]


@pytest.mark.parametrize("method, resource, sample", ROUTE_SAMPLES, ids=[f"{m} {r}" for m, r, _ in ROUTE_SAMPLES])
def test_every_route_answers_bad_input_with_a_4xx_problem(wired, method, resource, sample):  # noqa: F811 (the fixture)
    """Wrong types, missing and extra fields, huge values, negative or fractional money, bad currencies,
    bad ids, bad cursors and bad query parameters: each a 4xx problem+json with a reason, never a 5xx."""
    module, auth = API[(method, resource)], wired["auth"]["admin"]
    base = api_event(sample, auth=auth)
    cases: list[tuple[str, dict]] = []
    if method in ("POST", "PUT", "PATCH"):
        sample_body = json.loads(base["body"]) if base.get("body") else {}
        cases += [(name, api_event(sample, auth=auth, body=b if isinstance(b, str) else json.dumps(b)))
                  for name, b in _body_cases(method, resource, sample_body)]
    cases += [(name, api_event(sample, auth=auth, query=q)) for name, q in _query_cases(method, resource)]
    for name in (base.get("pathParameters") or {}):
        for bad in PATH_IDS:
            event = api_event(sample, auth=auth)
            event["pathParameters"] = {**base["pathParameters"], name: bad}
            event["path"] = resource.replace("{" + name + "}", bad)
            cases.append((f"{name}={bad[:20]}", event))
    assert cases
    for name, event in cases:
        response = module.handler(event, LambdaContext())
        try:
            problem = problem_of(response)
        except AssertionError as err:
            raise AssertionError(f"{method} {resource} with {name}: {err}") from err
        assert problem.get("detail"), (name, problem)


def test_a_listing_cursor_of_our_own_passes_and_anything_else_is_a_400():
    from treue.core import ids
    from treue.errors import MalformedRequest
    from treue.handlers.http import listing_cursor

    batch_id = ids.new_id("bat")
    assert listing_cursor(f"2026-12-02T10:00:00.000000Z#{batch_id}", "bat").endswith(batch_id)
    assert listing_cursor(None, "bat") is None
    for bad in ("%%%", f"#{batch_id}", "2026-12-02#bat_x", f"2026-12-02#{ids.new_id('rpt')}", batch_id):
        with pytest.raises(MalformedRequest):
            listing_cursor(bad, "bat")
