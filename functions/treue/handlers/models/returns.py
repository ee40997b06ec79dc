"""Returns: ``POST /v1/members/{id}/returns``'s answer (loaded with the first return: nothing at cold start)."""

from __future__ import annotations

from pydantic import Field

from treue.handlers.models import Model
from treue.handlers.models.points import Balance
from treue.logic.models import Money


class ReversedLine(Model):
    rule_id: str = Field(description='The purchase\'s breakdown line: "base", "tier:<id>" or an earning rule\'s id')
    version: int
    points: int = Field(description="What this return reversed of the line's points")
    line_index: int | None = Field(default=None, description="The purchase line (from 0); absent: the part of the "
                                   "amount no line covers, or a bonus for the purchase as a whole")


class AccountReversed(Model):
    account: str = Field(description="Where the points went back to: program:issued (base and tier points) or "
                         "program:bonus:<rule id>")
    points: int


class TakenFrom(Model):
    pending: int = Field(description="Pending points canceled (the purchase's points were still pending)")
    available: int = Field(description="Taken from the member's available points")
    debt: int = Field(description="What available could not cover: the member owes it (balance debt)")


class LeftLine(Model):
    sku: str
    quantity: int | float = Field(description="Units of the line left to return (a fraction after an amount "
                                  "return took part of the line)")


class Left(Model):
    amount: Money = Field(description="The purchase amount left to return")
    lines: list[LeftLine] | None = Field(default=None, description="Each purchase line's quantity left")


class ReturnResult(Model):
    return_id: str
    transaction_id: str
    points_reversed: int = Field(description="The points this return took back (the sum of reversed)")
    reversed: list[ReversedLine] = Field(default_factory=list, description="Per breakdown line of the purchase")
    accounts: list[AccountReversed] = Field(default_factory=list, description="Per account the points came from")
    taken_from: TakenFrom
    left: Left | None = Field(default=None, description="What is left of the purchase to return (absent for a "
                              "purchase that earned nothing)")
    replayed: bool = Field(description="True when this return_id was already recorded")
    balance: Balance
