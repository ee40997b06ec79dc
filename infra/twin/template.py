"""Read the synthesized CloudFormation template into what the twin runs: tables, queues, functions,
routes, the authorizer, gateway responses and queue → function mappings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "eu-central-1"
ACCOUNT = "123456789012"


@dataclass
class TableSpec:
    logical_id: str
    name: str
    properties: dict[str, Any]


@dataclass
class QueueSpec:
    logical_id: str
    name: str
    properties: dict[str, Any]
    url: str = ""
    arn: str = ""


@dataclass
class BucketSpec:
    logical_id: str
    name: str
    properties: dict[str, Any]


@dataclass
class KeySpec:
    logical_id: str
    properties: dict[str, Any]
    key_id: str = ""
    arn: str = ""


@dataclass
class StateMachineSpec:
    logical_id: str
    name: str
    definition: str  # ASL with ${Name} placeholders
    substitutions: dict[str, Any]
    arn: str = ""


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class Route:
    method: str
    path: str  # e.g. /v1/members/{member_id}
    function: str  # logical id
    authorizer: str | None  # logical id of the authorizer function, None for public routes
    api_key_required: bool = False  # the authorizer's usage identifier must be a key of the usage plan

    def match(self, path: str) -> dict[str, str] | None:
        want = self.path.strip("/").split("/")
        got = path.strip("/").split("/")
        if len(want) != len(got):
            return None
        params = {}
        for w, g in zip(want, got, strict=True):
            if w.startswith("{") and w.endswith("}"):
                if not g:
                    return None
                params[w[1:-1]] = g
            elif w != g:
                return None
        return params


@dataclass
class EventSourceMapping:
    queue: str  # logical id
    function: str  # logical id
    batch_size: int
    report_batch_item_failures: bool


@dataclass
class StreamMapping:
    table: str  # logical id of the table whose stream feeds the function
    function: str  # logical id
    batch_size: int
    report_batch_item_failures: bool
    patterns: list[dict[str, Any]]  # Lambda event filter patterns; a record passes when one matches


def matches(pattern: Any, value: Any) -> bool:
    """Whether ``value`` matches a Lambda event filter ``pattern`` (exact values only, as Treue uses)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches(p, value[k]) for k, p in pattern.items())
    if isinstance(pattern, list):
        return value in pattern
    return pattern == value


@dataclass
class Schedule:
    rule: str  # logical id of the EventBridge rule
    function: str  # logical id of its Lambda target
    seconds: int  # the rule's rate


def rate_seconds(expression: str) -> int:
    """Seconds of an EventBridge ``rate(N unit)`` expression (cron expressions are not run by the twin)."""
    if not expression.startswith("rate(") or not expression.endswith(")"):
        raise ValueError(f"the twin runs rate() schedules only, not {expression}")
    value, unit = expression[5:-1].split()
    return int(value) * {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}[unit]


@dataclass
class Model:
    tables: dict[str, TableSpec]
    queues: dict[str, QueueSpec]
    functions: dict[str, FunctionSpec]
    routes: list[Route]
    gateway_responses: dict[str, dict[str, Any]]
    mappings: list[EventSourceMapping]
    outputs: dict[str, Any]
    resources: dict[str, Any]
    keys: dict[str, KeySpec] = field(default_factory=dict)
    state_machines: dict[str, StateMachineSpec] = field(default_factory=dict)
    schedules: list[Schedule] = field(default_factory=list)
    streams: list[StreamMapping] = field(default_factory=list)
    buckets: dict[str, BucketSpec] = field(default_factory=dict)
    usage_plan: dict[str, Any] | None = None  # the API's usage plan: {"name", "rate", "burst"}
    binary_media_types: tuple[str, ...] = ()  # the API's binaryMediaTypes ("~1" read as "/")


def _function_of_integration(method: dict[str, Any]) -> str:
    uri = method["Properties"]["Integration"]["Uri"]
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "Fn::GetAtt" in node and node["Fn::GetAtt"][1] == "Arn":
                found.append(node["Fn::GetAtt"][0])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(uri)
    if not found:
        raise ValueError(f"cannot find the function of integration {uri}")
    return found[0]


def load(path: str | Path) -> Model:
    template = json.loads(Path(path).read_text())
    res: dict[str, Any] = template["Resources"]
    tables = {
        lid: TableSpec(lid, f"treue-{lid.lower()}", r["Properties"])
        for lid, r in res.items()
        if r["Type"] == "AWS::DynamoDB::Table"
    }
    queues = {
        lid: QueueSpec(lid, f"treue-{lid.lower()}", r.get("Properties", {}))
        for lid, r in res.items()
        if r["Type"] == "AWS::SQS::Queue"
    }
    functions = {}
    for lid, r in res.items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        p = r["Properties"]
        functions[lid] = FunctionSpec(
            logical_id=lid,
            name=f"treue-{lid.lower()}",
            handler=p["Handler"],
            timeout=int(p.get("Timeout", 3)),
            memory=int(p.get("MemorySize", 128)),
            environment=p.get("Environment", {}).get("Variables", {}),
        )
    # API Gateway resources form a tree of path parts
    def path_of(resource_ref: Any) -> str:
        if isinstance(resource_ref, dict) and "Fn::GetAtt" in resource_ref:
            return ""  # the RestApi root resource
        lid = resource_ref["Ref"]
        r = res[lid]["Properties"]
        return path_of(r["ParentId"]) + "/" + r["PathPart"]

    authorizers = {
        lid: _function_of_integration({"Properties": {"Integration": {"Uri": r["Properties"]["AuthorizerUri"]}}})
        for lid, r in res.items()
        if r["Type"] == "AWS::ApiGateway::Authorizer"
    }
    routes = []
    for _lid, r in res.items():
        if r["Type"] != "AWS::ApiGateway::Method" or r["Properties"]["HttpMethod"] == "OPTIONS":
            continue
        p = r["Properties"]
        auth = p.get("AuthorizerId")
        routes.append(
            Route(
                method=p["HttpMethod"],
                path=path_of(p["ResourceId"]) or "/",
                function=_function_of_integration(r),
                authorizer=authorizers[auth["Ref"]] if auth else None,
                api_key_required=bool(p.get("ApiKeyRequired")),
            )
        )
    gateway_responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in res.values()
        if r["Type"] == "AWS::ApiGateway::GatewayResponse"
    }
    mappings, streams = [], []
    for r in res.values():
        if r["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        p = r["Properties"]
        source = p["EventSourceArn"]["Fn::GetAtt"]
        if source[1] == "StreamArn":
            streams.append(StreamMapping(
                table=source[0], function=p["FunctionName"]["Ref"], batch_size=int(p.get("BatchSize", 100)),
                report_batch_item_failures="ReportBatchItemFailures" in p.get("FunctionResponseTypes", []),
                patterns=[json.loads(f["Pattern"]) for f in (p.get("FilterCriteria") or {}).get("Filters", [])],
            ))
            continue
        mappings.append(
            EventSourceMapping(
                queue=p["EventSourceArn"]["Fn::GetAtt"][0],
                function=p["FunctionName"]["Ref"],
                batch_size=int(p.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures" in p.get("FunctionResponseTypes", []),
            )
        )
    keys = {lid: KeySpec(lid, r.get("Properties", {})) for lid, r in res.items() if r["Type"] == "AWS::KMS::Key"}
    machines = {}
    for lid, r in res.items():
        if r["Type"] != "AWS::StepFunctions::StateMachine":
            continue
        p = r["Properties"]
        if "DefinitionS3Location" in p:  # DefinitionBody.from_file: the ASL file is an asset next to the template
            text = (Path(path).parent / ("asset." + p["DefinitionS3Location"]["Key"])).read_text()
        else:
            text = p["DefinitionString"]
            if not isinstance(text, str):
                raise ValueError(f"{lid}: the twin runs state machines defined by a file or a plain string")
        machines[lid] = StateMachineSpec(lid, f"treue-{lid.lower()}", text, p.get("DefinitionSubstitutions", {}))
    schedules = []
    for lid, r in res.items():
        p = r.get("Properties", {})
        if r["Type"] != "AWS::Events::Rule" or "ScheduleExpression" not in p:
            continue
        for target in p.get("Targets", []):
            arn = target["Arn"]
            if isinstance(arn, dict) and "Fn::GetAtt" in arn and arn["Fn::GetAtt"][0] in functions:
                schedules.append(Schedule(lid, arn["Fn::GetAtt"][0], rate_seconds(p["ScheduleExpression"])))
    buckets = {lid: BucketSpec(lid, f"treue-{lid.lower()}", r.get("Properties", {}))
               for lid, r in res.items() if r["Type"] == "AWS::S3::Bucket"}
    plans = [r["Properties"] for r in res.values() if r["Type"] == "AWS::ApiGateway::UsagePlan"]
    if len(plans) > 1:
        raise ValueError("the twin runs one usage plan (its throttle applies to every usage identifier)")
    usage_plan = ({"name": plans[0].get("UsagePlanName", "usage-plan"),
                   "rate": float(plans[0]["Throttle"]["RateLimit"]), "burst": int(plans[0]["Throttle"]["BurstLimit"])}
                  if plans else None)
    binary = tuple(t.replace("~1", "/") for r in res.values() if r["Type"] == "AWS::ApiGateway::RestApi"
                   for t in r.get("Properties", {}).get("BinaryMediaTypes", []))
    return Model(tables, queues, functions, routes, gateway_responses, mappings, template.get("Outputs", {}), res,
                 keys, machines, schedules, streams, buckets, usage_plan, binary)


class Resolver:
    """Resolves the intrinsic functions the stack uses against the twin's physical resources."""

    def __init__(self, model: Model, api_url: str) -> None:
        self.model = model
        self.api_url = api_url

    def ref(self, lid: str) -> str:
        m = self.model
        if lid == "AWS::Region":
            return REGION
        if lid == "AWS::AccountId":
            return ACCOUNT
        if lid == "AWS::Partition":
            return "aws"
        if lid == "AWS::URLSuffix":
            return "amazonaws.com"
        if lid in m.tables:
            return m.tables[lid].name
        if lid in m.queues:
            return m.queues[lid].url
        if lid in m.functions:
            return m.functions[lid].name
        if lid in m.buckets:
            return m.buckets[lid].name
        if lid in m.keys and m.keys[lid].key_id:
            return m.keys[lid].key_id
        if lid in m.state_machines and m.state_machines[lid].arn:
            return m.state_machines[lid].arn
        rtype = m.resources.get(lid, {}).get("Type")
        if rtype == "AWS::ApiGateway::RestApi":
            return "twinapi"
        if rtype == "AWS::ApiGateway::Stage":
            return "prod"
        raise KeyError(f"the twin cannot resolve Ref {lid}")

    def get_att(self, lid: str, attr: str) -> str:
        m = self.model
        if lid in m.tables and attr == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{m.tables[lid].name}"
        if lid in m.tables and attr == "StreamArn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{m.tables[lid].name}/stream/twin"
        if lid in m.queues:
            q = m.queues[lid]
            return {"Arn": q.arn, "QueueUrl": q.url, "QueueName": q.name}[attr]
        if lid in m.functions and attr == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{m.functions[lid].name}"
        if lid in m.buckets and attr == "Arn":
            return f"arn:aws:s3:::{m.buckets[lid].name}"
        if lid in m.keys and attr == "Arn" and m.keys[lid].arn:
            return m.keys[lid].arn
        if lid in m.state_machines and attr in ("Arn", "Name") and m.state_machines[lid].arn:
            return m.state_machines[lid].arn if attr == "Arn" else m.state_machines[lid].name
        if m.resources.get(lid, {}).get("Type") == "AWS::IAM::Role" and attr == "Arn":
            return f"arn:aws:iam::{ACCOUNT}:role/treue-{lid.lower()}"
        raise KeyError(f"the twin cannot resolve Fn::GetAtt {lid}.{attr}")

    def resolve(self, node: Any) -> Any:
        if isinstance(node, dict):
            if "Ref" in node:
                return self.ref(node["Ref"])
            if "Fn::GetAtt" in node:
                return self.get_att(*node["Fn::GetAtt"])
            if "Fn::Join" in node:
                sep, parts = node["Fn::Join"]
                return sep.join(str(self.resolve(p)) for p in parts)
            if "Fn::Select" in node:
                index, items = node["Fn::Select"]
                return self.resolve(items)[int(index)]
            if "Fn::Split" in node:
                sep, value = node["Fn::Split"]
                return str(self.resolve(value)).split(sep)
            return {k: self.resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        return node
