"""A member's ledger and monthly statements on moto (issue 17 item 6): every kind of posting written straight to the
store in two past months and this one; each month's closing is the next one's opening, this month's closing is
the balance, and the API answers the statement as JSON, CSV and PDF."""

from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, datetime, timedelta

import pypdf
import pytest

from tests.integration.helpers import member_call
from tests.support import LambdaContext, api_event, body_of
from treue import runtime
from treue.core import times
from treue.core.ids import new_id
from treue.core.ledger import Account, Posting, PostingType, bonus_account
from treue.handlers import accrual
from treue.logic import members, statements
from treue.logic.models import Enrollment


def _months(now: datetime) -> tuple[str, str, str]:
    """Two months ago, last month and this month as YYYY-MM."""
    this = now.replace(day=1)
    last = (this - timedelta(days=1)).replace(day=1)
    before = (last - timedelta(days=1)).replace(day=1)
    return before.strftime("%Y-%m"), last.strftime("%Y-%m"), this.strftime("%Y-%m")


def _at(month: str, day: int) -> str:
    return f"{month}-{day:02d}T10:00:00.000Z"


class Book:
    """Postings written straight to the store, each with its own idempotency reference."""

    def __init__(self, store, program_id: str, member_id: str) -> None:
        self.store, self.program_id, self.member_id = store, program_id, member_id
        self.count = 0

    def post(self, kind: PostingType, debit: str, credit: str, points: int, at: str, reference: str = "",
             **metadata) -> None:
        self.count += 1
        reference = reference or f"ref-{self.count}"
        posting = Posting(id=new_id("pst"), program_id=self.program_id, member_id=self.member_id, type=kind,
                          debit=debit, credit=credit, points=points, reference=reference, reason=str(kind),
                          actor="admin:test", created_at=at, metadata=metadata)
        assert self.store.post(self.program_id, self.member_id, (str(kind), f"{reference}-{self.count}", "fp"), {},
                               posting, at) is None


@pytest.fixture
def member(store, program):
    mid = members.enroll(store, program["program_id"], Enrollment(external_id="ada"), runtime.now())[0]["id"]
    return mid


@pytest.fixture
def history(store, program, member):
    """Two months ago: earned 1,000 (with a purchase and an expiry date) and a pending 200 with a bonus of 40, an
    order of 300 held and captured, another of 100 held and released, +50 adjusted. Last month: the 200 activated,
    100 expired, a return of 150 (from available) and of 80 more than was left (debt), 30 of it repaid, a refund
    of 100. This month: -20 adjusted."""
    before, last, this = _months(datetime.now(UTC))
    book = Book(store, program["program_id"], member)
    purchase = {"amount": {"value": 10_000, "currency": "EUR"}, "occurred_at": _at(before, 2)}
    book.post(PostingType.EARN, Account.PROGRAM_ISSUED, Account.MEMBER_AVAILABLE, 1000, _at(before, 3), "pos-1",
              expires_on="2099-12-31", **purchase)
    book.post(PostingType.EARN, Account.PROGRAM_ISSUED, Account.MEMBER_PENDING, 200, _at(before, 4), "pos-2",
              available_at=_at(last, 2), amount={"value": 2_000, "currency": "EUR"}, occurred_at=_at(before, 4))
    book.post(PostingType.EARN, bonus_account("rul_double"), Account.MEMBER_AVAILABLE, 40, _at(before, 4), "pos-2",
              rule_id="rul_double", amount={"value": 2_000, "currency": "EUR"}, occurred_at=_at(before, 4))
    book.post(PostingType.HOLD, Account.MEMBER_AVAILABLE, Account.MEMBER_HELD, 300, _at(before, 5), "ord-1")
    book.post(PostingType.CAPTURE, Account.MEMBER_HELD, Account.PROGRAM_REDEEMED, 300, _at(before, 6), "ord-1")
    book.post(PostingType.HOLD, Account.MEMBER_AVAILABLE, Account.MEMBER_HELD, 100, _at(before, 7), "ord-2")
    book.post(PostingType.RELEASE, Account.MEMBER_HELD, Account.MEMBER_AVAILABLE, 100, _at(before, 8), "ord-2")
    book.post(PostingType.ADJUSTMENT, Account.PROGRAM_ADJUSTMENTS, Account.MEMBER_AVAILABLE, 50, _at(before, 9))
    book.post(PostingType.ACTIVATION, Account.MEMBER_PENDING, Account.MEMBER_AVAILABLE, 200, _at(last, 2), "pos-2")
    book.post(PostingType.EXPIRY, Account.MEMBER_AVAILABLE, Account.PROGRAM_EXPIRED, 100, _at(last, 3),
              as_of=_at(last, 3)[:10], dates=[_at(last, 1)[:10], _at(last, 2)[:10]])
    book.post(PostingType.REVERSAL, Account.MEMBER_AVAILABLE, Account.PROGRAM_ISSUED, 150, _at(last, 4), "ret-1",
              transaction_id="pos-1", return_id="ret-1", amount={"value": 1_500, "currency": "EUR"},
              occurred_at=_at(last, 4), expires_on="2099-12-31")
    book.post(PostingType.REVERSAL, Account.MEMBER_DEBT, Account.PROGRAM_ISSUED, 80, _at(last, 5), "ret-2")
    book.post(PostingType.REPAYMENT, Account.MEMBER_AVAILABLE, Account.MEMBER_DEBT, 30, _at(last, 6), "ret-2")
    book.post(PostingType.REFUND, Account.PROGRAM_REDEEMED, Account.MEMBER_AVAILABLE, 100, _at(last, 7), "ord-1")
    book.post(PostingType.ADJUSTMENT, Account.MEMBER_AVAILABLE, Account.PROGRAM_ADJUSTMENTS, 20, times.now())
    return before, last, this


def _statement(store, program, member, month):
    return statements.monthly(store, store.get_program(program["program_id"]), member, month, datetime.now(UTC))


def test_each_month_closes_where_the_next_opens_and_this_month_closes_at_the_balance(store, program, member,
                                                                                      history):
    before, last, this = history
    first, second, third = (_statement(store, program, member, m) for m in history)
    assert {k: first[k] for k in ("opening", "earned", "redeemed", "expired", "reversed", "adjusted", "closing")} \
        == {"opening": 0, "earned": 1240, "redeemed": 300, "expired": 0, "reversed": 0, "adjusted": 50,
            "closing": 990}
    assert first["closing_accounts"] == {"available": 790, "pending": 200, "held": 0, "debt": 0}
    assert first["pending_closing"] == 200
    assert {k: second[k] for k in ("opening", "earned", "redeemed", "expired", "reversed", "adjusted", "closing")} \
        == {"opening": 990, "earned": 0, "redeemed": -100, "expired": 100, "reversed": 230, "adjusted": 0,
            "closing": 760}
    assert second["closing_accounts"] == {"available": 810, "pending": 0, "held": 0, "debt": 50}
    assert second["opening_accounts"] == first["closing_accounts"]
    assert third["opening"] == second["closing"] and third["opening_accounts"] == second["closing_accounts"]
    assert third["adjusted"] == -20 and third["closing"] == 740
    balance = store.balance_state(program["program_id"], member)
    assert third["closing_accounts"] == {k: balance[k] for k in ("available", "pending", "held", "debt")}
    # the entries of a month, oldest first, with the points after each
    assert [e["type"] for e in second["entries"]] == ["activation", "expiry", "reversal", "reversal", "repayment",
                                                      "refund"]
    assert [e["balance"] for e in second["entries"]] == [990, 890, 740, 660, 660, 760]
    assert [e["category"] for e in second["entries"]] == [None, "expired", "reversed", "reversed", None, "redeemed"]
    owed = second["entries"][3]
    assert (owed["points"], owed["debt"], owed["change"]) == (0, 80, -80)
    assert first["entries"][1]["pending"] == 200 and first["entries"][1]["available_at"] == _at(last, 2)
    assert first["entries"][0]["purchase"] == {"transaction_id": "pos-1", "amount": {"value": 10_000,
                                                                                     "currency": "EUR"},
                                               "occurred_at": _at(before, 2)}
    assert first["entries"][0]["expires_on"] == "2099-12-31"
    assert first["entries"][2]["rule_id"] == "rul_double"
    assert first["start"] == f"{before}-01T00:00:00Z" and first["end"] == f"{last}-01T00:00:00Z"


def test_a_month_before_the_member_and_a_month_without_entries_carry_the_balance(store, program, member, history):
    before, _, _ = history
    earlier = datetime.strptime(before, "%Y-%m").replace(tzinfo=UTC) - timedelta(days=40)
    empty = _statement(store, program, member, earlier.strftime("%Y-%m"))
    assert (empty["opening"], empty["closing"], empty["entries"]) == (0, 0, [])


def test_the_ledger_pages_show_each_entry_s_movements_expiry_and_purchase(store, program, member, history):
    auth = program["auth"]["partner"]
    seen, cursor = [], None
    while True:
        query = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        status, page, _ = member_call(accrual, "accrual/get_ledger.json", auth, member, "/ledger", query=query)
        assert status == 200, page
        assert len(page["entries"]) <= 4
        seen += page["entries"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 15 and len({e["id"] for e in seen}) == 15
    by_type = {}
    for entry in seen:
        by_type.setdefault(entry["type"], []).append(entry)
    pending = next(e for e in by_type["earn"] if e["pending"])
    assert (pending["points"], pending["pending"], pending["available_at"]) == (0, 200, _at(history[1], 2))
    assert pending["purchase"]["amount"] == {"value": 2_000, "currency": "EUR"}
    assert by_type["activation"][0]["pending"] == -200 and by_type["activation"][0]["points"] == 200
    assert by_type["repayment"][0]["debt"] == -30 and by_type["repayment"][0]["points"] == -30
    assert by_type["expiry"][0]["expires_on"] == _at(history[1], 2)[:10] and by_type["expiry"][0]["points"] == -100
    returned = next(e for e in by_type["reversal"] if e["return_id"])
    assert returned["purchase"] == {"transaction_id": "pos-1", "amount": {"value": 1_500, "currency": "EUR"},
                                    "occurred_at": _at(history[1], 4)}
    assert {e["debt"] for e in by_type["reversal"]} == {0, 80}
    assert by_type["hold"][0]["held"] in (300, 100) and by_type["hold"][0]["points"] < 0


def _get(program, member, month, *, scope="partner", headers=None, query=None):
    event = api_event("accrual/get_statement.json", auth=program["auth"][scope],
                      path=f"/v1/members/{member}/statement", path_parameters={"member_id": member},
                      query={"month": month, **(query or {})}, headers=headers)
    response = accrual.handler(event, LambdaContext())
    return response


def test_the_statement_over_the_api_as_json_csv_and_pdf(store, program, member, history):
    before, last, _ = history
    answer = _get(program, member, last, headers={"Accept": "application/json"})
    assert answer["statusCode"] == 200, answer["body"]
    data = body_of(answer)
    assert (data["opening"], data["closing"], data["program"]["name"]) == (990, 760, "Café Treue")
    assert data["entries"][0]["category"] is None and data["entries"][-1]["balance"] == 760

    answer = _get(program, member, last, headers={"Accept": "text/csv"}, scope="finance")
    assert answer["statusCode"] == 200 and answer["multiValueHeaders"]["Content-Type"] == ["text/csv; charset=utf-8"]
    rows = list(csv.DictReader(io.StringIO(answer["body"])))
    assert [r["row"] for r in rows] == ["opening", *["entry"] * 6, "closing"]
    assert (rows[0]["balance"], rows[-1]["balance"], rows[-1]["debt"]) == ("990", "760", "50")

    answer = _get(program, member, before)  # the sample asks for a PDF, in German first
    assert answer["statusCode"] == 200 and answer["isBase64Encoded"] is True
    assert answer["multiValueHeaders"]["Content-Type"] == ["application/pdf"]
    assert answer["multiValueHeaders"]["Content-Language"] == ["de"]
    pdf = base64.b64decode(answer["body"])
    assert pdf.startswith(b"%PDF-")
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "Café Treue" in text and "Punkteauszug" in text and member in text
    assert "Endbestand 990 Punkte" in text and "Gesammelt +1.240" in text and "Einkauf 100,00 EUR" in text

    answer = _get(program, member, last)
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(base64.b64decode(answer["body"]))).pages)
    assert "Zurückgegeben 15,00 EUR aus Einkauf pos-1" in text and "Endbestand 760 Punkte" in text
    assert "davon geschuldet -50" in text

    answer = _get(program, member, before, query={"lang": "en"})
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(base64.b64decode(answer["body"]))).pages)
    assert "Closing balance 990 points" in text and "Earned +1,240" in text and "Purchase 100.00 EUR" in text


@pytest.mark.parametrize(("month", "status", "slug"), [
    ("2026-13", 422, "validation-failed"), ("26-11", 422, "validation-failed"), ("2026-1", 422, "validation-failed"),
    ("2999-01", 422, "validation-failed"),
])
def test_a_malformed_or_future_month_is_a_422(program, member, month, status, slug):
    answer = _get(program, member, month, headers={"Accept": "application/json"})
    assert answer["statusCode"] == status and body_of(answer)["type"].endswith(slug), answer["body"]


def test_unknown_member_is_a_404_and_a_pdf_the_gateway_would_not_send_as_bytes_a_406(program, member):
    this = datetime.now(UTC).strftime("%Y-%m")
    answer = _get(program, "mbr_01" + "z" * 24, this, headers={"Accept": "application/json"})
    assert answer["statusCode"] == 404 and body_of(answer)["type"].endswith("member-not-found")
    answer = _get(program, member, this, headers={"Accept": "*/*"}, query={"format": "pdf"})
    assert answer["statusCode"] == 406 and "Accept: application/pdf" in body_of(answer)["detail"]
    answer = _get(program, member, this, headers={"Accept": "*/*"}, query={"format": "csv"})
    assert answer["statusCode"] == 200 and answer["body"].startswith("row,created_at")


@pytest.mark.parametrize(("accept", "content_type"), [
    ("application/json, application/pdf", "application/json"),
    ("text/csv", "text/csv; charset=utf-8"),
    ("application/pdf;q=0.5, text/csv", "text/csv; charset=utf-8"),
    ("application/pdf, */*", "application/pdf"),
    ("*/*", "application/json"),
])
def test_the_accept_header_picks_the_answer_it_weighs_highest(program, member, accept, content_type):
    answer = _get(program, member, datetime.now(UTC).strftime("%Y-%m"), headers={"Accept": accept})
    assert answer["statusCode"] == 200 and answer["multiValueHeaders"]["Content-Type"] == [content_type]
