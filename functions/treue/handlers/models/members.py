"""Members: enrollment's and lookup's response models (referrals, the welcome bonus)."""

from __future__ import annotations

from pydantic import Field

from treue.core.statuses import MemberStatus, ReferralStatus
from treue.handlers.models import Model
from treue.handlers.models.points import BreakdownLine


class Member(Model):
    id: str
    program_id: str
    status: MemberStatus
    card_number: str
    qr_token: str
    email: str | None = None
    phone: str | None = None
    external_id: str | None = None
    name: str | None = None
    locale: str | None = None
    country: str | None = None
    marketing_consent: bool = False
    referral_code: str | None = Field(default=None, description="What this member gives friends to enroll with "
                                      "(referred_by); members enrolled before referrals have none")
    referred_by: str | None = Field(default=None, description="The member id of who referred this member")
    birth_date: str | None = Field(default=None, description="YYYY-MM-DD")
    created_at: str


class MemberList(Model):
    items: list[Member]
    next_cursor: str | None = None


class Welcome(Model):
    points_earned: int = Field(description="The enrollment rules' bonus, paid in the enrollment's transaction")
    breakdown: list[BreakdownLine] = Field(default_factory=list, description="The points per enrollment rule")


class EnrolledMember(Member):
    welcome: Welcome | None = Field(default=None, description="Present when enrollment rules were in force")


class Referral(Model):
    member_id: str = Field(description="The member referred")
    status: ReferralStatus = Field(description="pending until the referred member's first purchase that earns "
                                   "points, then completed")
    enrolled_at: str
    completed_at: str | None = None
    referrer_points: int | None = Field(default=None, description="What the referral rule paid the referrer")
    referee_points: int | None = Field(default=None, description="What it paid the member referred")


class Referrals(Model):
    member_id: str
    referral_code: str | None
    referred_by: str | None = Field(default=None, description="The member id of who referred this member")
    items: list[Referral] = Field(description="The members this member referred, newest first")
    next_cursor: str | None = None
