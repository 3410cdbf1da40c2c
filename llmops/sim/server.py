"""The HTTP side: Anthropic-compatible endpoints, the admin API, and ``SimServer`` for tests.

Shapes follow the real API closely enough that the official ``anthropic`` SDK parses every
response, streams included, and follows batch ``results_url`` links back to this server.
The endpoints hold no state of their own: they parse the request (``protocol``), ask the
instance's ``SimState`` (``state``) and answer in the API's shapes (``messages``).

Endpoints: ``POST /v1/messages`` (streaming too), ``POST /v1/messages/count_tokens``, the
Message Batches API under ``/v1/messages/batches``, ``GET /health``, and the admin API:
``GET``/``POST /_sim/config``, ``GET /_sim/stats``, ``POST /_sim/stats/reset``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmops.sim.config import SimConfig, describe_validation_error
from llmops.sim.messages import message_json, new_id, stream_events
from llmops.sim.protocol import ApiError, CountTokensRequest, ErrorType, MessagesRequest, known_model, parse_request
from llmops.sim.state import RequestStats, SimState
from llmops.sim.usage import count_input_tokens


def sim_state(request: Request) -> SimState:
    """The ``SimState`` of the app that received ``request``."""
    return request.app.state.sim


def authenticate(request: Request) -> None:
    """Any non-empty key is accepted, sent as ``x-api-key`` or ``Authorization: Bearer``."""
    bearer = request.headers.get("authorization", "")
    token = bearer[len("bearer ") :].strip() if bearer.lower().startswith("bearer ") else ""
    if not (request.headers.get("x-api-key", "").strip() or token):
        raise ApiError(
            401,
            "authentication_error",
            "x-api-key header is required (the simulator accepts any non-empty key, e.g. api_key='sim')",
        )


async def read_json(request: Request) -> object:
    """The request's JSON body; ``None`` when there is none (GET, cancel)."""
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_request_error", "request body is not valid JSON") from None


@dataclass(frozen=True)
class ApiCall:
    """An authenticated /v1 request that survived fault injection: the instance and the JSON body."""

    state: SimState
    body: object


async def api_call(request: Request) -> ApiCall:
    """What every /v1 endpoint does first: authenticate, receive the body, maybe suffer a fault."""
    authenticate(request)
    body = await read_json(request)
    state = sim_state(request)
    await state.inject_fault()
    return ApiCall(state, body)


def base_url(request: Request) -> str:
    """This server's URL as the client reached it (batch ``results_url`` links point back here)."""
    return str(request.base_url).rstrip("/")


async def create_message(request: Request) -> Response:
    """``POST /v1/messages``: the answer after a simulated latency, or streamed as server-sent events."""
    call = await api_call(request)
    state = call.state
    body = parse_request(MessagesRequest, call.body)
    model_id = known_model(body.model)
    completion, usage = state.answer(body, model_id)
    message = message_json(model_id, completion, usage, service_tier="standard")
    if body.stream:
        events = stream_events(message, model_id, state.faults, state.pause)
        return StreamingResponse(events, media_type="text/event-stream")
    await state.pause(state.faults.latency_seconds(model_id))
    return JSONResponse(message)


async def count_tokens(request: Request) -> Response:
    """``POST /v1/messages/count_tokens``: the prompt's input tokens, as ``usage`` would count them uncached."""
    call = await api_call(request)
    body = parse_request(CountTokensRequest, call.body)
    known_model(body.model)
    return JSONResponse({"input_tokens": count_input_tokens(body)})


async def create_batch(request: Request) -> Response:
    """``POST /v1/messages/batches``: a batch that ends after ``batch_delay_seconds``."""
    call = await api_call(request)
    batch = call.state.batches.create(call.body)
    return JSONResponse(batch.to_json(base_url(request)))


def page_limit(raw: str | None) -> int:
    """The ``limit`` query parameter of a list: 20 by default, 1 to 1000, else a 400."""
    if raw is None:
        return 20
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ApiError(400, "invalid_request_error", f"limit: must be an integer from 1 to 1000, got {raw!r}")
    return int(raw)


async def list_batches(request: Request) -> Response:
    """``GET /v1/messages/batches``: newest first, paged by ``limit``, ``after_id`` and ``before_id``."""
    call = await api_call(request)
    query = request.query_params
    limit = page_limit(query.get("limit"))
    batches, has_more = call.state.batches.page(limit, query.get("after_id"), query.get("before_id"))
    return JSONResponse(
        {
            "data": [batch.to_json(base_url(request)) for batch in batches],
            "has_more": has_more,
            "first_id": batches[0].id if batches else None,
            "last_id": batches[-1].id if batches else None,
        }
    )


async def retrieve_batch(request: Request) -> Response:
    """``GET /v1/messages/batches/{batch_id}``."""
    call = await api_call(request)
    return JSONResponse(call.state.batches.get(request.path_params["batch_id"]).to_json(base_url(request)))


async def batch_results(request: Request) -> Response:
    """``GET /v1/messages/batches/{batch_id}/results``: one JSON line per request, once the batch has ended."""
    call = await api_call(request)
    jsonl = call.state.batches.results_jsonl(request.path_params["batch_id"])
    return Response(jsonl, media_type="application/x-jsonl")


async def cancel_batch(request: Request) -> Response:
    """``POST /v1/messages/batches/{batch_id}/cancel``."""
    call = await api_call(request)
    return JSONResponse(call.state.batches.cancel(request.path_params["batch_id"]).to_json(base_url(request)))


async def delete_batch(request: Request) -> Response:
    """``DELETE /v1/messages/batches/{batch_id}``: only an ended batch can be deleted."""
    call = await api_call(request)
    batch_id = request.path_params["batch_id"]
    call.state.batches.delete(batch_id)
    return JSONResponse({"id": batch_id, "type": "message_batch_deleted"})


async def health(request: Request) -> Response:
    """``GET /health``: no key needed, never faulted."""
    return JSONResponse({"status": "ok"})


async def get_config(request: Request) -> Response:
    """``GET /_sim/config``: the configuration in force."""
    return JSONResponse(sim_state(request).config.model_dump(mode="json"))


async def update_config(request: Request) -> Response:
    """``POST /_sim/config``: change some fields (validated as a whole); answers the new configuration."""
    changes = await read_json(request)
    if not isinstance(changes, dict):
        raise ApiError(400, "invalid_request_error", "config update must be a JSON object of fields to change")
    try:
        config = sim_state(request).configure(**changes)
    except ValidationError as error:
        raise ApiError(400, "invalid_request_error", describe_validation_error(error)) from None
    return JSONResponse(config.model_dump(mode="json"))


async def get_stats(request: Request) -> Response:
    """``GET /_sim/stats``: request counts by endpoint and status, and injected faults."""
    return JSONResponse(sim_state(request).stats.snapshot())


async def reset_stats(request: Request) -> Response:
    """``POST /_sim/stats/reset``: zero the counts."""
    stats = sim_state(request).stats
    stats.reset()
    return JSONResponse(stats.snapshot())


async def api_error_response(request: Request, error: Exception) -> Response:
    """An ``ApiError`` in the API's JSON error shape, with its status and headers."""
    assert isinstance(error, ApiError)
    return JSONResponse(error.body(request.state.request_id), status_code=error.status, headers=error.headers)


async def http_error_response(request: Request, error: Exception) -> Response:
    """Unknown paths and methods, in the API's error shape rather than Starlette's plain text."""
    assert isinstance(error, HTTPException)
    error_type: ErrorType = "not_found_error" if error.status_code in (404, 405) else "invalid_request_error"
    message = f"{request.method} {request.url.path}: {error.detail}"
    return JSONResponse(
        ApiError(error.status_code, error_type, message).body(request.state.request_id), status_code=error.status_code
    )


class RequestIdAndStats:
    """Adds a ``request-id`` header to every response and counts /v1 requests by route and status."""

    def __init__(self, app: ASGIApp, stats: RequestStats):
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        counted = False

        def count(status: int) -> None:
            # Counted before the response leaves, so a client that reads /_sim/stats right after
            # its response always sees its own request.
            nonlocal counted
            if not counted and scope["path"].startswith("/v1/"):
                route = scope.get("route")
                self.stats.record(f"{scope['method']} {route.path if route else scope['path']}", status)
            counted = True

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                count(message["status"])
                MutableHeaders(scope=message).append("request-id", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            count(500)


ROUTES = [
    Route("/v1/messages", create_message, methods=["POST"]),
    Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
    Route("/v1/messages/batches", create_batch, methods=["POST"]),
    Route("/v1/messages/batches", list_batches, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}", retrieve_batch, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}", delete_batch, methods=["DELETE"]),
    Route("/v1/messages/batches/{batch_id}/results", batch_results, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
    Route("/health", health, methods=["GET"]),
    Route("/_sim/config", get_config, methods=["GET"]),
    Route("/_sim/config", update_config, methods=["POST"]),
    Route("/_sim/stats", get_stats, methods=["GET"]),
    Route("/_sim/stats/reset", reset_stats, methods=["POST"]),
]


def create_app(config: SimConfig | None = None) -> Starlette:
    """The simulator as an ASGI app, for uvicorn (``llmops sim``) or an in-process test client.

    Args:
        config: Latency, faults, drift; None is ``SimConfig()`` (200 ms median, no faults).

    Returns:
        A Starlette app; ``app.state.sim`` is its ``SimState``.

    Example:
        ```python
        import uvicorn
        uvicorn.run(create_app(SimConfig(error_rate_429=0.05, seed=1)), port=8787)
        ```
    """
    state = SimState(config or SimConfig())
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(RequestIdAndStats, stats=state.stats)],
        exception_handlers={ApiError: api_error_response, HTTPException: http_error_response},
        lifespan=state.lifespan,
    )
    app.state.sim = state
    return app


def _listening_socket(host: str, port: int) -> socket.socket:
    """A TCP listener created with IPPROTO_TCP explicitly.

    asyncio sets TCP_NODELAY on accepted connections only when the listening socket's
    protocol says TCP; ``socket.create_server`` leaves it 0, and every response then waits
    ~40 ms for a delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class SimServer:
    """The simulator on a background uvicorn thread, for tests and the demo.

    ``port=0`` (the default) picks a free port; ``base_url`` is what the SDK's ``base_url`` needs.
    As a context manager it starts on entry and stops on exit.

    Args:
        config: Latency, faults, drift; None is ``SimConfig()``.
        host: Interface to listen on.
        port: TCP port; 0 picks a free one, known after ``start``.

    Example:
        ```python
        import anthropic
        from llmops.sim import SimConfig, SimServer

        with SimServer(SimConfig(latency_median_ms=5, seed=1)) as sim:
            client = anthropic.Anthropic(base_url=sim.base_url, api_key="sim")
            client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
            sim.configure(error_rate_529=0.5)  # chaos from here on
            print(sim.stats()["total_requests"])
        ```
    """

    def __init__(self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.app = create_app(config)
        self.state: SimState = self.app.state.sim
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://host:port``, the SDK's ``base_url`` (the port is real only after ``start``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def config(self) -> SimConfig:
        """The configuration in force."""
        return self.state.config

    def configure(self, **changes: Any) -> SimConfig:
        """Change settings while running, as ``POST /_sim/config`` does.

        Args:
            **changes: ``SimConfig`` fields and their new values; ``seed`` restarts the fault RNG.

        Returns:
            The new configuration.

        Raises:
            pydantic.ValidationError: An unknown field or an invalid value; nothing changes.
        """
        return self.state.configure(**changes)

    def stats(self) -> dict[str, Any]:
        """Request and fault counts, as ``GET /_sim/stats`` returns them."""
        return self.state.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the request and fault counts, as ``POST /_sim/stats/reset`` does."""
        self.state.stats.reset()

    def start(self, startup_timeout_seconds: float = 10.0) -> SimServer:
        """Listen and serve on a daemon thread; return once the server accepts requests.

        Args:
            startup_timeout_seconds: How long to wait for uvicorn to start.

        Returns:
            The server itself, so ``sim = SimServer().start()`` works.

        Raises:
            RuntimeError: It is already running, the port is taken, or it did not start in time.
        """
        if self._thread is not None:
            raise RuntimeError(f"the simulator is already running at {self.base_url}")
        try:
            sock = _listening_socket(self.host, self.port)
        except OSError as error:
            raise RuntimeError(f"cannot listen on {self.host}:{self.port}: {error.strerror}") from None
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False, timeout_graceful_shutdown=1))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"llmops-sim:{self.port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + startup_timeout_seconds
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(timeout=5)
                sock.close()
                raise RuntimeError(f"the simulator did not start on {self.base_url}")
            time.sleep(0.005)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving; requests still sleeping (hangs, pacing) are released first."""
        if self._server is None or self._thread is None:
            return
        self.state.release_waiters()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
