"""DynamoDB storage: the only module that talks to the table.

Single-table layout; every key of a program's data starts with ``P#<program id>``:

    pk                                   sk                  what
    PROGRAM#<pid>                        PROGRAM             program settings
    APIKEY#<key id>                      APIKEY              API key hash, scope, program
    P#<pid>#MEMBER#<mid>                 MEMBER              member profile
    P#<pid>#MEMBER#<mid>                 BALANCE             available, held, lifetime counters
    P#<pid>#MEMBER#<mid>                 ENTRY#<posting id>  ledger posting (time-ordered id)
    P#<pid>#IDENT#<kind>#<value>         IDENT               identifier → member (uniqueness guard)
    P#<pid>#IDEM#<kind>#<reference>      IDEM                idempotency guard with the first result
    P#<pid>#ACCT#<shard>                 <account>           account totals (program and all members), sharded

One sparse global secondary index (``gsi1``: ``gsi1pk``/``gsi1sk``) serves program-wide reads:
postings and budget movements (``P#<pid>#JOURNAL``, by time), orders (``P#<pid>#ORDERS``, by
time), member balances (``P#<pid>#BALANCES``) and the audit trail (``treue.store.audit``).
Every transaction also appends its audit record (``treue.core.audit``).

API keys are the one exception to the program prefix: the key is how the program is found.
``ClientError`` codes become domain errors here and nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import zlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from treue.core import audit
from treue.core.keys import ApiKeyRecord, Scope
from treue.core.ledger import MEMBER_ACCOUNTS, Account, Posting, PostingType
from treue.core.programs import Program
from treue.errors import (
    Contention,
    IdentifierTaken,
    InsufficientPoints,
    MalformedRequest,
    MemberNotFound,
    StaleCondition,
)
from treue.store import clients, positions
from treue.store.events import event_put
from treue.store.items import GSI, from_item, to_item

ACCOUNT_SHARDS = 8
PENDING_SHARDS = 4
AUDIT = "_audit"  # a transaction item may carry the audit record of its change under this key
_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "TransactionInProgressException",
}

def client():
    """The DynamoDB client of this execution environment."""
    return clients.get("dynamodb")


def newest_first(ddb, table: str, gsi1pk: str, after: str | None, limit: int
                 ) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a ``gsi1`` partition, newest first, from below ``after``; the cursor is the last
    item's ``gsi1sk`` (None on the last page)."""
    params: dict[str, Any] = {
        "TableName": table, "IndexName": GSI, "ScanIndexForward": False, "Limit": limit,
        "KeyConditionExpression": "gsi1pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": gsi1pk}},
    }
    if after:
        params["KeyConditionExpression"] += " AND gsi1sk < :after"
        params["ExpressionAttributeValues"][":after"] = {"S": after}
    out = ddb.query(**params)
    items = [from_item(i) for i in out.get("Items", [])]
    return items, (items[-1]["gsi1sk"] if items and "LastEvaluatedKey" in out else None)


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def member_pk(program_id: str, member_id: str) -> str:
    return f"P#{program_id}#MEMBER#{member_id}"


def ident_pk(program_id: str, kind: str, value: str) -> str:
    return f"P#{program_id}#IDENT#{kind}#{value}"


def idem_pk(program_id: str, kind: str, reference: str) -> str:
    return f"P#{program_id}#IDEM#{kind}#{reference}"


def account_shard(posting_id: str) -> int:
    return zlib.crc32(posting_id.encode()) % ACCOUNT_SHARDS


def journal_keys(program_id: str, created_at: str, entry_id: str) -> dict[str, str]:
    """Index attributes listing a posting or budget movement in the program's journal, by time."""
    return {"gsi1pk": f"P#{program_id}#JOURNAL", "gsi1sk": f"{created_at}#{entry_id}"}


def pending_shard(program_id: str) -> int:
    return zlib.crc32(program_id.encode()) % PENDING_SHARDS


def audit_put(table: str, record: dict[str, Any], subject: tuple[str, str] | None = None) -> dict[str, Any]:
    """The transaction item appending an unsealed audit ``record`` (``subject``: the item it vouches for)."""
    pid = record["program_id"]
    item = {
        "pk": f"P#{pid}#AUDIT#{record['id']}",
        "sk": "AUDIT",
        "gsi1pk": f"AUDIT#PENDING#{pending_shard(pid)}",
        "gsi1sk": f"{pid}#{record['id']}",
        **record,
    }
    if subject:
        item["subject_pk"], item["subject_sk"] = subject
    return {"Put": {"TableName": table, "Item": to_item(item), "ConditionExpression": "attribute_not_exists(pk)"}}


def with_audit(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items with the audit records some of them carry appended at the end (indexes unchanged)."""
    plain, records = [], []
    for item in items:
        if AUDIT in item:
            item = dict(item)
            records.append(item.pop(AUDIT))
        plain.append(item)
    return plain + records


def audited(item: dict[str, Any], table: str, record: dict[str, Any],
            subject: tuple[str, str] | None = None) -> dict[str, Any]:
    """``item`` carrying its audit record, for :func:`with_audit`."""
    return {**item, AUDIT: audit_put(table, record, subject)}


def _strip_keys(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("pk", "sk")}


@dataclass(frozen=True)
class Replay:
    """An idempotency guard found in place: the first request's fingerprint and result."""

    fingerprint: str
    result: dict[str, Any]


class OnTable:
    """Base of the stores that share the program table through one ``Store`` (orders, budget, audit…)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def ddb(self):
        return self.store.ddb

    @property
    def table(self) -> str:
        return self.store.table


def _reasons(err: ClientError) -> list[dict[str, Any]]:
    return err.response.get("CancellationReasons") or []


def _stale(index: int, reason: dict[str, Any]) -> StaleCondition:
    """The failed condition of item ``index`` (the item as it was, when DynamoDB returned it)."""
    item = reason.get("Item")
    return StaleCondition(index, from_item(item) if item else None)


def _raise_storage(err: ClientError) -> None:
    code = err.response.get("Error", {}).get("Code", "")
    if code in _RETRYABLE:
        raise Contention(f"storage is busy ({code})") from err
    raise err


class Store:
    """Program-scoped persistence of programs, keys, members and the ledger."""

    def __init__(self, table_name: str | None = None, ddb=None) -> None:
        self.table = table_name or os.environ["TABLE_NAME"]
        self._ddb = ddb

    @property
    def ddb(self):
        return self._ddb or client()

    # ------------------------------------------------------------ programs and keys

    def put_program(self, program: Program) -> None:
        data = {"pk": f"PROGRAM#{program.id}", "sk": "PROGRAM", **program.__dict__}
        self.ddb.put_item(
            TableName=self.table,
            Item=to_item(data),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_program(self, program_id: str) -> Program | None:
        out = self.ddb.get_item(TableName=self.table, Key=_key(f"PROGRAM#{program_id}", "PROGRAM"))
        if "Item" not in out:
            return None
        return Program(**_strip_keys(from_item(out["Item"])))

    def put_api_key(self, record: ApiKeyRecord) -> None:
        data = {
            "pk": f"APIKEY#{record.key_id}",
            "sk": "APIKEY",
            "key_id": record.key_id,
            "program_id": record.program_id,
            "scope": str(record.scope),
            "secret_hash": record.secret_hash,
            "created_at": record.created_at,
        }
        entry = audit.new_record(record.program_id, "api_key.created", "api_key", record.key_id, record.created_at,
                                 {"scope": str(record.scope)})
        self.transact([self._put_new(data), audit_put(self.table, entry)])

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        out = self.ddb.get_item(TableName=self.table, Key=_key(f"APIKEY#{key_id}", "APIKEY"))
        if "Item" not in out:
            return None
        data = _strip_keys(from_item(out["Item"]))
        return ApiKeyRecord(
            key_id=data["key_id"],
            program_id=data["program_id"],
            scope=Scope(data["scope"]),
            secret_hash=data["secret_hash"],
            created_at=data["created_at"],
            revoked_at=data.get("revoked_at"),
        )

    def revoke_api_key(self, key_id: str, now: str) -> bool:
        """Mark a key revoked; False when no such key exists. Revoking twice keeps the first time."""
        found = self.get_api_key(key_id)
        if found is None:
            return False
        entry = audit.new_record(found.program_id, "api_key.revoked", "api_key", key_id, now,
                                 {"scope": str(found.scope)})
        update = {
            "Update": {
                "TableName": self.table,
                "Key": _key(f"APIKEY#{key_id}", "APIKEY"),
                "UpdateExpression": "SET revoked_at = if_not_exists(revoked_at, :now)",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":now": {"S": now}},
            }
        }
        self.transact([update, audit_put(self.table, entry)])
        return True

    def transact(self, items: list[dict[str, Any]]) -> None:
        """Write ``items`` (and the audit records they carry) atomically.

        A failed condition raises StaleCondition with the item's index; contention raises Contention.
        """
        try:
            sent = with_audit(items)
            positions.write(lambda: self.ddb.transact_write_items(TransactItems=sent), sent, self.ddb, self.table)
        except ClientError as err:
            if err.response["Error"]["Code"] != "TransactionCanceledException":
                _raise_storage(err)
            reasons = _reasons(err)
            for i, reason in enumerate(reasons[: len(items)]):
                if reason.get("Code") == "ConditionalCheckFailed":
                    raise _stale(i, reason) from err
            raise Contention("a concurrent request touched the same items; retry") from err

    # ------------------------------------------------------------ members

    def enroll(
        self,
        program_id: str,
        member: dict[str, Any],
        identifiers: dict[str, str],
        idempotency: tuple[str, str] | None = None,
    ) -> Replay | None:
        """Create a member, its zero balance and one guard per identifier in one transaction.

        Returns None when created, or the Replay of an earlier enrollment with the same
        Idempotency-Key. Raises IdentifierTaken naming the member that owns an identifier.
        """
        mid = member["id"]
        pk = member_pk(program_id, mid)
        now = member["created_at"]
        items: list[dict[str, Any]] = []
        if idempotency:
            reference, fingerprint = idempotency
            items.append(self._idem_put(program_id, "enroll", reference, fingerprint, {"member_id": mid}, now))
        items.append(self._put_new({"pk": pk, "sk": "MEMBER", **member}))
        items.append(
            self._put_new(
                {
                    "pk": pk,
                    "sk": "BALANCE",
                    "member_id": mid,
                    "available": 0,
                    "held": 0,
                    "lifetime_earned": 0,
                    "lifetime_redeemed": 0,
                    "enrolled_at": now,
                    "updated_at": now,
                    "gsi1pk": f"P#{program_id}#BALANCES",
                    "gsi1sk": mid,
                }
            )
        )
        kinds = list(identifiers)
        for kind in kinds:
            guard = {"pk": ident_pk(program_id, kind, identifiers[kind]), "sk": "IDENT", "member_id": mid}
            put = self._put_new(guard)
            put["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            items.append(put)
        items.append(event_put(self.table, program_id, "member.enrolled", {
            "member_id": mid, "external_id": member.get("external_id"), "country": member.get("country"),
            "enrolled_at": now}, now))
        try:
            positions.write(lambda: self.ddb.transact_write_items(TransactItems=items), items, self.ddb, self.table)
        except ClientError as err:
            if err.response["Error"]["Code"] != "TransactionCanceledException":
                _raise_storage(err)
            reasons = _reasons(err)
            offset = 0
            if idempotency:
                offset = 1
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    return self._replay(program_id, "enroll", idempotency[0], reasons[0])
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
                TableName=self.table, Key=_key(ident_pk(program_id, kind, value), "IDENT"), ConsistentRead=True
            )
            item = out.get("Item", {})
        return from_item(item).get("member_id", "unknown")

    def get_member(self, program_id: str, member_id: str) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table, Key=_key(member_pk(program_id, member_id), "MEMBER"))
        return _strip_keys(from_item(out["Item"])) if "Item" in out else None

    def get_members(self, program_id: str, member_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The members of the program among ``member_ids``, by id (BatchGetItem, 100 at a time)."""
        found: dict[str, dict[str, Any]] = {}
        keys = [_key(member_pk(program_id, m), "MEMBER") for m in dict.fromkeys(member_ids)]
        for start in range(0, len(keys), 100):
            pending = {self.table: {"Keys": keys[start : start + 100]}}
            while pending:
                out = self.ddb.batch_get_item(RequestItems=pending)
                for raw in out.get("Responses", {}).get(self.table, []):
                    member = _strip_keys(from_item(raw))
                    found[member["id"]] = member
                pending = out.get("UnprocessedKeys") or {}
        return found

    def find_member_id(self, program_id: str, kind: str, value: str) -> str | None:
        out = self.ddb.get_item(TableName=self.table, Key=_key(ident_pk(program_id, kind, value), "IDENT"))
        return from_item(out["Item"])["member_id"] if "Item" in out else None

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
    ) -> Replay | None:
        """Write one posting atomically with its idempotency guard and the balances it moves.

        ``idempotency`` is ``(kind, reference, fingerprint)``. With ``posting=None`` (a purchase
        worth zero points) only the guard is written, after checking the member exists.
        ``extra`` items (an order and its state change) join the same transaction; when one of
        their conditions fails, nothing is written and ``StaleCondition`` names its index.
        Returns None when written, or the Replay of the first request with this reference.
        """
        kind, reference, fingerprint = idempotency
        pk = member_pk(program_id, member_id)
        guard_result = dict(result, member_id=member_id)
        if posting is not None:
            guard_result["posting_id"] = posting.id
        items = [self._idem_put(program_id, kind, reference, fingerprint, guard_result, now)]
        if posting is None:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": _key(pk, "BALANCE"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            )
        else:
            data = _posting_data(posting)
            entry_sk = f"ENTRY#{posting.id}"
            record = audit.new_record(
                program_id, f"posting.{posting.type}", "posting", posting.id, now,
                {k: data[k] for k in ("member_id", "debit", "credit", "points", "reference", "reason")},
                subject_hash=audit.content_hash(data),
            )
            entry = {"pk": pk, "sk": entry_sk, **data, **journal_keys(program_id, posting.created_at, posting.id)}
            items.append(audited(self._put_new(entry), self.table, record, (pk, entry_sk)))
            items.append(self._balance_update(pk, posting, now))
            items.extend(self._account_updates(program_id, posting))
            if posting.type == PostingType.EARN:
                items.append(event_put(self.table, program_id, "points.earned", {
                    "member_id": member_id, "points": posting.points, "posting_id": posting.id,
                    "reference": posting.reference, "reason": posting.reason}, now))
        first_extra = len(items)
        items.extend(extra or [])
        try:
            sent = with_audit(items)
            positions.write(lambda: self.ddb.transact_write_items(TransactItems=sent), sent, self.ddb, self.table)
        except ClientError as err:
            if err.response["Error"]["Code"] != "TransactionCanceledException":
                _raise_storage(err)
            reasons = _reasons(err)
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return self._replay(program_id, kind, reference, reasons[0])
            for i, reason in enumerate(reasons[first_extra:]):
                if reason.get("Code") == "ConditionalCheckFailed":
                    raise _stale(i, reason) from err
            idx = 1 if posting is None else 2
            if len(reasons) > idx and reasons[idx].get("Code") == "ConditionalCheckFailed":
                reason = reasons[idx]
                if posting is None or not self._balance_exists(pk, reason):
                    raise MemberNotFound(f"member {member_id} does not exist") from err
                raise InsufficientPoints(
                    f"the member has fewer than {posting.points} available points"
                ) from err
            if any(r.get("Code") in ("TransactionConflict", "ThrottlingError") for r in reasons):
                raise Contention("a concurrent posting touched the same balance; retry") from err
            raise
        return None

    def _balance_exists(self, pk: str, reason: dict[str, Any]) -> bool:
        if reason.get("Item"):
            return True
        out = self.ddb.get_item(TableName=self.table, Key=_key(pk, "BALANCE"), ConsistentRead=True)
        return "Item" in out

    def _balance_update(self, pk: str, posting: Posting, now: str) -> dict[str, Any]:
        values: dict[str, Any] = {":now": {"S": now}}
        adds = []
        condition = ["attribute_exists(pk)"]
        for account, delta in posting.deltas().items():
            field = MEMBER_ACCOUNTS.get(account)
            if field is None:
                continue
            adds.append(f"{field} :{field}")
            values[f":{field}"] = {"N": str(delta)}
            if delta < 0:
                condition.append(f"{field} >= :need_{field}")
                values[f":need_{field}"] = {"N": str(-delta)}
        earned = _lifetime_earned(posting)
        if earned:
            adds.append("lifetime_earned :earned")
            values[":earned"] = {"N": str(earned)}
        if Account.PROGRAM_REDEEMED in (posting.credit, posting.debit):
            adds.append("lifetime_redeemed :redeemed")
            sign = 1 if posting.credit == Account.PROGRAM_REDEEMED else -1
            values[":redeemed"] = {"N": str(sign * posting.points)}
        return {
            "Update": {
                "TableName": self.table,
                "Key": _key(pk, "BALANCE"),
                "UpdateExpression": "SET updated_at = :now ADD " + ", ".join(adds),
                "ConditionExpression": " AND ".join(condition),
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _account_updates(self, program_id: str, posting: Posting) -> list[dict[str, Any]]:
        shard = account_shard(posting.id)
        updates = []
        for account, delta in posting.deltas().items():
            # member accounts are counted here too (all members together), so the totals always sum to 0
            updates.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _key(f"P#{program_id}#ACCT#{shard}", str(account)),
                        "UpdateExpression": "ADD balance :d",
                        "ExpressionAttributeValues": {":d": {"N": str(delta)}},
                    }
                }
            )
        return updates

    def get_balance(self, program_id: str, member_id: str, consistent: bool = True) -> dict[str, int] | None:
        out = self.ddb.get_item(
            TableName=self.table, Key=_key(member_pk(program_id, member_id), "BALANCE"), ConsistentRead=consistent
        )
        if "Item" not in out:
            return None
        data = from_item(out["Item"])
        return {k: data.get(k, 0) for k in ("available", "held", "lifetime_earned", "lifetime_redeemed")}

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
            params["ExclusiveStartKey"] = _key(pk, _decode_cursor(cursor, prefix))
        out = self.ddb.query(**params)
        items = [_strip_keys(from_item(i)) for i in out.get("Items", [])]
        last = out.get("LastEvaluatedKey")
        return items, (_encode_cursor(last["sk"]["S"]) if last else None)

    def program_accounts(self, program_id: str) -> dict[str, int]:
        """Sum of each program account over its shards."""
        totals: dict[str, int] = {}
        for shard in range(ACCOUNT_SHARDS):
            out = self.ddb.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"P#{program_id}#ACCT#{shard}"}},
                ConsistentRead=True,
            )
            for item in out.get("Items", []):
                data = from_item(item)
                totals[data["sk"]] = totals.get(data["sk"], 0) + data.get("balance", 0)
        return totals

    # ------------------------------------------------------------ helpers

    def _put_new(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": to_item(data),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _idem_put(
        self, program_id: str, kind: str, reference: str, fingerprint: str, result: dict[str, Any], now: str
    ) -> dict[str, Any]:
        put = self._put_new(
            {
                "pk": idem_pk(program_id, kind, reference),
                "sk": "IDEM",
                "fingerprint": fingerprint,
                "result": result,
                "created_at": now,
            }
        )
        put["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return put

    def _replay(self, program_id: str, kind: str, reference: str, reason: dict[str, Any]) -> Replay:
        item = reason.get("Item")
        if not item:
            out = self.ddb.get_item(
                TableName=self.table, Key=_key(idem_pk(program_id, kind, reference), "IDEM"), ConsistentRead=True
            )
            item = out["Item"]
        data = from_item(item)
        return Replay(fingerprint=data["fingerprint"], result=data["result"])


def _lifetime_earned(posting: Posting) -> int:
    if posting.type == PostingType.EARN:
        return posting.points
    if posting.type == PostingType.ADJUSTMENT and posting.credit == Account.MEMBER_AVAILABLE:
        return posting.points
    return 0


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


def _encode_cursor(sk: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"sk": sk}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, prefix: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sk = json.loads(raw)["sk"]
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise MalformedRequest("the cursor is not one this API returned", parameter="cursor") from err
    if not isinstance(sk, str) or not sk.startswith(prefix):
        raise MalformedRequest("the cursor is not one this API returned", parameter="cursor")
    return sk

