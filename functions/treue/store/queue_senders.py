"""Accrual queue senders: IAM principal ids bound to programs.

    pk                         sk                 what
    QSENDER#<principal id>     QSENDER            the binding: program, description (how a message finds its program)
    P#<pid>#QSENDER            <principal id>     the same binding in the program's list

Like API keys, the first item is not under the program prefix: the principal is how the program is
found. Both items are written and deleted together in one transaction with the audit record.
"""

from __future__ import annotations

from typing import Any

from treue.core import audit
from treue.errors import Contention, QueueSenderTaken, StaleCondition
from treue.store.dynamodb import OnTable
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import queue_sender_pk, queue_senders_pk
from treue.store.table import audit_put


def _principal_key(principal_id: str) -> dict[str, Any]:
    return item_key(queue_sender_pk(principal_id), "QSENDER")


class QueueSenderStore(OnTable):

    def get(self, principal_id: str, consistent: bool = True) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table, Key=_principal_key(principal_id), ConsistentRead=consistent)
        return strip_keys(from_item(out["Item"])) if "Item" in out else None

    def list(self, program_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page = {"ExclusiveStartKey": start} if start else {}
            out = self.ddb.query(TableName=self.table, KeyConditionExpression="pk = :pk",
                                 ExpressionAttributeValues={":pk": {"S": queue_senders_pk(program_id)}},
                                 ConsistentRead=True, **page)
            items += [strip_keys(from_item(i)) for i in out.get("Items", [])]
            start = out.get("LastEvaluatedKey")
            if not start:
                return items

    def put(self, binding: dict[str, Any], new: bool) -> None:
        """Write the binding: ``new`` only while no program has the principal, else only while this one has it.

        A lost race raises QueueSenderTaken (another program) or Contention (the same one, concurrently)."""
        pid, principal = binding["program_id"], binding["principal_id"]
        if new:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {"ConditionExpression": "program_id = :pid",
                         "ExpressionAttributeValues": {":pid": {"S": pid}}}
        record = audit.new_record(pid, "queue_sender.registered" if new else "queue_sender.updated",
                                  "queue_sender", principal, binding["updated_at"],
                                  {"description": binding["description"]})
        try:
            self.store.transact([
                {"Put": {"TableName": self.table, "Item": {**_principal_key(principal), **to_item(binding)},
                         "ReturnValuesOnConditionCheckFailure": "ALL_OLD", **condition}},
                {"Put": {"TableName": self.table,
                         "Item": {**item_key(queue_senders_pk(pid), principal), **to_item(binding)}}},
                audit_put(self.table, record),
            ])
        except StaleCondition as err:
            current = err.item or self.get(principal)
            if current is not None and current.get("program_id") != pid:
                raise QueueSenderTaken(f"principal {principal} sends for another program; a principal sends for "
                                       "one program only (delete it there first)") from err
            raise Contention(f"principal {principal} was registered or deleted concurrently; retry") from err

    def delete(self, program_id: str, principal_id: str, now: str) -> bool:
        """Delete the program's binding of the principal; False when the program has none."""
        record = audit.new_record(program_id, "queue_sender.deleted", "queue_sender", principal_id, now, {})
        try:
            self.store.transact([
                {"Delete": {"TableName": self.table, "Key": _principal_key(principal_id),
                            "ConditionExpression": "program_id = :pid",
                            "ExpressionAttributeValues": {":pid": {"S": program_id}}}},
                {"Delete": {"TableName": self.table,
                            "Key": item_key(queue_senders_pk(program_id), principal_id)}},
                audit_put(self.table, record),
            ])
        except StaleCondition:
            return False
        return True
