"""The reward catalog: gift cards, vouchers and charities, and their prices in a program's points.

Catalog files (``catalog/*.json`` at the repository root) are versioned documents validated by the
models below, at synth, in tests and by ``treue catalog load``. A broken file fails with a message
naming the file, the item and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from treue.core.memberships import effective_tier
from treue.core.programs import Program

if TYPE_CHECKING:
    from treue.logic.ports import TierPort

Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
ItemId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$")]
Minor = Annotated[int, Field(strict=True, gt=0, le=10**9)]
DeliveryMethod = Literal["email", "link", "api"]
ItemType = Literal["gift_card", "voucher", "charity"]


class _Strict(BaseModel):
    # defer_build: the validators are built when an item is first parsed, not by every function importing this
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Fee(_Strict):
    """What the provider charges the program per card: fixed minor units plus basis points of face value."""

    fixed: int = Field(default=0, ge=0, le=10**6, strict=True)
    percent_bps: int = Field(default=0, ge=0, le=5000, strict=True, description="1 bps = 0.01 %")

    def of(self, face_value: int) -> int:
        return self.fixed + (face_value * self.percent_bps + 9999) // 10000


class Expiry(_Strict):
    policy: Literal["never", "months_after_issue"]
    months: int | None = Field(default=None, ge=1, le=120, strict=True)

    @model_validator(mode="after")
    def _months(self) -> Expiry:
        if (self.policy == "months_after_issue") != (self.months is not None):
            raise ValueError("months is given exactly when the policy is months_after_issue")
        return self


class CancelPolicy(_Strict):
    policy: Literal["none", "unredeemed_within_days"]
    days: int | None = Field(default=None, ge=1, le=365, strict=True)

    @model_validator(mode="after")
    def _days(self) -> CancelPolicy:
        if (self.policy == "unredeemed_within_days") != (self.days is not None):
            raise ValueError("days is given exactly when the policy is unredeemed_within_days")
        return self


class _Valued(_Strict):
    """An item bought at fixed denominations, or at any value between min_value and max_value."""

    currency: Currency
    denominations: list[Minor] | None = Field(default=None, min_length=1, max_length=20)
    min_value: Minor | None = None
    max_value: Minor | None = None

    @model_validator(mode="after")
    def _values(self) -> Self:
        fixed = self.denominations is not None
        open_ = self.min_value is not None or self.max_value is not None
        if fixed == open_:
            raise ValueError("give either denominations or min_value and max_value")
        if open_ and (self.min_value is None or self.max_value is None or self.min_value > self.max_value):
            raise ValueError("an open value needs min_value <= max_value")
        if self.denominations is not None and len(set(self.denominations)) != len(self.denominations):
            raise ValueError("denominations repeat")
        return self

    def value_range(self) -> tuple[int, int]:
        """(min_value, max_value) of an item with an open value (no denominations)."""
        if self.min_value is None or self.max_value is None:
            raise ValueError("an item with denominations has no open value")
        return self.min_value, self.max_value

    def accepts(self, face_value: int) -> bool:
        if self.denominations is not None:
            return face_value in self.denominations
        low, high = self.value_range()
        return low <= face_value <= high

    def value_rule(self) -> str:
        if self.denominations is not None:
            return "one of " + ", ".join(str(d) for d in sorted(self.denominations))
        return f"between {self.min_value} and {self.max_value}"


class PointsCash(_Strict):
    """A gift card a member may pay partly in points and partly in cash taken at the partner's till: at
    least ``min_points_bps`` of the points price (after any tier discount) in points, the rest in cash."""

    min_points_bps: int = Field(ge=0, le=9999, strict=True, description="1 bps = 0.01 % of the points price")


class GiftCard(_Valued):
    type: Literal["gift_card"] = "gift_card"
    id: ItemId
    brand: str = Field(min_length=1, max_length=80)
    name: str = Field(min_length=1, max_length=120)
    category: str = Field(pattern=r"^[a-z][a-z_]{1,31}$")
    countries: list[Country] = Field(min_length=1)
    fee: Fee = Fee.model_construct()  # the default fee (none), made without building the validator at import
    expiry: Expiry
    delivery_methods: list[DeliveryMethod] = Field(min_length=1)
    cancel_policy: CancelPolicy
    max_quantity: int = Field(default=10, ge=1, le=100, strict=True)
    description: str = Field(default="", max_length=500)
    points_cash: PointsCash | None = Field(default=None, description="Split payment allowed (absent: points only)")


class Discount(_Strict):
    kind: Literal["fixed", "percent"]
    amount: Minor | None = Field(default=None, description="fixed: minor units off")
    percent: int | None = Field(default=None, ge=1, le=100, strict=True)

    @model_validator(mode="after")
    def _one(self) -> Discount:
        if (self.kind == "fixed") != (self.amount is not None) or (self.kind == "percent") != (
            self.percent is not None
        ):
            raise ValueError("a fixed discount has amount, a percent discount has percent")
        return self


class Voucher(_Strict):
    """A voucher generated by Treue, redeemed at the partner's till."""

    type: Literal["voucher"] = "voucher"
    id: ItemId
    name: str = Field(min_length=1, max_length=120)
    category: str = Field(default="voucher", pattern=r"^[a-z][a-z_]{1,31}$")
    countries: list[Country] = Field(min_length=1)
    currency: Currency
    discount: Discount
    face_value: Minor = Field(description="The value a voucher is priced at (for fixed discounts: the amount)")
    minimum_spend: int = Field(default=0, ge=0, le=10**9, strict=True)
    validity_days: int = Field(ge=1, le=3650, strict=True)
    terms: str = Field(min_length=1, max_length=1000)
    delivery_methods: list[DeliveryMethod] = Field(min_length=1)
    cancel_policy: CancelPolicy
    max_quantity: int = Field(default=10, ge=1, le=100, strict=True)

    @model_validator(mode="after")
    def _fixed_value(self) -> Voucher:
        if self.discount.kind == "fixed" and self.discount.amount != self.face_value:
            raise ValueError("a fixed-discount voucher's face_value is its discount amount")
        return self

    @property
    def denominations(self) -> list[int]:
        return [self.face_value]

    def accepts(self, face_value: int) -> bool:
        return face_value == self.face_value

    def value_rule(self) -> str:
        return f"exactly {self.face_value}"


class Charity(_Valued):
    type: Literal["charity"] = "charity"
    id: ItemId
    name: str = Field(min_length=1, max_length=120)
    registration_id: str = Field(min_length=3, max_length=40)
    country: Country
    cause: str = Field(pattern=r"^[a-z][a-z_]{1,31}$")
    category: str = Field(default="charity", pattern=r"^[a-z][a-z_]{1,31}$")
    description: str = Field(default="", max_length=500)
    delivery_methods: list[DeliveryMethod] = ["email", "link", "api"]
    max_quantity: int = Field(default=1, ge=1, le=1, strict=True)

    @property
    def countries(self) -> list[str]:
        return [self.country]

    @property
    def cancel_policy(self) -> CancelPolicy:
        return CancelPolicy(policy="none")


Item = GiftCard | Voucher | Charity
_MODELS: dict[str, type[GiftCard] | type[Voucher] | type[Charity]] = {
    "gift_card": GiftCard, "voucher": Voucher, "charity": Charity}


class CatalogError(ValueError):
    """A catalog file that cannot be loaded; the message names the file, the item and the field."""


def parse_item(data: dict[str, Any]) -> Item:
    return _MODELS[data["type"]].model_validate(data)


def load_file(path: Path) -> tuple[str, list[Item]]:
    """``(version, items)`` of one catalog file."""
    name = path.name
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CatalogError(f"{name}: not readable JSON ({err})") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list) or not isinstance(doc.get("version"), str):
        raise CatalogError(f"{name}: a catalog file is {{\"version\": \"…\", \"type\": \"…\", \"items\": [...]}}")
    kind = doc.get("type")
    if kind not in _MODELS:
        raise CatalogError(f"{name}: type must be one of {', '.join(_MODELS)}")
    items = []
    for index, raw in enumerate(doc["items"]):
        label = raw.get("id", f"#{index}") if isinstance(raw, dict) else f"#{index}"
        try:
            items.append(_MODELS[kind].model_validate({"type": kind, **raw} if isinstance(raw, dict) else raw))
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(item)"
            reason = str(first["msg"]).removeprefix("Value error, ")
            raise CatalogError(f"{name}: item {label}: field {field}: {reason}") from err
    return doc["version"], items


def load_dir(directory: Path) -> tuple[str, list[Item]]:
    """Every ``*.json`` file of ``directory``; item ids are unique across files."""
    files = sorted(directory.glob("*.json"))
    if not files:
        raise CatalogError(f"{directory}: no catalog files (*.json)")
    versions: list[str] = []
    items: list[Item] = []
    seen: dict[str, str] = {}  # item id → the file that has it
    for path in files:
        version, found = load_file(path)
        versions.append(version)
        for item in found:
            if item.id in seen:
                raise CatalogError(f"{path.name}: item {item.id}: field id: already used in {seen[item.id]}")
            seen[item.id] = path.name
            items.append(item)
    return max(versions), items


# ------------------------------------------------------------------ pricing


class NotPriceable(Exception):
    """The program cannot price an item of this currency (no exchange rate configured)."""


def points_for(program: Program, currency: str, face_value: int) -> int:
    """What ``face_value`` minor units of ``currency`` cost in the program's points, rounded up.

    Face value in program currency (through the program's exchange rate, in millionths, when the
    item is in another currency) × the program's point value × (1 + markup).
    """
    if currency == program.currency:
        rate = 1_000_000
    else:
        found = program.fx_ppm.get(currency)
        if not found:
            raise NotPriceable(f"program {program.id} has no exchange rate for {currency}")
        rate = found
    numerator = face_value * rate * program.value_points * (10_000 + program.markup_bps)
    denominator = 1_000_000 * program.value_minor * 10_000
    return -(-numerator // denominator)


BPS = 10_000


@dataclass(frozen=True)
class TierDiscount:
    """A member's tier benefit ``catalog_discount_bps`` on the points price of catalog items.

    The discount is taken off each item's price in points (``points_for``) and rounded down, so the
    price after it is rounded up, in the programme's favour like the price itself:
    ``after = before - before × bps // 10000``. It never brings an item below 1 point (a redemption
    always holds points: 10000 bps makes every item cost 1 point). Only points change: the face
    value, the provider's fee and the budget are those of the undiscounted item.
    """

    tier: str
    bps: int

    def price(self, points: int) -> int:
        """The price of an item costing ``points`` before the discount."""
        return max(points - points * self.bps // BPS, 1) if points > 0 else points

    def view(self) -> dict[str, Any]:
        return {"tier": self.tier, "bps": self.bps}


def member_discount(store: TierPort, program: Program, member_id: str) -> TierDiscount | None:
    """The catalog discount of the member's tier (their ``TIER`` item, with an active paid membership's tier when
    higher; without one, the lowest level); None when the program has no tiers (nothing is read) or the member's
    level gives no discount."""
    if program.tiers is None:
        return None
    state = store.tier_state(program.id, member_id)  # a paid membership's tier counts while active
    return tier_discount(program, effective_tier(program.tier_config(), state, datetime.now(UTC)))


def tier_discount(program: Program, tier: str | None) -> TierDiscount | None:
    """The catalog discount of level ``tier`` (None or an id no longer configured: the lowest level); None
    without tiers or when that level gives none."""
    config = program.tier_config()
    if config is None:
        return None
    level = config.level(tier)
    return TierDiscount(level.id, level.catalog_discount_bps) if level.catalog_discount_bps else None


def present(item: Item, program: Program, discount: TierDiscount | None = None) -> dict[str, Any] | None:
    """The item as the API shows it, priced in the program's points; None when it cannot be priced.

    With a member's ``discount``, the prices are theirs and each also shows the price before it
    (``points_before``, ``min_points_before``, ``max_points_before``) and the discount (``tier_discount``).
    """
    price = discount.price if discount else (lambda points: points)
    try:
        if item.denominations is not None:
            options: list[dict[str, Any]] = []
            for d in item.denominations:
                before = points_for(program, item.currency, d)
                options.append({"face_value": d, "points": price(before)}
                               | ({"points_before": before} if discount else {}))
            open_value = None
            cheapest = min(o["points"] for o in options)
            cheapest_before = min(o.get("points_before", o["points"]) for o in options)
        else:
            options = []
            low, high = item.value_range()
            low_points, high_points = points_for(program, item.currency, low), points_for(program, item.currency, high)
            open_value = {"min": low, "max": high, "min_points": price(low_points), "max_points": price(high_points)}
            if discount:
                open_value.update(min_points_before=low_points, max_points_before=high_points)
            cheapest, cheapest_before = open_value["min_points"], low_points
    except NotPriceable:
        return None
    out: dict[str, Any] = {
        "id": item.id,
        "type": item.type,
        "name": item.name,
        "category": item.category,
        "countries": list(item.countries),
        "currency": item.currency,
        "denominations": options,
        "open_value": open_value,
        "min_points": cheapest,
        "delivery_methods": list(item.delivery_methods),
        "cancel_policy": item.cancel_policy.model_dump(exclude_none=True),
        "max_quantity": item.max_quantity,
    }
    if discount:
        out.update(min_points_before=cheapest_before, tier_discount=discount.view())
    if isinstance(item, GiftCard):
        out.update(brand=item.brand, fee=item.fee.model_dump(), expiry=item.expiry.model_dump(exclude_none=True),
                   description=item.description)
        if item.points_cash is not None:
            out["points_cash"] = item.points_cash.model_dump()
    elif isinstance(item, Voucher):
        out.update(discount=item.discount.model_dump(exclude_none=True), minimum_spend=item.minimum_spend,
                   validity_days=item.validity_days, terms=item.terms)
    else:
        out.update(registration_id=item.registration_id, cause=item.cause, description=item.description)
    return out


def matches(view: dict[str, Any], *, type: str | None = None, country: str | None = None,
            currency: str | None = None, category: str | None = None, q: str | None = None,
            max_points: int | None = None) -> bool:
    """Whether a presented item passes the list filters."""
    if type and view["type"] != type:
        return False
    if country and country.upper() not in view["countries"]:
        return False
    if currency and view["currency"] != currency.upper():
        return False
    if category and view["category"] != category:
        return False
    if max_points is not None and view["min_points"] > max_points:
        return False
    if q:
        text = " ".join(str(view.get(k, "")) for k in ("name", "brand", "category", "cause", "description")).lower()
        if not all(word in text for word in q.lower().split()):
            return False
    return True
