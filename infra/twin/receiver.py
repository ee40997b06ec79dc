"""A small webhook receiver for the twin: verifies each delivery's signature and keeps what it got.

``make demo`` runs one and prints the deliveries; the end-to-end tests use it to fail on purpose
(``fail_next``) and to go away (``stop``) and come back (``start`` on the same port).
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions"))

from treue.logic.webhooks import SIGNATURE_HEADER, verify  # noqa: E402


class Receiver:
    def __init__(self, port: int = 0, echo: bool = False) -> None:
        self.port = port
        self.echo = echo
        self.secrets: list[str] = []
        self.received: list[dict[str, Any]] = []
        self.rejected = 0
        self._fail = 0
        self._lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def fail_next(self, n: int) -> None:
        """Answer the next ``n`` deliveries with HTTP 503."""
        with self._lock:
            self._fail = n

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r["event"] for r in self.received if type_ is None or r["event"]["type"] == type_]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                header = self.headers.get(SIGNATURE_HEADER, "")
                with receiver._lock:
                    if receiver._fail > 0:
                        receiver._fail -= 1
                        self.send_response(503)
                        self.end_headers()
                        return
                    ok = any(verify(header, body, s) for s in receiver.secrets)
                    if not ok:
                        receiver.rejected += 1
                    else:
                        event = json.loads(body)
                        receiver.received.append({"event": event, "signature": header,
                                                  "attempt": self.headers.get("Treue-Delivery-Attempt")})
                        if receiver.echo and (event["data"].get("batch_id") is None
                                              or event["type"] == "batch.completed"):
                            # a batch's per-line deliveries are counted at the end, not printed
                            print(f"  webhook  {event['type']:<17} {event['id']}  signature ok", flush=True)
                self.send_response(204 if ok else 400)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True, name="webhook-receiver").start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
