"""Webhook endpoints of a program and their delivery health.

    pk                      sk                 what
    P#<pid>#WEBHOOK         <endpoint id>      url, event types, sealed secrets, status, last attempts

Secrets are sealed with the codes key (KMS, encryption context = program and endpoint), like reward codes.
"""

from __future__ import annotations

from typing import Any

from treue.core import audit
from treue.core.records import WebhookEndpoint, WebhookSecret
from treue.core.statuses import EndpointStatus
from treue.errors import StaleCondition, WebhookNotFound
from treue.store.dynamodb import OnTable
from treue.store.items import from_item, item_key, strip_keys, to_item
from treue.store.schema import webhook_pk
from treue.store.table import audit_put


class WebhookStore(OnTable):

    def create(self, endpoint: WebhookEndpoint) -> None:
        pid, eid = endpoint.program_id, endpoint.id
        record = audit.new_record(pid, "webhook.created", "webhook", eid, endpoint.created_at,
                                  {"url": endpoint.url, "event_types": list(endpoint.event_types)})
        self.store.transact([self.store._put_new({"pk": webhook_pk(pid), "sk": eid, **endpoint.item()}),
                             audit_put(self.table, record)])

    def list(self, program_id: str) -> list[WebhookEndpoint]:
        out = self.ddb.query(TableName=self.table, KeyConditionExpression="pk = :pk",
                             ExpressionAttributeValues={":pk": {"S": webhook_pk(program_id)}}, ConsistentRead=True)
        return [WebhookEndpoint.from_item(strip_keys(from_item(i))) for i in out.get("Items", [])]

    def get(self, program_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        out = self.ddb.get_item(TableName=self.table, Key=item_key(webhook_pk(program_id), endpoint_id),
                                ConsistentRead=True)
        return WebhookEndpoint.from_item(strip_keys(from_item(out["Item"]))) if "Item" in out else None

    def require(self, program_id: str, endpoint_id: str) -> WebhookEndpoint:
        found = self.get(program_id, endpoint_id)
        if found is None:
            raise WebhookNotFound(f"webhook endpoint {endpoint_id[:40]} does not exist")
        return found

    def delete(self, program_id: str, endpoint_id: str, now: str) -> None:
        record = audit.new_record(program_id, "webhook.deleted", "webhook", endpoint_id, now, {})
        try:
            self.store.transact([
                {"Delete": {"TableName": self.table, "Key": item_key(webhook_pk(program_id), endpoint_id),
                            "ConditionExpression": "attribute_exists(pk)"}},
                audit_put(self.table, record),
            ])
        except StaleCondition as err:
            raise WebhookNotFound(f"webhook endpoint {endpoint_id[:40]} does not exist") from err

    def set_secrets(self, program_id: str, endpoint_id: str, sealed: tuple[WebhookSecret, ...], now: str) -> None:
        record = audit.new_record(program_id, "webhook.secret_rotated", "webhook", endpoint_id, now,
                                  {"secrets": len(sealed)})
        self.store.transact([
            {"Update": {"TableName": self.table, "Key": item_key(webhook_pk(program_id), endpoint_id),
                        "UpdateExpression": "SET secrets = :s, updated_at = :now",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":s": to_item({"v": [s.item() for s in sealed]})["v"],
                                                      ":now": {"S": now}}}},
            audit_put(self.table, record),
        ])

    def record_attempt(self, program_id: str, endpoint_id: str, ok: bool, now: str,
                       detail: dict[str, Any]) -> None:
        """Success: status active, failures reset. Failure: status failing, consecutive failures + 1."""
        key = item_key(webhook_pk(program_id), endpoint_id)
        if ok:
            expression = ("SET #s = :active, consecutive_failures = :zero, last_attempt_at = :now, "
                          "last_success_at = :now, deliveries = if_not_exists(deliveries, :zero) + :one")
            values = {":active": {"S": EndpointStatus.ACTIVE}, ":zero": {"N": "0"}, ":one": {"N": "1"},
                      ":now": {"S": now}}
        else:
            expression = ("SET #s = :failing, last_attempt_at = :now, last_failure = :f, "
                          "consecutive_failures = if_not_exists(consecutive_failures, :zero) + :one")
            values = {":failing": {"S": EndpointStatus.FAILING}, ":zero": {"N": "0"}, ":one": {"N": "1"},
                      ":now": {"S": now},
                      ":f": to_item({"v": {**detail, "at": now}})["v"]}
        self.store.update_if(Key=key, UpdateExpression=expression, ConditionExpression="attribute_exists(pk)",
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues=values)  # None: the endpoint was deleted meanwhile
