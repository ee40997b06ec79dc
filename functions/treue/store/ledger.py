"""The ledger store: members, their balances and postings, and the program's account totals.

Every posting is written in one transaction with its idempotency guard, the member's balance, the
program's (sharded) account totals and its audit record; the keys are in ``treue.store.schema``.
``treue.store.dynamodb.Store`` adds programs and API keys on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from treue.core import audit
from treue.core.ledger import FIELD_SIGN, MEMBER_ACCOUNTS, Account, Posting, PostingType
from treue.core.statuses import EventType
from treue.errors import Contention, IdentifierTaken, InsufficientPoints, MemberNotFound
from treue.store.events import event_put
from treue.store.items import decode_cursor, encode_cursor, from_item, item_key, strip_keys
from treue.store.schema import (
    ACCOUNT_SHARDS,
    BUCKET_PREFIX,
    GSI,
    GSI_PK,
    GSI_SK,
    LIFECYCLE_SHARDS,
    PENDING_PREFIX,
    REFERRAL_PREFIX,
    account_pk,
    account_shard,
    balances_keys,
    due_keys,
    ident_pk,
    journal_keys,
    member_pk,
    referral_sk,
    rule_budget_pk,
    rule_use_sk,
)
from treue.store.table import Replay, TableStore, audited, stale


class LedgerStore(TableStore):
    """Members, balances and postings of the programs on the table."""


    def enroll(
        self,
        program_id: str,
        member: dict[str, Any],
        identifiers: dict[str, str],
        idempotency: tuple[str, str] | None = None,
        welcome: Sequence[Posting] = (),
        extra: list[dict[str, Any]] | None = None,
        result: dict[str, Any] | None = None,
    ) -> Replay | None:
        """Create a member, its balance and one guard per identifier in one transaction.

        ``welcome`` postings (the enrollment rules' bonus, each from its rule's account to the member's available
        points) are written in the same transaction: their journal entries and audit records, the program's
        account totals, ``points.earned``, and the balance starting at their points. With ``member["referred_by"]``
        (the referrer's member id) the referral item in the referrer's partition (``REFERRAL#<member id>``) too.
        ``extra`` items (the rules' counters) join it; when one of their conditions fails, nothing is written and
        ``StaleCondition`` names its index. ``result`` is kept with the Idempotency-Key (with the member id).

        Returns None when created, or the Replay of an earlier enrollment with the same
        Idempotency-Key. Raises IdentifierTaken naming the member that owns an identifier.
        """
        mid = member["id"]
        pk = member_pk(program_id, mid)
        now = member["created_at"]
        items: list[dict[str, Any]] = []
        if idempotency:
            reference, fingerprint = idempotency
            items.append(self._idem_put(program_id, "enroll", reference, fingerprint,
                                        {**(result or {}), "member_id": mid}, now))
        items.append(self._put_new({"pk": pk, "sk": "MEMBER", **member}))
        opening = {"available": 0, "pending": 0, "held": 0, "debt": 0, "lifetime_earned": 0, "dated": 0}
        if welcome:
            for account, delta in _deltas(welcome[0], welcome[1:]).items():
                if account in MEMBER_ACCOUNTS:
                    field = MEMBER_ACCOUNTS[account]
                    opening[field] += delta * FIELD_SIGN.get(field, 1)
            opening["lifetime_earned"] = sum(_lifetime_earned(one) for one in welcome)
            opening["dated"] = sum(_bucket_deltas(welcome).values())
        items.append(
            self._put_new(
                {
                    "pk": pk,
                    "sk": "BALANCE",
                    "member_id": mid,
                    **opening,
                    "lifetime_redeemed": 0,
                    "enrolled_at": now,
                    "updated_at": now,
                    **balances_keys(program_id, mid),
                }
            )
        )
        kinds = list(identifiers)
        for kind in kinds:
            guard = {"pk": ident_pk(program_id, kind, identifiers[kind]), "sk": "IDENT", "member_id": mid}
            put = self._put_new(guard)
            put["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            items.append(put)
        items.append(event_put(self.table, program_id, EventType.MEMBER_ENROLLED, {
            "member_id": mid, "external_id": member.get("external_id"), "country": member.get("country"),
            "enrolled_at": now}, now))
        if member.get("referred_by"):
            items.append(self._put_new({
                "pk": member_pk(program_id, member["referred_by"]), "sk": referral_sk(mid),
                "referrer_id": member["referred_by"], "referee_id": mid, "created_at": now}))
        if welcome:
            items.extend(self._entries(program_id, pk, welcome, now))
            items.extend(self._account_updates(program_id, welcome[0], welcome[1:]))
            items.append(self._earned_event(program_id, mid, welcome, now))
            items.extend(self._lifecycle_items(program_id, mid, welcome))
        first_extra = len(items)
        items.extend(extra or [])
        try:
            self._write(items)
        except ClientError as err:
            reasons = self.canceled(err)
            offset = 0
            if idempotency:
                offset = 1
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    return self._replay(program_id, "enroll", idempotency[0], reasons[0])
            for i, reason in enumerate(reasons[first_extra:]):
                if reason.get("Code") == "ConditionalCheckFailed":
                    raise stale(i, reason) from err
            for i, kind in enumerate(kinds):
                reason = reasons[offset + 2 + i] if len(reasons) > offset + 2 + i else {}
                if reason.get("Code") == "ConditionalCheckFailed":
                    owner = self._owner(program_id, kind, identifiers[kind], reason)
                    raise IdentifierTaken(
                        f"the {kind} already belongs to member {owner}",
                        identifier=kind,
                        member_id=owner,
                    ) from err
            if any(r.get("Code") == "TransactionConflict" for r in reasons):
                raise Contention("a concurrent request touched the same member; retry") from err
            raise
        return None

    def _owner(self, program_id: str, kind: str, value: str, reason: dict[str, Any]) -> str:
        item = reason.get("Item")
        if not item:
            out = self.ddb.get_item(
                TableName=self.table, Key=item_key(ident_pk(program_id, kind, value), "IDENT"), ConsistentRead=True
            )
            item = out.get("Item", {})
        return from_item(item).get("member_id", "unknown")

    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(member_pk(program_id, member_id), "MEMBER"))
        return strip_keys(from_item(out["Item"])) if "Item" in out else None

    def get_members(self, program_id: str, member_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The members of the program among ``member_ids``, by id (BatchGetItem, 100 at a time)."""
        found: dict[str, dict[str, Any]] = {}
        keys = [item_key(member_pk(program_id, m), "MEMBER") for m in dict.fromkeys(member_ids)]
        for start in range(0, len(keys), 100):
            pending = {self.table: {"Keys": keys[start : start + 100]}}
            while pending:
                out = self.ddb.batch_get_item(RequestItems=pending)
                for raw in out.get("Responses", {}).get(self.table, []):
                    member = strip_keys(from_item(raw))
                    found[member["id"]] = member
                pending = out.get("UnprocessedKeys") or {}
        return found

    def find_member_id(self, program_id: str, kind: str, value: str) -> str | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(ident_pk(program_id, kind, value), "IDENT"))
        return from_item(out["Item"])["member_id"] if "Item" in out else None

    # ------------------------------------------------------------ referrals and progress

    def list_referrals(self, program_id: str, member_id: str, limit: int, cursor: str | None
                       ) -> tuple[list[dict[str, Any]], str | None]:
        """The members ``member_id`` referred (their referral items), newest first, and the next cursor."""
        return self.member_page(program_id, member_id, REFERRAL_PREFIX, limit, cursor)

    def referral_paid_item(self, program_id: str, referrer_id: str, referee_id: str, role: str, points: int,
                           now: str) -> dict[str, Any]:
        """The transaction item marking a referral completed (at its first payment) and the points ``role`` got."""
        return {"Update": {
            "TableName": self.table,
            "Key": item_key(member_pk(program_id, referrer_id), referral_sk(referee_id)),
            "UpdateExpression": f"SET completed_at = if_not_exists(completed_at, :now), {role}_points = :points",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": {":now": {"S": now}, ":points": {"N": str(points)}},
        }}

    def event_item(self, program_id: str, type_: str, data: dict[str, Any], now: str) -> dict[str, Any]:
        """A transaction item writing a new event of the program's log."""
        return event_put(self.table, program_id, type_, data, now)

    def get_entry(self, program_id: str, member_id: str, posting_id: str) -> dict[str, Any] | None:
        """One posting of the member's journal, or None."""
        out = self.ddb.get_item(TableName=self.table,
                                Key=item_key(member_pk(program_id, member_id), f"ENTRY#{posting_id}"))
        return strip_keys(from_item(out["Item"])) if "Item" in out else None

    def progress(self, program_id: str, member_id: str) -> dict[str, int] | None:
        """What milestones measure, from the member's balance item (consistent): ``purchases``,
        ``lifetime_spend`` (minor units; both added by accrual) and ``lifetime_earned``; None: no such member."""
        out = self.ddb.get_item(TableName=self.table, Key=item_key(member_pk(program_id, member_id), "BALANCE"),
                                ConsistentRead=True)
        if "Item" not in out:
            return None
        data = from_item(out["Item"])
        return {k: int(data.get(k, 0)) for k in ("purchases", "lifetime_spend", "lifetime_earned")}

    # ------------------------------------------------------------ ledger

    def post(
        self,
        program_id: str,
        member_id: str,
        idempotency: tuple[str, str, str],
        result: dict[str, Any],
        posting: Posting | None,
        now: str,
        extra: list[dict[str, Any]] | None = None,
        more: Sequence[Posting] = (),
        counts: Mapping[str, int] | None = None,
        expect_updated_at: str | None = None,
    ) -> Replay | None:
        """Write one posting atomically with its idempotency guard and the balances it moves.

        ``idempotency`` is ``(kind, reference, fingerprint)``. With ``posting=None`` (a purchase
        worth zero points) only the guard is written, after checking the member exists.
        ``extra`` items (an order and its state change) join the same transaction; when one of
        their conditions fails, nothing is written and ``StaleCondition`` names its index.
        ``more`` postings of the same member join ``posting`` (an earning rule's bonus from its own account):
        one journal entry and audit record each, one balance update and one update per account for them all.
        ``counts`` are added to the member's ``BALANCE`` in the same update (a purchase's ``purchases`` and
        ``lifetime_spend``); with ``posting=None`` they make the member check an update.
        Credits with ``metadata["expires_on"]`` add to that expiry bucket (``BUCKET#<on>``) and the balance's
        ``dated``; reversals with it take them out again; earnings credited to ``member:pending`` write the
        purchase's pending item (``PENDING#<available_at>#<posting id>``), which activation takes out.
        ``expect_updated_at``: the balance must be as read (its ``updated_at``), else ``StaleCondition`` (an
        expiry computed from it is stale).
        Returns None when written, or the Replay of the first request with this reference.
        """
        kind, reference, fingerprint = idempotency
        pk = member_pk(program_id, member_id)
        guard_result = dict(result, member_id=member_id)
        if posting is not None:
            guard_result["posting_id"] = posting.id
        items = [self._idem_put(program_id, kind, reference, fingerprint, guard_result, now)]
        if posting is None and counts:
            items.append(self._counts_update(pk, counts, now))
        elif posting is None:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": item_key(pk, "BALANCE"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            )
        else:
            entries = self._entries(program_id, pk, (posting, *more), now)
            items.append(entries[0])
            items.append(self._balance_update(pk, posting, now, more, counts, expect_updated_at))
            items.extend(self._account_updates(program_id, posting, more))
            items.extend(entries[1:])
            items.extend(self._lifecycle_items(program_id, member_id, (posting, *more)))
            if posting.type == PostingType.EARN:
                items.append(self._earned_event(program_id, member_id, (posting, *more), now))
        first_extra = len(items)
        items.extend(extra or [])
        try:
            self._write(items)
        except ClientError as err:
            reasons = self.canceled(err)
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return self._replay(program_id, kind, reference, reasons[0])
            for i, reason in enumerate(reasons[first_extra:]):
                if reason.get("Code") == "ConditionalCheckFailed":
                    raise stale(i, reason) from err
            idx = 1 if posting is None else 2
            if len(reasons) > idx and reasons[idx].get("Code") == "ConditionalCheckFailed":
                reason = reasons[idx]
                if posting is None or not self._balance_exists(pk, reason):
                    raise MemberNotFound(f"member {member_id} does not exist") from err
                if expect_updated_at is not None:
                    raise stale(-1, reason) from err
                raise InsufficientPoints(
                    f"the member has fewer than {posting.points} available points"
                ) from err
            if any(r.get("Code") in ("TransactionConflict", "ThrottlingError") for r in reasons):
                raise Contention("a concurrent posting touched the same balance; retry") from err
            raise
        return None

    def _entries(self, program_id: str, pk: str, postings: Sequence[Posting], now: str) -> list[dict[str, Any]]:
        """The journal entry of each posting in the member's partition, each carrying its audit record."""
        entries = []
        for one in postings:
            data = _posting_data(one)
            entry_sk = f"ENTRY#{one.id}"
            record = audit.new_record(
                program_id, f"posting.{one.type}", "posting", one.id, now,
                {k: data[k] for k in ("member_id", "debit", "credit", "points", "reference", "reason")},
                subject_hash=audit.content_hash(data),
            )
            entry = {"pk": pk, "sk": entry_sk, **data, **journal_keys(program_id, one.created_at, one.id)}
            entries.append(audited(self._put_new(entry), self.table, record, (pk, entry_sk)))
        return entries

    def _earned_event(self, program_id: str, member_id: str, postings: Sequence[Posting], now: str
                      ) -> dict[str, Any]:
        """``points.earned`` for earning postings written together: the first names the posting and reference."""
        first = postings[0]
        return event_put(self.table, program_id, EventType.POINTS_EARNED, {
            "member_id": member_id, "points": sum(p.points for p in postings),
            "posting_id": first.id, "reference": first.reference, "reason": first.reason}, now)

    def _balance_exists(self, pk: str, reason: dict[str, Any]) -> bool:
        if reason.get("Item"):
            return True
        out = self.ddb.get_item(TableName=self.table, Key=item_key(pk, "BALANCE"), ConsistentRead=True)
        return "Item" in out

    def _counts_update(self, pk: str, counts: Mapping[str, int], now: str) -> dict[str, Any]:
        """The member's counters of a purchase that posted nothing (0 points), on condition the member exists."""
        return {"Update": {
            "TableName": self.table,
            "Key": item_key(pk, "BALANCE"),
            "UpdateExpression": "SET updated_at = :now ADD " + ", ".join(f"{name} :c_{name}" for name in counts),
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": {":now": {"S": now},
                                          **{f":c_{name}": {"N": str(add)} for name, add in counts.items()}},
        }}

    def _balance_update(self, pk: str, posting: Posting, now: str, more: Sequence[Posting] = (),
                        counts: Mapping[str, int] | None = None, expect_updated_at: str | None = None
                        ) -> dict[str, Any]:
        values: dict[str, Any] = {":now": {"S": now}}
        adds = [f"{name} :c_{name}" for name in counts or {}]
        values.update({f":c_{name}": {"N": str(add)} for name, add in (counts or {}).items()})
        condition = ["attribute_exists(pk)"]
        if expect_updated_at is not None:
            condition.append("updated_at = :read_at")
            values[":read_at"] = {"S": expect_updated_at}
        for account, delta in _deltas(posting, more).items():
            field = MEMBER_ACCOUNTS.get(account)
            if field is None:
                continue
            delta *= FIELD_SIGN.get(field, 1)
            adds.append(f"{field} :{field}")
            values[f":{field}"] = {"N": str(delta)}
            if delta < 0:
                condition.append(f"{field} >= :need_{field}")
                values[f":need_{field}"] = {"N": str(-delta)}
        earned = sum(_lifetime_earned(one) for one in (posting, *more))
        if earned:
            adds.append("lifetime_earned :earned")
            values[":earned"] = {"N": str(earned)}
        dated = sum(_bucket_deltas((posting, *more)).values())
        if dated:
            adds.append("dated :dated")
            values[":dated"] = {"N": str(dated)}
        if Account.PROGRAM_REDEEMED in (posting.credit, posting.debit):
            adds.append("lifetime_redeemed :redeemed")
            sign = 1 if posting.credit == Account.PROGRAM_REDEEMED else -1
            values[":redeemed"] = {"N": str(sign * posting.points)}
        return {
            "Update": {
                "TableName": self.table,
                "Key": item_key(pk, "BALANCE"),
                "UpdateExpression": "SET updated_at = :now ADD " + ", ".join(adds),
                "ConditionExpression": " AND ".join(condition),
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _account_updates(self, program_id: str, posting: Posting, more: Sequence[Posting] = ()
                         ) -> list[dict[str, Any]]:
        shard = account_shard(posting.id)
        updates = []
        for account, delta in _deltas(posting, more).items():
            # member accounts are counted here too (all members together), so the totals always sum to 0
            updates.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": item_key(account_pk(program_id, shard), str(account)),
                        "UpdateExpression": "ADD balance :d",
                        "ExpressionAttributeValues": {":d": {"N": str(delta)}},
                    }
                }
            )
        return updates

    def _lifecycle_items(self, program_id: str, member_id: str, postings: Sequence[Posting]) -> list[dict[str, Any]]:
        """The expiry buckets the postings add to or take from, and the pending item of points earned pending."""
        pk = member_pk(program_id, member_id)
        items: list[dict[str, Any]] = []
        for on, delta in _bucket_deltas(postings).items():
            if delta:
                index = due_keys("EXPIRY", program_id, member_id, on)
                items.append({"Update": {
                    "TableName": self.table, "Key": item_key(pk, f"{BUCKET_PREFIX}{on}"),
                    "UpdateExpression": "ADD points :d SET expires_on = :on, member_id = :mid, #gpk = :gpk, "
                                        "#gsk = :gsk",
                    "ExpressionAttributeNames": {"#gpk": GSI_PK, "#gsk": GSI_SK},
                    "ExpressionAttributeValues": {
                        ":d": {"N": str(delta)}, ":on": {"S": on}, ":mid": {"S": member_id},
                        ":gpk": {"S": index[GSI_PK]}, ":gsk": {"S": index[GSI_SK]}},
                }})
        pending = [one for one in postings if one.type == PostingType.EARN and one.credit == Account.MEMBER_PENDING]
        if pending:
            first, meta = pending[0], pending[0].metadata or {}
            at = str(meta["available_at"])
            parts: dict[str, int] = {}
            for one in pending:
                parts[str(one.debit)] = parts.get(str(one.debit), 0) + one.points
            item = {"pk": pk, "sk": f"{PENDING_PREFIX}{at}#{first.id}", "member_id": member_id,
                    "points": sum(parts.values()), "parts": parts, "reference": first.reference,
                    "posting_id": first.id, "available_at": at, "occurred_at": meta.get("occurred_at"),
                    "expires_on": meta.get("expires_on"), **due_keys("PENDING", program_id, member_id, at)}
            items.append(self._put_new({k: v for k, v in item.items() if v is not None}))
        return items

    def buckets(self, program_id: str, member_id: str) -> dict[str, int]:
        """The member's expiry buckets: points credited per expiry date (ISO), net of reversals (consistent)."""
        return {item["expires_on"]: int(item.get("points", 0))
                for item in self._member_items(program_id, member_id, BUCKET_PREFIX)}

    def drop_buckets(self, program_id: str, member_id: str, dates: Sequence[str]) -> None:
        """Delete buckets whose date has passed (their points expired or were spent: the next expiry run counts
        only later dates), which takes them out of the due index."""
        pk = member_pk(program_id, member_id)
        keys = [{"DeleteRequest": {"Key": item_key(pk, f"{BUCKET_PREFIX}{on}")}} for on in dict.fromkeys(dates)]
        for start in range(0, len(keys), 25):
            pending: dict[str, Any] = {self.table: keys[start:start + 25]}
            while pending:
                out = self.ddb.batch_write_item(RequestItems=pending)
                pending = out.get("UnprocessedItems") or {}

    def pending_items(self, program_id: str, member_id: str, due_by: str | None = None) -> list[dict[str, Any]]:
        """The member's pending points per purchase, earliest first; with ``due_by`` (ISO time) those available
        by then (consistent)."""
        upper = f"{PENDING_PREFIX}{due_by}~" if due_by is not None else None
        return self._member_items(program_id, member_id, PENDING_PREFIX, upper)

    def pending_item(self, program_id: str, member_id: str, sk: str) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(member_pk(program_id, member_id), sk),
                                ConsistentRead=True)
        return {**strip_keys(from_item(out["Item"])), "sk": sk} if "Item" in out else None

    def pending_take_item(self, program_id: str, member_id: str, sk: str, points: int, left: int
                          ) -> dict[str, Any]:
        """A transaction item taking ``points`` out of a pending item that holds ``points + left``: its delete
        when nothing is left, else the decrement; conditioned on the points as read."""
        key = item_key(member_pk(program_id, member_id), sk)
        values = {":read": {"N": str(points + left)}}
        if left <= 0:
            return {"Delete": {"TableName": self.table, "Key": key, "ConditionExpression": "points = :read",
                               "ExpressionAttributeValues": values}}
        return {"Update": {"TableName": self.table, "Key": key, "UpdateExpression": "SET points = :left",
                           "ConditionExpression": "points = :read",
                           "ExpressionAttributeValues": {**values, ":left": {"N": str(left)}}}}

    def _member_items(self, program_id: str, member_id: str, prefix: str, upper: str | None = None
                      ) -> list[dict[str, Any]]:
        pk = member_pk(program_id, member_id)
        if upper is None:
            condition, values = "pk = :pk AND begins_with(sk, :prefix)", {":prefix": {"S": prefix}}
        else:
            condition, values = "pk = :pk AND sk BETWEEN :prefix AND :upper", {":prefix": {"S": prefix},
                                                                               ":upper": {"S": upper}}
        params: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": condition,
                                  "ExpressionAttributeValues": {":pk": {"S": pk}, **values}, "ConsistentRead": True}
        found: list[dict[str, Any]] = []
        while True:
            out = self.ddb.query(**params)
            found.extend({**strip_keys(from_item(raw)), "sk": raw["sk"]["S"]} for raw in out.get("Items", []))
            if "LastEvaluatedKey" not in out:
                return found
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def due_members(self, kind: str, before: str, after: str | None = None, limit: int = 100
                    ) -> list[tuple[str, str, str]]:
        """``(due, program id, member id)`` of the expiry buckets (``kind`` EXPIRY, due the date) or pending
        points (PENDING, due the time) due before ``before``, in each shard's order; ``after`` (a due) starts
        after it. Read from the index: stale entries are possible, the writes check."""
        found: list[tuple[str, str, str]] = []
        for shard in range(LIFECYCLE_SHARDS):
            params: dict[str, Any] = {
                "TableName": self.table, "IndexName": GSI,
                "KeyConditionExpression": f"{GSI_PK} = :pk AND {GSI_SK} BETWEEN :low AND :high",
                "ExpressionAttributeValues": {":pk": {"S": f"{kind}#DUE#{shard}"},
                                              ":low": {"S": f"{after}#~" if after else "0"},
                                              ":high": {"S": before}},
                "ProjectionExpression": GSI_SK,
            }
            while True:
                out = self.ddb.query(**params)
                for raw in out.get("Items", []):
                    when, program_id, member_id = raw[GSI_SK]["S"].rsplit("#", 2)
                    found.append((when, program_id, member_id))
                if "LastEvaluatedKey" not in out or len(found) >= limit * LIFECYCLE_SHARDS:
                    break
                params["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        return found

    def get_balance(self, program_id: str, member_id: str, consistent: bool = True) -> dict[str, int] | None:
        out = self.ddb.get_item(
            TableName=self.table, Key=item_key(member_pk(program_id, member_id), "BALANCE"), ConsistentRead=consistent
        )
        if "Item" not in out:
            return None
        data = from_item(out["Item"])
        return {k: data.get(k, 0) for k in ("available", "held", "lifetime_earned", "lifetime_redeemed")}

    def balance_state(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        """The whole balance item (consistent): the points, ``dated`` and ``updated_at`` that expiry reads."""
        out = self.ddb.get_item(TableName=self.table, Key=item_key(member_pk(program_id, member_id), "BALANCE"),
                                ConsistentRead=True)
        if "Item" not in out:
            return None
        data = strip_keys(from_item(out["Item"]))
        for name in ("available", "pending", "held", "debt", "lifetime_earned", "lifetime_redeemed", "dated"):
            data[name] = int(data.get(name, 0))
        return data

    def list_entries(
        self, program_id: str, member_id: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A member's postings, newest first, and the cursor of the next page (None at the end)."""
        return self.member_page(program_id, member_id, "ENTRY#", limit, cursor)

    def member_page(
        self, program_id: str, member_id: str, prefix: str, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Items of a member's partition whose sort key starts with ``prefix``, newest first, and the next cursor."""
        pk = member_pk(program_id, member_id)
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            params["ExclusiveStartKey"] = item_key(pk, decode_cursor(cursor, prefix))
        out = self.ddb.query(**params)
        items = [strip_keys(from_item(i)) for i in out.get("Items", [])]
        last = out.get("LastEvaluatedKey")
        return items, (encode_cursor(last["sk"]["S"]) if last else None)

    # ------------------------------------------------------------ earning rules' counters

    def rule_uses(self, program_id: str, member_id: str, wanted: Sequence[tuple[str, str]]
                  ) -> dict[tuple[str, str], int]:
        """The counters ``wanted`` as ``(rule id, window)``: the times the rule paid the member in ``window``
        (``day:…``, ``week:…``, ``month:…``, ``year:…``, ``life``), or for ``budget`` the points it paid all
        members; 0 when not counted yet. Read consistently: the transaction's conditions check them again."""
        keys: dict[tuple[str, str], dict[str, Any]] = {}
        for rule_id, window in dict.fromkeys(wanted):
            if window == "budget":
                keys[(rule_id, window)] = item_key(rule_budget_pk(program_id), rule_id)
            else:
                keys[(rule_id, window)] = item_key(member_pk(program_id, member_id), rule_use_sk(rule_id, window))
        found = {want: 0 for want in keys}
        by_key = {(k["pk"]["S"], k["sk"]["S"]): want for want, k in keys.items()}
        listed = list(keys.values())
        for start in range(0, len(listed), 100):
            pending: dict[str, Any] = {self.table: {"Keys": listed[start:start + 100], "ConsistentRead": True}}
            while pending:
                out = self.ddb.batch_get_item(RequestItems=pending)
                for raw in out.get("Responses", {}).get(self.table, []):
                    data = from_item(raw)
                    found[by_key[(data["pk"], data["sk"])]] = int(data.get("n", 0))
                pending = out.get("UnprocessedKeys") or {}
        return found

    def rule_use_items(self, program_id: str, member_id: str, uses: Sequence[tuple[str, str, int, int | None]]
                       ) -> list[dict[str, Any]]:
        """Transaction items adding ``add`` to each counter ``(rule id, window, add, cap)``, conditioned so the
        counter never passes ``cap`` (None: no cap): a concurrent payment that got there first fails them."""
        items = []
        for rule_id, window, add, cap in uses:
            if window == "budget":
                key = item_key(rule_budget_pk(program_id), rule_id)
            else:
                key = item_key(member_pk(program_id, member_id), rule_use_sk(rule_id, window))
            update: dict[str, Any] = {
                "TableName": self.table,
                "Key": key,
                "UpdateExpression": "ADD n :add SET rule_id = :rule",
                "ExpressionAttributeValues": {":add": {"N": str(add)}, ":rule": {"S": rule_id}},
            }
            if cap is not None:
                update["ConditionExpression"] = "attribute_not_exists(n) OR n <= :room"
                update["ExpressionAttributeValues"][":room"] = {"N": str(cap - add)}
            items.append({"Update": update})
        return items

    def program_accounts(self, program_id: str) -> dict[str, int]:
        """Sum of each program account over its shards."""
        totals: dict[str, int] = {}
        for shard in range(ACCOUNT_SHARDS):
            out = self.ddb.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": account_pk(program_id, shard)}},
                ConsistentRead=True,
            )
            for item in out.get("Items", []):
                data = from_item(item)
                totals[data["sk"]] = totals.get(data["sk"], 0) + data.get("balance", 0)
        return totals


def _deltas(posting: Posting, more: Sequence[Posting]) -> dict[Account | str, int]:
    """The postings' signed changes per account, summed (an account moved by several is updated once)."""
    total: dict[Account | str, int] = {}
    for one in (posting, *more):
        for account, delta in one.deltas().items():
            total[account] = total.get(account, 0) + delta
    return total


def _lifetime_earned(posting: Posting) -> int:
    if posting.type == PostingType.EARN:
        return posting.points
    if posting.type == PostingType.ADJUSTMENT and posting.credit == Account.MEMBER_AVAILABLE:
        return posting.points
    if posting.type == PostingType.REVERSAL:  # a returned purchase's points were never earned after all
        return -posting.points
    return 0


_NEW_POINTS = (PostingType.EARN, PostingType.ADJUSTMENT, PostingType.ACTIVATION)


def _bucket_deltas(postings: Sequence[Posting]) -> dict[str, int]:
    """What the postings add to (credits of new points to available) or take from (reversals) each expiry date's
    bucket, by the date (``metadata["expires_on"]``)."""
    deltas: dict[str, int] = {}
    for one in postings:
        on = (one.metadata or {}).get("expires_on")
        if not on:
            continue
        if one.type in _NEW_POINTS and one.credit == Account.MEMBER_AVAILABLE:
            deltas[on] = deltas.get(on, 0) + one.points
        elif one.type == PostingType.REVERSAL and one.debit in (Account.MEMBER_AVAILABLE, Account.MEMBER_DEBT):
            deltas[on] = deltas.get(on, 0) - one.points
    return deltas


def _posting_data(posting: Posting) -> dict[str, Any]:
    return {
        "id": posting.id,
        "program_id": posting.program_id,
        "member_id": posting.member_id,
        "type": str(posting.type),
        "debit": str(posting.debit),
        "credit": str(posting.credit),
        "points": posting.points,
        "member_delta": posting.member_delta(),
        "held_delta": posting.held_delta(),
        "reference": posting.reference,
        "reason": posting.reason,
        "actor": posting.actor,
        "created_at": posting.created_at,
        "order_id": (posting.metadata or {}).get("order_id"),
        "metadata": posting.metadata or None,
    }
