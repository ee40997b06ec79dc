"""Vouchers at the till: validate, redeem exactly once, void.

A code is found by its keyed hash; a code with a wrong check character is refused before any
lookup. Redeeming is one conditional write (ACTIVE → REDEEMED, not expired), so under any
concurrency exactly one till wins; the same till reference again answers the same redemption.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from treue.core.statuses import VoucherState
from treue.errors import ValidationFailed, VoucherNotFound, VoucherNotRedeemable
from treue.logic import codes
from treue.logic.models import VoucherRedemption

if TYPE_CHECKING:
    from treue.core.issued_records import Voucher
    from treue.logic.ports import OrdersPort, VaultPort


def _find(orders: OrdersPort, vault: VaultPort, program_id: str, code: str) -> tuple[str, Voucher]:
    if not codes.well_formed(code):
        raise VoucherNotFound("no voucher has this code (check the characters)")
    code_hash = vault.lookup_hash(program_id, codes.normalize(code))
    return code_hash, _stored(orders, program_id, code_hash)


def _stored(orders: OrdersPort, program_id: str, code_hash: str) -> Voucher:
    voucher = orders.get_voucher(program_id, code_hash)
    if voucher is None:
        raise VoucherNotFound("no voucher has this code")
    return voucher


def view(voucher: Voucher, now: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": voucher.masked,
        "status": voucher.status_at(now),
        "name": voucher.name,
        "discount": voucher.discount,
        "value": {"value": voucher.face_value, "currency": voucher.currency},
        "minimum_spend": {"value": voucher.minimum_spend, "currency": voucher.currency},
        "expires_at": voucher.expires_at,
        "order_id": voucher.order_id,
    }
    for name in ("redeemed_at", "redemption_reference", "voided_at", "void_reason"):
        if getattr(voucher, name):
            out[name] = getattr(voucher, name)
    return out


def validate(orders: OrdersPort, vault: VaultPort, program_id: str, code: str, now: str) -> dict[str, Any]:
    _, voucher = _find(orders, vault, program_id, code)
    return view(voucher, now)


def redeem(orders: OrdersPort, vault: VaultPort, program_id: str, request: VoucherRedemption, actor: str, now: str
           ) -> dict[str, Any]:
    code_hash, voucher = _find(orders, vault, program_id, request.code)
    if voucher.redeemed_with(request.reference):
        return {**view(voucher, now), "replayed": True}
    if request.purchase_amount is not None:
        if request.purchase_amount.currency != voucher.currency:
            raise VoucherNotRedeemable(f"the voucher is in {voucher.currency}", reason="currency")
        if request.purchase_amount.value < voucher.minimum_spend:
            raise VoucherNotRedeemable(
                f"the voucher needs a purchase of at least {voucher.minimum_spend} minor units",
                reason="minimum_spend",
            )
    status = voucher.status_at(now)
    if status != VoucherState.ACTIVE:
        raise VoucherNotRedeemable(f"the voucher is {status}", reason=status.lower())
    if request.purchase_amount is None and voucher.minimum_spend > 0:
        raise ValidationFailed(
            f"the voucher needs a purchase of at least {voucher.minimum_spend} minor units: send purchase_amount",
            reason="minimum_spend",
            errors=[{"location": "body", "field": "purchase_amount",
                     "reason": f"required: the voucher has a minimum spend of {voucher.minimum_spend} minor units "
                               f"in {voucher.currency}"}],
        )
    changed = orders.voucher_change(
        program_id, code_hash, VoucherState.REDEEMED, (VoucherState.ACTIVE,),
        {"redeemed_at": now, "redemption_reference": request.reference, "redeemed_by": actor},
        extra_condition="expires_at >= :now", extra_values={":now": now},
    )
    if changed is None:  # another till won, or it expired meanwhile
        current = _stored(orders, program_id, code_hash)
        if current.redeemed_with(request.reference):
            return {**view(current, now), "replayed": True}
        raise VoucherNotRedeemable(f"the voucher is {current.status_at(now)}", reason=current.status_at(now).lower())
    return {**view(changed, now), "replayed": False}


def void(orders: OrdersPort, vault: VaultPort, program_id: str, code: str, reason: str, actor: str, now: str
         ) -> dict[str, Any]:
    code_hash, voucher = _find(orders, vault, program_id, code)
    if voucher.status == VoucherState.VOID:
        return view(voucher, now)
    changed = orders.voucher_change(program_id, code_hash, VoucherState.VOID, (VoucherState.ACTIVE,),
                                    {"voided_at": now, "void_reason": reason, "voided_by": actor})
    if changed is None:
        current = _stored(orders, program_id, code_hash)
        if current.status == VoucherState.VOID:
            return view(current, now)
        raise VoucherNotRedeemable(f"a {current.status} voucher cannot be voided", reason=current.status.lower())
    return view(changed, now)
