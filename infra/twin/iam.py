"""Each function's AWS calls checked against its own role, as AWS would check them.

moto does not enforce IAM the way AWS does, so a green suite on moto says nothing about whether a
role allows what its function calls. This module reads every function's role policies from the
synthesized template, resolves their resources to the physical resources of the run (the twin's, or
the ones an integration test created), and checks each boto3 call before it is sent:

- the call is mapped to the IAM actions and resource ARNs AWS authorizes it as: every item of a
  ``TransactWriteItems`` as ``dynamodb:PutItem``/``UpdateItem``/``DeleteItem``/``ConditionCheckItem``
  on its table, ``BatchGetItem``/``BatchWriteItem`` per table, a ``Query`` on an index as the index
  ARN, KMS calls on the key's ARN (also a ``Decrypt`` that names no key), SQS on the queue ARN,
  S3 objects as ``bucket/key``, Step Functions executions as execution ARNs;
- the role's statements are evaluated with AWS's rules: an explicit Deny wins, otherwise some Allow
  must match the action (case-insensitive, ``*``/``?`` wildcards), the resource (case-sensitive
  wildcards), ``NotAction``/``NotResource``, and the condition operators the stack uses;
- KMS calls also need the key policy to allow the role or delegate to the account's IAM policies;
- a call that is not allowed raises ``AccessDenied`` (a ``botocore`` ``ClientError`` with the code the
  service uses) exactly where AWS would answer it, and is recorded in ``denials``.

Calls made with no function identity (test set-up, the twin's own provisioning) are not checked.
"""

from __future__ import annotations

import base64
import contextvars
import json
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
UNRESOLVED = "unresolved:"  # a resource the run does not have: matches no request

# The function whose code is running (integration tests run many functions in one process).
current: contextvars.ContextVar[FunctionPolicy | None] = contextvars.ContextVar("treue_iam_function", default=None)


# --------------------------------------------------------------------------------------------- policies
@dataclass
class FunctionPolicy:
    """One function's identity-based statements, with intrinsics still in them (resolved per call)."""

    logical_id: str
    handler: str
    role: str
    statements: list[dict[str, Any]]
    environment: dict[str, Any]
    # each KMS key of the template: (its ARN, as an intrinsic or resolved, and its key policy's statements)
    key_policies: list[tuple[Any, list[dict[str, Any]]]] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)  # logical id → resource type, for resolving
    actual_env: dict[str, str] | None = None  # the environment the function was invoked with, if not this one

    def resolved(self, resolve: Callable[[Any], Any]) -> FunctionPolicy:
        """The same policy with every intrinsic resolved (for a worker process that knows no template)."""
        return FunctionPolicy(self.logical_id, self.handler, self.role, resolve(self.statements), {},
                              [(resolve(arn), resolve(st)) for arn, st in self.key_policies], {})


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if "Ref" in node:
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            found.add(node["Fn::GetAtt"][0])
        for v in node.values():
            found |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= _refs(v)
    return found


def load(template: dict[str, Any] | str | Path) -> dict[str, FunctionPolicy]:
    """Every Lambda function's policy statements (inline role policies and AWS::IAM::Policy resources
    attached to its role), keyed by the function's logical id. AWS managed policies (basic execution,
    X-Ray) grant logs and tracing only, which the functions never call through boto3."""
    if not isinstance(template, dict):
        template = json.loads(Path(template).read_text())
    res: dict[str, Any] = template["Resources"]
    by_role: dict[str, list[dict[str, Any]]] = {}
    for lid, r in res.items():
        if r["Type"] == "AWS::IAM::Role":
            for p in r["Properties"].get("Policies", []) or []:
                by_role.setdefault(lid, []).extend(_statements(p["PolicyDocument"]))
        if r["Type"] == "AWS::IAM::Policy":
            for role in r["Properties"].get("Roles", []):
                if isinstance(role, dict) and "Ref" in role:
                    by_role.setdefault(role["Ref"], []).extend(_statements(r["Properties"]["PolicyDocument"]))
    key_policies = [({"Fn::GetAtt": [lid, "Arn"]}, _statements(r["Properties"].get("KeyPolicy", {})))
                    for lid, r in res.items() if r["Type"] == "AWS::KMS::Key"]
    types = {lid: r["Type"] for lid, r in res.items()}
    out = {}
    for lid, r in res.items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        role = r["Properties"]["Role"]
        role_lid = role["Fn::GetAtt"][0] if isinstance(role, dict) and "Fn::GetAtt" in role else str(role)
        out[lid] = FunctionPolicy(lid, r["Properties"]["Handler"], role_lid, by_role.get(role_lid, []),
                                  r["Properties"].get("Environment", {}).get("Variables", {}), key_policies, types)
    return out


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document.get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


# --------------------------------------------------------------------------------------------- resolving
class EnvironmentResolver:
    """Resolves a function's policy intrinsics from what its environment variables are in this run.

    The template says ``TABLE_NAME = {"Ref": "StorageTable…"}``; the run says ``TABLE_NAME=treue-test``;
    so ``StorageTable…`` is the table ``treue-test`` and its ARN follows. A resource the function's
    environment does not name stays unresolved and matches nothing (the function cannot reach it)."""

    def __init__(self, template_env: dict[str, Any], actual_env: dict[str, str], region: str,
                 types: dict[str, str]) -> None:
        self.region = region
        self.physical: dict[tuple[str, str], str] = {}
        for name, value in template_env.items():
            if name not in actual_env or not isinstance(value, dict):
                continue
            if "Ref" in value:
                self.physical[(value["Ref"], "Ref")] = actual_env[name]
            elif "Fn::GetAtt" in value:
                lid, attr = value["Fn::GetAtt"]
                self.physical[(lid, attr)] = actual_env[name]
        self.types = types

    def ref(self, lid: str) -> str:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com"}
        if lid in pseudo:
            return pseudo[lid]
        return self.physical.get((lid, "Ref"), UNRESOLVED + lid)

    def get_att(self, lid: str, attr: str) -> str:
        if (lid, attr) in self.physical:
            return self.physical[(lid, attr)]
        ref = self.physical.get((lid, "Ref"))
        kind = self.types.get(lid, "")
        if ref is not None and attr == "Arn":
            if kind == "AWS::DynamoDB::Table":
                return f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{ref}"
            if kind == "AWS::SQS::Queue":
                return queue_arn(ref, self.region)
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{ref}"
            if kind in ("AWS::StepFunctions::StateMachine", "AWS::KMS::Key") and ref.startswith("arn:"):
                return ref
        if kind == "AWS::StepFunctions::StateMachine" and attr == "Name":
            arn = self.physical.get((lid, "Ref")) or self.physical.get((lid, "Arn"))
            if arn:
                return arn.rsplit(":", 1)[-1]
        return UNRESOLVED + lid

    def resolve(self, node: Any) -> Any:
        return resolve_with(self, node)


def resolve_with(resolver: Any, node: Any) -> Any:
    """Resolve the intrinsics the stack's policies use with ``resolver.ref``/``resolver.get_att``."""
    if isinstance(node, dict):
        if "Ref" in node:
            return _safe(lambda: resolver.ref(node["Ref"]), node["Ref"])
        if "Fn::GetAtt" in node:
            return _safe(lambda: resolver.get_att(*node["Fn::GetAtt"]), node["Fn::GetAtt"][0])
        if "Fn::Join" in node:
            sep, parts = node["Fn::Join"]
            return sep.join(str(resolve_with(resolver, p)) for p in parts)
        if "Fn::Select" in node:
            index, items = node["Fn::Select"]
            return resolve_with(resolver, items)[int(index)]
        if "Fn::Split" in node:
            sep, value = node["Fn::Split"]
            return str(resolve_with(resolver, value)).split(sep)
        return {k: resolve_with(resolver, v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_with(resolver, v) for v in node]
    return node


def _safe(fn: Callable[[], str], lid: str) -> str:
    try:
        return fn()
    except KeyError:
        return UNRESOLVED + lid


def queue_arn(url: str, region: str) -> str:
    name = urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]
    return f"arn:aws:sqs:{region}:{ACCOUNT}:{name}"


def from_environment(policy: FunctionPolicy, region: str) -> Callable[[Any], Any]:
    """A resolver of the policy's intrinsics from the process environment of this moment (integration tests)."""
    env = policy.actual_env if policy.actual_env is not None else dict(os.environ)
    resolver = EnvironmentResolver(policy.environment, env, region, policy.types)
    return resolver.resolve


def already_resolved(policy: FunctionPolicy, region: str) -> Callable[[Any], Any]:
    """For policies resolved before they reached the process (the twin's workers)."""
    return lambda node: node


# --------------------------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    key_arn: str | None = None  # for KMS: the key whose key policy must also allow it


def _table_arn(region: str, table: str) -> str:
    if table.startswith("arn:"):
        return table
    return f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{table}"


def _key_arn(region: str, key: str) -> str:
    if key.startswith("arn:"):
        return key
    if key.startswith("alias/"):
        return f"arn:aws:kms:{region}:{ACCOUNT}:{key}"
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{key}"


_DDB_ITEM = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem",
             "Get": "GetItem"}


def requests_of(service: str, operation: str, params: dict[str, Any], region: str) -> list[Request]:
    """The (action, resource) pairs AWS authorizes this call as."""
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            out = []
            for item in params.get("TransactItems", []):
                (kind, body), = item.items()
                out.append(Request(f"dynamodb:{_DDB_ITEM[kind]}", _table_arn(region, body["TableName"])))
            return out
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [Request(f"dynamodb:{operation}", _table_arn(region, t)) for t in params.get("RequestItems", {})]
        table = params.get("TableName")
        if table is None:
            return [Request(f"dynamodb:{operation}", "*")]
        arn = _table_arn(region, table)
        if operation in ("Query", "Scan") and params.get("IndexName"):
            arn = f"{arn}/index/{params['IndexName']}"
        return [Request(f"dynamodb:{operation}", arn)]
    if service == "kms":
        key = params.get("KeyId")
        if key is None and operation == "Decrypt" and params.get("CiphertextBlob"):
            key = key_of_ciphertext(params["CiphertextBlob"])
        arn = _key_arn(region, key) if key else "*"
        return [Request(f"kms:{operation}", arn, arn if key else None)]
    if service == "sqs":
        url = params.get("QueueUrl")
        action = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
                  "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}.get(operation, operation)
        return [Request(f"sqs:{action}", queue_arn(url, region) if url else "*")]
    if service == "s3":
        bucket, key = params.get("Bucket"), params.get("Key")
        action = {"HeadObject": "GetObject", "ListObjectsV2": "ListBucket", "ListObjects": "ListBucket",
                  "HeadBucket": "ListBucket", "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
                  "CompleteMultipartUpload": "PutObject", "DeleteObjects": "DeleteObject"}.get(operation, operation)
        if bucket is None:
            return [Request(f"s3:{action}", "*")]
        if operation == "DeleteObjects":
            return [Request("s3:DeleteObject", f"arn:aws:s3:::{bucket}/{o['Key']}")
                    for o in params.get("Delete", {}).get("Objects", [])]
        target = f"arn:aws:s3:::{bucket}/{key}" if key is not None else f"arn:aws:s3:::{bucket}"
        return [Request(f"s3:{action}", target)]
    if service == "states":
        arn = params.get("stateMachineArn") or params.get("executionArn") or params.get("mapRunArn") or "*"
        if operation == "StartExecution" and params.get("name") and arn != "*":
            # authorized on the state machine (its ARN); the execution ARN is derived for the record
            return [Request("states:StartExecution", arn)]
        return [Request(f"states:{operation}", arn)]
    prefix = {"sesv2": "ses", "monitoring": "cloudwatch", "events": "events"}.get(service, service)
    return [Request(f"{prefix}:{operation}", "*")]


def key_of_ciphertext(blob: Any) -> str | None:
    """The key id a moto ciphertext blob starts with (moto writes the 36-character key id first)."""
    raw = bytes(blob) if isinstance(blob, bytes | bytearray) else base64.b64decode(blob)
    head = bytes(raw[:36]).decode("ascii", errors="replace")
    return head if re.fullmatch(r"[0-9a-f-]{36}", head) else None


# --------------------------------------------------------------------------------------------- evaluation
def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wild(pattern: str, value: str, case: bool) -> bool:
    if pattern == "*":
        return True
    if not case:
        pattern, value = pattern.lower(), value.lower()
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _action_matches(statement: dict[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(_wild(a, action, case=False) for a in _as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(_wild(a, action, case=False) for a in _as_list(statement["NotAction"]))
    return False


def _resource_matches(statement: dict[str, Any], resource: str) -> bool:
    if "Resource" in statement:
        return any(not str(r).startswith(UNRESOLVED) and _wild(str(r), resource, case=True)
                   for r in _as_list(statement["Resource"]))
    if "NotResource" in statement:
        return not any(_wild(str(r), resource, case=True) for r in _as_list(statement["NotResource"]))
    return False


class UnsupportedCondition(Exception):
    pass


def _conditions_hold(statement: dict[str, Any], context: dict[str, Any]) -> bool:
    for operator, tests in (statement.get("Condition") or {}).items():
        if_exists = operator.endswith("IfExists")
        op = operator.removesuffix("IfExists")
        for key, wanted in tests.items():
            if key not in context:
                if if_exists:
                    continue
                return False
            got = context[key]
            wanted_values = [str(w) for w in _as_list(wanted)]
            got_values = [str(g) for g in _as_list(got)]
            if op in ("StringEquals", "ArnEquals"):
                ok = any(g in wanted_values for g in got_values)
            elif op in ("StringLike", "ArnLike"):
                ok = any(_wild(w, g, case=True) for w in wanted_values for g in got_values)
            elif op == "StringNotEquals":
                ok = not any(g in wanted_values for g in got_values)
            elif op == "Bool":
                ok = any(g.lower() == w.lower() for w in wanted_values for g in got_values)
            else:
                raise UnsupportedCondition(f"condition operator {operator} is not evaluated locally")
            if not ok:
                return False
    return True


def evaluate(statements: Iterable[dict[str, Any]], action: str, resource: str, context: dict[str, Any]) -> str:
    """'deny' (explicit), 'allow' or 'implicit-deny' for one request under these statements."""
    allowed = False
    for s in statements:
        if not (_action_matches(s, action) and _resource_matches(s, resource) and _conditions_hold(s, context)):
            continue
        if s.get("Effect") == "Deny":
            return "deny"
        allowed = True
    return "allow" if allowed else "implicit-deny"


def _principal_matches(statement: dict[str, Any], role_arn: str) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return any(p in (role_arn, f"arn:aws:iam::{ACCOUNT}:root") or p == "*" for p in _as_list(principal.get("AWS", [])))


# --------------------------------------------------------------------------------------------- enforcement
ERROR_CODES = {"dynamodb": "AccessDeniedException", "kms": "AccessDeniedException", "states": "AccessDeniedException",
               "sqs": "AccessDenied", "s3": "AccessDenied"}


@dataclass
class Denial:
    function: str
    action: str
    resource: str
    reason: str

    def __str__(self) -> str:
        return f"{self.function} may not {self.action} on {self.resource} ({self.reason})"


class Enforcer:
    """Checks calls made while a function's identity is ``current`` (or the one fixed ``function``)."""

    def __init__(self, resolve: Callable[[FunctionPolicy, str], Callable[[Any], Any]],
                 function: FunctionPolicy | None = None, on_denial: Callable[[Denial], None] | None = None) -> None:
        self._resolve = resolve  # (policy, region) → resolver of intrinsics for this call
        self.function = function
        self.on_denial = on_denial
        self.denials: list[Denial] = []
        self.checked = 0
        self._lock = threading.Lock()

    def check(self, service: str, operation: str, params: dict[str, Any], region: str) -> Denial | None:
        policy = current.get() or self.function
        if policy is None:
            return None
        resolve = self._resolve(policy, region)
        statements = resolve(policy.statements)
        role_arn = f"arn:aws:iam::{ACCOUNT}:role/{policy.role}"
        for request in requests_of(service, operation, params, region):
            context = {"aws:SecureTransport": "true", "aws:PrincipalArn": role_arn,
                       "aws:PrincipalAccount": ACCOUNT}
            with self._lock:
                self.checked += 1
            verdict = evaluate(statements, request.action, request.resource, context)
            reason = "no statement of its role allows it" if verdict == "implicit-deny" else "an explicit deny"
            if verdict == "allow" and request.key_arn:
                verdict, reason = self._key_policy_allows(policy, resolve, request, role_arn, context)
            if verdict != "allow":
                denial = Denial(policy.logical_id, request.action, request.resource, reason)
                with self._lock:
                    self.denials.append(denial)
                if self.on_denial is not None:
                    self.on_denial(denial)
                return denial
        return None

    def _key_policy_allows(self, policy: FunctionPolicy, resolve, request: Request, role_arn: str,
                           context: dict[str, Any]) -> tuple[str, str]:
        for arn_node, statements in policy.key_policies:
            if resolve(arn_node) != request.key_arn:
                continue
            mine = [s for s in resolve(statements) if _principal_matches(s, role_arn)]
            kp = [dict(s, Resource="*") if "Resource" not in s else s for s in mine]
            verdict = evaluate(kp, request.action, "*", context)
            if verdict == "allow":
                return "allow", ""
            return verdict, "the key policy neither allows the role nor delegates to the account's IAM policies"
        return "allow", ""  # a key the template does not define (made by a test): identity policy decides

    def hook(self, model=None, params=None, context=None, **kwargs) -> None:
        """botocore ``before-parameter-build`` handler: raise AccessDenied for a call the role does not allow."""
        service = model.service_model.endpoint_prefix if model is not None else ""
        signing = model.service_model.signing_name if model is not None else service
        region = (context or {}).get("client_region") or os.environ.get("AWS_DEFAULT_REGION") or "eu-central-1"
        denial = self.check(signing if service in ("monitoring",) else service, model.name, params or {}, region)
        if denial is not None:
            raise ClientError({"Error": {"Code": ERROR_CODES.get(service, "AccessDeniedException"),
                                         "Message": f"twin IAM: {denial}"},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, model.name)


def install(enforcer: Enforcer) -> None:
    """Check every boto3 call of every botocore session created from now on (botocore's built-in handlers,
    which every new session copies)."""
    from botocore import handlers

    handlers.BUILTIN_HANDLERS.append(("before-parameter-build", enforcer.hook))
