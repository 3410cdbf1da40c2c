"""A local Slack-compatible HTTP server for delivery tests: the real slack_sdk talks to it.

Serves ``chat.postMessage``, ``files.getUploadURLExternal``, the raw upload POST to the URL
it hands out, ``files.completeUploadExternal`` and an incoming webhook, checks the bearer
token, and records every request. Faults are queued per endpoint: an HTTP status (429 with
``Retry-After``, 500), or a ``200 ok:false`` with an error code. ``stop()`` makes it a server
that is down (connections refused on its port).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WEBHOOK_PATH = "/services/T000/B000/webhook-secret-path"


@dataclass
class Fault:
    status: int = 200
    error: str | None = None
    retry_after: int | None = None


@dataclass
class Recorded:
    """One request as the server saw it."""

    endpoint: str
    at: float
    headers: dict[str, str]
    params: dict[str, Any]
    body: bytes
    answered: int


@dataclass
class SlackState:
    token: str
    requests: list[Recorded] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))
    messages: list[dict[str, Any]] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    completed: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))


def _params(handler: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
    content_type = handler.headers.get("Content-Type", "")
    query = {key: values[0] for key, values in parse_qs(urlsplit(handler.path).query).items()}
    if "application/json" in content_type and body:
        return {**query, **json.loads(body)}
    if "application/x-www-form-urlencoded" in content_type:
        return {**query, **{key: values[0] for key, values in parse_qs(body.decode()).items()}}
    return query


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        endpoint = path.removeprefix("/api/") if path.startswith("/api/") else path
        if path.startswith("/upload/"):
            endpoint = "upload"
        if path == WEBHOOK_PATH:
            endpoint = "webhook"
        state = self.server.state
        params = {} if endpoint == "upload" else _params(self, body)
        with state.lock:
            fault = state.faults[endpoint].popleft() if state.faults[endpoint] else None
        status, payload, headers = self._answer(endpoint, path, params, body, fault)
        with state.lock:
            state.requests.append(Recorded(endpoint, time.monotonic(), dict(self.headers), params, body, status))
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(payload, bytes) else "application/json")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(
        self, endpoint: str, path: str, params: dict[str, Any], body: bytes, fault: Fault | None
    ) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        state = self.server.state
        if fault is not None and fault.status != 200:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            text = b"rate_limited" if fault.status == 429 else b"server error"
            return fault.status, text if endpoint in ("webhook", "upload") else {"ok": False, "error": text.decode()}, headers
        if fault is not None:
            return 200, fault.error.encode() if endpoint == "webhook" else {"ok": False, "error": fault.error}, {}
        if endpoint == "webhook":
            state.messages.append({"via": "webhook", **params})
            return 200, b"ok", {}
        if endpoint == "upload":
            state.uploads[path.rsplit("/", 1)[-1]] = body
            return 200, b"OK - " + str(len(body)).encode(), {}
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        number = next(state.ids)
        if endpoint == "chat.postMessage":
            ts = f"1700000000.{number:06d}"
            state.messages.append({"via": "api", "ts": ts, **params})
            return 200, {"ok": True, "channel": "C0DIGEST", "ts": ts, "message": {"text": params.get("text")}}, {}
        if endpoint == "files.getUploadURLExternal":
            file_id = f"F{number:08d}"
            host, port = self.server.server_address[:2]
            return 200, {"ok": True, "file_id": file_id, "upload_url": f"http://{host}:{port}/upload/{file_id}"}, {}
        if endpoint == "files.completeUploadExternal":
            files = json.loads(params["files"])
            state.completed.append({**params, "files": files})
            return 200, {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}, {}
        return 404, {"ok": False, "error": "unknown_method"}, {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: SlackState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


class SlackServer:
    """``with SlackServer() as slack:`` — point ``WebClient(base_url=slack.api_url)`` at it."""

    def __init__(self, token: str = "xoxb-test-token-0123456789") -> None:
        self.state = SlackState(token=token)
        self._server: _Server | None = None
        self.port = 0

    def start(self) -> SlackServer:
        self._server = _Server(self.state)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SlackServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def fail(
        self, endpoint: str, *, status: int = 200, error: str | None = None, retry_after: int | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` calls of ``endpoint`` with a fault instead of success."""
        with self.state.lock:
            self.state.faults[endpoint].extend(Fault(status, error, retry_after) for _ in range(times))

    def calls(self, endpoint: str) -> list[Recorded]:
        with self.state.lock:
            return [request for request in self.state.requests if request.endpoint == endpoint]
