"""Monthly statements on the twin (issue 17 item 6): a member's month as JSON and CSV, and as a PDF over the twin's
real HTTP: API Gateway's binary answer (base64 from the function, bytes to a request whose first Accept type is
application/pdf) is a PDF that reads back with the member's closing balance."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pypdf
import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shop(twin):
    program = twin.new_program("Statement shop")  # EUR in Germany: a German statement by default
    return {scope: twin.api(key) for scope, key in program["api_keys"].items()}


def test_the_statement_of_this_month_as_json_csv_and_a_pdf_over_http(shop):
    partner = shop["partner"]
    member = partner.enroll_member({"email": "statement@example.com"}, idempotency_key="statement-member")
    now = datetime.now(UTC)
    stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for txn, value in (("pos-s1", 123_456), ("pos-s2", 2_500)):
        partner.accrue_purchase(member["id"], {"transaction_id": txn, "amount": {"value": value, "currency": "EUR"},
                                               "occurred_at": stamp})
    balance = partner.get_member_balance(member["id"])
    month = now.strftime("%Y-%m")
    points = balance["available"] + balance["pending"] + balance["held"] - balance["debt"]
    assert points > 1000

    statement = partner.get_member_monthly_statement(member["id"], month=month)
    assert (statement["opening"], statement["earned"], statement["closing"]) == (0, points, points)
    assert [e["purchase"]["transaction_id"] for e in statement["entries"]] == ["pos-s1", "pos-s2"]
    rows = partner.get_member_monthly_statement_csv(member["id"], month=month).splitlines()
    assert rows[0].startswith("row,created_at,id,type,category,change,balance") and len(rows) == 5

    path = f"/v1/members/{member['id']}/statement?month={month}"
    answer = partner.send("GET", path, headers={"Accept": "application/pdf"})
    assert answer.status == 200 and answer.content_type == "application/pdf"
    assert answer.raw.startswith(b"%PDF-") and answer.headers["Content-Language"] == "de"
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(answer.raw)).pages)
    german = f"{points:,}".replace(",", ".")
    assert f"Endbestand {german} Punkte" in text and member["id"] in text and "Statement shop" in text
    assert "Einkauf 1.234,56 EUR" in text

    english = partner.send("GET", path + "&lang=en", headers={"Accept": "application/pdf"})
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(english.raw)).pages)
    assert f"Closing balance {points:,} points" in text

    # a PDF the gateway would send as base64 text is refused before it is made
    refused = partner.send("GET", path + "&format=pdf", headers={"Accept": "*/*"})
    assert refused.status == 406 and refused.content_type == "application/problem+json"
    assert partner.send("GET", path.replace(month, "2999-01"), headers={"Accept": "application/json"}).status == 422
