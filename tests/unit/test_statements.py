"""Monthly statements without AWS (issue 17 item 6): the summary's arithmetic, how far back the entries are read,
the CSV's columns, the PDF read back in English and German, the month and the language asked for."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta

import pypdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treue.core.ledger import Account, PostingType
from treue.core.programs import Program
from treue.errors import Contention, MemberNotFound, ValidationFailed
from treue.logic import statement_files, statements

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
PROGRAM = Program(id="prg_unit", name="Bäckerei Treue", currency="EUR", country="DE")
MEMBER = "mbr_01member000000000000000000"[:30]


def id_at(moment: datetime, prefix: str = "pst") -> str:
    """A time-ordered id as ``treue.core.ids.new_id`` makes it at ``moment``."""
    value = (int(moment.timestamp() * 1000) << 80) | random.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


class FakeLedger:
    """The ledger store's reads a statement makes: the balance item and the entries, newest first, in pages."""

    def __init__(self) -> None:
        self.balance = {"available": 0, "pending": 0, "held": 0, "debt": 0, "updated_at": "start"}
        self.items: list[dict] = []
        self.queries = 0
        self.on_read = None  # called between the balance reads (a posting coming in)

    def post(self, kind, debit, credit, points, at: datetime, made: datetime | None = None, **metadata):
        entry = {"id": id_at(made or at), "type": str(kind), "debit": str(debit), "credit": str(credit),
                 "points": points, "reference": f"ref-{len(self.items)}", "reason": str(kind), "actor": "admin:unit",
                 "created_at": at.isoformat().replace("+00:00", "Z"), "metadata": metadata or None}
        for field, delta in statements.movements(entry).items():
            self.balance[field] += delta
        self.balance["updated_at"] = entry["created_at"] + entry["id"]
        self.items.append(entry)
        return entry

    def balance_state(self, program_id, member_id):
        if member_id != MEMBER:
            return None
        if self.on_read is not None:
            self.on_read()
        return dict(self.balance)

    def get_balance(self, program_id, member_id):
        return self.balance_state(program_id, member_id)

    def get_member(self, program_id, member_id):
        return {"id": member_id, "name": "Jürgen Müller"} if member_id == MEMBER else None

    def list_entries(self, program_id, member_id, limit, cursor):
        self.queries += 1
        ordered = sorted(self.items, key=lambda e: e["id"], reverse=True)
        start = int(cursor or 0)
        page = ordered[start:start + limit]
        return page, (str(start + limit) if start + limit < len(ordered) else None)


def _day(month: int, day: int, year: int = 2026) -> datetime:
    return datetime(year, month, day, 9, 30, tzinfo=UTC)


@pytest.fixture
def ledger() -> FakeLedger:
    book = FakeLedger()
    book.post(PostingType.EARN, Account.PROGRAM_ISSUED, Account.MEMBER_AVAILABLE, 1234, _day(10, 5),
              amount={"value": 123_456, "currency": "EUR"}, occurred_at="2026-10-04T18:00:00Z",
              expires_on="2027-10-31")
    book.post(PostingType.EARN, Account.PROGRAM_ISSUED, Account.MEMBER_PENDING, 500, _day(11, 2),
              available_at="2026-11-16T09:30:00Z")
    book.post(PostingType.HOLD, Account.MEMBER_AVAILABLE, Account.MEMBER_HELD, 1000, _day(11, 3))
    book.post(PostingType.CAPTURE, Account.MEMBER_HELD, Account.PROGRAM_REDEEMED, 1000, _day(11, 4))
    book.post(PostingType.ACTIVATION, Account.MEMBER_PENDING, Account.MEMBER_AVAILABLE, 500, _day(11, 16))
    book.post(PostingType.EXPIRY, Account.MEMBER_AVAILABLE, Account.PROGRAM_EXPIRED, 34, _day(11, 20))
    book.post(PostingType.REVERSAL, Account.MEMBER_AVAILABLE, Account.PROGRAM_ISSUED, 600, _day(11, 21))
    book.post(PostingType.REVERSAL, Account.MEMBER_DEBT, Account.PROGRAM_ISSUED, 100, _day(11, 21) + timedelta(hours=1))
    book.post(PostingType.ADJUSTMENT, Account.PROGRAM_ADJUSTMENTS, Account.MEMBER_AVAILABLE, 2000, _day(11, 30))
    book.post(PostingType.REPAYMENT, Account.MEMBER_AVAILABLE, Account.MEMBER_DEBT, 100, _day(12, 1))
    return book


def test_the_summary_adds_up_and_months_chain(ledger):
    october, november, december = (statements.monthly(ledger, PROGRAM, MEMBER, m, NOW)
                                   for m in ("2026-10", "2026-11", "2026-12"))
    assert (october["opening"], october["earned"], october["closing"]) == (0, 1234, 1234)
    assert {k: november[k] for k in ("opening", "earned", "redeemed", "expired", "reversed", "adjusted",
                                     "closing")} == {"opening": 1234, "earned": 500, "redeemed": 1000,
                                                     "expired": 34, "reversed": 700, "adjusted": 2000,
                                                     "closing": 2000}
    assert november["closing_accounts"] == {"available": 2100, "pending": 0, "held": 0, "debt": 100}
    assert december["opening_accounts"] == november["closing_accounts"] == {
        **october["closing_accounts"], "available": 2100, "debt": 100}
    assert december["opening"] == november["closing"] and december["closing"] == 2000
    assert december["closing_accounts"] == {"available": 2000, "pending": 0, "held": 0, "debt": 0}
    assert december["as_of"] == "2026-12-10T12:00:00.000Z" and november["as_of"] == "2026-12-01T00:00:00.000Z"
    assert [e["balance"] for e in november["entries"]] == [1734, 1734, 734, 734, 700, 100, 0, 2000]
    assert [e["change"] for e in november["entries"]] == [500, 0, -1000, 0, -34, -600, -100, 2000]


@pytest.mark.parametrize(("debit", "credit", "line", "delta"), [
    (Account.PROGRAM_ISSUED, Account.MEMBER_AVAILABLE, "earned", 7),
    ("program:bonus:rul_x", Account.MEMBER_PENDING, "earned", 7),
    (Account.MEMBER_PENDING, "program:bonus:rul_x", "reversed", -7),
    (Account.MEMBER_DEBT, Account.PROGRAM_ISSUED, "reversed", -7),
    (Account.MEMBER_HELD, Account.PROGRAM_REDEEMED, "redeemed", -7),
    (Account.PROGRAM_REDEEMED, Account.MEMBER_AVAILABLE, "redeemed", 7),
    (Account.MEMBER_AVAILABLE, Account.PROGRAM_EXPIRED, "expired", -7),
    (Account.MEMBER_AVAILABLE, Account.PROGRAM_ADJUSTMENTS, "adjusted", -7),
    (Account.MEMBER_AVAILABLE, Account.MEMBER_HELD, None, 0),
    (Account.MEMBER_AVAILABLE, Account.MEMBER_DEBT, None, 0),
    (Account.MEMBER_PENDING, Account.MEMBER_AVAILABLE, None, 0),
])
def test_an_entry_counts_in_the_line_of_the_program_account_it_moves_points_against(debit, credit, line, delta):
    """``delta``: what the entry changes of the member's points (available + pending + held - debt)."""
    entry = {"debit": debit, "credit": credit, "points": 7}
    assert statements.category(entry) == line
    assert statements.change(statements.movements(entry)) == delta


def test_debt_is_kept_as_what_the_member_owes():
    owe = statements.movements({"debit": Account.MEMBER_DEBT, "credit": Account.PROGRAM_ISSUED, "points": 80})
    repay = statements.movements({"debit": Account.MEMBER_AVAILABLE, "credit": Account.MEMBER_DEBT, "points": 30})
    assert owe == {"available": 0, "pending": 0, "held": 0, "debt": 80}
    assert repay == {"available": -30, "pending": 0, "held": 0, "debt": -30}


def test_reading_stops_at_the_first_entry_made_before_the_month(ledger, monkeypatch):
    monkeypatch.setattr(statements, "PAGE", 20)
    for day in range(1, 29):  # a long history in June
        for hour in range(10):
            ledger.post(PostingType.EARN, Account.PROGRAM_ISSUED, Account.MEMBER_AVAILABLE, 1,
                        datetime(2026, 6, day, hour, tzinfo=UTC))
    ledger.queries = 0
    november = statements.monthly(ledger, PROGRAM, MEMBER, "2026-11", NOW)
    assert ledger.queries == 1 and november["opening"] == 1234 + 280 and november["closing"] == 2000 + 280
    ledger.queries = 0
    june = statements.monthly(ledger, PROGRAM, MEMBER, "2026-06", NOW)
    assert ledger.queries == 290 // 20 + 1 and (june["opening"], june["closing"]) == (0, 280)
    monkeypatch.setattr(statements, "MAX_ENTRIES", 100)
    with pytest.raises(ValidationFailed, match="more than 100 ledger entries"):
        statements.monthly(ledger, PROGRAM, MEMBER, "2026-06", NOW)


def test_an_entry_made_later_but_posted_as_of_an_earlier_day_counts_in_that_day_s_month(ledger):
    # an expiry job run on 3 December for 30 November: its id is of December, its posting of November
    ledger.post(PostingType.EXPIRY, Account.MEMBER_AVAILABLE, Account.PROGRAM_EXPIRED, 50, _day(11, 30),
                made=_day(12, 3))
    november = statements.monthly(ledger, PROGRAM, MEMBER, "2026-11", NOW)
    december = statements.monthly(ledger, PROGRAM, MEMBER, "2026-12", NOW)
    assert november["expired"] == 84 and november["closing"] == 1950 == december["opening"]
    assert december["expired"] == 0 and december["closing"] == 1950
    # reading December back stops at neither: the repayment of 1 December has an older id than the expiry
    assert [e["type"] for e in december["entries"]] == ["repayment"]
    assert december["opening_accounts"] == {"available": 2050, "pending": 0, "held": 0, "debt": 100}


def test_an_id_tells_when_it_was_made():
    from treue.core.ids import new_id

    before = datetime.now(UTC)
    made = statements.id_time(new_id("pst"))
    assert made is not None and before - timedelta(milliseconds=1) <= made <= datetime.now(UTC)
    assert statements.id_time(id_at(_day(11, 3))) == _day(11, 3)
    assert statements.id_time("pst_short") is None and statements.id_time("pst_" + "u" * 26) is None


def test_a_posting_between_the_reads_makes_the_statement_read_again(ledger):
    moved = iter(range(3))

    def posting_comes_in():
        if next(moved, None) == 0:
            ledger.post(PostingType.ADJUSTMENT, Account.PROGRAM_ADJUSTMENTS, Account.MEMBER_AVAILABLE, 5, NOW)

    ledger.on_read = posting_comes_in
    december = statements.monthly(ledger, PROGRAM, MEMBER, "2026-12", NOW + timedelta(seconds=1))
    assert december["adjusted"] == 5 and december["closing"] == 2005 and december["opening"] == 2000

    ledger.on_read = lambda: ledger.post(PostingType.ADJUSTMENT, Account.PROGRAM_ADJUSTMENTS,
                                         Account.MEMBER_AVAILABLE, 1, NOW)
    with pytest.raises(Contention):
        statements.monthly(ledger, PROGRAM, MEMBER, "2026-12", NOW + timedelta(seconds=1))


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "december", "2027-01", "2026-12-01", "9999-12", "0000-01"])
def test_a_malformed_or_future_month_is_refused(ledger, month):
    with pytest.raises(ValidationFailed):
        statements.monthly(ledger, PROGRAM, MEMBER, month, NOW)


def test_unknown_member(ledger):
    with pytest.raises(MemberNotFound):
        statements.monthly(ledger, PROGRAM, "mbr_01" + "z" * 24, "2026-11", NOW)


def test_the_csv_has_an_opening_row_the_entries_and_a_closing_row(ledger):
    november = statements.monthly(ledger, PROGRAM, MEMBER, "2026-11", NOW)
    rows = list(csv.DictReader(io.StringIO(statement_files.to_statement_csv(november))))
    assert list(rows[0]) == list(statement_files.CSV_COLUMNS)
    assert [r["row"] for r in rows] == ["opening", *["entry"] * 8, "closing"]
    assert (rows[0]["balance"], rows[0]["available"]) == ("1234", "1234")
    assert (rows[-1]["balance"], rows[-1]["available"], rows[-1]["debt"]) == ("2000", "2100", "100")
    earn = rows[1]
    assert (earn["type"], earn["category"], earn["change"], earn["available"], earn["pending"]) == (
        "earn", "earned", "500", "0", "500")
    assert earn["available_at"] == "2026-11-16T09:30:00Z"
    assert [r["type"] for r in rows[1:-1]] == ["earn", "hold", "capture", "activation", "expiry", "reversal",
                                               "reversal", "adjustment"]


def _text(pdf: bytes) -> str:
    assert pdf.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_the_pdf_reads_back_with_the_numbers_written_as_each_language_writes_them(ledger):
    october = statements.monthly(ledger, PROGRAM, MEMBER, "2026-10", NOW)
    german = _text(statement_files.to_pdf(october, "de", "2026-12-10T12:00:00.000Z"))
    assert "Bäckerei Treue" in german and "Punkteauszug Oktober 2026" in german
    assert f"Mitglied Jürgen Müller ({MEMBER})" in german and october["member_name"] == "Jürgen Müller"
    assert "Zeitraum 1. Oktober 2026 - 31. Oktober 2026" in german
    assert "Anfangsbestand 0 Punkte" in german and "Endbestand 1.234 Punkte" in german
    assert "Einkauf 1.234,56 EUR vom 04.10.2026" in german and "gültig bis 31.10.2027" in german
    english = _text(statement_files.to_pdf(october, "en", "2026-12-10T12:00:00.000Z"))
    assert "Points statement October 2026" in english and "Closing balance 1,234 points" in english
    assert "Purchase 1,234.56 EUR of 4 Oct 2026" in english and "valid until 31 Oct 2027" in english
    november = statements.monthly(ledger, PROGRAM, MEMBER, "2026-11", NOW)
    text = _text(statement_files.to_pdf(november, "en", "2026-12-10T12:00:00.000Z"))
    assert "Opening balance 1,234 points" in text and "Closing balance 2,000 points" in text
    assert "Redeemed -1,000" in text and "Reversed (returns) -700" in text and "owed -100" in text
    assert "available from 16 Nov 2026" in text and "Return" in text


def test_a_long_month_runs_over_pages_and_any_text_is_written(ledger):
    for i in range(120):
        ledger.post(PostingType.EARN, Account.PROGRAM_ISSUED, Account.MEMBER_AVAILABLE, 1000 + i,
                    _day(11, 1 + i % 28) + timedelta(minutes=i), amount={"value": 999, "currency": "JPY"})
    ledger.items[-1]["reference"] = "pos-日本-☃"
    november = statements.monthly(ledger, PROGRAM, MEMBER, "2026-11", NOW)
    pdf = statement_files.to_pdf(november, "de", "2026-12-10T12:00:00.000Z")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) > 3
    text = _text(pdf)
    assert f"Endbestand {statement_files.number(november['closing'], 'de')} Punkte" in text
    assert "pos-??-?" in text and "999 JPY" in text
    assert f"Seite 1/{len(reader.pages)}" in text


@pytest.mark.parametrize(("asked", "header", "country", "expected"), [
    ("en", "de-DE", "DE", "en"),
    (None, "de-DE,de;q=0.9,en;q=0.8", "", "de"),
    (None, "fr-FR, en;q=0.5, de;q=0.4", "DE", "en"),
    (None, "en;q=0.2, de-AT;q=0.7", "", "de"),
    (None, "fr", "AT", "de"),
    (None, None, "US", "en"),
    (None, "de;q=0", "", "en"),
])
def test_the_language(asked, header, country, expected):
    assert statement_files.language(asked, header, country) == expected


@pytest.mark.parametrize(("value", "en", "de"), [(0, "0", "0"), (1234, "1,234", "1.234"),
                                                 (-1234567, "-1,234,567", "-1.234.567")])
def test_numbers(value, en, de):
    assert (statement_files.number(value, "en"), statement_files.number(value, "de")) == (en, de)


def test_money():
    assert statement_files.money(123456, "EUR", "de") == "1.234,56 EUR"
    assert statement_files.money(123456, "EUR", "en") == "1,234.56 EUR"
    assert statement_files.money(1500, "JPY", "en") == "1,500 JPY"
    assert statement_files.money(-5, "KWD", "de") == "-0,005 KWD"


MOVES = [  # (debit, credit) of every kind of posting a member's ledger has
    (Account.PROGRAM_ISSUED, Account.MEMBER_AVAILABLE), ("program:bonus:rul_x", Account.MEMBER_PENDING),
    (Account.MEMBER_AVAILABLE, Account.MEMBER_HELD), (Account.MEMBER_HELD, Account.PROGRAM_REDEEMED),
    (Account.MEMBER_HELD, Account.MEMBER_AVAILABLE), (Account.PROGRAM_REDEEMED, Account.MEMBER_AVAILABLE),
    (Account.MEMBER_PENDING, Account.MEMBER_AVAILABLE), (Account.MEMBER_AVAILABLE, Account.PROGRAM_EXPIRED),
    (Account.MEMBER_AVAILABLE, Account.PROGRAM_ISSUED), (Account.MEMBER_DEBT, Account.PROGRAM_ISSUED),
    (Account.MEMBER_AVAILABLE, Account.MEMBER_DEBT), (Account.PROGRAM_ADJUSTMENTS, Account.MEMBER_AVAILABLE),
    (Account.MEMBER_AVAILABLE, Account.PROGRAM_ADJUSTMENTS),
]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.sampled_from(MOVES), st.integers(1, 500), st.integers(0, 119 * 24),
                          st.integers(0, 20 * 24)), max_size=40))
def test_any_history_chains_month_to_month_and_adds_up(history):
    """Postings of every kind at random hours of August to November, some posted as of an earlier day than
    their id says (a job run late): each month's closing is the next one's opening, each adds up, and the last
    closes at the balance (balances may go negative here: the arithmetic does not care)."""
    book = FakeLedger()
    start = datetime(2026, 8, 1, tzinfo=UTC)
    for (debit, credit), points, hour, late in history:
        at = start + timedelta(hours=hour)
        book.post(PostingType.ADJUSTMENT, debit, credit, points, at, made=min(at + timedelta(hours=late), NOW))
    months = ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]
    found = [statements.monthly(book, PROGRAM, MEMBER, m, NOW) for m in months]
    assert found[0]["opening"] == 0 and found[0]["closing"] == 0
    for before, after in zip(found, found[1:], strict=False):
        assert after["opening"] == before["closing"] and after["opening_accounts"] == before["closing_accounts"]
    for month in found:
        assert month["closing"] == month["opening"] + sum(statements.SIGNS[c] * month[c] for c in statements.CATEGORIES)
        assert month["closing"] == (month["entries"][-1]["balance"] if month["entries"] else month["opening"])
    assert found[-1]["closing_accounts"] == {k: book.balance[k] for k in statements.FIELDS}
    assert sum(len(m["entries"]) for m in found) == len(history)
