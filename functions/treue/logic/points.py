"""Point accrual, adjustments and balances (the ledger and statements: treue.logic.statements)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from treue.core import times
from treue.core.ids import new_id
from treue.core.ledger import Account, Posting, PostingType, bonus_account, request_fingerprint
from treue.core.programs import Program
from treue.errors import Contention, CurrencyMismatch, IdempotencyConflict, MemberNotFound, StaleCondition
from treue.logic.members import require_id
from treue.logic.models import Adjustment, Purchase

if TYPE_CHECKING:  # the engine and the rule models are imported on first use (cold start)
    from treue.logic.earning import Breakdown, Member, RuleCounters
    from treue.logic.ports import Item, LedgerPort, RulesAt, SegmentsOf
    from treue.logic.rules import Rule
    from treue.logic.tiers import Standing


ATTEMPTS = 5  # accrual re-evaluates this often when a concurrent payment moved a rule's counters first


def _check_currency(program: Program, purchase: Purchase) -> None:
    if purchase.amount.currency != program.currency:
        raise CurrencyMismatch(
            f"the program earns on {program.currency}, the purchase is in {purchase.amount.currency}",
            expected=program.currency,
        )


def _rules(rules: RulesAt | None, program: Program, purchase: Purchase) -> list[Rule]:
    """The purchase rules in force at the purchase's ``occurred_at`` (none without a rules store)."""
    if rules is None:
        return []
    return [rule for rule in rules(program.id, times.iso(purchase.occurred_at.astimezone(UTC)))
            if rule.trigger == "purchase"]


def _windows(rule: Rule, at: datetime) -> dict[str, int | None]:
    """The member counters a payment of ``rule`` adds one to, with the cap each may reach (None: none):
    always ``life``; the day and period of ``at`` (its own offset, as the engine's weekdays) when limited."""
    limits = rule.limits
    windows: dict[str, int | None] = {"life": limits.per_member_lifetime}
    day = at.date()
    if limits.per_member_per_day is not None:
        windows[f"day:{day.isoformat()}"] = limits.per_member_per_day
    if limits.per_member_per_period is not None:
        period = limits.per_member_per_period.period
        year, week, _ = day.isocalendar()
        key = {"week": f"week:{year}-W{week:02d}", "month": f"month:{day:%Y-%m}", "year": f"year:{day:%Y}"}[period]
        windows[key] = limits.per_member_per_period.times
    return windows


def rule_counters(store: LedgerPort, program_id: str, member_id: str, rules: list[Rule], at: datetime
              ) -> dict[str, RuleCounters]:
    """Each limited rule's counters for the engine (rules without limits need none: nothing is read)."""
    from treue.logic.earning import RuleCounters

    wanted: list[tuple[str, str]] = []
    limited = [rule for rule in rules if _has_limits(rule)]
    for rule in limited:
        wanted += [(rule.id, window) for window, cap in _windows(rule, at).items() if cap is not None]
        if rule.limits.budget_points is not None:
            wanted.append((rule.id, "budget"))
    if not wanted:
        return {}
    found = store.rule_uses(program_id, member_id, wanted)
    out = {}
    for rule in limited:
        counts = {window.split(":")[0]: found.get((rule.id, window), 0) for window in _windows(rule, at)}
        out[rule.id] = RuleCounters(today=counts.get("day", 0),
                                    period=max((v for k, v in counts.items() if k in ("week", "month", "year")),
                                               default=0),
                                    lifetime=counts.get("life", 0), total_points=found.get((rule.id, "budget"), 0))
    return out


def _has_limits(rule: Rule) -> bool:
    limits = rule.limits
    return any(value is not None for value in (limits.per_member_per_day, limits.per_member_per_period,
                                               limits.per_member_lifetime, limits.budget_points))


def asks_segments(rules: list[Rule]) -> bool:
    """Whether any of ``rules`` has a segment condition (only then are the member's segments read)."""
    return any(rule.conditions.segment is not None for rule in rules)


def member_for(store: LedgerPort, program: Program, member_id: str, rules: list[Rule], at: datetime,
               segments_of: SegmentsOf | None, standing: Standing | None = None) -> Member | None:
    """What ``rules`` may ask about the member (``treue.logic.earning.Member``), reading only what they ask:
    the level (``standing`` when the caller read it; else the ``TIER`` item when a rule names a tier) and the
    segments the member is in at ``at`` (``segments_of``, when a rule names a segment). None: nothing asked."""
    from treue.logic.earning import Member

    segments = frozenset[str]()
    if segments_of is not None and asks_segments(rules):
        segments = segments_of(program, member_id, at)
    if standing is None and program.tiers is not None and any(rule.conditions.tier is not None for rule in rules):
        from treue.logic import tiers

        standing = tiers.standing(store, program, member_id, at, months=False)
    if standing is not None:
        return standing.member(segments)
    return Member(segments=segments) if segments else None


def breakdown(store: LedgerPort, program: Program, member_id: str, purchase: Purchase,
              rules: list[Rule], member: Member | None = None) -> Breakdown:
    """What ``purchase`` earns the member now: the base rate, the tier's multiplier (``member``, as the member
    stands before it) and the rules in force at its ``occurred_at``, with the member's counters (simulate and
    accrual both answer this)."""
    from treue.logic.earning import Member, evaluate, purchase_event

    counters = rule_counters(store, program.id, member_id, rules, purchase.occurred_at)
    return evaluate(program, rules, member or Member(), purchase_event(purchase), counters)


def credit_terms(program: Program, occurred_at: datetime) -> dict[str, str]:
    """The expiry date of points earned at ``occurred_at`` (``expires_on``, when the program has an expiry
    setting), as postings' metadata carry it (``treue.logic.lifecycle``)."""
    policy = program.expiry_policy()
    return {"expires_on": policy.expires_on(occurred_at).isoformat()} if policy is not None else {}


def _pending_until(program: Program, purchase: Purchase, now: str) -> datetime | None:
    """When the purchase's points become available, if that is still ahead (None: available now)."""
    if program.pending_days <= 0:
        return None
    until = purchase.occurred_at.astimezone(UTC) + timedelta(days=program.pending_days)
    return until if until > times.parse(now) else None


def _postings(program: Program, member_id: str, purchase: Purchase, found: Breakdown, rules: list[Rule], actor: str,
              now: str) -> list[Posting]:
    """The breakdown as postings to the member's available points (or pending points, within the program's
    ``pending_days``): the base (and tier) points from ``program:issued``, each rule's from its own bonus
    account; each names the rules that paid, and carries the points' expiry date."""
    paid_by = [{"rule_id": line.rule_id, "version": line.version} for line in found.lines if line.points]
    paid = list(dict.fromkeys((p["rule_id"], p["version"]) for p in paid_by))
    metadata = {
        "amount": purchase.amount.model_dump(),
        "occurred_at": purchase.occurred_at.isoformat(),
        "lines": [line.model_dump(mode="json") for line in purchase.lines or ()],
        "rules": [{"rule_id": rule_id, "version": version} for rule_id, version in paid],
        **credit_terms(program, purchase.occurred_at),
    }
    credit = Account.MEMBER_AVAILABLE
    pending_until = _pending_until(program, purchase, now)
    if pending_until is not None:
        credit = Account.MEMBER_PENDING
        metadata["available_at"] = times.iso(pending_until)
    by_rule = found.paid()
    base = found.total - sum(by_rule.values())
    versions = {rule.id: rule.version for rule in rules}
    postings = []
    if base > 0:
        postings.append(Posting(
            id=new_id("pst"), program_id=program.id, member_id=member_id, type=PostingType.EARN,
            debit=Account.PROGRAM_ISSUED, credit=credit, points=base,
            reference=purchase.transaction_id, reason="purchase", actor=actor, created_at=now, metadata=metadata))
    for rule_id, points in by_rule.items():
        postings.append(Posting(
            id=new_id("pst"), program_id=program.id, member_id=member_id, type=PostingType.EARN,
            debit=bonus_account(rule_id), credit=credit, points=points,
            reference=purchase.transaction_id, reason=f"rule {rule_id} v{versions[rule_id]}", actor=actor,
            created_at=now, metadata={**metadata, "rule_id": rule_id, "rule_version": versions[rule_id]}))
    return postings


def rule_counter_uses(found: Breakdown, rules: list[Rule], at: datetime) -> list[tuple[str, str, int, int | None]]:
    """The counters the rules that paid add to, with their caps (the store conditions on them)."""
    by_id = {rule.id: rule for rule in rules}
    uses: list[tuple[str, str, int, int | None]] = []
    for rule_id, points in found.paid().items():
        rule = by_id[rule_id]
        uses += [(rule_id, window, 1, cap) for window, cap in _windows(rule, at).items()]
        if rule.limits.budget_points is not None:
            uses.append((rule_id, "budget", points, rule.limits.budget_points))
    return uses


def accrue(store: LedgerPort, program: Program, member_id: str, purchase: Purchase, actor: str, now: str,
           rules: RulesAt | None = None, segments_of: SegmentsOf | None = None) -> dict[str, Any]:
    """Credit the points a purchase earns, exactly once per ``transaction_id``.

    The points are the breakdown of the base rate and the earning rules in force at the purchase's
    ``occurred_at`` (``treue.logic.earning``); each rule that pays posts from its own bonus account, and its
    counters (times per member per day, period and lifetime; points of its budget) are added in the same
    transaction, conditioned on their caps: when a concurrent purchase reached a cap first, the purchase is
    evaluated again with the new counters (up to ``ATTEMPTS`` times, then ``Contention``).

    Every accrued purchase also adds to the member's counters in the same transaction (``treue.store.tiers``):
    ``BALANCE.purchases`` and ``lifetime_spend``, and its month's ``qualifying_points`` (all it earned), ``spend``,
    ``purchases`` and ``categories`` — a purchase worth 0 points too (it is a purchase: milestones, segments and
    a spend metric count it). With tiers (``treue.logic.tiers``) the purchase earns at the member's level before
    it, and one that reaches a higher level upgrades the member in the same transaction (``tier.upgraded``).

    Answers ``{"points_earned", "breakdown", "balance", "transaction_id", "replayed"}``; a replay answers the
    points and breakdown of the first request and the member's current balance.
    """
    require_id(member_id)
    _check_currency(program, purchase)
    in_force = _rules(rules, program, purchase)
    fingerprint = request_fingerprint({"member_id": member_id, **purchase.fingerprint_payload()})
    counts = {"purchases": 1, "lifetime_spend": purchase.amount.value}
    for _ in range(ATTEMPTS):
        standing = None
        if program.tiers is not None or program.membership_plans:  # tiers or paid plans: the TIER item
            from treue.logic import tiers

            standing = tiers.standing(store, program, member_id, times.parse(now))
        member = member_for(store, program, member_id, in_force, times.parse(now), segments_of, standing)
        found = breakdown(store, program, member_id, purchase, in_force, member)
        postings = _postings(program, member_id, purchase, found, in_force, actor, now)
        result = {"points_earned": found.total, "transaction_id": purchase.transaction_id,
                  "breakdown": [line.to_json() for line in found.lines], "posting_ids": [p.id for p in postings]}
        if postings and postings[0].credit == Account.MEMBER_PENDING:
            result["available_at"] = postings[0].metadata["available_at"]
        uses = rule_counter_uses(found, in_force, purchase.occurred_at)
        extra = store.rule_use_items(program.id, member_id, uses) if uses else []
        extra += _counter_items(store, program, member_id, standing, purchase, found.total, now)
        try:
            replay = store.post(program.id, member_id, ("purchase", purchase.transaction_id, fingerprint), result,
                                postings[0] if postings else None, now, extra, counts=counts, more=postings[1:])
        except StaleCondition:
            continue  # a cap, or a tier threshold, was reached meanwhile: evaluate with the counters as they are now
        break
    else:
        raise Contention("concurrent purchases kept reaching an earning rule's limit first; retry")
    if replay is not None:
        if replay.fingerprint != fingerprint:
            raise IdempotencyConflict(
                f"transaction {purchase.transaction_id} was already accrued with a different payload",
                transaction_id=purchase.transaction_id,
            )
        result = {"points_earned": replay.result["points_earned"], "transaction_id": purchase.transaction_id,
                  "breakdown": replay.result.get("breakdown") or _base_only(replay.result["points_earned"])}
    result.pop("posting_ids", None)
    if replay is not None and replay.result.get("available_at"):
        result["available_at"] = replay.result["available_at"]
    found_balance = balance(store, program.id, member_id, program.expiry_policy() is not None)
    if found_balance["debt"] > 0 and found_balance["available"] > 0:  # new points pay back what is owed first
        from treue.logic.lifecycle import repay

        if repay(store, program.id, member_id, f"purchase:{purchase.transaction_id}", now, actor):
            found_balance = balance(store, program.id, member_id, program.expiry_policy() is not None)
    return {**result, "replayed": replay is not None, "balance": found_balance}


def _counter_items(store: LedgerPort, program: Program, member_id: str, standing: Standing | None,
                   purchase: Purchase, points: int, now: str) -> list[Item]:
    """The purchase's month counters and, with tiers, its upgrade or the condition that it upgrades nothing."""
    if standing is None:
        month = purchase.occurred_at.astimezone(UTC).strftime("%Y-%m")
        categories = [line.category for line in purchase.lines or () if line.category]
        return [store.month_item(program.id, member_id, month, {
            "qualifying_points": points, "spend": purchase.amount.value, "purchases": 1}, categories)]
    from treue.logic import tiers

    return tiers.purchase_items(store, program.id, member_id, standing, purchase, points, now)[0]


def _base_only(points: int) -> list[dict[str, Any]]:
    """The breakdown of a purchase accrued before breakdowns were kept: all of it at the base rate."""
    return [{"rule_id": "base", "version": 0, "points": points}]


def simulate(store: LedgerPort, program: Program, member_id: str, purchase: Purchase,
             rules: RulesAt | None = None, segments_of: SegmentsOf | None = None) -> dict[str, Any]:
    """The breakdown ``purchase`` would earn the member now, without posting anything (the till's "you will
    earn"): the same evaluation as ``accrue``, with the member's counters as they are."""
    require_id(member_id)
    _check_currency(program, purchase)
    if store.get_balance(program.id, member_id) is None:
        raise MemberNotFound(f"member {member_id} does not exist")
    in_force = _rules(rules, program, purchase)
    standing = None
    if program.tiers is not None or program.membership_plans:  # the member's level (and plan) as it is
        from treue.logic import tiers

        standing = tiers.standing(store, program, member_id, datetime.now(UTC), months=False)
    member = member_for(store, program, member_id, in_force, datetime.now(UTC), segments_of, standing)
    found = breakdown(store, program, member_id, purchase, in_force, member)
    return {"member_id": member_id, "transaction_id": purchase.transaction_id, "points_earned": found.total,
            "breakdown": [line.to_json() for line in found.lines]}


def adjust(
    store: LedgerPort, program: Program, member_id: str, request: Adjustment, actor: str, now: str
) -> dict[str, Any]:
    """A manual correction as its own posting (never an edit), idempotent by ``reference``."""
    require_id(member_id)
    if request.points > 0:
        debit, credit = Account.PROGRAM_ADJUSTMENTS, Account.MEMBER_AVAILABLE
    else:
        debit, credit = Account.MEMBER_AVAILABLE, Account.PROGRAM_ADJUSTMENTS
    posting = Posting(
        id=new_id("pst"),
        program_id=program.id,
        member_id=member_id,
        type=PostingType.ADJUSTMENT,
        debit=debit,
        credit=credit,
        points=abs(request.points),
        reference=request.reference,
        reason=request.reason,
        actor=actor,
        created_at=now,
        metadata=credit_terms(program, times.parse(now)) if request.points > 0 else {},
    )
    fingerprint = request_fingerprint({"member_id": member_id, **request.model_dump()})
    result = {"points": request.points, "reference": request.reference, "entry_id": posting.id}
    replay = store.post(program.id, member_id, ("adjustment", request.reference, fingerprint), result, posting, now)
    if replay is not None:
        if replay.fingerprint != fingerprint:
            raise IdempotencyConflict(
                f"adjustment {request.reference} was already made with a different payload",
                reference=request.reference,
            )
        result = {k: replay.result[k] for k in ("points", "reference", "entry_id")}
    found_balance = balance(store, program.id, member_id, program.expiry_policy() is not None)
    if request.points > 0 and found_balance["debt"] > 0 and found_balance["available"] > 0:
        from treue.logic.lifecycle import repay

        if repay(store, program.id, member_id, f"adjustment:{request.reference}", now, actor):
            found_balance = balance(store, program.id, member_id, program.expiry_policy() is not None)
    return {**result, "replayed": replay is not None, "balance": found_balance}


def balance(store: LedgerPort, program_id: str, member_id: str, expires: bool = True) -> dict[str, Any]:
    """The member's balance as the API shows it (``treue.logic.lifecycle.balance_view``; ``expires``: the program
    has an expiry setting); MemberNotFound."""
    from treue.logic.lifecycle import balance_view

    found = balance_view(store, program_id, require_id(member_id), expires=expires)
    if found is None:
        raise MemberNotFound(f"member {member_id} does not exist")
    return found

