"""The occasions schedule's storage (``treue.logic.occasions``): which programs have birthday or anniversary
rules, how far the daily walk over each program's members got, and that walk's pages.

    pk          sk      what
    OCCASIONS   <pid>   ``program_id``; ``changed_at``: when a birthday rule or a ``membership_years`` milestone
                        rule of the program was last created or changed (the rules store writes the whole item
                        then, in the rule's transaction: the day's walk starts again); ``done``: the last day
                        (YYYY-MM-DD, UTC) whose walk completed; ``walking``/``after``: the day being walked and the
                        last member id paid so far (a walk longer than one run continues from there)

One partition for all programs: it changes when such a rule changes and once a day per program, and one query
of it is all a run costs when nothing is due. The members are read from the program's balances on the index
(``P#<pid>#BALANCES``, in member id order, with ``enrolled_at``), their profiles (``birth_date``) by
BatchGetItem.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from treue.store.dynamodb import OnTable
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import GSI, GSI_PK, OCCASIONS_PK, balances_keys

# What makes a rule an occasion rule: its trigger, or a milestone rule's metric
OCCASION_TRIGGERS = ("birthday",)
OCCASION_MILESTONES = ("membership_years",)


def occasional(rule: dict[str, Any]) -> bool:
    """Whether the rule (an item's or a definition's fields) is paid by the occasions schedule."""
    if rule.get("trigger") in OCCASION_TRIGGERS:
        return True
    milestone = (rule.get("conditions") or {}).get("milestone") or {}
    return rule.get("trigger") == "milestone" and milestone.get("metric") in OCCASION_MILESTONES


def marker_put(table: str, program_id: str, now: str) -> dict[str, Any]:
    """The transaction item that lists the program for the schedule and makes it walk its members again."""
    item = {"program_id": program_id, "changed_at": now}
    return {"Put": {"TableName": table, "Item": {**item_key(OCCASIONS_PK, program_id), **to_item(item)}}}


class OccasionStore(OnTable):
    """The programs the schedule walks, its progress per program, and the members' pages."""

    def programs(self) -> list[dict[str, Any]]:
        """Every program listed, with its progress (``program_id``, ``changed_at``, ``done``, ``walking``,
        ``after``)."""
        params: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "pk = :pk",
                                  "ExpressionAttributeValues": {":pk": {"S": OCCASIONS_PK}}}
        found: list[dict[str, Any]] = []
        while True:
            out = self.ddb.query(**params)
            found.extend(strip_keys(from_item(i)) for i in out.get("Items", []))
            if "LastEvaluatedKey" not in out:
                return found
            params["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def save(self, program_id: str, changed_at: str, now: str, *, done: str | None = None,
             walking: str | None = None, after: str | None = None) -> bool:
        """Record the walk's progress: ``done`` (the day completed: the walk's place is dropped) or ``walking``
        and ``after``; False, writing nothing, when the program's occasion rules changed since it was read
        (``changed_at``): the next run walks again."""
        if done is not None:
            expression = "SET done = :done, updated_at = :now REMOVE walking, #after"
            values = {":done": {"S": done}}
        else:
            if walking is None or after is None:
                raise ValueError("a walk's place is its day and the member after which it continues")
            expression = "SET walking = :walking, #after = :after, updated_at = :now"
            values = {":walking": {"S": walking}, ":after": {"S": after}}
        try:
            self.ddb.update_item(
                TableName=self.table, Key=item_key(OCCASIONS_PK, program_id), UpdateExpression=expression,
                ConditionExpression="changed_at = :changed", ExpressionAttributeNames={"#after": "after"},
                ExpressionAttributeValues={**values, ":now": {"S": now}, ":changed": {"S": changed_at}})
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def members(self, program_id: str, after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` members after the member id ``after`` (all from the first without it), in member id
        order, each ``{"member_id", "enrolled_at"}``; and the last id of the page, None when none follow."""
        index = balances_keys(program_id, "")
        params: dict[str, Any] = {
            "TableName": self.table, "IndexName": GSI, "Limit": limit,
            "KeyConditionExpression": "gsi1pk = :pk", "ExpressionAttributeValues": {":pk": {"S": index[GSI_PK]}},
            "ProjectionExpression": "member_id, enrolled_at",
        }
        if after:
            params["KeyConditionExpression"] += " AND gsi1sk > :after"
            params["ExpressionAttributeValues"][":after"] = {"S": after}
        out = self.ddb.query(**params)
        page = [from_item(i) for i in out.get("Items", [])]
        return page, (page[-1]["member_id"] if page and "LastEvaluatedKey" in out else None)

    def profiles(self, program_id: str, member_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The members' profiles (``birth_date``, ``created_at``…) by id (BatchGetItem)."""
        return self.store.get_members(program_id, member_ids)
