"""What a return reverses of the points its purchase earned (pure; no AWS).

A purchase's accrual kept its breakdown: lines ``{rule_id, version, points, line_index?}``, each a *component*.
A component with a ``line_index`` was earned by that line of the purchase; one without it by the purchase as a
whole (the base points of the amount no line covers, a rule's fixed bonus for the purchase).

The returns of one purchase move it towards *returned in full*, recorded as ``Returned``: the amount returned so
far and, per purchase line, the fraction of it returned (exact fractions). A component's cumulative share is its
line's fraction (with a ``line_index``) or the returned amount over the purchase amount (without). A return
reverses, of each component, ``floor(earned × share after) − floor(earned × share before)``: so the returns of
one purchase together never reverse more than it earned, a share of 1 reverses exactly all of it, and every
return reverses a whole number of points, whatever the order and size of the returns.

* A return by ``lines`` (``{sku, quantity, amount}``, matched by sku to the purchase's lines, the first line of
  that sku with quantity left first) adds ``quantity / line quantity`` to each matched line's fraction and its
  ``amount`` to the amount returned.
* A return by ``amount`` returns that part of what is left of the purchase: every line's fraction moves by the
  same part of what is left of it (``(1 − fraction) × amount / amount left``), so the first return of half the
  amount reverses half of every component, and returning all that is left reverses all that is left.

More than is left (an amount above the amount left, a quantity above a line's quantity left, a sku the purchase
does not have) raises ``TooMuch`` naming what is left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class Component:
    """What one breakdown line of the purchase earned: ``rule_id`` (``base``, ``tier:<id>`` or a rule's id)."""

    rule_id: str
    version: int
    points: int
    line_index: int | None = None


@dataclass(frozen=True)
class PurchaseLine:
    sku: str
    quantity: int
    amount: int


@dataclass(frozen=True)
class Returned:
    """How much of a purchase its returns took back so far: the amount and each line's fraction."""

    amount: int = 0
    lines: tuple[Fraction, ...] = ()
    whole: Fraction = Fraction(0)  # the share of the purchase as a whole: amount / purchase amount (if not 0)

    def fraction(self, index: int) -> Fraction:
        return self.lines[index] if index < len(self.lines) else Fraction(0)

    def to_json(self) -> dict[str, Any]:
        return {"amount": self.amount, "lines": [_text(f) for f in self.lines], "whole": _text(self.whole)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Returned:
        if not data:
            return cls()
        return cls(int(data.get("amount", 0)), tuple(Fraction(str(f)) for f in data.get("lines") or ()),
                   Fraction(str(data.get("whole", "0"))))


def _text(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


@dataclass(frozen=True)
class ReturnLine:
    sku: str
    quantity: int
    amount: int


class TooMuch(ValueError):
    """The return asks for more than is left of the purchase; ``left`` says what is (``left_of``)."""

    def __init__(self, detail: str, left: dict[str, Any]) -> None:
        super().__init__(detail)
        self.left = left


@dataclass(frozen=True)
class Reversal:
    """A return's outcome: the purchase's state after it and the points it reverses per component."""

    after: Returned
    reversed: tuple[tuple[Component, int], ...]

    @property
    def points(self) -> int:
        return sum(points for _, points in self.reversed)

    def complete(self, amount: int, lines: Sequence[PurchaseLine]) -> bool:
        """Whether the purchase is returned in full after this return."""
        return self.after.whole >= 1 and all(self.after.fraction(i) >= 1 for i in range(len(lines)))


def left_of(amount: int, lines: Sequence[PurchaseLine], before: Returned) -> dict[str, Any]:
    """What is left of the purchase to return: its amount and each line's quantity (a fraction of a unit when
    an amount return took part of the line; shown rounded to 4 places)."""
    out: dict[str, Any] = {"amount": amount - before.amount}
    if lines:
        out["lines"] = [{"sku": line.sku, "quantity": _number(line.quantity * (1 - before.fraction(i)))}
                        for i, line in enumerate(lines)]
    return out


def _number(value: Fraction) -> int | float:
    return value.numerator if value.denominator == 1 else round(float(value), 4)


def _share(component: Component, returned: Returned) -> Fraction:
    return returned.whole if component.line_index is None else returned.fraction(component.line_index)


def _floor(points: int, share: Fraction) -> int:
    return points * share.numerator // share.denominator


def split(earned: Sequence[Component], amount: int, lines: Sequence[PurchaseLine], before: Returned,
          *, by_amount: int | None = None, by_lines: Sequence[ReturnLine] = ()) -> Reversal:
    """The points a return reverses of a purchase (``amount`` and ``lines`` as accrued; ``earned`` its breakdown)
    that its earlier returns brought to ``before``: by ``by_amount`` (minor units) or by ``by_lines``."""
    fractions = [before.fraction(i) for i in range(len(lines))]
    left_amount = amount - before.amount
    if by_amount is not None:
        if by_amount > left_amount:
            raise TooMuch(f"the return's amount {by_amount} is more than the {left_amount} left of the purchase",
                          left_of(amount, lines, before))
        part = Fraction(by_amount, left_amount) if left_amount > 0 else Fraction(1)  # a purchase of 0: all of it
        fractions = [f + (1 - f) * part for f in fractions]
        whole = before.whole + (1 - before.whole) * part
        returned_amount = by_amount
    else:
        returned_amount = 0
        for asked in by_lines:
            matching = [i for i, line in enumerate(lines) if line.sku == asked.sku]
            if not matching:
                raise TooMuch(f"the purchase has no line with sku {asked.sku[:64]}", left_of(amount, lines, before))
            units = Fraction(asked.quantity)
            for i in matching:
                room = lines[i].quantity * (1 - fractions[i])
                take = min(room, units)
                fractions[i] += take / lines[i].quantity
                units -= take
                if units == 0:
                    break
            if units > 0:
                raise TooMuch(f"the return's quantity {asked.quantity} of sku {asked.sku[:64]} is more than is left "
                              "of the purchase", left_of(amount, lines, before))
            returned_amount += asked.amount
        if returned_amount > left_amount:
            raise TooMuch(f"the return's lines add up to {returned_amount}, more than the {left_amount} left of the "
                          "purchase", left_of(amount, lines, before))
        if amount > 0:
            whole = Fraction(before.amount + returned_amount, amount)
        else:  # a purchase of 0 is returned as a whole with its last line
            whole = Fraction(1) if all(f >= 1 for f in fractions) else before.whole
    after = Returned(before.amount + returned_amount, tuple(fractions), whole)
    out = []
    for component in earned:
        if component.points <= 0:
            continue
        before_points = _floor(component.points, _share(component, before))
        out.append((component, _floor(component.points, _share(component, after)) - before_points))
    return Reversal(after, tuple(out))
