"""Finance views: payouts, journal, trial balance, liability, reconciliation, KPIs, and their CSV form.

Amounts are integers: points, or minor units with their currency. Ratios are basis points
(10,000 = 100 %), so nothing here is a float.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from treue.core import times
from treue.core.issued_records import Donation
from treue.core.ledger import BONUS_PREFIX, Account
from treue.core.money import MoneyAccount
from treue.core.programs import Program
from treue.core.records import Order
from treue.core.statuses import ORDER_IN_FLIGHT, IssuanceStatus, ItemType, OrderStatus
from treue.errors import MalformedRequest
from treue.logic import budget

# Stable CSV column sets (documented in the README); new columns are only ever appended.
PAYOUT_COLUMNS = ("order_id", "created_at", "status", "type", "item_id", "item_name", "member_id", "quantity",
                  "face_value", "fee", "currency", "points", "provider", "provider_reference", "failure_reason",
                  "completed_at", "cash_value", "cash_reference", "cash_owed_back", "cash_refunded")
JOURNAL_COLUMNS = ("id", "created_at", "type", "unit", "debit", "credit", "amount", "member_id", "order_id",
                   "reference", "reason", "actor")
TRIAL_BALANCE_COLUMNS = ("unit", "account", "balance")
LIABILITY_COLUMNS = ("available_points", "held_points", "outstanding_points", "value", "currency", "as_of",
                     "pending_points", "debt_points")
DIFFERENCE_COLUMNS = ("check", "order_id", "unit", "expected", "actual", "detail")
MOVEMENT_COLUMNS = ("id", "created_at", "type", "currency", "debit", "credit", "amount", "order_id", "reference",
                    "actor")
KPI_COLUMNS = ("metric", "value", "unit")

# movement type → what it counts of a points + cash order's cash
CASH_MOVES = {"cash": "cash:received", "cash_owed_back": "cash:owed_back", "cash_refunded": "cash:refunded"}
POINT_ACCOUNTS = ("member:available", "member:pending", "member:held", "member:debt", "program:issued",
                  "program:adjustments", "program:redeemed", "program:expired")
MEMBER_POINT_ACCOUNTS = ("member:available", "member:pending", "member:held", "member:debt")
MONEY_ACCOUNTS = tuple(str(a) for a in MoneyAccount)
IN_FLIGHT = ORDER_IN_FLIGHT


# ---------------------------------------------------------------- time bounds


def bound(value: str | None, name: str, end: bool = False) -> str | None:
    """A from/to query value (a date or an ISO 8601 UTC time) as a sortable key prefix.

    A date as ``to`` includes that whole day (``to=2026-11-24`` ends before 2026-11-25).
    """
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return (day + timedelta(days=1)).isoformat() if end else day.isoformat()
        moment = times.parse(value)
    except ValueError as err:
        raise MalformedRequest(f"{name} is not a date (2026-11-24) or an ISO 8601 time", parameter=name) from err
    if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
        raise MalformedRequest(f"{name} must be in UTC (end it with Z)", parameter=name)
    return times.iso(moment, "milliseconds")


def period(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    lo, hi = bound(start, "from"), bound(end, "to", end=True)
    if lo and hi and lo >= hi:
        raise MalformedRequest("from must be before to", parameter="from")
    return lo, hi


# ---------------------------------------------------------------- rows


def payout_row(order: Order) -> dict[str, Any]:
    face, fee = budget.cost_of(order)
    funds = order.funds or {}
    provider = order.provider or {}
    return {
        "order_id": order.id, "created_at": order.created_at, "status": str(order.status), "type": str(order.type),
        "item_id": order.item_id, "item_name": order.item_name, "member_id": order.member_id,
        "quantity": order.quantity, "face_value": funds.get("face", face), "fee": funds.get("fee", fee),
        "currency": order.currency, "points": order.points, "provider": provider.get("name"),
        "provider_reference": provider.get("reference") or order.donation_id,
        "failure_reason": order.failure_reason, "completed_at": order.completed_at,
        **cash_columns(order),
    }


def cash_columns(order: Order) -> dict[str, Any]:
    """A points + cash order's cash (minor units of ``currency``), the till's receipt id, what is still owed
    back to the member after a failure or cancel, and what finance refunded of it (0 when nothing); empty
    cells for a points-only order."""
    payment = order.payment
    if not payment:
        return {"cash_value": None, "cash_reference": None, "cash_owed_back": None, "cash_refunded": None}
    owed = (payment.get("owed_back") or {}).get("value", 0)
    refunded = (payment.get("refunded") or {}).get("value", 0)
    return {"cash_value": payment["cash"]["value"], "cash_reference": payment["cash"]["reference"],
            "cash_owed_back": owed - refunded, "cash_refunded": refunded}


def journal_row(entry: dict[str, Any]) -> dict[str, Any]:
    """A posting (points) or a budget movement (minor units of ``unit``) as one journal line."""
    if "points" in entry:
        unit, amount = "points", entry["points"]
    else:
        unit, amount = entry["currency"], entry["amount"]
    return {
        "id": entry["id"], "created_at": entry["created_at"], "type": entry["type"], "unit": unit,
        "debit": entry["debit"], "credit": entry["credit"], "amount": amount, "member_id": entry.get("member_id"),
        "order_id": entry.get("order_id"), "reference": entry.get("reference"), "reason": entry.get("reason"),
        "actor": entry.get("actor"),
    }


def movement_row(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry.get(k) for k in MOVEMENT_COLUMNS}


def to_csv(columns: Iterable[str], rows: Iterable[dict[str, Any]], header: bool = True) -> str:
    """Every CSV the API answers. Text cells are neutralised against formula injection (``csv_cell``);
    integers (points, minor units, counts) are written as numbers, so a negative amount stays -500."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = list(columns)
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
    return out.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: a string starting like a formula gets a leading single quote
    (OWASP's advice); None is empty; numbers are left alone (they are ints, never text)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# ---------------------------------------------------------------- balances


def trial_balance(point_accounts: dict[str, int], money_accounts: dict[str, dict[str, int]], as_of: str
                  ) -> dict[str, Any]:
    """Every account per unit (points, then each currency) and each unit's total, which is 0."""
    units = [_unit("points", POINT_ACCOUNTS, point_accounts)]
    for currency in sorted(money_accounts):
        units.append(_unit(currency, MONEY_ACCOUNTS, money_accounts[currency]))
    return {"as_of": as_of, "units": units, "balanced": all(u["total"] == 0 for u in units)}


def _unit(unit: str, names: tuple[str, ...], balances: dict[str, int]) -> dict[str, Any]:
    accounts = [{"account": n, "balance": balances.get(n, 0)} for n in names]
    accounts += [{"account": n, "balance": v} for n, v in sorted(balances.items()) if n not in names]
    return {"unit": unit, "accounts": accounts, "total": sum(a["balance"] for a in accounts)}


def trial_balance_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for unit in report["units"]:
        rows += [{"unit": unit["unit"], **a} for a in unit["accounts"]]
        rows.append({"unit": unit["unit"], "account": "total", "balance": unit["total"]})
    return rows


def liability(program: Program, point_accounts: dict[str, int], as_of: str) -> dict[str, Any]:
    """Points members hold (available, pending and held by open orders) and what they are worth. What members
    owe (``debt``: returns after their points were spent) is shown, not netted: it is paid back from points
    they have yet to earn."""
    available = point_accounts.get("member:available", 0)
    held = point_accounts.get("member:held", 0)
    pending = point_accounts.get("member:pending", 0)
    outstanding = available + held + pending
    return {
        "as_of": as_of,
        "points": {"available": available, "held": held, "pending": pending, "outstanding": outstanding,
                   "debt": -point_accounts.get("member:debt", 0)},
        "value": {"value": program.money_value(outstanding), "currency": program.currency},
        "point_value": {"points": program.value_points, "value": program.value_minor, "currency": program.currency},
    }


def liability_row(report: dict[str, Any]) -> dict[str, Any]:
    return {"available_points": report["points"]["available"], "held_points": report["points"]["held"],
            "outstanding_points": report["points"]["outstanding"], "value": report["value"]["value"],
            "currency": report["value"]["currency"], "as_of": report["as_of"],
            "pending_points": report["points"]["pending"], "debt_points": report["points"]["debt"]}


# ---------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class OrderSummary:
    """What the reconciliation needs of an order. A report job keeps thousands of these in its state (plain
    JSON in S3 between invocations: :meth:`state`, and :meth:`from_state` reads one back)."""

    id: str
    status: OrderStatus
    type: ItemType
    points: int
    currency: str
    draws: bool  # whether it is paid from the budget (gift cards, donations, rewards)
    face: int  # what it draws, minor units (0 when it draws nothing)
    fee: int
    reference: str | None  # the provider's reference of a gift card order
    donation_id: str | None
    cash: int = 0  # a points + cash order's cash part, minor units of currency (0: points only)
    cash_due: int = 0  # what the cash must be: its price's points not paid in points at its point value
    paid_points: int = 0  # the points part its payment names (must equal points)

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> OrderSummary:
        return cls(id=data["id"], status=OrderStatus(data["status"]), type=ItemType(data["type"]),
                   points=data["points"], currency=data["currency"], draws=data["draws"], face=data["face"],
                   fee=data["fee"], reference=data["reference"], donation_id=data["donation_id"],
                   cash=data.get("cash", 0), cash_due=data.get("cash_due", 0),
                   paid_points=data.get("paid_points", 0))

    def state(self) -> dict[str, Any]:
        """The summary as a report job's state keeps it (every field, absent ones as null; the cash fields only
        for a points + cash order, so a points-only order's state is as it was before them)."""
        out = {**asdict(self), "status": str(self.status), "type": str(self.type)}
        if not self.cash:
            for name in ("cash", "cash_due", "paid_points"):
                del out[name]
        return out

    @property
    def needs_provider(self) -> bool:
        """A gift card order past PROCESSING: the provider's record is checked."""
        return self.type == ItemType.GIFT_CARD and self.status not in (OrderStatus.PENDING, OrderStatus.PROCESSING)

    @property
    def needs_receipt(self) -> bool:
        """An issued or completed donation: its receipt is checked."""
        return self.type == ItemType.CHARITY and self.status in (OrderStatus.ISSUED, OrderStatus.COMPLETED)


def order_summary(order: Order) -> OrderSummary:
    """What the reconciliation needs of ``order``."""
    draws = budget.draws_budget(order)
    face, fee = budget.cost_of(order) if draws else (0, 0)
    cash = cash_due = paid_points = 0
    if order.payment:
        payment, value = order.payment, order.payment["point_value"]
        cash, paid_points = payment["cash"]["value"], payment["points"]
        unpaid = payment["price_points"] - paid_points  # in the programme's favour, as when it was placed
        cash_due = -(-unpaid * value["value"] // value["points"])
    return OrderSummary(id=order.id, status=order.status, type=order.type, points=order.points,
                        currency=order.currency, draws=draws, face=face, fee=fee,
                        reference=(order.provider or {}).get("reference"), donation_id=order.donation_id,
                        cash=cash, cash_due=cash_due, paid_points=paid_points)


class Reconciliation:
    """:func:`reconcile` in steps, so that a report job can stop after any page and continue in another
    invocation: :meth:`state` is plain JSON and ``Reconciliation(day, state)`` picks it up again. The orders
    are kept as their summaries' state (a report job builds a ``Reconciliation`` per page, from thousands
    of them); :meth:`unchecked` gives the next ones as :class:`OrderSummary` records.

    Order: every order of the day (:meth:`add_order`), then the journal from the day on
    (:meth:`add_entry`, kept only for those orders), the member balances (:meth:`add_balance`), each
    order checked (:meth:`check`, with its provider record or donation receipt), then :meth:`finish`.
    """

    def __init__(self, day: str, state: dict[str, Any] | None = None) -> None:
        s = state or {}
        self.day = day
        self.orders: list[dict[str, Any]] = s.get("orders", [])
        self.points: dict[str, dict[str, int]] = s.get("points", {})
        self.money: dict[str, dict[str, int]] = s.get("money", {})
        self.postings: int = s.get("postings", 0)
        self.movements: int = s.get("movements", 0)
        self.balances: dict[str, int] = s.get("balances", dict.fromkeys(MEMBER_POINT_ACCOUNTS, 0))
        self.checked: int = s.get("checked", 0)
        self.differences: list[dict[str, Any]] = s.get("differences", [])
        self._ids = {o["id"] for o in self.orders}

    def state(self) -> dict[str, Any]:
        return {"orders": self.orders, "points": self.points, "money": self.money, "postings": self.postings,
                "movements": self.movements, "balances": self.balances, "checked": self.checked,
                "differences": self.differences}

    def add_order(self, order: Order) -> None:
        if order.id not in self._ids:
            self._ids.add(order.id)
            self.orders.append(order_summary(order).state())

    def add_entry(self, entry: dict[str, Any]) -> None:
        oid: str = entry.get("order_id") or ""  # "" is no order's id
        if "points" in entry:
            self.postings += 1
            if oid in self._ids:
                got = self.points.setdefault(oid, {})
                got[entry["type"]] = got.get(entry["type"], 0) + entry["points"]
        else:
            self.movements += 1
            if oid in self._ids and entry["type"] in CASH_MOVES:  # a points + cash order's cash
                cash = self.money.setdefault(oid, {})
                account = CASH_MOVES[entry["type"]]
                cash[account] = cash.get(account, 0) + entry["amount"]
            elif oid in self._ids:
                sign = 1 if entry["type"] == "draw" else -1
                account = entry["credit"] if sign > 0 else entry["debit"]
                paid = self.money.setdefault(oid, {})
                paid[account] = paid.get(account, 0) + sign * entry["amount"]

    def add_balance(self, balance: dict[str, Any]) -> None:
        for account in MEMBER_POINT_ACCOUNTS:
            field = account.split(":")[1]
            # the balance item keeps debt as what the member owes; the account's balance is its negative
            value = -balance.get(field, 0) if field == "debt" else balance.get(field, 0)
            self.balances[account] = self.balances.get(account, 0) + value

    def _differ(self, check: str, order_id: str | None, unit: str, expected: Any, actual: Any, detail: str) -> None:
        self.differences.append({"check": check, "order_id": order_id, "unit": unit, "expected": expected,
                                 "actual": actual, "detail": detail})

    def unchecked(self, limit: int | None = None) -> list[OrderSummary]:
        """The next ``limit`` orders to check (all of them without a limit), in order."""
        end = None if limit is None else self.checked + limit
        return [OrderSummary.from_state(o) for o in self.orders[self.checked:end]]

    def left(self) -> int:
        """How many orders are still to check."""
        return len(self.orders) - self.checked

    def check(self, order: OrderSummary, provider_record: Any = None, receipt: Donation | None = None) -> None:
        """Check the next order (``self.unchecked()[0]``) against the ledger, the budget and, when it
        ``needs_provider`` or ``needs_receipt``, the provider's record or the donation receipt."""
        status, oid, p = order.status, order.id, order.points
        got = self.points.get(oid, {})
        if got.get("hold", 0) != p:
            self._differ("points_hold", oid, "points", p, got.get("hold", 0), "the order's hold posting")
        want = {"capture": p if status in (OrderStatus.COMPLETED, OrderStatus.CANCELED) else 0,
                "release": p if status == OrderStatus.FAILED else 0,
                "refund": p if status == OrderStatus.CANCELED else 0}
        for kind, expected in want.items():
            if status in IN_FLIGHT and kind == "capture":
                continue
            if got.get(kind, 0) != expected:
                self._differ(f"points_{kind}", oid, "points", expected, got.get(kind, 0), f"{status} order")
        if order.draws:
            face, fee = order.face, order.fee
            paid = self.money.get(oid, {})
            net_face, net_fee = paid.get("payouts:face", 0), paid.get("payouts:fees", 0)
            if status in (OrderStatus.ISSUED, OrderStatus.COMPLETED) or (
                    status == OrderStatus.CANCELED and order.type == ItemType.CHARITY):
                expected_face, expected_fee = face, fee
            elif status == OrderStatus.PROCESSING and (net_face or net_fee):
                expected_face, expected_fee = face, fee
            else:
                expected_face = expected_fee = 0
            if net_face != expected_face:
                self._differ("budget_face", oid, order.currency, expected_face, net_face, f"{status} order")
            if net_fee != expected_fee:
                self._differ("budget_fee", oid, order.currency, expected_fee, net_fee, f"{status} order")
        if order.cash or self.money.get(oid, {}).get("cash:received"):
            self._check_cash(order)
        if order.needs_provider:
            seen = getattr(provider_record, "status", None)
            if status in (OrderStatus.ISSUED, OrderStatus.COMPLETED):
                reference = order.reference
                if seen != IssuanceStatus.ISSUED or getattr(provider_record, "reference", None) != reference:
                    self._differ("provider", oid, order.currency, f"ISSUED {reference}",
                                 f"{seen} {getattr(provider_record, 'reference', None)}",
                                 "the provider's record of the cards")
            elif seen not in (None, IssuanceStatus.CANCELED):
                self._differ("provider", oid, order.currency, "none or CANCELED", seen,
                             f"a {status} order must leave no live card at the provider")
        if order.needs_receipt:
            if receipt is None or receipt.amount != order.face:
                self._differ("donation", oid, order.currency, order.face, None if receipt is None else receipt.amount,
                             "the charity receipt")
        self.checked += 1

    def _check_cash(self, order: OrderSummary) -> None:
        """A points + cash order: its points and cash pay its price exactly (the cash at its point value,
        rounded up), the cash came into the budget once, and is owed back exactly when it failed or was
        canceled."""
        oid, cur = order.id, order.currency
        if order.paid_points != order.points or order.cash != order.cash_due:
            self._differ("points_cash", oid, cur, order.cash_due, order.cash,
                         f"points {order.paid_points} (held {order.points}) + cash must pay the price exactly")
        got = self.money.get(oid, {})
        if got.get("cash:received", 0) != order.cash:
            self._differ("cash_received", oid, cur, order.cash, got.get("cash:received", 0),
                         "the order's cash movement into the budget")
        owed = order.cash if order.status in (OrderStatus.FAILED, OrderStatus.CANCELED) else 0
        if got.get("cash:owed_back", 0) != owed:
            self._differ("cash_owed_back", oid, cur, owed, got.get("cash:owed_back", 0), f"{order.status} order")
        if got.get("cash:refunded", 0) not in (0, owed):
            self._differ("cash_refunded", oid, cur, owed, got.get("cash:refunded", 0),
                         "a refund pays back exactly what is owed, once")

    def finish(self, point_accounts: dict[str, int], money_accounts: dict[str, dict[str, int]],
               holds: dict[str, int] | None = None) -> dict[str, Any]:
        """The whole-program checks and the report (every order must have been checked)."""
        report = trial_balance(point_accounts, money_accounts, "")
        for unit in report["units"]:
            if unit["total"] != 0:
                self._differ("trial_balance", None, unit["unit"], 0, unit["total"],
                             "the unit's accounts do not sum to 0")
        for account in MEMBER_POINT_ACCOUNTS:
            if point_accounts.get(account, 0) != self.balances.get(account, 0):
                self._differ("member_balances", None, "points", point_accounts.get(account, 0),
                             self.balances.get(account, 0),
                             f"{account}: the ledger's total vs the sum of the members' balances")
        for currency, accounts in money_accounts.items():
            for account in ("budget:available", "budget:held"):
                if accounts.get(account, 0) < 0:
                    self._differ("budget_negative", None, currency, ">= 0", accounts[account], account)
        for currency in sorted(set(holds or {}) | {c for c, a in money_accounts.items() if a.get("budget:held")}):
            held, holding = money_accounts.get(currency, {}).get("budget:held", 0), (holds or {}).get(currency, 0)
            if holds is not None and held != holding:
                self._differ("budget_held", None, currency, held, holding,
                             "budget:held vs the sum of what the batches hold")
        return {
            "date": self.day,
            "checked": {"orders": len(self.orders), "postings": self.postings, "movements": self.movements},
            "in_flight": [o["id"] for o in self.orders if o["status"] in IN_FLIGHT],
            "differences": self.differences,
        }


def reconcile(
    day: str,
    orders: list[Order],
    entries: Iterable[dict[str, Any]],
    provider_status: Callable[[OrderSummary], Any],
    donation_of: Callable[[OrderSummary], Donation | None],
    point_accounts: dict[str, int],
    money_accounts: dict[str, dict[str, int]],
    member_balances: dict[str, int],
    holds: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Every order created on ``day`` checked against the ledger, the budget and the provider.

    ``entries`` are the journal from ``day`` on (postings and movements); ``provider_status(order)``
    answers the provider's record (an object with ``status`` and ``reference``, or None);
    ``donation_of(order)`` the stored donation receipt. Whole-program checks: each unit of the
    trial balance sums to 0, the members' balances add up to the member accounts and what the
    batches hold (``holds``, currency → sum) adds up to each ``budget:held`` account.
    """
    run = Reconciliation(day)
    for order in orders:
        run.add_order(order)
    for entry in entries:
        run.add_entry(entry)
    run.balances = {k: member_balances.get(k, 0) for k in MEMBER_POINT_ACCOUNTS}
    for summary in run.unchecked():
        run.check(summary, provider_status(summary) if summary.needs_provider else None,
                  donation_of(summary) if summary.needs_receipt and summary.donation_id else None)
    return run.finish(point_accounts, money_accounts, holds)


# ---------------------------------------------------------------- KPIs


class KpiCount:
    """:func:`kpis` in steps (see :class:`Reconciliation`): members enrolled before the period's end
    (:meth:`add_member`), the period's journal (:meth:`add_entry`), then :meth:`finish`."""

    FIELDS = ("earned", "adjusted_in", "adjusted_out", "captured", "refunded", "expired", "reversed", "members")

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        s = state or {}
        self.counts: dict[str, int] = {f: s.get(f, 0) for f in self.FIELDS}
        self.active: set[str] = set(s.get("active", []))
        self.purchases: dict[str, int] = s.get("purchases", {})
        self.paid: dict[str, dict[str, int]] = s.get("paid", {})
        self.earned_from: dict[str, int] = s.get("earned_from", {})  # account → points earned from it

    def state(self) -> dict[str, Any]:
        return {**self.counts, "active": sorted(self.active), "purchases": self.purchases, "paid": self.paid,
                "earned_from": self.earned_from}

    def add_member(self, balance: dict[str, Any], end: str | None) -> None:
        if not end or balance.get("enrolled_at", "") < end:
            self.counts["members"] += 1

    def add_entry(self, e: dict[str, Any]) -> None:
        c = self.counts
        if "points" in e:
            t, n = e["type"], e["points"]
            if t == "earn":
                c["earned"] += n
                self.earned_from[e["debit"]] = self.earned_from.get(e["debit"], 0) + n
                self.purchases[e["member_id"]] = self.purchases.get(e["member_id"], 0) + 1
            elif t == "adjustment":
                c["adjusted_in" if e["credit"] == "member:available" else "adjusted_out"] += n
            elif t == "capture":
                c["captured"] += n
            elif t == "refund":
                c["refunded"] += n
            elif t == "reversal":  # a return: the points go back to the account that paid them
                c["reversed"] += n
                self.earned_from[e["credit"]] = self.earned_from.get(e["credit"], 0) - n
            if e["credit"] == "program:expired":
                c["expired"] += n
            if t in ("earn", "hold"):
                self.active.add(e["member_id"])
        elif e["type"] in ("draw", "return"):
            sign = 1 if e["type"] == "draw" else -1
            field = "fees" if "payouts:fees" in (e["credit"], e["debit"]) else "face_value"
            paid = self.paid.setdefault(e["currency"], {"face_value": 0, "fees": 0})
            paid[field] += sign * e["amount"]

    def finish(self, start: str | None, end: str | None, liability_report: dict[str, Any],
               rule_names: dict[str, str] | None = None, tiers: dict[str, Any] | None = None) -> dict[str, Any]:
        c = self.counts
        members, earned = c["members"], c["earned"]
        redeemed = c["captured"] - c["refunded"]
        buyers = [m for m, n in self.purchases.items() if n >= 1]
        repeat = [m for m in buyers if self.purchases[m] >= 2]
        return {
            "from": start, "to": end,
            "members": members,
            "active_members": len(self.active),
            "active_members_ratio_bps": len(self.active) * 10_000 // members if members else 0,
            "points_earned": earned,
            "points_adjusted": c["adjusted_in"] - c["adjusted_out"],
            "points_redeemed": redeemed,
            "points_expired": c["expired"],
            "points_reversed": c["reversed"],
            "redemption_rate_bps": redeemed * 10_000 // earned if earned else 0,
            "repurchase_rate_bps": len(repeat) * 10_000 // len(buyers) if buyers else 0,
            "liability": liability_report["value"],
            "liability_points": liability_report["points"]["outstanding"],
            "payouts": [{"currency": cur, "face_value": v["face_value"], "fees": v["fees"]}
                        for cur, v in sorted(self.paid.items())],
            "points_by_rule": points_by_rule(self.earned_from, rule_names or {}),
            "members_by_tier": tiers,
        }


def points_by_rule(earned_from: dict[str, int], names: dict[str, str]) -> list[dict[str, Any]]:
    """Points earned in the period per source: the base rate (and tier multipliers) from ``program:issued`` as
    ``rule_id: "base"``, then each earning rule from its own account ``program:bonus:<rule id>``, most points
    first (then rule id). Over all time each row is that account's total in the trial balance (negated)."""
    rows = [{"rule_id": "base", "name": "Base rate", "points": earned_from.get(str(Account.PROGRAM_ISSUED), 0)}]
    bonus = sorted(((a.removeprefix(BONUS_PREFIX), n) for a, n in earned_from.items() if a.startswith(BONUS_PREFIX)),
                   key=lambda r: (-r[1], r[0]))
    rows += [{"rule_id": rid, "name": names.get(rid), "points": n} for rid, n in bonus]
    return rows


def kpis(start: str | None, end: str | None, entries: Iterable[dict[str, Any]], enrolled: Iterable[str],
         liability_report: dict[str, Any]) -> dict[str, Any]:
    """Programme figures for a period (see the README for each definition)."""
    count = KpiCount()
    for e in entries:
        count.add_entry(e)
    count.counts["members"] = sum(1 for _ in enrolled)
    return count.finish(start, end, liability_report)


def kpi_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{"metric": k, "value": report[k], "unit": u} for k, u in (
        ("members", "members"), ("active_members", "members"), ("active_members_ratio_bps", "bps"),
        ("points_earned", "points"), ("points_adjusted", "points"), ("points_redeemed", "points"),
        ("points_expired", "points"), ("redemption_rate_bps", "bps"), ("repurchase_rate_bps", "bps"),
        ("liability_points", "points"), ("points_reversed", "points"),
    )]
    rows.append({"metric": "liability", "value": report["liability"]["value"], "unit": report["liability"]["currency"]})
    for p in report["payouts"]:
        rows.append({"metric": "payouts_face_value", "value": p["face_value"], "unit": p["currency"]})
        rows.append({"metric": "payouts_fees", "value": p["fees"], "unit": p["currency"]})
    for r in report.get("points_by_rule", []):
        rows.append({"metric": f"points_earned:{r['rule_id']}", "value": r["points"], "unit": "points"})
    for t in (report.get("members_by_tier") or {}).get("tiers", []):
        rows.append({"metric": f"members_in_tier:{t['tier'] or 'none'}", "value": t["members"], "unit": "members"})
    return rows
