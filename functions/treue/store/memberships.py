"""Paid memberships (``treue.logic.memberships``), in the member's partition.

    pk                     sk                    what
    P#<pid>#MEMBER#<mid>   MEMBERSHIP#<msh id>   the membership (plan as bought, status, periods, payments,
                                                 ``version``); while active listed on gsi1 at
                                                 ``MEMBERSHIPS#DUE#<shard>`` / ``<period end>#<pid>#<mid>#<msh id>``
    P#<pid>#MEMBER#<mid>   TIER                  ``membership``: the active membership's grant (tier, earn
                                                 multiplier, until), beside the tier state (``treue.store.tiers``)

The grant sits on the ``TIER`` item because accrual, the catalog and the segments already read it: a paid
member costs no read more. It is written with an update that leaves the tier state alone (and the tier state's
writes leave the grant alone), on condition that no other membership's grant is active, so a member has one
active paid membership at a time. The due index is sparse: an ended membership leaves it, and the daily run
reads one page per shard when nothing is due.
"""

from __future__ import annotations

import zlib
from typing import Any

from treue.core import audit
from treue.core.statuses import MembershipStatus
from treue.store.dynamodb import OnTable
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import GSI_PK, GSI_SK, member_pk
from treue.store.table import audited, due_page

PREFIX = "MEMBERSHIP#"
TIER_SK = "TIER"
DUE_SHARDS = 4  # as treue.core.memberships.DUE_SHARDS (the store does not load the core module for it)


def due_keys(program_id: str, member_id: str, membership_id: str, until: str) -> dict[str, str]:
    """Index attributes listing an active membership for the daily run at its period's end ``until``."""
    shard = zlib.crc32(f"{program_id}#{member_id}".encode()) % DUE_SHARDS
    return {GSI_PK: f"MEMBERSHIPS#DUE#{shard}", GSI_SK: f"{until}#{program_id}#{member_id}#{membership_id}"}


class MembershipStore(OnTable):

    # ------------------------------------------------------------ reads

    def get(self, program_id: str, member_id: str, membership_id: str) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table, ConsistentRead=True,
                                Key=item_key(member_pk(program_id, member_id), PREFIX + membership_id))
        return strip_keys(from_item(out["Item"]), index=True) if "Item" in out else None

    def of_member(self, program_id: str, member_id: str) -> list[dict[str, Any]]:
        """The member's memberships, oldest first (their ids are time-ordered)."""
        return [strip_keys(item, index=True) for item in self.query_prefix(member_pk(program_id, member_id), PREFIX)]

    def tier_item(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table, ConsistentRead=True,
                                Key=item_key(member_pk(program_id, member_id), TIER_SK))
        return strip_keys(from_item(out["Item"]), index=True) if "Item" in out else None

    def due(self, shard: int, now: str, limit: int = 100, after: dict[str, Any] | None = None
            ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of the active memberships of ``shard`` whose period ended by ``now``, oldest first, and the key
        to continue after (None: the last page). Read from the index: the write checks the version."""
        return due_page(self.ddb, self.table, f"MEMBERSHIPS#DUE#{shard}", now, limit, after)

    # ------------------------------------------------------------ transaction items

    def membership_put(self, program_id: str, membership: dict[str, Any], read_version: int, action: str,
                       now: str) -> dict[str, Any]:
        """The membership as it is now (version ``read_version + 1``, conditioned on the version read; 0: new),
        listed for the daily run while active, with its audit record (``membership.<action>``)."""
        member_id, membership_id = membership["member_id"], membership["membership_id"]
        pk, sk = member_pk(program_id, member_id), PREFIX + membership_id
        data = {**membership, "program_id": program_id, "version": read_version + 1}
        item = {"pk": pk, "sk": sk, **data}
        if membership["status"] == MembershipStatus.ACTIVE:
            item.update(due_keys(program_id, member_id, membership_id, membership["current_period_end"]))
        put: dict[str, Any] = {"Put": {"TableName": self.table, "Item": to_item(item)}}
        if read_version:
            put["Put"]["ConditionExpression"] = "version = :read"
            put["Put"]["ExpressionAttributeValues"] = {":read": {"N": str(read_version)}}
        else:
            put["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
        record = audit.new_record(program_id, f"membership.{action}", "membership", membership_id, now,
                                  {k: membership.get(k) for k in ("member_id", "plan_id", "status", "starts_at",
                                                                  "current_period_end", "cancel_at_period_end")},
                                  subject_hash=audit.content_hash(data))
        return audited(put, self.table, record, (pk, sk))

    def grant_put(self, program_id: str, member_id: str, grant: dict[str, Any], now: str) -> dict[str, Any]:
        """The grant on the member's ``TIER`` item (created when the member has none: ``tier`` null, the lowest
        level, and version 0, as if no tier state were there), on condition that no other membership's grant is
        active at ``now``."""
        return {"Update": {
            "TableName": self.table, "Key": item_key(member_pk(program_id, member_id), TIER_SK),
            "UpdateExpression": "SET #m = :grant, member_id = :mid, program_id = :pid, "
                                "#tier = if_not_exists(#tier, :none), version = if_not_exists(version, :zero)",
            "ConditionExpression": "attribute_not_exists(#m) OR #m.membership_id = :msh OR #m.#until <= :now",
            "ExpressionAttributeNames": {"#m": "membership", "#until": "until", "#tier": "tier"},
            "ExpressionAttributeValues": {":grant": to_item({"g": grant})["g"], ":mid": {"S": member_id},
                                          ":none": {"NULL": True},
                                          ":pid": {"S": program_id}, ":zero": {"N": "0"},
                                          ":msh": {"S": grant["membership_id"]}, ":now": {"S": now}},
        }}

    def grant_remove(self, program_id: str, member_id: str, membership_id: str) -> dict[str, Any]:
        """The ``TIER`` item without the grant of ``membership_id`` (on condition that it is still that one's)."""
        return {"Update": {
            "TableName": self.table, "Key": item_key(member_pk(program_id, member_id), TIER_SK),
            "UpdateExpression": "REMOVE #m", "ConditionExpression": "#m.membership_id = :msh",
            "ExpressionAttributeNames": {"#m": "membership"},
            "ExpressionAttributeValues": {":msh": {"S": membership_id}},
        }}
