"""Returns (issue 17 item 3): a returned purchase, or part of it, gives back the points it earned.

``POST /v1/members/{id}/returns`` and the accrual queue's ``return`` message. The purchase is found by its
``transaction_id`` (its accrual's idempotency guard: the breakdown, and the first earn posting with the amount,
lines, ``occurred_at``, ``expires_on`` and, pending, ``available_at``); what the return reverses of each breakdown
line is ``treue.core.returns.split`` (per returned line, the purchase's bonuses by the returned amount, cumulative
rounding); what the purchase's returns took so far is its ``RETURNED#`` item (``treue.store.returns``).

Where the points go back to: one ``reversal`` posting per account they came from (``program:issued`` for the base
and tier points, ``program:bonus:<rule id>`` for a rule's), taken from where they are now:

* still pending (the purchase's pending item is there): from ``member:pending``, out of the pending item; the
  member's ``available`` points are never touched;
* else from ``member:available``, and what available cannot cover from ``member:debt`` (the member owes it: the
  balance's ``debt`` grows, repaid first from the next earnings); never a negative ``available``, and points held
  for orders stay held.

Reversals from available carry the earn posting's ``expires_on``, so the store takes them out of that expiry
bucket. The same transaction writes the guard (``return_id`` is the idempotency key), the ``RETURNED#`` item
(conditioned on the count read: concurrent returns of one purchase evaluate again), the purchase month's
counters less what the return reversed and its amount (``spend``; ``purchases`` by one when the purchase is
returned in full), ``BALANCE.lifetime_spend`` less the amount, ``points.reversed`` and, with tiers, the
downgrade of a member whose tier was reached in the current qualifying period and is no longer reached with the
corrected figures (``tier.downgraded``, ``reason: return``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field, field_validator, model_validator

from treue.core import returns as split_rules
from treue.core import tiers as rules
from treue.core import times
from treue.core.ids import new_id
from treue.core.ledger import Account, Posting, PostingType, bonus_account, request_fingerprint
from treue.core.statuses import EventType
from treue.errors import (
    Contention,
    CurrencyMismatch,
    IdempotencyConflict,
    InsufficientPoints,
    ReturnExceedsPurchase,
    StaleCondition,
    TransactionNotFound,
)
from treue.logic import points as ledger
from treue.logic.members import require_id
from treue.logic.models import Money, Reference, Strict

if TYPE_CHECKING:
    from treue.core.programs import Program
    from treue.logic.ports import Item, LedgerPort, Record

    class ReturnsPort(LedgerPort, Protocol):
        """The ledger with what a return reads and writes besides (``treue.store.returns.ReturnsStore``, the
        pending items of ``treue.store.ledger``): ``treue.store.dynamodb.Store``."""

        def replay_of(self, program_id: str, kind: str, reference: str) -> Any: ...

        def returned(self, program_id: str, member_id: str, transaction_id: str) -> Record | None: ...

        def returned_put(self, program_id: str, member_id: str, transaction_id: str, read: Record | None,
                         state: Record, points: int, return_id: str, now: str) -> Item: ...

        def purchase_pending(self, program_id: str, member_id: str, available_at: str, posting_id: str
                             ) -> Record | None: ...

        def pending_cancel_item(self, program_id: str, member_id: str, sk: str, read: int, points: int
                                ) -> Item: ...

ATTEMPTS = 5  # a return evaluates again this often when a concurrent return or spend moved what it read
FUTURE_SKEW = timedelta(minutes=5)


class ReturnedLine(Strict):
    sku: str = Field(min_length=1, max_length=64, description="The sku of the purchase line returned")
    quantity: int = Field(default=1, ge=1, le=100_000, strict=True, description="Units returned of the line")
    amount: Money = Field(description="What the partner refunds for them")


class ReturnRequest(Strict):
    """A return of a purchase the member made, or part of it: by ``lines`` or by ``amount`` (one of them)."""

    return_id: Reference = Field(description="Your id of the return; sending it again is a replay")
    transaction_id: Reference = Field(description="The purchase's transaction_id")
    lines: list[ReturnedLine] | None = Field(default=None, min_length=1, max_length=500,
                                             description="The lines returned, matched by sku to the purchase's")
    amount: Money | None = Field(default=None, description="The amount returned (without lines): every part of "
                                 "the purchase in proportion")
    occurred_at: datetime = Field(description="When the goods came back, with a time zone; not in the future")

    @field_validator("occurred_at")
    @classmethod
    def _past(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-11-24T10:00:00Z")
        if value > datetime.now(UTC) + FUTURE_SKEW:
            raise ValueError("lies in the future")
        return value

    @model_validator(mode="after")
    def _lines_or_amount(self) -> ReturnRequest:
        if (self.lines is None) == (self.amount is None):
            raise ValueError("give either lines or amount")
        return self

    def value(self) -> int:
        """The amount returned, in minor units."""
        if self.amount is not None:
            return self.amount.value
        return sum(line.amount.value for line in self.lines or ())

    def currencies(self) -> set[str]:
        if self.amount is not None:
            return {self.amount.currency}
        return {line.amount.currency for line in self.lines or ()}


def _account(rule_id: str) -> str:
    """The account a breakdown line's points came from (base, tier and a paid membership's multiplier are all
    paid from ``program:issued``: ``treue.logic.points``)."""
    if rule_id == "base" or rule_id.startswith(("tier:", "membership:")):
        return str(Account.PROGRAM_ISSUED)
    return bonus_account(rule_id)


def _components(accrual: Record) -> list[split_rules.Component]:
    lines = accrual.get("breakdown") or [{"rule_id": "base", "version": 0, "points": accrual["points_earned"]}]
    return [split_rules.Component(line["rule_id"], int(line.get("version", 0)), int(line["points"]),
                                  line.get("line_index")) for line in lines if int(line.get("points", 0)) > 0]


def _purchase(entry: Record | None) -> tuple[int, list[split_rules.PurchaseLine], Record]:
    """The purchase's amount and lines as its first earn posting kept them, and that posting's metadata."""
    meta = (entry or {}).get("metadata") or {}
    amount = int((meta.get("amount") or {}).get("value", 0))
    lines = [split_rules.PurchaseLine(str(line["sku"]), int(line.get("quantity", 1)),
                                      int((line.get("amount") or {}).get("value", 0)))
             for line in meta.get("lines") or ()]
    return amount, lines, meta


def _money(value: int, currency: str) -> dict[str, Any]:
    return {"value": value, "currency": currency}


def _postings(program: Program, member_id: str, request: ReturnRequest, by_account: dict[str, int],
              sources: list[tuple[str, int]], meta: Record, actor: str, now: str) -> list[Posting]:
    """The reversal postings: each account's points, taken from ``sources`` (account, points) in order."""
    base_meta: dict[str, Any] = {"transaction_id": request.transaction_id, "return_id": request.return_id,
                                 "amount": _money(request.value(), program.currency),
                                 "occurred_at": request.occurred_at.isoformat()}
    postings = []
    left = [(source, points) for source, points in sources if points > 0]
    for account, points in by_account.items():
        while points > 0:
            source, room = left[0]
            take = min(points, room)
            metadata = dict(base_meta)
            if account.startswith("program:bonus:"):
                metadata["rule_id"] = account.removeprefix("program:bonus:")
            if meta.get("expires_on") and source != Account.MEMBER_PENDING:
                metadata["expires_on"] = meta["expires_on"]
            postings.append(Posting(
                id=new_id("pst"), program_id=program.id, member_id=member_id, type=PostingType.REVERSAL,
                debit=source, credit=account, points=take, reference=request.return_id,
                reason=f"return of {request.transaction_id}"[:500], actor=actor, created_at=now, metadata=metadata))
            points -= take
            left[0] = (source, room - take)
            if room == take:
                left.pop(0)
    return postings


def record_return(store: ReturnsPort, program: Program, member_id: str, request: ReturnRequest, actor: str, now: str
                  ) -> dict[str, Any]:
    """Reverse the points the returned part of a purchase earned, exactly once per ``return_id`` (the module's
    docstring). Answers ``{return_id, transaction_id, points_reversed, reversed, accounts, taken_from, left,
    replayed, balance}``; a replay answers the first request's outcome with what is left of the purchase and the
    member's balance as they are now."""
    require_id(member_id)
    if request.currencies() != {program.currency}:
        raise CurrencyMismatch(f"the program earns on {program.currency}, the return is in "
                               f"{', '.join(sorted(request.currencies()))}", expected=program.currency)
    fingerprint = request_fingerprint({"member_id": member_id, **request.model_dump(mode="json")})
    earlier = store.replay_of(program.id, "return", request.return_id)
    if earlier is not None:
        return _replayed(store, program, member_id, request, fingerprint, earlier)
    accrual = store.replay_of(program.id, "purchase", request.transaction_id)
    if accrual is None or accrual.result.get("member_id") != member_id:
        raise TransactionNotFound(f"member {member_id} has no purchase {request.transaction_id}",
                                  transaction_id=request.transaction_id)
    posting_id = accrual.result.get("posting_id")
    entry = store.get_entry(program.id, member_id, posting_id) if posting_id else None
    amount, lines, meta = _purchase(entry)
    components = _components(accrual.result)
    result: dict[str, Any] = {}
    for _ in range(ATTEMPTS):
        read = store.returned(program.id, member_id, request.transaction_id)
        before = split_rules.Returned.from_json((read or {}).get("state"))
        if entry is None:  # a purchase that earned nothing: nothing to reverse or to count against
            outcome = split_rules.Reversal(before, ())
            left: dict[str, Any] | None = None
        else:
            try:
                outcome = split_rules.split(
                    components, amount, lines, before,
                    by_amount=request.amount.value if request.amount is not None else None,
                    by_lines=[split_rules.ReturnLine(line.sku, line.quantity, line.amount.value)
                              for line in request.lines or ()])
            except split_rules.TooMuch as err:
                raise ReturnExceedsPurchase(str(err), transaction_id=request.transaction_id,
                                            left=_left(err.left, program.currency)) from err
            left = _left(split_rules.left_of(amount, lines, outcome.after), program.currency)
        by_account: dict[str, int] = {}
        for component, points in outcome.reversed:
            if points:
                account = _account(component.rule_id)
                by_account[account] = by_account.get(account, 0) + points
        total = outcome.points
        balance = store.get_balance(program.id, member_id) or {}
        extra: list[Item] = []
        pending = _pending(store, program.id, member_id, meta, posting_id) if total else None
        if pending is not None:
            sources = [(str(Account.MEMBER_PENDING), total)]
            extra.append(store.pending_cancel_item(program.id, member_id, pending["sk"], int(pending["points"]),
                                                   total))
            taken = {"pending": total, "available": 0, "debt": 0}
        else:
            available = min(total, max(int(balance.get("available", 0)), 0))
            sources = [(str(Account.MEMBER_AVAILABLE), available), (str(Account.MEMBER_DEBT), total - available)]
            taken = {"pending": 0, "available": available, "debt": total - available}
        postings = _postings(program, member_id, request, by_account, sources, meta, actor, now)
        result = {
            "return_id": request.return_id, "transaction_id": request.transaction_id, "points_reversed": total,
            "reversed": [{"rule_id": c.rule_id, "version": c.version, "points": p,
                          **({"line_index": c.line_index} if c.line_index is not None else {})}
                         for c, p in outcome.reversed if p],
            "accounts": [{"account": account, "points": points} for account, points in by_account.items()],
            "taken_from": taken,
        }
        extra.append(store.returned_put(program.id, member_id, request.transaction_id, read,
                                        outcome.after.to_json(), total, request.return_id, now))
        if entry is not None:
            extra += _counter_items(store, program, member_id, meta, request, outcome, total, amount, lines, now)
        extra.append(store.event_item(program.id, str(EventType.POINTS_REVERSED), {
            "member_id": member_id, "return_id": request.return_id, "transaction_id": request.transaction_id,
            "points": total, "amount": _money(request.value(), program.currency), "taken_from": taken,
            "posting_id": postings[0].id if postings else None}, now))
        counts = {"lifetime_spend": -request.value()} if entry is not None and request.value() else None
        try:
            replay = store.post(program.id, member_id, ("return", request.return_id, fingerprint), result,
                                 postings[0] if postings else None, now, extra, more=postings[1:], counts=counts)
        except (StaleCondition, InsufficientPoints):
            continue  # another return of the purchase, an activation or a spend came first: evaluate again
        break
    else:
        raise Contention("concurrent changes kept moving the purchase's returns or the member's points; retry")
    if replay is not None:  # the same return_id, written between our read and our write
        return _replayed(store, program, member_id, request, fingerprint, replay)
    return {**result, "left": left, "replayed": False,
            "balance": ledger.balance(store, program.id, member_id, program.expiry_policy() is not None)}


def _replayed(store: ReturnsPort, program: Program, member_id: str, request: ReturnRequest, fingerprint: str,
              replay: Any) -> dict[str, Any]:
    if replay.fingerprint != fingerprint:
        raise IdempotencyConflict(f"return {request.return_id} was already recorded with a different payload",
                                  return_id=request.return_id)
    kept = {k: v for k, v in replay.result.items() if k not in ("member_id", "posting_id")}
    return {**kept, "left": _left_now(store, program, member_id, request.transaction_id), "replayed": True,
            "balance": ledger.balance(store, program.id, member_id, program.expiry_policy() is not None)}


def _left_now(store: ReturnsPort, program: Program, member_id: str, transaction_id: str) -> dict[str, Any] | None:
    """What is left of the purchase to return now (a replay's answer: the guard keeps no fractions)."""
    accrual = store.replay_of(program.id, "purchase", transaction_id)
    posting_id = accrual.result.get("posting_id") if accrual is not None else None
    entry = store.get_entry(program.id, member_id, posting_id) if posting_id else None
    if entry is None:
        return None
    amount, lines, _ = _purchase(entry)
    state = (store.returned(program.id, member_id, transaction_id) or {}).get("state")
    return _left(split_rules.left_of(amount, lines, split_rules.Returned.from_json(state)), program.currency)


def _left(left: dict[str, Any], currency: str) -> dict[str, Any]:
    return {**left, "amount": _money(int(left.get("amount", 0)), currency)}


def _pending(store: ReturnsPort, program_id: str, member_id: str, meta: Record, posting_id: str | None
             ) -> Record | None:
    """The purchase's pending item while its points are pending (None: available, or never pending)."""
    at = meta.get("available_at")
    if not at or not posting_id:
        return None
    found = store.purchase_pending(program_id, member_id, str(at), posting_id)
    return found if found and int(found.get("points", 0)) > 0 else None


def _counter_items(store: ReturnsPort, program: Program, member_id: str, meta: Record, request: ReturnRequest,
                   outcome: split_rules.Reversal, points: int, amount: int, lines: Sequence[split_rules.PurchaseLine],
                   now: str) -> list[Item]:
    """The purchase month's counters less the return (and, with tiers, the downgrade it causes)."""
    occurred = times.parse(str(meta.get("occurred_at") or now)).astimezone(UTC)
    month = occurred.strftime("%Y-%m")
    adds = {"qualifying_points": -points, "spend": -request.value()}
    if outcome.complete(amount, lines):
        adds["purchases"] = -1
    items = [store.month_item(program.id, member_id, month, adds, [])]
    if program.tiers is not None:
        items += _downgrade(store, program, member_id, occurred, points, request, now)
    return items


def _downgrade(store: ReturnsPort, program: Program, member_id: str, occurred: datetime, points: int,
               request: ReturnRequest, now: str) -> list[Item]:
    """With tiers: a member whose level was reached in the current qualifying window and whom the window's
    corrected value no longer takes there goes down to the level it reaches, at once (``tier.downgraded`` with
    ``reason: return``); a level reached before the window is the review's to judge."""
    config = program.tier_config()
    state = store.tier_state(program.id, member_id)
    if config is None or not state:
        return []
    level = config.level(state["tier"])
    at = times.parse(now)
    start, end = config.window(at)
    if not state.get("since") or times.parse(state["since"]) < start or not start <= occurred < end:
        return []
    found = store.month_counters(program.id, member_id, rules.month_key(start),
                                 rules.month_key(end - timedelta(microseconds=1)))
    months = {month: int(c.get(config.counter, 0)) for month, c in found.items()}
    value = rules.value(months, start, end) - config.qualifying(points, request.value())
    reached = config.reached(value)
    if config.rank(reached.id) >= config.rank(level.id):
        return []
    until = times.iso(config.first_until(at)) if config.rank(reached.id) > 0 else None
    event = {"member_id": member_id, "from": level.id, "to": reached.id, "since": now, "until": until,
             "metric": config.metric, "value": value, "reason": "return", "return_id": request.return_id,
             "transaction_id": request.transaction_id}
    return list(store.tier_change_items(program.id, member_id, int(state["version"]),
                                        {"tier": reached.id, "since": now, "until": until},
                                        EventType.TIER_DOWNGRADED, event, now))
