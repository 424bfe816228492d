"""A Slack-compatible incoming webhook on loopback: what the drift job's alerts reach on one machine.

The local loop (`mlops local up`) points MLOPS_DRIFT_WEBHOOK_URL at it and prints each alert as it
arrives; the tests use it to count the alerts a job sent. It accepts `POST {"text": ...}` like the
webhooks the cluster's drift jobs post to, and answers 200 `ok`.

    from monitoring.settings import DriftVariables

    with WebhookReceiver(on_message=print) as receiver:
        os.environ[DriftVariables.WEBHOOK_URL] = receiver.url
        ...
        receiver.texts()
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from workloads.local_process import StopsOnExit

MAX_BODY_BYTES = 1 << 20


class WebhookReceiver(StopsOnExit):
    """Records every JSON body POSTed to `url` (and hands it to `on_message`, if given)."""

    def __init__(self, on_message: Callable[[dict[str, Any]], None] | None = None, path: str = "/hooks/drift") -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                try:
                    if not 0 < length <= MAX_BODY_BYTES:
                        raise ValueError(f"body of {length} bytes")
                    message = json.loads(self.rfile.read(length))
                    if not isinstance(message, dict):
                        raise ValueError("not a JSON object")
                except ValueError as error:
                    self._answer(400, f"expected a JSON object: {error}".encode())
                    return
                with receiver._lock:
                    receiver.messages.append(message)
                if on_message is not None:
                    on_message(message)
                self._answer(200, b"ok")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # alerts are reported by on_message, not access logs
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def texts(self) -> list[str]:
        with self._lock:
            return [str(message.get("text", "")) for message in self.messages]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
