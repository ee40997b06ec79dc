"""A program's settings and their versions (``PATCH /v1/program``, ``treue.logic.program``).

    pk                      sk                what
    PROGRAM#<pid>           PROGRAM           the current settings, with their ``version`` (``treue.store.dynamodb``)
    P#<pid>#PROGRAM         V#<version>       one version: the whole settings at it, who, when, what changed

A change is one transaction: the current item (on condition that it is still the version read), the new
version's item (never written again) and the audit record, which vouches for the version item by its hash.
A program as created has version 1 and no version item; the transaction of its first change writes version 1's
item too, from the settings it read (programs made before versions existed have no ``version`` attribute:
they are version 1).
"""

from __future__ import annotations

from typing import Any

from treue.core import audit
from treue.core.programs import Program
from treue.store.dynamodb import OnTable
from treue.store.items import decode_cursor, encode_cursor, from_item, item_key, strip_keys, to_item
from treue.store.schema import program_pk, program_version_sk, program_versions_pk
from treue.store.table import audit_put

VERSION_PREFIX = "V#"


def _version_data(program: Program, changes: dict[str, Any]) -> dict[str, Any]:
    return {**program.__dict__, "changes": changes}


class ProgramStore(OnTable):

    def current(self, program_id: str) -> Program | None:
        """The current settings, read consistently (the version a change is conditioned on)."""
        out = self.ddb.get_item(TableName=self.table, Key=item_key(program_pk(program_id), "PROGRAM"),
                                ConsistentRead=True)
        return Program(**strip_keys(from_item(out["Item"]))) if "Item" in out else None

    def write_version(self, read: Program, new: Program, changes: dict[str, Any]) -> bool:
        """Make ``new`` (version ``read.version + 1``) the current settings; False when the current item is no
        longer version ``read.version`` (a concurrent change landed first: nothing was written)."""
        pid = read.id
        if new.version != read.version + 1:
            raise ValueError("a change writes the version after the one it read")
        condition = "version = :read" if read.version > 1 else "attribute_not_exists(version) OR version = :read"
        items: list[dict[str, Any]] = [{
            "Put": {
                "TableName": self.table,
                "Item": {**item_key(program_pk(pid), "PROGRAM"), **to_item(new.__dict__)},
                "ConditionExpression": f"attribute_exists(pk) AND ({condition})",
                "ExpressionAttributeValues": {":read": {"N": str(read.version)}},
            }
        }]
        if read.version == 1:  # the settings as created, kept as version 1 by the first change
            items.append(self._version_put(read, {}))
        data = _version_data(new, changes)
        record = audit.new_record(pid, "program.updated", "program", pid, new.updated_at,
                                  {"version": new.version, "changes": changes},
                                  subject_hash=audit.content_hash(data))
        sk = program_version_sk(new.version)
        items.append(self._version_put(new, changes))
        items.append(audit_put(self.table, record, (program_versions_pk(pid), sk)))
        return self.store.transact_first(items)  # False: the settings changed since they were read

    def _version_put(self, program: Program, changes: dict[str, Any]) -> dict[str, Any]:
        key = item_key(program_versions_pk(program.id), program_version_sk(program.version))
        return {"Put": {"TableName": self.table, "Item": {**key, **to_item(_version_data(program, changes))},
                        "ConditionExpression": "attribute_not_exists(pk)"}}

    def version(self, program_id: str, version: int) -> dict[str, Any] | None:
        out = self.ddb.get_item(TableName=self.table,
                                Key=item_key(program_versions_pk(program_id), program_version_sk(version)))
        return strip_keys(from_item(out["Item"])) if "Item" in out else None

    def versions(self, program_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Versions newest first, one page, and the cursor of the next (None on the last)."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": {"S": program_versions_pk(program_id)}, ":p": {"S": VERSION_PREFIX}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            params["ExclusiveStartKey"] = item_key(program_versions_pk(program_id),
                                                   decode_cursor(cursor, VERSION_PREFIX))
        out = self.ddb.query(**params)
        last = out.get("LastEvaluatedKey")
        return [strip_keys(from_item(i)) for i in out.get("Items", [])], (encode_cursor(last["sk"]["S"]) if last
                                                                           else None)
