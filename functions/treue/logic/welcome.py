"""The welcome bonus (issue 16 item 8): what the enrollment rules in force pay a new member, computed for the
enrollment's own transaction (``treue.logic.members.enroll`` writes it with the member).

Loaded only when a program has enrollment rules in force (the Enrollment function's cold start stays without
the earning engine otherwise). Each rule that pays posts from its own bonus account to the member's available
points, as ``treue.logic.awards`` posts any award (``awards.postings``); its counters (a budget, limits) are
added in the same transaction, conditioned on their caps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from treue.core import times
from treue.logic.awards import postings
from treue.logic.earning import Member, MemberEvent, evaluate
from treue.logic.points import rule_counter_uses, rule_counters

if TYPE_CHECKING:
    from treue.core.programs import Program
    from treue.logic.members import WelcomeBonus
    from treue.logic.ports import LedgerPort
    from treue.logic.rules import Rule


def bonus(store: LedgerPort, program: Program, rules: list[Rule], actor: str, now: str) -> WelcomeBonus:
    """The welcome of a member enrolled ``now`` by ``rules`` (the enrollment rules in force): for a member id,
    its postings (reference ``enrollment:<member id>``), the counters' transaction items and the answer
    ``{points_earned, breakdown}``; the budgets are read each time it is called."""
    event = MemberEvent(trigger="enrollment", occurred_at=times.parse(now))

    def pay(member_id: str) -> tuple[list[Any], list[dict[str, Any]] | None, dict[str, Any]]:
        counters = rule_counters(store, program.id, member_id, rules, event.occurred_at)
        found = evaluate(program, rules, Member(), event, counters)
        paid = postings(program, member_id, event, found, rules, f"enrollment:{member_id}", actor, now)
        uses = rule_counter_uses(found, rules, event.occurred_at)
        extra = store.rule_use_items(program.id, member_id, uses) if uses else None
        return paid, extra, {"points_earned": found.total, "breakdown": [line.to_json() for line in found.lines]}

    return pay
