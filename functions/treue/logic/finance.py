"""Finance views: payouts, journal, trial balance, liability, reconciliation, KPIs, and their CSV form.

Amounts are integers: points, or minor units with their currency. Ratios are basis points
(10,000 = 100 %), so nothing here is a float.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from treue.errors import MalformedRequest
from treue.logic import budget
from treue.logic.programs import Program

# Stable CSV column sets (documented in the README); new columns are only ever appended.
PAYOUT_COLUMNS = ("order_id", "created_at", "status", "type", "item_id", "item_name", "member_id", "quantity",
                  "face_value", "fee", "currency", "points", "provider", "provider_reference", "failure_reason",
                  "completed_at")
JOURNAL_COLUMNS = ("id", "created_at", "type", "unit", "debit", "credit", "amount", "member_id", "order_id",
                   "reference", "reason", "actor")
TRIAL_BALANCE_COLUMNS = ("unit", "account", "balance")
LIABILITY_COLUMNS = ("available_points", "held_points", "outstanding_points", "value", "currency", "as_of")
DIFFERENCE_COLUMNS = ("check", "order_id", "unit", "expected", "actual", "detail")
MOVEMENT_COLUMNS = ("id", "created_at", "type", "currency", "debit", "credit", "amount", "order_id", "reference",
                    "actor")
KPI_COLUMNS = ("metric", "value", "unit")

POINT_ACCOUNTS = ("member:available", "member:held", "program:issued", "program:adjustments", "program:redeemed",
                  "program:expired")
MONEY_ACCOUNTS = tuple(str(a) for a in budget.MoneyAccount)
IN_FLIGHT = ("PENDING", "PROCESSING", "ISSUED")


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
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise MalformedRequest(f"{name} is not a date (2026-11-24) or an ISO 8601 time", parameter=name) from err
    if moment.tzinfo is None or moment.utcoffset() != timedelta(0):
        raise MalformedRequest(f"{name} must be in UTC (end it with Z)", parameter=name)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def period(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    lo, hi = bound(start, "from"), bound(end, "to", end=True)
    if lo and hi and lo >= hi:
        raise MalformedRequest("from must be before to", parameter="from")
    return lo, hi


# ---------------------------------------------------------------- rows


def payout_row(order: dict[str, Any]) -> dict[str, Any]:
    face, fee = budget.cost_of(order)
    funds = order.get("funds") or {}
    provider = order.get("provider") or {}
    return {
        "order_id": order["id"], "created_at": order["created_at"], "status": order["status"], "type": order["type"],
        "item_id": order["item_id"], "item_name": order["item"]["name"], "member_id": order.get("member_id"),
        "quantity": order["quantity"], "face_value": funds.get("face", face), "fee": funds.get("fee", fee),
        "currency": order["currency"], "points": order["points"], "provider": provider.get("name"),
        "provider_reference": provider.get("reference") or order.get("donation_id"),
        "failure_reason": order.get("failure_reason"), "completed_at": order.get("completed_at"),
    }


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
    """Points members hold (available and held by open orders) and what they are worth."""
    available = point_accounts.get("member:available", 0)
    held = point_accounts.get("member:held", 0)
    outstanding = available + held
    return {
        "as_of": as_of,
        "points": {"available": available, "held": held, "outstanding": outstanding},
        "value": {"value": program.money_value(outstanding), "currency": program.currency},
        "point_value": {"points": program.value_points, "value": program.value_minor, "currency": program.currency},
    }


def liability_row(report: dict[str, Any]) -> dict[str, Any]:
    return {"available_points": report["points"]["available"], "held_points": report["points"]["held"],
            "outstanding_points": report["points"]["outstanding"], "value": report["value"]["value"],
            "currency": report["value"]["currency"], "as_of": report["as_of"]}


# ---------------------------------------------------------------- reconciliation


def reconcile(
    day: str,
    orders: list[dict[str, Any]],
    entries: Iterable[dict[str, Any]],
    provider_status,
    donation_of,
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
    points: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    money: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    postings = movements = 0
    for entry in entries:
        oid = entry.get("order_id")
        if "points" in entry:
            postings += 1
            if oid:
                points[oid][entry["type"]] += entry["points"]
        else:
            movements += 1
            if oid:
                sign = 1 if entry["type"] == "draw" else -1
                money[oid][entry["credit"] if sign > 0 else entry["debit"]] += sign * entry["amount"]
    differences: list[dict[str, Any]] = []

    def differ(check: str, order: dict[str, Any] | None, unit: str, expected: Any, actual: Any, detail: str):
        differences.append({"check": check, "order_id": order["id"] if order else None, "unit": unit,
                            "expected": expected, "actual": actual, "detail": detail})

    in_flight = []
    for order in orders:
        status, oid, p = order["status"], order["id"], order["points"]
        if status in IN_FLIGHT:
            in_flight.append(oid)
        got = points.get(oid, {})
        if got.get("hold", 0) != p:
            differ("points_hold", order, "points", p, got.get("hold", 0), "the order's hold posting")
        want = {"capture": p if status in ("COMPLETED", "CANCELED") else 0,
                "release": p if status == "FAILED" else 0,
                "refund": p if status == "CANCELED" else 0}
        for kind, expected in want.items():
            if status in IN_FLIGHT and kind == "capture":
                continue
            if got.get(kind, 0) != expected:
                differ(f"points_{kind}", order, "points", expected, got.get(kind, 0), f"{status} order")
        if budget.draws_budget(order):
            face, fee = budget.cost_of(order)
            paid = money.get(oid, {})
            net_face, net_fee = paid.get("payouts:face", 0), paid.get("payouts:fees", 0)
            if status in ("ISSUED", "COMPLETED") or (status == "CANCELED" and order["type"] == "charity"):
                expected_face, expected_fee = face, fee
            elif status == "PROCESSING" and (net_face or net_fee):
                expected_face, expected_fee = face, fee
            else:
                expected_face = expected_fee = 0
            if net_face != expected_face:
                differ("budget_face", order, order["currency"], expected_face, net_face, f"{status} order")
            if net_fee != expected_fee:
                differ("budget_fee", order, order["currency"], expected_fee, net_fee, f"{status} order")
        if order["type"] == "gift_card" and status not in ("PENDING", "PROCESSING"):
            record = provider_status(order)
            seen = getattr(record, "status", None)
            if status in ("ISSUED", "COMPLETED"):
                reference = (order.get("provider") or {}).get("reference")
                if seen != "ISSUED" or getattr(record, "reference", None) != reference:
                    differ("provider", order, order["currency"], f"ISSUED {reference}",
                           f"{seen} {getattr(record, 'reference', None)}", "the provider's record of the cards")
            elif seen not in (None, "CANCELED"):
                differ("provider", order, order["currency"], "none or CANCELED", seen,
                       f"a {status} order must leave no live card at the provider")
        if order["type"] == "charity" and status in ("ISSUED", "COMPLETED"):
            receipt = donation_of(order)
            face, _ = budget.cost_of(order)
            if receipt is None or receipt.get("amount") != face:
                differ("donation", order, order["currency"], face, (receipt or {}).get("amount"),
                       "the charity receipt")
    report = trial_balance(point_accounts, money_accounts, "")
    for unit in report["units"]:
        if unit["total"] != 0:
            differ("trial_balance", None, unit["unit"], 0, unit["total"], "the unit's accounts do not sum to 0")
    for account in ("member:available", "member:held"):
        if point_accounts.get(account, 0) != member_balances.get(account, 0):
            differ("member_balances", None, "points", point_accounts.get(account, 0), member_balances.get(account, 0),
                   f"{account}: the ledger's total vs the sum of the members' balances")
    for currency, accounts in money_accounts.items():
        for account in ("budget:available", "budget:held"):
            if accounts.get(account, 0) < 0:
                differ("budget_negative", None, currency, ">= 0", accounts[account], account)
    for currency in sorted(set(holds or {}) | {c for c, a in money_accounts.items() if a.get("budget:held")}):
        held, holding = money_accounts.get(currency, {}).get("budget:held", 0), (holds or {}).get(currency, 0)
        if holds is not None and held != holding:
            differ("budget_held", None, currency, held, holding,
                   "budget:held vs the sum of what the batches hold")
    return {
        "date": day,
        "checked": {"orders": len(orders), "postings": postings, "movements": movements},
        "in_flight": in_flight,
        "differences": differences,
    }


def reconcile_day(store, provider, program_id: str, day: str) -> dict[str, Any]:
    """:func:`reconcile` for ``day`` of one program, read from storage and the provider."""
    from treue.store.budget import BudgetStore
    from treue.store.orders import OrderStore
    from treue.store.reports import Reports

    reports, orders = Reports(store), OrderStore(store)
    start, end = bound(day, "date"), bound(day, "date", end=True)
    totals = {"member:available": 0, "member:held": 0}
    for b in reports.balances(program_id):
        totals["member:available"] += b.get("available", 0)
        totals["member:held"] += b.get("held", 0)
    return reconcile(
        day, list(reports.orders(program_id, start, end)), reports.journal(program_id, start),
        lambda o: provider.status(program_id, o["id"]),
        lambda o: orders.get_donation(program_id, o["donation_id"]) if o.get("donation_id") else None,
        store.program_accounts(program_id), BudgetStore(store).accounts(program_id), totals,
        BudgetStore(store).holds(program_id),
    )


# ---------------------------------------------------------------- KPIs


def kpis(start: str | None, end: str | None, entries: Iterable[dict[str, Any]], enrolled: Iterable[str],
         liability_report: dict[str, Any]) -> dict[str, Any]:
    """Programme figures for a period (see the README for each definition)."""
    earned = adjusted_in = adjusted_out = captured = refunded = expired = 0
    active: set[str] = set()
    purchases: dict[str, int] = defaultdict(int)
    paid: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for e in entries:
        if "points" in e:
            t, n = e["type"], e["points"]
            if t == "earn":
                earned += n
                purchases[e["member_id"]] += 1
            elif t == "adjustment":
                if e["credit"] == "member:available":
                    adjusted_in += n
                else:
                    adjusted_out += n
            elif t == "capture":
                captured += n
            elif t == "refund":
                refunded += n
            if e["credit"] == "program:expired":
                expired += n
            if t in ("earn", "hold"):
                active.add(e["member_id"])
        elif e["type"] in ("draw", "return"):
            sign = 1 if e["type"] == "draw" else -1
            field = "fees" if "payouts:fees" in (e["credit"], e["debit"]) else "face_value"
            paid[e["currency"]][field] += sign * e["amount"]
    members = sum(1 for _ in enrolled)
    redeemed = captured - refunded
    buyers = [m for m, n in purchases.items() if n >= 1]
    repeat = [m for m in buyers if purchases[m] >= 2]
    return {
        "from": start, "to": end,
        "members": members,
        "active_members": len(active),
        "active_members_ratio_bps": len(active) * 10_000 // members if members else 0,
        "points_earned": earned,
        "points_adjusted": adjusted_in - adjusted_out,
        "points_redeemed": redeemed,
        "points_expired": expired,
        "redemption_rate_bps": redeemed * 10_000 // earned if earned else 0,
        "repurchase_rate_bps": len(repeat) * 10_000 // len(buyers) if buyers else 0,
        "liability": liability_report["value"],
        "liability_points": liability_report["points"]["outstanding"],
        "payouts": [{"currency": c, "face_value": v["face_value"], "fees": v["fees"]} for c, v in sorted(paid.items())],
    }


def kpi_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{"metric": k, "value": report[k], "unit": u} for k, u in (
        ("members", "members"), ("active_members", "members"), ("active_members_ratio_bps", "bps"),
        ("points_earned", "points"), ("points_adjusted", "points"), ("points_redeemed", "points"),
        ("points_expired", "points"), ("redemption_rate_bps", "bps"), ("repurchase_rate_bps", "bps"),
        ("liability_points", "points"),
    )]
    rows.append({"metric": "liability", "value": report["liability"]["value"], "unit": report["liability"]["currency"]})
    for p in report["payouts"]:
        rows.append({"metric": "payouts_face_value", "value": p["face_value"], "unit": p["currency"]})
        rows.append({"metric": "payouts_fees", "value": p["fees"], "unit": p["currency"]})
    return rows
