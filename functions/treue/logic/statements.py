"""A member's statements: the ledger of their postings, and the monthly statement.

**The ledger** (``GET /v1/members/{id}/ledger``, newest first) shows each posting as the member sees it: its
change of each of the member's accounts (``available``; ``held`` by orders in flight; ``pending``, earned but not
yet spendable; ``debt``, what the member owes, positive when they owe more), computed from the posting's debit and
credit; the expiry date of the bucket a credit went to (``expires_on``), when pending points become available
(``available_at``) and the purchase the points came from (its transaction id, amount and time).

**The monthly statement** (``GET /v1/members/{id}/statement?month=YYYY-MM``, a UTC calendar month as the month
counters are) sums the month up in the member's *points*: available + pending + held − debt, every point the
program owes the member, spendable now or not. A posting between two of the member's own accounts (hold, release,
activation, repayment) leaves that sum as it is; every other posting moves it against one program account, and
that account names the line of the summary it counts in:

    program:issued, program:bonus:<rule>   earned (to the member) or reversed (back from the member: a return)
    program:redeemed                       redeemed (a capture; a refund counts back)
    program:expired                        expired
    program:adjustments, any other         adjusted

so ``closing = opening + earned - redeemed - expired - reversed + adjusted`` holds to the point, entry by entry.

Opening and closing come from the ledger alone: the member's balance item, which every posting changes in the
same transaction as it writes its entry, less the changes of the entries posted since the month began (since it
ended, for the closing). The entries are read newest first, and the reading stops at the first entry whose id was
made before the month began: a posting's id is made (time-ordered, ``treue.core.ids.new_id``) when it is written,
and its ``created_at`` is never later than that (the request's clock, or an earlier date a job posts as of), so
every older entry was posted before the month too. A statement therefore reads the entries since the month's
start, not the member's whole history. The balance is read before and after the entries: when a posting came in
between (its ``updated_at`` moved), the statement is read again, so opening and closing always match the
entries shown, and the closing of one month is the opening of the next.

Formats: JSON here; CSV and PDF in ``treue.logic.statement_files`` (loaded only for those answers).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from treue.core import times
from treue.core.ledger import BONUS_PREFIX, FIELD_SIGN, MEMBER_ACCOUNTS, Account
from treue.errors import Contention, MemberNotFound, ValidationFailed
from treue.logic.members import require_id

if TYPE_CHECKING:
    from treue.core.programs import Program
    from treue.logic.ports import LedgerPort

FIELDS = ("available", "pending", "held", "debt")  # the member's accounts as the balance item names them
CATEGORIES = ("earned", "redeemed", "expired", "reversed", "adjusted")
SIGNS = {"earned": 1, "redeemed": -1, "expired": -1, "reversed": -1, "adjusted": 1}  # how each adds to closing
PAGE = 500  # entries read per query while looking back to a month's start
MAX_ENTRIES = 20_000  # a statement reads at most this many entries back (about 40 queries) before it refuses
ATTEMPTS = 3  # reads of balance and entries until no posting came in between
CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


# ---------------------------------------------------------------- one entry


def movements(entry: Mapping[str, Any]) -> dict[str, int]:
    """The entry's change of each of the member's accounts by balance field (``debt``: what the member owes,
    so a posting to ``member:debt`` lowers it), from its debit, credit and points."""
    out = dict.fromkeys(FIELDS, 0)
    points = int(entry.get("points") or 0)
    for account, sign in ((entry.get("debit"), -1), (entry.get("credit"), 1)):
        field = MEMBER_ACCOUNTS.get(str(account))
        if field is not None:
            out[field] += sign * points * FIELD_SIGN.get(field, 1)
    return out


def change(moves: Mapping[str, int]) -> int:
    """What ``moves`` change of the member's points (available + pending + held − debt)."""
    return moves["available"] + moves["pending"] + moves["held"] - moves["debt"]


def category(entry: Mapping[str, Any]) -> str | None:
    """The summary line an entry counts in (``CATEGORIES``), by the program account it moves points against;
    None when it moves them between the member's own accounts only."""
    debit, credit = str(entry.get("debit")), str(entry.get("credit"))
    if debit in MEMBER_ACCOUNTS and credit in MEMBER_ACCOUNTS:
        return None
    counter = credit if debit in MEMBER_ACCOUNTS else debit
    if counter == Account.PROGRAM_ISSUED or counter.startswith(BONUS_PREFIX):
        return "earned" if credit in MEMBER_ACCOUNTS else "reversed"
    if counter == Account.PROGRAM_REDEEMED:
        return "redeemed"
    if counter == Account.PROGRAM_EXPIRED:
        return "expired"
    return "adjusted"


def view(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An entry as the ledger and the statement show it."""
    moves = movements(entry)
    metadata = entry.get("metadata") or {}
    purchase = None
    if isinstance(metadata.get("amount"), Mapping):
        purchase = {"transaction_id": metadata.get("transaction_id") or entry["reference"],
                    "amount": {"value": int(metadata["amount"]["value"]),
                               "currency": metadata["amount"]["currency"]},
                    "occurred_at": metadata.get("occurred_at")}
    expires_on = metadata.get("expires_on")
    if expires_on is None and metadata.get("dates"):  # an expiry run: the buckets' dates it expired
        expires_on = max(str(d) for d in metadata["dates"])
    return {
        "id": entry["id"],
        "type": entry["type"],
        "points": moves["available"],
        "held": moves["held"],
        "pending": moves["pending"],
        "debt": moves["debt"],
        "reason": entry["reason"],
        "reference": entry["reference"],
        "created_at": entry["created_at"],
        "actor": entry["actor"],
        "expires_on": expires_on,
        "available_at": metadata.get("available_at"),
        "rule_id": metadata.get("rule_id"),
        "return_id": metadata.get("return_id"),
        "purchase": purchase,
    }


def entries(store: LedgerPort, program_id: str, member_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """One page of the member's ledger, newest first, and the cursor of the next."""
    require_id(member_id)
    found, next_cursor = store.list_entries(program_id, member_id, limit, cursor)
    if not found and cursor is None and store.get_balance(program_id, member_id) is None:
        raise MemberNotFound(f"member {member_id} does not exist")  # a new member's ledger is empty
    return {"entries": [view(e) for e in found], "next_cursor": next_cursor}


# ---------------------------------------------------------------- the month


def month_bounds(month: str, now: datetime) -> tuple[datetime, datetime]:
    """The first moment of ``month`` (``YYYY-MM``, UTC) and of the next; a month not begun yet is a 422."""
    try:
        year, number = (int(part) for part in month.split("-"))
        start = datetime(year, number, 1, tzinfo=UTC)
    except ValueError as err:
        raise ValidationFailed("month is a calendar month as YYYY-MM, e.g. 2026-11", field="month") from err
    if start > now:
        raise ValidationFailed(f"the month {month} has not begun: a statement covers a month up to now at the "
                               "latest", field="month")
    return start, datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)


def id_time(entry_id: str) -> datetime | None:
    """When a time-ordered id (``treue.core.ids.new_id``) was made, to the millisecond; None for another shape."""
    _, _, body = entry_id.partition("_")
    if len(body) != 26 or any(c not in CROCKFORD for c in body):
        return None
    value = 0
    for c in body[:10]:
        value = value * 32 + CROCKFORD.index(c)
    return datetime.fromtimestamp(value / 1000, UTC)  # 10 characters: 50 bits, the low 48 the milliseconds


def _since(store: LedgerPort, program_id: str, member_id: str, start: datetime) -> list[dict[str, Any]]:
    """The member's entries posted at or after ``start``, and those of an id made after it, newest first."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = store.list_entries(program_id, member_id, PAGE, cursor)
        for entry in page:
            made = id_time(entry["id"])
            if made is not None and made < start and times.parse(entry["created_at"]) < start:
                return out  # made before the month, so posted before it, and so is every older entry
            out.append(entry)
        if cursor is None:
            return out
        if len(out) >= MAX_ENTRIES:
            raise ValidationFailed(f"the member has more than {MAX_ENTRIES:,} ledger entries since this month "
                                   "began: read the ledger page by page instead", field="month")


def _balances(balance: Mapping[str, Any]) -> dict[str, int]:
    return {field: int(balance.get(field) or 0) for field in FIELDS}


def _less(balances: dict[str, int], entries: list[dict[str, Any]]) -> dict[str, int]:
    """``balances`` before ``entries`` were posted."""
    out = dict(balances)
    for entry in entries:
        for field, delta in movements(entry).items():
            out[field] -= delta
    return out


def _read(store: LedgerPort, program_id: str, member_id: str, start: datetime
          ) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The member's balances now and the entries since ``start``, with no posting between the two reads."""
    for _ in range(ATTEMPTS):
        before = store.balance_state(program_id, member_id)
        if before is None:
            raise MemberNotFound(f"member {member_id} does not exist")
        since = _since(store, program_id, member_id, start)
        after = store.balance_state(program_id, member_id)
        if after is not None and after.get("updated_at") == before.get("updated_at") and \
                _balances(after) == _balances(before):
            return _balances(after), since
    raise Contention("the member's points kept changing while the statement was read; retry")


def points_of(balances: Mapping[str, int]) -> int:
    """The member's points of a set of balances: available + pending + held − debt."""
    return balances["available"] + balances["pending"] + balances["held"] - balances["debt"]


def monthly(store: LedgerPort, program: Program, member_id: str, month: str, now: datetime) -> dict[str, Any]:
    """The member's statement of ``month``: opening and closing points (with each account), what the month
    earned, redeemed, expired, reversed and adjusted, and its entries oldest first with the points after each.
    The month in progress closes now (``as_of``)."""
    require_id(member_id)
    start, end = month_bounds(month, now)
    current, since = _read(store, program.id, member_id, start)
    posted = [(times.parse(e["created_at"]), e) for e in since]
    # an entry made since the month began may be posted as of an earlier day (a job run for a past date)
    opening = _less(current, [e for at, e in posted if at >= start])
    closing = _less(current, [e for at, e in posted if at >= end])
    during = [e for at, e in posted if start <= at < end]
    during.sort(key=lambda e: (times.parse(e["created_at"]), e["id"]))
    totals = dict.fromkeys(CATEGORIES, 0)
    running = points_of(opening)
    shown = []
    for entry in during:
        moves = movements(entry)
        line = category(entry)
        delta = change(moves)
        if line is not None:
            totals[line] += SIGNS[line] * delta
        running += delta
        shown.append({**view(entry), "category": line, "change": delta, "balance": running})
    summary = {"opening": points_of(opening), **totals, "closing": points_of(closing)}
    found = store.get_member(program.id, member_id) or {}
    if summary["closing"] != summary["opening"] + sum(SIGNS[c] * totals[c] for c in CATEGORIES):
        raise AssertionError(f"statement of {member_id} {month} does not add up: {summary}")  # pragma: no cover
    return {
        "member_id": member_id,
        "member_name": found.get("name"),
        "month": month,
        "start": times.iso(start),
        "end": times.iso(end),
        "as_of": times.iso(min(end, now), "milliseconds"),
        "program": {"id": program.id, "name": program.name},
        "currency": program.currency,
        **summary,
        "opening_accounts": opening,
        "closing_accounts": closing,
        "pending_closing": closing["pending"],
        "entries": shown,
    }
