"""The HTTP side: Anthropic-compatible endpoints, the admin API, and ``SimServer`` for tests.

Shapes follow the real API closely enough that the official ``anthropic`` SDK parses every
response, streams included, and follows batch ``results_url`` links back to this server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import secrets
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
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

from llmops.sim.batches import BatchResult, BatchStore
from llmops.sim.config import SimConfig, UnknownModelError, describe_validation_error, resolve_model
from llmops.sim.faults import Fault, FaultInjector
from llmops.sim.protocol import ApiError, CountTokensRequest, MessagesRequest, parse_request
from llmops.sim.responder import Completion, complete
from llmops.sim.usage import InputUsage, PromptCache, count_input_tokens

STREAM_WORDS_PER_CHUNK = 3


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class RequestStats:
    """Counts of API requests by endpoint and status, and of injected faults (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_endpoint: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._faults: Counter[str] = Counter()

    def record(self, endpoint: str, status: int) -> None:
        with self._lock:
            self._by_endpoint[endpoint][str(status)] += 1

    def record_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults[fault.value] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            by_endpoint = {endpoint: dict(counts) for endpoint, counts in self._by_endpoint.items()}
            return {
                "total_requests": sum(sum(counts.values()) for counts in by_endpoint.values()),
                "by_endpoint": by_endpoint,
                "faults": dict(self._faults),
            }

    def reset(self) -> None:
        with self._lock:
            self._by_endpoint.clear()
            self._faults.clear()


class SimState:
    """Everything one simulator instance holds: config, fault RNG, prompt cache, batches, stats."""

    def __init__(self, config: SimConfig):
        self._config = config
        self._config_lock = threading.Lock()
        self.faults = FaultInjector(config)
        self.cache = PromptCache(ttl_5m_seconds=lambda: self.config.cache_ttl_seconds)
        self.batches = BatchStore(self.answer_batch_request, delay_seconds=lambda: self.config.batch_delay_seconds)
        self.stats = RequestStats()
        self.sampling = random.Random(config.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def config(self) -> SimConfig:
        return self._config

    def configure(self, **changes: Any) -> SimConfig:
        """Apply a partial update (validated as a whole); sending ``seed`` restarts the fault RNG."""
        with self._config_lock:
            config = self._config.updated(**changes)
            self.faults.reconfigure(config, reseed="seed" in changes)
            self._config = config
        return config

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        yield
        self.batches.close()

    def release_waiters(self) -> None:
        """Wake every sleeping request (hangs, latency, stream pacing) so shutdown is immediate."""
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopping.set)

    async def pause(self, seconds: float) -> None:
        """Sleep, but no longer than until the server stops."""
        if seconds <= 0 or self._stopping is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def inject_fault(self) -> None:
        """Maybe stall (then answer normally) or fail this request, as the config's rates say."""
        fault = self.faults.draw()
        if fault is None:
            return
        self.stats.record_fault(fault)
        if fault is Fault.HANG:
            await self.pause(self.config.hang_seconds)
            return
        raise self.faults.error_for(fault)

    def answer(self, request: MessagesRequest, model_id: str) -> tuple[Completion, InputUsage]:
        config = self.config
        sample = self.sampling.getrandbits(48) + 1 if config.sampling_variation and request.temperature != 0 else 0
        completion = complete(request, provider_updated=model_id in config.provider_updated_models, sample=sample)
        return completion, self.cache.account(model_id, request)

    def answer_batch_request(self, params: dict[str, Any]) -> BatchResult:
        """One batch item: succeeded with a Message, or errored (invalid params, injected 5xx)."""
        try:
            request = parse_request(MessagesRequest, params)
            if request.stream:
                raise ApiError(400, "invalid_request_error", "stream: batch requests cannot stream")
            model_id = known_model(request.model)
            fault = self.faults.draw()
            if fault in (Fault.OVERLOADED, Fault.API_ERROR):
                self.stats.record_fault(fault)
                raise self.faults.error_for(fault)
            completion, usage = self.answer(request, model_id)
        except ApiError as error:
            return {"type": "errored", "error": error.body(new_id("req"))}
        return {"type": "succeeded", "message": message_json(model_id, completion, usage, service_tier="batch")}


def known_model(name: str) -> str:
    try:
        return resolve_model(name)
    except UnknownModelError as error:
        raise ApiError(404, "not_found_error", str(error)) from None


def usage_json(usage: InputUsage, output_tokens: int, service_tier: str) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_creation_5m,
            "ephemeral_1h_input_tokens": usage.cache_creation_1h,
        },
        "service_tier": service_tier,
    }


def message_json(model_id: str, completion: Completion, usage: InputUsage, service_tier: str) -> dict[str, Any]:
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model_id,
        "content": [{"type": "text", "text": completion.text}],
        "stop_reason": completion.stop_reason,
        "stop_sequence": completion.stop_sequence,
        "usage": usage_json(usage, completion.output_tokens, service_tier),
    }


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def text_chunks(text: str) -> list[str]:
    """Groups of a few words; joined they give back ``text`` exactly."""
    pieces = re.findall(r"\S+\s*|\s+", text)
    return ["".join(pieces[i : i + STREAM_WORDS_PER_CHUNK]) for i in range(0, len(pieces), STREAM_WORDS_PER_CHUNK)]


async def stream_events(state: SimState, message: dict[str, Any], model_id: str) -> AsyncIterator[str]:
    """The Messages streaming protocol, in the real order, paced by time to first token and latency."""
    text = message["content"][0]["text"]
    usage = message["usage"]
    opening = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}
    yield sse("message_start", {"type": "message_start", "message": opening})
    empty_block = {"type": "text", "text": ""}
    yield sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": empty_block})
    yield sse("ping", {"type": "ping"})
    ttft = state.faults.ttft_seconds(model_id)
    chunks = text_chunks(text)
    interval = max(0.0, state.faults.latency_seconds(model_id) - ttft) / max(1, len(chunks))
    await state.pause(ttft)
    for index, chunk in enumerate(chunks):
        if index:
            await state.pause(interval)
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}}
        yield sse("content_block_delta", delta)
    yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    closing = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    yield sse("message_delta", {"type": "message_delta", "delta": closing, "usage": usage})
    yield sse("message_stop", {"type": "message_stop"})


def sim_state(request: Request) -> SimState:
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
    return str(request.base_url).rstrip("/")


async def create_message(request: Request) -> Response:
    call = await api_call(request)
    state = call.state
    body = parse_request(MessagesRequest, call.body)
    model_id = known_model(body.model)
    completion, usage = state.answer(body, model_id)
    message = message_json(model_id, completion, usage, service_tier="standard")
    if body.stream:
        return StreamingResponse(stream_events(state, message, model_id), media_type="text/event-stream")
    await state.pause(state.faults.latency_seconds(model_id))
    return JSONResponse(message)


async def count_tokens(request: Request) -> Response:
    call = await api_call(request)
    body = parse_request(CountTokensRequest, call.body)
    known_model(body.model)
    return JSONResponse({"input_tokens": count_input_tokens(body)})


async def create_batch(request: Request) -> Response:
    call = await api_call(request)
    batch = call.state.batches.create(call.body)
    return JSONResponse(batch.to_json(base_url(request)))


def page_limit(raw: str | None) -> int:
    if raw is None:
        return 20
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ApiError(400, "invalid_request_error", f"limit: must be an integer from 1 to 1000, got {raw!r}")
    return int(raw)


async def list_batches(request: Request) -> Response:
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
    call = await api_call(request)
    return JSONResponse(call.state.batches.get(request.path_params["batch_id"]).to_json(base_url(request)))


async def batch_results(request: Request) -> Response:
    call = await api_call(request)
    jsonl = call.state.batches.results_jsonl(request.path_params["batch_id"])
    return Response(jsonl, media_type="application/x-jsonl")


async def cancel_batch(request: Request) -> Response:
    call = await api_call(request)
    return JSONResponse(call.state.batches.cancel(request.path_params["batch_id"]).to_json(base_url(request)))


async def delete_batch(request: Request) -> Response:
    call = await api_call(request)
    batch_id = request.path_params["batch_id"]
    call.state.batches.delete(batch_id)
    return JSONResponse({"id": batch_id, "type": "message_batch_deleted"})


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def get_config(request: Request) -> Response:
    return JSONResponse(sim_state(request).config.model_dump(mode="json"))


async def update_config(request: Request) -> Response:
    changes = await read_json(request)
    if not isinstance(changes, dict):
        raise ApiError(400, "invalid_request_error", "config update must be a JSON object of fields to change")
    try:
        config = sim_state(request).configure(**changes)
    except ValidationError as error:
        raise ApiError(400, "invalid_request_error", describe_validation_error(error)) from None
    return JSONResponse(config.model_dump(mode="json"))


async def get_stats(request: Request) -> Response:
    return JSONResponse(sim_state(request).stats.snapshot())


async def reset_stats(request: Request) -> Response:
    stats = sim_state(request).stats
    stats.reset()
    return JSONResponse(stats.snapshot())


async def api_error_response(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return JSONResponse(error.body(request.state.request_id), status_code=error.status, headers=error.headers)


async def http_error_response(request: Request, error: Exception) -> Response:
    """Unknown paths and methods, in the API's error shape rather than Starlette's plain text."""
    assert isinstance(error, HTTPException)
    error_type = "not_found_error" if error.status_code in (404, 405) else "invalid_request_error"
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
    """The ASGI app; ``app.state.sim`` is its ``SimState``."""
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
        return f"http://{self.host}:{self.port}"

    @property
    def config(self) -> SimConfig:
        return self.state.config

    def configure(self, **changes: Any) -> SimConfig:
        """Change settings while running, as ``POST /_sim/config`` does."""
        return self.state.configure(**changes)

    def stats(self) -> dict[str, Any]:
        """Request and fault counts, as ``GET /_sim/stats`` returns them."""
        return self.state.stats.snapshot()

    def reset_stats(self) -> None:
        self.state.stats.reset()

    def start(self, startup_timeout_seconds: float = 10.0) -> SimServer:
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
