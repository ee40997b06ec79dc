"""API Gateway REQUEST authorizer: ``Authorization: Bearer trk_…`` → program, key id and scope.

Any missing, malformed, unknown or revoked key is answered 401 (raising ``Unauthorized``); the
scope is enforced by each handler, which knows what its route needs. The program id is also the
request's usage identifier: every key of a program shares the program's rate limit (usage plan).
"""

from __future__ import annotations

from typing import Any

from treue import runtime
from treue.core import keys
from treue.handlers.logs import Logger

logger = Logger()


def _bearer(headers: dict[str, str] | None) -> str | None:
    for name, value in (headers or {}).items():
        if name.lower() == "authorization" and value:
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _allow_all(method_arn: str) -> str:
    # arn:aws:execute-api:region:account:api-id/stage/METHOD/path → …/api-id/stage/*/*
    prefix, _, rest = method_arn.partition("/")
    stage = rest.split("/", 1)[0] if rest else "*"
    return f"{prefix}/{stage}/*/*"


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = _bearer(event.get("headers"))
    parsed = keys.parse(token) if token else None
    record = runtime.store().get_api_key(parsed[0]) if parsed else None
    if record is None or parsed is None or not keys.verify(record, parsed[1]):
        logger.info("rejected API key", extra={"key_id": parsed[0] if parsed else None})
        raise Exception("Unauthorized")  # API Gateway answers 401 (gateway response UNAUTHORIZED)
    return {
        "principalId": record.key_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": _allow_all(event["methodArn"])}
            ],
        },
        "context": {"program_id": record.program_id, "key_id": record.key_id, "scope": str(record.scope)},
        # the usage plan key API Gateway throttles by (API key source AUTHORIZER): one per program
        "usageIdentifierKey": record.program_id,
    }
