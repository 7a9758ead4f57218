"""A scripted OpenAI-compatible chat completions server for tests and benchmarks (no model).

Each request to ``/v1/chat/completions`` takes the next step of ``script`` (the last step repeats):

- ``("stream", pieces, delay_s)``: 200 and an OpenAI event stream of ``pieces``, ``delay_s`` apart;
- ``("status", code, headers, body)``: that status, headers and JSON body;
- ``("hang", seconds)``: say nothing for ``seconds``, then close;
- ``("cut", pieces)``: 200, stream ``pieces``, then drop the connection without ``[DONE]``;
- a callable ``(request_json) -> step``, to answer from the messages.

``requests`` records every request's JSON body and headers. ``tokenize`` (text -> token count), when
set, answers ``/extras/tokenize/count`` as llama-cpp-python's server does (404 otherwise); its calls go
to ``tokenize_requests``. The server runs in a thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Step = tuple[Any, ...] | Callable[[dict[str, Any]], tuple[Any, ...]]


class FakeOpenAI:
    def __init__(self, script: Sequence[Step]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.tokenize: Callable[[str], int] | None = None
        self.tokenize_requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                body = json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode()
                self._send(200, {"Content-Type": "application/json"}, body)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if "tokenize" in self.path:
                    owner.tokenize_requests.append({"path": self.path, "json": body})
                    if owner.tokenize is None or self.path != "/extras/tokenize/count":
                        self._send(404, {"Content-Type": "application/json"}, b'{"detail": "Not Found"}')
                    else:
                        count = json.dumps({"count": owner.tokenize(body["input"])}).encode()
                        self._send(200, {"Content-Type": "application/json"}, count)
                    return
                with owner._lock:
                    owner.requests.append({"json": body, "headers": dict(self.headers)})
                    step = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                if callable(step):
                    step = step(body)
                kind = step[0]
                if kind == "status":
                    _, code, headers, payload = step
                    headers = {"Content-Type": "application/json", **headers}
                    self._send(code, headers, json.dumps(payload).encode())
                elif kind == "hang":
                    time.sleep(step[1])
                    self.close_connection = True
                elif kind in ("stream", "cut"):
                    pieces, delay = step[1], (step[2] if len(step) > 2 else 0.0)
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for piece in pieces:
                        chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(delay)
                    if kind == "stream":
                        self.wfile.write(b"data: [DONE]\n\n")
                    self.close_connection = True
                else:
                    raise ValueError(kind)

            def _send(self, code: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
