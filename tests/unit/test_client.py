"""treue.client: every operation of the committed OpenAPI document has a method that sends what the document
declares (HTTP method, path, path/query parameters, body, Idempotency-Key, CSV), and the client keeps its
promises over real HTTP: problems raised as ApiError, 429/503 retried after Retry-After within bounds, keys
generated once per call, pydantic bodies, escaped path parameters, and no import beyond the standard library."""

from __future__ import annotations

import copy
import inspect
import json
import re
import subprocess
import sys
import threading
import urllib.parse
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from treue import client as client_module
from treue.client import Answer, ApiError, ApiUnreachable, CsvAnswer, Response, TreueClient

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = json.loads((ROOT / "functions" / "treue" / "openapi.json").read_text())
HELPERS = {"send", "request", "upload_batch_file"}  # public methods that are not one operation
PYTHON_NAMES = {"from": "from_"}  # query parameters whose name is a Python keyword


def snake(operation_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, item in document["paths"].items() for method, op in item.items()]


def _value(name: str, schema: dict) -> Any:
    types = {s.get("type") for s in schema.get("anyOf", [schema])}
    return 7 if "integer" in types else f"v-{name}"


def _types(schema: dict) -> set[str]:
    return {s.get("type") for s in schema.get("anyOf", [schema])} - {"null"}


class Recording:
    """Mixed into a client class: its HTTP calls are recorded instead of sent."""

    sent: list[tuple[str, str, dict, Any]]

    def send(self, method, path, *, body=None, raw=None, headers=None, timeout=None) -> Response:
        self.sent.append((method, path, dict(headers or {}), body))
        accept = (headers or {}).get("Accept", "")
        answer = Message()
        answer["Content-Type"] = accept
        return Response(200, answer, "a,b\n" if accept == "text/csv" else {"ok": True}, b"")


# the document's header parameters a method takes as keyword arguments
HEADER_ARGUMENTS = {"Idempotency-Key": "idempotency_key", "If-Match": "if_match"}


def mismatches(document: dict, cls: type = TreueClient) -> list[str]:
    """Where the client and the document disagree, one line each; empty when every operation matches."""
    found: list[str] = []
    expected_names = set()
    for method, path, op in operations(document):
        name = snake(op["operationId"])
        offers_csv = any("text/csv" in (r.get("content") or {}) for r in op.get("responses", {}).values())
        expected_names.add(name)
        if offers_csv:
            expected_names.add(name + "_csv")
        for variant, accept in [(name, "application/json")] + ([(name + "_csv", "text/csv")] if offers_csv else []):
            found.extend(_check_method(cls, variant, accept, method, path, op))
    public = {n for n, f in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}
    for extra in sorted(public - expected_names - HELPERS):
        found.append(f"{extra}: no operation of the document")
    return found


def _check_method(cls: type, name: str, accept: str, method: str, path: str, op: dict) -> list[str]:
    where = f"{name} ({method} {path})"
    function = getattr(cls, name, None)
    if function is None:
        return [f"{where}: the client has no method {name}"]
    parameters = op.get("parameters", [])
    path_params = re.findall(r"{([^}/]+)}", path)
    query = {PYTHON_NAMES.get(p["name"], p["name"]): p for p in parameters if p["in"] == "query"}
    header = [p for p in parameters if p["in"] == "header"]
    body = "requestBody" in op and accept != "text/csv"
    signature = inspect.signature(function)
    params = [p for p in signature.parameters.values() if p.name != "self"]
    problems = []
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    want_positional = path_params + (["body"] if body else [])
    if positional != want_positional:
        problems.append(f"{where}: positional parameters {positional}, the document {want_positional}")
    keywords = {p.name: p for p in params if p.kind is p.KEYWORD_ONLY}
    want_keywords = set(query) | {HEADER_ARGUMENTS[h["name"]] for h in header if h["name"] in HEADER_ARGUMENTS}
    if set(keywords) != want_keywords:
        problems.append(f"{where}: keyword parameters {sorted(keywords)}, the document {sorted(want_keywords)}")
    for python_name, declared in query.items():
        given = keywords.get(python_name)
        if given is None:
            continue
        if declared.get("required") != (given.default is inspect.Parameter.empty):
            problems.append(f"{where}: {python_name} required is {declared.get('required', False)} in the document")
        annotation = str(given.annotation)
        for kind, python in (("integer", "int"), ("string", "str")):
            if kind in _types(declared["schema"]) and python not in annotation:
                problems.append(f"{where}: {python_name} is {kind} in the document, {annotation} here")
    unknown = [h["name"] for h in header if h["name"] not in HEADER_ARGUMENTS]
    if unknown:
        problems.append(f"{where}: the document's header parameters {unknown} have no argument")
    if problems:
        return problems
    # call it and compare what it sends with the document
    recorder = type("Recorder", (Recording, cls), {})("http://treue.test/base", "trk_test")
    recorder.sent = []
    args = [f"v-{p}/x" for p in path_params] + ([{"field": 1}] if body else [])
    kwargs = {n: _value(n, query[n]["schema"]) for n in query}
    answer = getattr(recorder, name)(*args, **kwargs)
    if len(recorder.sent) != 1:
        return [f"{where}: {len(recorder.sent)} requests sent"]
    sent_method, target, headers, sent_body = recorder.sent[0]
    sent_path, _, query_string = target.partition("?")
    want_path = path
    for p in path_params:
        want_path = want_path.replace("{" + p + "}", urllib.parse.quote(f"v-{p}/x", safe=""))
    if (sent_method, sent_path) != (method, want_path):
        problems.append(f"{where}: sends {sent_method} {sent_path}, the document {method} {want_path}")
    want_query = {p["name"]: str(_value(n, p["schema"])) for n, p in query.items()}
    if dict(urllib.parse.parse_qsl(query_string)) != want_query:
        problems.append(f"{where}: sends the query {query_string!r}, the document {sorted(want_query)}")
    if ("Idempotency-Key" in headers) != ("idempotency_key" in want_keywords):
        problems.append(f"{where}: Idempotency-Key sent: {'Idempotency-Key' in headers}")
    if headers.get("Accept") != accept:
        problems.append(f"{where}: Accept {headers.get('Accept')}, expected {accept}")
    if (sent_body is not None) != body:
        problems.append(f"{where}: body sent: {sent_body is not None}, the document declares one: {body}")
    if not isinstance(answer, CsvAnswer if accept == "text/csv" else Answer):
        problems.append(f"{where}: answers {type(answer).__name__}")
    return problems


# ---------------------------------------------------------------- the client against the document


def test_every_operation_of_the_document_has_a_method_that_sends_what_it_declares():
    assert len(operations(DOCUMENT)) >= 50
    assert mismatches(DOCUMENT) == []


def test_the_check_finds_a_missing_operation_a_moved_path_a_new_parameter_and_a_method_too_many():
    doc = copy.deepcopy(DOCUMENT)
    doc["paths"]["/v1/loyalty/tiers"] = {"get": {"operationId": "listTiers", "responses": {"200": {}}}}
    doc["paths"]["/v1/members/{member_id}/balances"] = doc["paths"].pop("/v1/members/{member_id}/balance")
    doc["paths"]["/v1/catalog"]["get"]["parameters"].append(
        {"name": "brand", "in": "query", "required": False, "schema": {"type": "string"}})
    doc["paths"]["/v1/webhooks/{endpoint_id}"]["delete"]["requestBody"] = {"content": {}}
    doc["paths"]["/v1/finance/trial-balance"]["get"]["responses"]["200"]["content"].pop("text/csv")
    doc["paths"]["/v1/rewards"]["post"]["parameters"] = []
    del doc["paths"]["/v1/donations/totals"]
    found = "\n".join(mismatches(doc))
    assert "list_tiers (GET /v1/loyalty/tiers): the client has no method list_tiers" in found
    assert ("get_member_balance (GET /v1/members/{member_id}/balances): sends GET /v1/members/v-member_id%2Fx/balance"
            in found)
    assert "list_catalog_items (GET /v1/catalog): keyword parameters" in found and "'brand'" in found
    assert "delete_webhook (DELETE /v1/webhooks/{endpoint_id}): positional parameters ['endpoint_id']" in found
    assert "get_trial_balance_csv: no operation of the document" in found
    assert "issue_reward (POST /v1/rewards): keyword parameters ['idempotency_key'], the document []" in found
    assert "get_donation_totals: no operation of the document" in found
    assert len(found.splitlines()) == 7, found


def test_a_method_that_sends_another_method_or_path_or_drops_a_query_parameter_is_found():
    class Drifted(TreueClient):
        def get_order(self, order_id: str) -> Answer:
            return self._json("GET", f"/v1/order/{order_id}")

        def cancel_order(self, order_id: str, body) -> Answer:
            return self._json("PUT", f"/v1/orders/{order_id}/cancel", body=body)

        def get_budget(self, *, currency: str | None = None, limit: int | None = None,
                       cursor: str | None = None) -> Answer:
            return self._json("GET", "/v1/finance/budget", {"currency": currency, "limit": limit})

        def get_reconciliation(self, *, date: str | None = None) -> Answer:
            return self._json("GET", "/v1/finance/reconciliation", {"date": date})

        def get_audit_trail(self, *, after: str | None = None, limit: int | None = None) -> Answer:
            return self._json("GET", "/v1/finance/audit", {"after": after, "limit": limit})

    found = "\n".join(mismatches(DOCUMENT, Drifted))
    assert "get_order (GET /v1/orders/{order_id}): sends GET /v1/order/v-order_id/x" in found
    assert "cancel_order (POST /v1/orders/{order_id}/cancel): sends PUT" in found
    assert "get_budget (GET /v1/finance/budget): sends the query" in found
    assert "get_reconciliation (GET /v1/finance/reconciliation): date required is True" in found
    assert "get_audit_trail (GET /v1/finance/audit): after is integer in the document" in found
    assert len(found.splitlines()) == 5, found


# ---------------------------------------------------------------- the client over HTTP


class Server:
    """A local HTTP server answering from a script: ``answers`` is popped per request (status, headers,
    body bytes); every request is recorded as (method, path, headers, body)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes]] = []
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append((self.command, self.path, dict(self.headers), raw))
                status, headers, payload = server.answers.pop(0) if server.answers else (200, {}, b"{}")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/prod"

    def json(self, status: int, body: Any, **headers: str) -> None:
        kind = "application/problem+json" if status >= 400 else "application/json"
        self.answers.append((status, {"Content-Type": kind, **{k.replace("_", "-"): v for k, v in headers.items()}},
                             json.dumps(body).encode()))


@pytest.fixture
def server():
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def waits():
    return []


@pytest.fixture
def api(server, waits):
    return TreueClient(server.url + "/", "trk_secret", timeout=5, sleep=waits.append)


PROBLEM = "https://treue.dev/problems/"


def test_an_answer_is_its_json_with_status_and_headers_and_the_request_carries_key_and_body(api, server):
    server.json(201, {"id": "mbr_1", "email": "ada@example.com"}, Location="/v1/members/mbr_1")
    member = api.enroll_member({"email": "ada@example.com"})
    assert member == {"id": "mbr_1", "email": "ada@example.com"} and member["id"] == "mbr_1"
    assert member.status == 201 and member.headers["location"] == "/v1/members/mbr_1"
    method, path, headers, raw = server.requests[0]
    assert (method, path, json.loads(raw)) == ("POST", "/prod/v1/members", {"email": "ada@example.com"})
    assert headers["Authorization"] == "Bearer trk_secret" and headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["Idempotency-Key"])  # generated
    assert "trk_secret" not in repr(api)


def test_a_problem_is_an_api_error_with_its_fields(api, server):
    problem = {"type": PROBLEM + "validation-failed", "title": "The request is not valid", "status": 422,
               "detail": "amount.value: must be an integer",
               "errors": [{"location": "body", "field": "amount.value", "reason": "must be an integer"}]}
    server.json(422, problem)
    with pytest.raises(ApiError) as raised:
        api.accrue_purchase("mbr_1", {"transaction_id": "t1", "amount": {"value": 1.5, "currency": "EUR"}})
    err = raised.value
    assert (err.status, err.type, err.title, err.detail) == (422, PROBLEM + "validation-failed",
                                                             "The request is not valid",
                                                             "amount.value: must be an integer")
    assert err.errors == problem["errors"] and err.problem == problem
    assert (err.method, err.path) == ("POST", "/v1/members/mbr_1/purchases")
    assert str(err) == ("POST /v1/members/mbr_1/purchases answered 422 https://treue.dev/problems/validation-failed "
                        "(The request is not valid): amount.value: must be an integer")
    assert len(server.requests) == 1  # a 422 is not asked again


def test_an_answer_that_is_not_a_problem_is_an_api_error_too(api, server):
    server.answers.append((502, {"Content-Type": "text/html"}, b"<html>Bad gateway</html>"))
    server.json(403, {"message": "Forbidden"})
    with pytest.raises(ApiError) as raised:
        api.get_member("mbr_1")
    assert (raised.value.status, raised.value.type, raised.value.title, raised.value.detail) == (
        502, "about:blank", "Bad Gateway", "<html>Bad gateway</html>")
    with pytest.raises(ApiError) as raised:
        api.get_member("mbr_1")
    assert (raised.value.status, raised.value.title, raised.value.detail) == (403, "Forbidden", "")


def test_429_and_503_are_asked_again_after_retry_after_within_bounds(api, server, waits):
    server.json(429, {"type": PROBLEM + "throttled", "title": "Too many requests"}, Retry_After="2")
    server.json(503, {"type": PROBLEM + "storage-timeout", "title": "Storage"}, Retry_After="120")
    server.json(200, {"available": 5})
    assert api.get_member_balance("mbr_1") == {"available": 5}
    assert waits == [2.0, 5.0] and len(server.requests) == 3  # Retry-After 120 waits max_retry_wait (5 s)
    for _ in range(3):
        server.json(503, {"type": PROBLEM + "storage-timeout", "title": "Storage"})
    with pytest.raises(ApiError) as raised:
        api.get_member_balance("mbr_1")
    assert raised.value.status == 503 and len(server.requests) == 6  # 1 + retries (2), then the problem
    assert waits[2:] == [1.0, 1.0]  # no Retry-After: 1 s


def test_a_write_is_asked_again_only_when_it_is_idempotent(api, server, waits):
    server.json(503, {"type": PROBLEM + "storage-timeout", "title": "Storage"}, Retry_After="1")
    with pytest.raises(ApiError):
        api.register_webhook({"url": "https://example.com/hook", "event_types": ["*"]})  # would register twice
    assert len(server.requests) == 1
    server.json(429, {"type": PROBLEM + "throttled", "title": "Too many requests"}, Retry_After="1")
    server.json(202, {"batch_id": "bat_1"})
    api.retry_batch("bat_1")  # a 429 ran nothing: asked again
    assert len(server.requests) == 3
    server.json(503, {"type": PROBLEM + "storage-timeout", "title": "Storage"})
    server.json(202, {"order_id": "ord_1", "replayed": True})
    assert api.create_order({"member_id": "mbr_1"})["replayed"]
    keys = [headers["Idempotency-Key"] for _, _, headers, _ in server.requests[3:]]
    assert len(keys) == 2 and keys[0] == keys[1]  # the same key on every attempt of one call
    server.json(202, {"order_id": "ord_2"})
    api.create_order({"member_id": "mbr_1"}, idempotency_key="order-42")
    assert server.requests[-1][2]["Idempotency-Key"] == "order-42" and keys[0] != "order-42"


def test_retry_writes_false_asks_only_reads_again(server, waits):
    api = TreueClient(server.url, "k", retry_writes=False, sleep=waits.append)
    server.json(429, {"type": PROBLEM + "throttled", "title": "Too many requests"})
    with pytest.raises(ApiError):
        api.create_order({"member_id": "mbr_1"})
    server.json(429, {"type": PROBLEM + "throttled", "title": "Too many requests"})
    server.json(200, {"id": "ord_1"})
    assert api.get_order("ord_1") == {"id": "ord_1"} and len(server.requests) == 3


def test_csv_and_empty_answers_query_parameters_and_escaped_path_parameters(api, server):
    server.answers.append((200, {"Content-Type": "text/csv; charset=utf-8"}, "account,balance\nå,1\n".encode()))
    text = api.get_trial_balance_csv()
    assert text == "account,balance\nå,1\n" and isinstance(text, str) and text.status == 200
    assert server.requests[-1][2]["Accept"] == "text/csv"
    server.answers.append((204, {}, b""))
    gone = api.delete_webhook("whk 1/2")
    assert gone == {} and gone.status == 204 and server.requests[-1][1] == "/prod/v1/webhooks/whk%201%2F2"
    server.json(200, {"items": []})
    api.list_payouts(from_="2026-11-01", limit=10)
    assert server.requests[-1][1] == "/prod/v1/finance/payouts?from=2026-11-01&limit=10"


def test_a_pydantic_request_model_is_sent_as_its_json(api, server):
    from treue.logic.models import Purchase

    purchase = Purchase.model_validate({"transaction_id": "pos-1", "amount": {"value": 4999, "currency": "EUR"},
                                        "occurred_at": "2026-11-20T10:00:00Z"})
    server.json(200, {"points_earned": 49})
    api.accrue_purchase("mbr_1", purchase)
    assert json.loads(server.requests[-1][3]) == {"transaction_id": "pos-1",
                                                  "amount": {"value": 4999, "currency": "EUR"},
                                                  "occurred_at": "2026-11-20T10:00:00Z"}


def test_send_answers_any_status_as_it_came_and_no_key_sends_no_authorization(server):
    bare = TreueClient(server.url, None)
    server.json(401, {"message": "Unauthorized"})
    answer = bare.send("POST", "/v1/members?x=1", raw=b"not json", headers={"Content-Type": "text/plain"})
    assert (answer.status, answer.body) == (401, {"message": "Unauthorized"})
    method, path, headers, raw = server.requests[-1]
    assert "Authorization" not in headers and headers["Content-Type"] == "text/plain" and raw == b"not json"
    assert path == "/prod/v1/members?x=1"


def test_no_answer_is_api_unreachable_with_the_reason():
    with pytest.raises(ApiUnreachable) as raised:
        TreueClient("http://127.0.0.1:9", "k", timeout=2).get_member("mbr_1")
    assert raised.value.url == "http://127.0.0.1:9" and isinstance(raised.value.reason, OSError)
    assert str(raised.value).startswith("GET /v1/members/mbr_1: no answer from http://127.0.0.1:9 (URLError: ")


def test_the_client_imports_only_the_standard_library():
    code = ("import sys; import treue.client; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'treue', 'pydantic', 'boto3', 'botocore', "
            "'aws_lambda_powertools', 'requests', 'urllib3'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "functions")}).stdout
    assert out.strip() == "['treue', 'treue.client']"
    assert client_module.__all__ == sorted(client_module.__all__)


def test_a_batch_file_goes_to_its_presigned_url_without_the_api_key(api, server):
    upload = {"upload_id": "upl_1", "url": server.url + "/bucket/upl_1?X-Amz-Signature=abc", "method": "PUT",
              "headers": {"Content-Type": "text/csv", "x-amz-meta-program": "prg_1"}}
    assert api.upload_batch_file(upload, b"reference,item_id\nr1,i1\n") == 200
    method, path, headers, raw = server.requests[-1]
    assert (method, path, raw) == ("PUT", "/prod/bucket/upl_1?X-Amz-Signature=abc", b"reference,item_id\nr1,i1\n")
    sent = {k.lower(): v for k, v in headers.items()}
    assert sent["content-type"] == "text/csv" and sent["x-amz-meta-program"] == "prg_1"
    assert "authorization" not in sent
    server.answers.append((403, {"Content-Type": "application/xml"}, b"<Error>SignatureDoesNotMatch</Error>"))
    with pytest.raises(ApiError) as refused:
        api.upload_batch_file(upload, b"x")
    assert refused.value.status == 403 and "SignatureDoesNotMatch" in refused.value.detail
