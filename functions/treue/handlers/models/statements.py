"""The monthly statement's answer (``GET /v1/members/{id}/statement``, ``treue.logic.statements``): loaded by that
route and the OpenAPI document only, not with the Accrual function's purchases, balances and ledger."""

from __future__ import annotations

from pydantic import Field

from treue.handlers.models import Model
from treue.handlers.models.points import LedgerEntry


class StatementEntry(LedgerEntry):
    category: str | None = Field(description="The summary line it counts in: earned | redeemed | expired | "
                                 "reversed | adjusted; null for a move between the member's own accounts (hold, "
                                 "release, activation, repayment)")
    change: int = Field(description="Change of the member's points (available + pending + held - debt)")
    balance: int = Field(description="The member's points after this entry")


class MemberAccounts(Model):
    available: int
    pending: int
    held: int
    debt: int = Field(description="Points the member owes")


class StatementProgram(Model):
    id: str
    name: str


class MonthlyStatement(Model):
    member_id: str
    member_name: str | None = Field(default=None, description="The member's name, when enrolled with one")
    month: str = Field(description="YYYY-MM, a UTC calendar month")
    start: str = Field(description="The month's first moment (UTC)")
    end: str = Field(description="The next month's first moment (UTC), exclusive")
    as_of: str = Field(description="The closing's moment: the month's end, or now for the month in progress")
    program: StatementProgram
    currency: str = Field(description="The program's currency (purchase amounts carry their own)")
    opening: int = Field(description="The member's points when the month began: available + pending + held - debt")
    earned: int = Field(description="Points earned in the month (purchases, bonuses, activities)")
    redeemed: int = Field(description="Points redeemed (captured orders, less refunds)")
    expired: int = Field(description="Points that expired")
    reversed: int = Field(description="Points taken back by returns")
    adjusted: int = Field(description="Net manual corrections")
    closing: int = Field(description="opening + earned - redeemed - expired - reversed + adjusted")
    opening_accounts: MemberAccounts = Field(description="The opening per account")
    closing_accounts: MemberAccounts = Field(description="The closing per account")
    pending_closing: int = Field(description="Of the closing, the points still pending")
    entries: list[StatementEntry] = Field(description="The month's entries, oldest first")
