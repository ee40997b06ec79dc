"""A local API Gateway: HTTP requests → REST proxy events, through the REQUEST authorizer as deployed."""

from __future__ import annotations

import base64
import fnmatch
import html
import json
import socket
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from infra.twin.template import ACCOUNT, REGION, Route

DEFAULT_STATUS = {
    "UNAUTHORIZED": 401,
    "ACCESS_DENIED": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "THROTTLED": 429,
    "INVALID_API_KEY": 403,
    "AUTHORIZER_FAILURE": 500,
    "REQUEST_TOO_LARGE": 413,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "BAD_GATEWAY": 502,
    "API_CONFIGURATION_ERROR": 500,
}
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
API_ID = "twinapi"
STAGE = "prod"
# Connections waiting to be accepted. The standard library's default (5) overflows when a few dozen
# clients connect at once: the kernel drops their handshakes, and they see timeouts or resets where
# API Gateway would answer. Linux caps it at net.core.somaxconn.
BACKLOG = 1024
IDLE_SECONDS = 120  # a keep-alive connection with no request for this long is closed


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    request_id: str
    function: str | None = None  # the function that decided the answer (authorizer or integration)
    kind: str | None = None  # the gateway response type, when the gateway answered itself


class _Refused(Exception):
    """A request the front end refuses before routing (framing, size): answered, then the connection closed."""

    def __init__(self, status: int, kind: str | None, reason: str) -> None:
        super().__init__(reason)
        self.status, self.kind, self.reason = status, kind, reason


class UsageLimits:
    """The usage plan of the template, per usage identifier (the authorizer's ``usageIdentifierKey``): a
    token bucket of ``rate`` per second and ``burst`` deep for each identifier, as API Gateway throttles
    each API key of a plan; ``enrolled()`` names the identifiers with a key in the plan (others: 403)."""

    def __init__(self, rate: float, burst: int, enrolled: Any = None) -> None:
        self.rate, self.burst, self.enrolled = rate, burst, enrolled
        self._buckets: dict[str, tuple[float, float]] = {}  # identifier -> (tokens, monotonic time)
        self._lock = threading.Lock()

    def take(self, identifier: str) -> bool:
        with self._lock:
            now = time.monotonic()
            tokens, then = self._buckets.get(identifier, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens < 1:
                self._buckets[identifier] = (tokens, now)
                return False
            self._buckets[identifier] = (tokens - 1, now)
            return True


class Gateway:
    usage: UsageLimits | None = None  # set by the twin from the template's usage plan
    # the API's binaryMediaTypes, set by the twin from the template: a base64 answer is sent as bytes only to a
    # request whose first Accept type matches one, else as its base64 text, as API Gateway does (None: always bytes)
    binary_media_types: tuple[str, ...] | None = None

    def __init__(self, routes: list[Route], pools: dict[str, Any], gateway_responses: dict[str, dict],
                 access_log: str | Path | None = None, echo: TextIO | None = sys.stdout) -> None:
        self.routes = routes
        self.pools = pools
        self.responses = gateway_responses
        self.server: ThreadingHTTPServer | None = None
        self.access_log = Path(access_log) if access_log else None
        self.echo = echo  # where access lines are printed too (the terminal of `make run`)
        # what the landing page at / shows: the twin's state file (<state dir>/local.json, next to logs/)
        self.state_file = self.access_log.parent.parent / "local.json" if self.access_log else None
        self._log_lock = threading.Lock()

    # ------------------------------------------------------------ gateway responses

    def gateway_response(self, kind: str, path: str, request_id: str, status: int | None = None,
                         function: str | None = None) -> Answer:
        """The stack's gateway response of this type (or its DEFAULT_4XX / DEFAULT_5XX family)."""
        status = status or DEFAULT_STATUS.get(kind, 500)
        family = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
        spec = self.responses.get(kind) or self.responses.get(family)
        if spec is None:
            body = json.dumps({"message": kind}).encode()
            return Answer(status, {"Content-Type": "application/json", "x-amzn-RequestId": request_id}, body,
                          request_id, function, kind)
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
        headers["x-amzn-RequestId"] = request_id
        return Answer(status, headers, body.encode(), request_id, function, kind)

    # ------------------------------------------------------------ requests

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str,
               request_id: str | None = None) -> Answer:
        request_id = request_id or str(uuid.uuid4())
        url = urlsplit(raw_path)
        path = url.path or "/"
        if len(body) > MAX_BODY:
            return self.gateway_response("REQUEST_TOO_LARGE", path, request_id)
        if path == "/" and method in ("GET", "HEAD") and not any(r.match(path) is not None for r in self.routes):
            return self.landing_page(headers, request_id)
        route, params = None, None
        for r in self.routes:  # as API Gateway: a literal path part wins over a {parameter}
            if r.method == method and (p := r.match(path)) is not None and (route is None or len(p) < len(params)):
                route, params = r, p
        if route is None:
            # API Gateway (REST) answers a method a resource does not have (HEAD, OPTIONS without CORS,
            # TRACE, an unknown verb) as it answers a path it does not have: MISSING_AUTHENTICATION_TOKEN
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
            authorizer = self.pools[route.authorizer]
            outcome = authorizer.invoke(auth_event)
            if not outcome.ok:
                kind = "UNAUTHORIZED" if outcome.error_message == "Unauthorized" else "AUTHORIZER_FAILURE"
                return self.gateway_response(kind, path, request_id, function=_log_name(authorizer))
            policy = outcome.result or {}
            if not _allows(policy.get("policyDocument") or {}, method_arn):
                return self.gateway_response("ACCESS_DENIED", path, request_id, function=_log_name(authorizer))
            authorizer_ctx = {k: v for k, v in (policy.get("context") or {}).items()}
            authorizer_ctx["principalId"] = policy.get("principalId")
            context["authorizer"] = authorizer_ctx
            if route.api_key_required:  # as API Gateway with API key source AUTHORIZER and a usage plan
                usage_key = policy.get("usageIdentifierKey")
                if not usage_key or (self.usage and self.usage.enrolled and usage_key not in self.usage.enrolled()):
                    return self.gateway_response("INVALID_API_KEY", path, request_id)
                if self.usage and not self.usage.take(usage_key):
                    return self.gateway_response("THROTTLED", path, request_id)
        is_binary = False
        try:
            text = body.decode("utf-8") if body else None
        except UnicodeDecodeError:
            text, is_binary = base64.b64encode(body).decode(), True
        event = {**request, "requestContext": context, "body": text, "isBase64Encoded": is_binary}
        integration = self.pools[route.function]
        outcome = integration.invoke(event)
        if not outcome.ok:
            kind = "INTEGRATION_TIMEOUT" if outcome.error_type == "Timeout" else "BAD_GATEWAY"
            answer = self.gateway_response(kind, path, request_id, function=_log_name(integration))
            answer.kind = f"{kind} ({outcome.error_type}: {outcome.error_message})"[:300]
            return answer
        result = outcome.result or {}
        out_headers: dict[str, str] = {}
        for k, v in (result.get("multiValueHeaders") or {}).items():
            out_headers[k] = ", ".join(str(x) for x in v)
        for k, v in (result.get("headers") or {}).items():
            out_headers[k] = str(v)
        out_body = result.get("body") or ""
        binary = result.get("isBase64Encoded") and self.sends_binary(headers)
        data = base64.b64decode(out_body) if binary else str(out_body).encode()
        out_headers["x-amzn-RequestId"] = request_id
        return Answer(int(result.get("statusCode", 200)), out_headers, data, request_id, _log_name(integration))

    def sends_binary(self, headers: dict[str, str]) -> bool:
        """Whether a base64 answer goes out as bytes: the request's first Accept type matches a binary media type."""
        if self.binary_media_types is None:
            return True
        accept = next((v for k, v in headers.items() if k.lower() == "accept"), "") or ""
        first = accept.split(",")[0].split(";")[0].strip().lower()
        return bool(first) and any(fnmatch.fnmatchcase(first, t.lower()) for t in self.binary_media_types)

    # ------------------------------------------------------------ landing page (the twin only)

    def landing_page(self, headers: dict[str, str], request_id: str) -> Answer:
        """GET / on the twin: links to the API reference and the OpenAPI document, the program, its keys and
        where they are kept, the logs. The keys are shown only to a request addressed to a loopback name
        (the twin listens on 127.0.0.1 only; a page of another site rebinding its name to 127.0.0.1 gets
        none): they are the demo program's and already printed by `make run` and kept in local.json."""
        state: dict[str, Any] = {}
        if self.state_file is not None and self.state_file.exists():
            try:
                state = json.loads(self.state_file.read_text())
            except ValueError:  # being written
                state = {}
        page = landing_html(state, self.state_file, _host_name(headers) in LOOPBACK_NAMES,
                            {r.path for r in self.routes if r.method == "GET"})
        return Answer(200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                            "Content-Security-Policy": LANDING_CSP, "X-Content-Type-Options": "nosniff",
                            "Referrer-Policy": "no-referrer", "x-amzn-RequestId": request_id},
                      page.encode(), request_id)

    # ------------------------------------------------------------ access log

    def log_access(self, method: str, path: str, answer: Answer, started: float) -> None:
        """One line per request, like the stage's access log: method, path, status, ms, request id, function."""
        ms = (time.perf_counter() - started) * 1000
        line = (f"{datetime.now(UTC).isoformat(timespec='milliseconds').replace('+00:00', 'Z')} {method} {path} "
                f"{answer.status} {ms:.0f}ms {answer.request_id} {answer.function or '-'}"
                + (f" {answer.kind}" if answer.kind else ""))
        with self._log_lock:
            if self.echo is not None:
                print(line, file=self.echo, flush=True)
            if self.access_log is not None:
                with self.access_log.open("a") as f:
                    f.write(line + "\n")

    # ------------------------------------------------------------ server

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = IDLE_SECONDS

            def __getattr__(self, name: str) -> Any:
                # every verb reaches the router (which answers those the API lacks as API Gateway
                # does), never the standard library's 501 page
                if name.startswith("do_"):
                    return self._any
                raise AttributeError(name)

            def _any(self) -> None:
                started = time.perf_counter()
                request_id = str(uuid.uuid4())
                path = urlsplit(self.path).path or "/"
                try:
                    body = self._read_body()
                except _Refused as refused:
                    answer = gateway.gateway_response(refused.kind or "DEFAULT_4XX", path, request_id, refused.status)
                    answer.kind = f"{answer.kind}: {refused.reason}"
                    self._send(answer, close=True)
                    gateway.log_access(self.command, path, answer, started)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
                try:
                    answer = gateway.handle(self.command, self.path, headers, body, self.client_address[0],
                                            request_id)
                except Exception:  # a fault of the twin itself: answered, and shown where the twin logs
                    traceback.print_exc()
                    answer = gateway.gateway_response("API_CONFIGURATION_ERROR", path, request_id)
                self._send(answer)
                gateway.log_access(self.command, path, answer, started)

            def _read_body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    return self._read_chunked()
                raw = (self.headers.get("Content-Length") or "").strip()
                if not raw:
                    return b""
                if not raw.isdigit():
                    raise _Refused(400, None, "Content-Length is not a number")
                if int(raw) > MAX_BODY:
                    raise _Refused(413, "REQUEST_TOO_LARGE", f"the body is over {MAX_BODY} bytes")
                return self.rfile.read(int(raw))

            def _read_chunked(self) -> bytes:
                body = bytearray()
                while True:
                    size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
                    try:
                        size = int(size_line, 16)
                    except ValueError:
                        raise _Refused(400, None, "malformed chunked body") from None
                    if size == 0:
                        break
                    if len(body) + size > MAX_BODY:
                        raise _Refused(413, "REQUEST_TOO_LARGE", f"the body is over {MAX_BODY} bytes")
                    body += self.rfile.read(size)
                    if self.rfile.readline(3) != b"\r\n":
                        raise _Refused(400, None, "malformed chunked body")
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return bytes(body)

            def _send(self, answer: Answer, close: bool = False) -> None:
                if self.request_version == "HTTP/0.9":  # no version (or no request line): answer with a status line
                    self.request_version, close = "HTTP/1.0", True
                self.send_response(answer.status)
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer.body)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)
                self.wfile.flush()
                if close:  # unread input would make the close a reset: let the client read the answer first
                    _discard_input(self.connection)

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                # what the HTTP server itself refuses (a malformed request line, headers too large):
                # problem+json from the stack's DEFAULT_4XX / DEFAULT_5XX, not an HTML page
                started = time.perf_counter()
                path = urlsplit(getattr(self, "path", "") or "/").path or "/"
                answer = gateway.gateway_response("DEFAULT_4XX" if code < 500 else "DEFAULT_5XX", path,
                                                  str(uuid.uuid4()), code)
                answer.kind = f"{answer.kind}: {message or self.responses.get(code, ('',))[0]}"
                self._send(answer, close=True)
                gateway.log_access(getattr(self, "command", "") or "-", path, answer, started)

            def log_message(self, fmt: str, *args: Any) -> None:  # the access log has one line per request
                pass

        self.server = _Server((host, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True, name="gateway").start()
        return self.server


class _Server(ThreadingHTTPServer):
    request_queue_size = BACKLOG
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):  # the client went away
            return
        super().handle_error(request, client_address)


def _discard_input(connection: socket.socket, seconds: float = 2.0, limit: int = 2 * MAX_BODY) -> None:
    """Read and drop what the client still sends (up to ``limit`` bytes or ``seconds``) before closing."""
    try:
        connection.shutdown(socket.SHUT_WR)
        connection.settimeout(seconds)
        deadline, read = time.monotonic() + seconds, 0
        while read < limit and time.monotonic() < deadline:
            chunk = connection.recv(65536)
            if not chunk:
                return
            read += len(chunk)
    except OSError:
        pass


LOOPBACK_NAMES = {"127.0.0.1", "localhost", "[::1]"}
LANDING_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
# Pages still to come; listed, and linked once the stack has a GET route for them
COMING = (("/portal", "Member portal"), ("/console", "Staff console"))


def _host_name(headers: dict[str, str]) -> str:
    """The name of the Host header, without its port."""
    host = next((v for k, v in headers.items() if k.lower() == "host"), "").strip().lower()
    return host.split("]", 1)[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]


def landing_html(state: dict[str, Any], state_file: Path | None, show_keys: bool, get_routes: set[str]) -> str:
    """The twin's landing page: every link is relative to / and every value escaped."""
    e = html.escape
    keys = state.get("api_keys") or {}
    if not state.get("program_id"):
        program = "<p>The twin is starting: reload in a moment.</p>"
    else:
        program = f"<p>Program <code>{e(str(state['program_id']))}</code></p>"
    where = f"<code>{e(str(state_file))}</code>" if state_file else "the twin's state file"
    if keys and show_keys:
        rows = "".join(f"<tr><th>{e(str(scope))}</th><td><code>{e(str(key))}</code></td></tr>"
                       for scope, key in keys.items())
        keys_html = (f"<p>API keys of the demo program, one per scope (also in {where}): send one as "
                     f"<code>Authorization: Bearer &lt;key&gt;</code>, or paste it into Authorize on the API "
                     f"reference.</p><table>{rows}</table>")
    else:
        keys_html = (f"<p>The demo program's API keys, one per scope, are in {where} "
                     "(under <code>api_keys</code>) and in the terminal of <code>make run</code>.</p>")
    logs = f"<code>{e(str(state_file.parent / 'logs'))}/</code>" if state_file else "the logs folder"
    coming = "".join(
        f'<li><a href="{e(path.lstrip("/"))}">{e(name)}</a></li>' if path in get_routes
        else f"<li>{e(name)} (<code>{e(path)}</code>): not built yet</li>"
        for path, name in COMING
    )
    aws = (f"<li>Local AWS endpoint (moto): <code>{e(str(state['aws_endpoint']))}</code></li>"
           if state.get("aws_endpoint") else "")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Treue twin</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
th{{text-align:left;padding-right:1rem}}code{{font-size:.9em}}</style>
</head>
<body>
<h1>Treue twin</h1>
<p>The whole stack on this machine: the partner API as deployed, with moto as AWS.</p>
<ul>
<li><a href="docs">API reference</a> (<code>/docs</code>): every route, with Try it out</li>
<li><a href="v1/openapi.json">OpenAPI document</a> (<code>/v1/openapi.json</code>)</li>
{aws}</ul>
<h2>Program and keys</h2>
{program}
{keys_html}
<h2>Logs</h2>
<p>In {logs}: <code>access.log</code> (one line per request, this page's too) and one log per function.</p>
<h2>Coming</h2>
<ul>{coming}</ul>
</body>
</html>
"""


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


def _log_name(pool) -> str:
    """The name the access log gives a function: its log file's (``orders`` for logs/orders.log), so a
    line leads straight to the log to read; the deployed name when the pool has no log file."""
    log_path = getattr(pool, "log_path", None)
    return Path(log_path).stem if log_path else pool.spec.name
