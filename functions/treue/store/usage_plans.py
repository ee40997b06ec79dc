"""API Gateway usage plan keys: one per program, so the gateway throttles each program on its own.

The key's value is the program id, which the authorizer returns as the request's usage identifier
(the API's key source is AUTHORIZER: clients never send it, so it need not be secret). Run with the
operator's credentials (the CLI, the twin's seeding): no function of the stack creates keys.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

KEY_NAME = "treue-{program_id}"


class UsagePlan:
    def __init__(self, usage_plan_id: str, client: Any = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("apigateway")
        self.usage_plan_id = usage_plan_id
        self.apigateway = client

    def enroll(self, program_id: str) -> str:
        """Add the program's key to the plan (created when missing); the key's id. Idempotent."""
        name = KEY_NAME.format(program_id=program_id)
        try:
            key_id = self.apigateway.create_api_key(
                name=name, value=program_id, enabled=True,
                description=f"Usage identifier of Treue program {program_id} (rate limits)")["id"]
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConflictException":
                raise
            key_id = self._key_id(program_id, name)
        try:
            self.apigateway.create_usage_plan_key(usagePlanId=self.usage_plan_id, keyId=key_id, keyType="API_KEY")
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConflictException":  # already in the plan
                raise
        return key_id

    def enrolled(self) -> set[str]:
        """The usage identifiers (program ids) with a key in the plan."""
        values: set[str] = set()
        params: dict[str, Any] = {"usagePlanId": self.usage_plan_id, "limit": 500}
        while True:
            out = self.apigateway.get_usage_plan_keys(**params)
            values.update(k["value"] for k in out.get("items", []) if k.get("value"))
            if not out.get("position"):
                return values
            params["position"] = out["position"]

    def _key_id(self, program_id: str, name: str) -> str:
        params: dict[str, Any] = {"nameQuery": name, "includeValues": True, "limit": 500}
        while True:
            out = self.apigateway.get_api_keys(**params)
            for key in out.get("items", []):
                if key.get("value") == program_id:
                    return key["id"]
            if not out.get("position"):
                raise LookupError(f"API Gateway has a key with the value {program_id} that cannot be listed")
            params["position"] = out["position"]
