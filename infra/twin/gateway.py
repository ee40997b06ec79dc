"""A local API Gateway: HTTP requests → REST proxy events, through the REQUEST authorizer as deployed."""

from __future__ import annotations

import base64
import fnmatch
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.twin.template import ACCOUNT, REGION, Route

DEFAULT_STATUS = {
    "UNAUTHORIZED": 401,
    "ACCESS_DENIED": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "THROTTLED": 429,
    "AUTHORIZER_FAILURE": 500,
    "REQUEST_TOO_LARGE": 413,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "BAD_GATEWAY": 502,
}
FAMILY = {
    # response types that fall back to DEFAULT_4XX / DEFAULT_5XX when the stack defines no template
    401: "DEFAULT_4XX", 403: "DEFAULT_4XX", 404: "DEFAULT_4XX", 413: "DEFAULT_4XX", 429: "DEFAULT_4XX",
    500: "DEFAULT_5XX", 502: "DEFAULT_5XX", 504: "DEFAULT_5XX",
}
MAX_BODY = 10 * 1024 * 1024
API_ID = "twinapi"
STAGE = "prod"


class Gateway:
    def __init__(self, routes: list[Route], pools: dict[str, Any], gateway_responses: dict[str, dict]) -> None:
        self.routes = routes
        self.pools = pools
        self.responses = gateway_responses
        self.server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------ gateway responses

    def gateway_response(self, kind: str, path: str, request_id: str) -> tuple[int, dict[str, str], bytes]:
        status = DEFAULT_STATUS.get(kind, 500)
        spec = self.responses.get(kind) or self.responses.get(FAMILY.get(status, "DEFAULT_5XX"))
        if spec is None:
            return status, {"Content-Type": "application/json"}, json.dumps({"message": kind}).encode()
        if spec.get("StatusCode") and spec.get("ResponseType") == kind:
            status = int(spec["StatusCode"])
        template = (spec.get("ResponseTemplates") or {}).get("application/json", "")
        body = template.replace("$context.path", path).replace("$context.requestId", request_id)
        if '"status"' not in body and body.strip().startswith("{"):
            doc = json.loads(body)
            doc["status"] = status
            body = json.dumps(doc)
        headers = {}
        for key, value in (spec.get("ResponseParameters") or {}).items():
            if key.startswith("gatewayresponse.header."):
                headers[key.split(".", 2)[2]] = value.strip("'")
        return status, headers, body.encode()

    # ------------------------------------------------------------ requests

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str):
        request_id = str(uuid.uuid4())
        url = urlsplit(raw_path)
        path = url.path or "/"
        if len(body) > MAX_BODY:
            return self.gateway_response("REQUEST_TOO_LARGE", path, request_id)
        route, params = None, None
        for r in self.routes:  # as API Gateway: a literal path part wins over a {parameter}
            if r.method == method and (p := r.match(path)) is not None and (route is None or len(p) < len(params)):
                route, params = r, p
        if route is None:
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", path, request_id)
        query = parse_qs(url.query, keep_blank_values=True)
        multi_headers: dict[str, list[str]] = {}
        for k, v in headers.items():
            multi_headers.setdefault(k, []).append(v)
        resource = route.path
        context: dict[str, Any] = {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent")},
        }
        request = {  # what the authorizer's REQUEST event and the proxy event share
            "resource": resource,
            "path": path,
            "httpMethod": method,
            "headers": dict(headers),
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": params or None,
            "stageVariables": None,
        }
        method_arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}/{method}{path}"
        if route.authorizer:
            auth_event = {"type": "REQUEST", "methodArn": method_arn, **request, "requestContext": dict(context)}
            outcome = self.pools[route.authorizer].invoke(auth_event)
            if not outcome.ok:
                kind = "UNAUTHORIZED" if outcome.error_message == "Unauthorized" else "AUTHORIZER_FAILURE"
                return self.gateway_response(kind, path, request_id)
            policy = outcome.result or {}
            if not _allows(policy.get("policyDocument") or {}, method_arn):
                return self.gateway_response("ACCESS_DENIED", path, request_id)
            authorizer_ctx = {k: v for k, v in (policy.get("context") or {}).items()}
            authorizer_ctx["principalId"] = policy.get("principalId")
            context["authorizer"] = authorizer_ctx
        is_binary = False
        try:
            text = body.decode("utf-8") if body else None
        except UnicodeDecodeError:
            text, is_binary = base64.b64encode(body).decode(), True
        event = {**request, "requestContext": context, "body": text, "isBase64Encoded": is_binary}
        outcome = self.pools[route.function].invoke(event)
        if not outcome.ok:
            kind = "INTEGRATION_TIMEOUT" if outcome.error_type == "Timeout" else "BAD_GATEWAY"
            return self.gateway_response(kind, path, request_id)
        result = outcome.result or {}
        out_headers: dict[str, str] = {}
        for k, v in (result.get("multiValueHeaders") or {}).items():
            out_headers[k] = ", ".join(str(x) for x in v)
        for k, v in (result.get("headers") or {}).items():
            out_headers[k] = str(v)
        out_body = result.get("body") or ""
        data = base64.b64decode(out_body) if result.get("isBase64Encoded") else str(out_body).encode()
        out_headers["x-amzn-RequestId"] = request_id
        return int(result.get("statusCode", 200)), out_headers, data

    # ------------------------------------------------------------ server

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()}
                status, out_headers, data = gateway.handle(
                    self.command, self.path, headers, body, self.client_address[0]
                )
                self.send_response(status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet; access logs go to the log file
                pass

        ThreadingHTTPServer.daemon_threads = True
        self.server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True, name="gateway").start()
        return self.server


def _allows(document: dict[str, Any], method_arn: str) -> bool:
    allowed = False
    for statement in document.get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(method_arn, r) for r in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
