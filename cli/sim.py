"""`llmops sim`: run the Anthropic-compatible simulator in the foreground, with injected faults."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from llmops.sim import SimConfig, SimServer
from llmops.sim.config import describe_validation_error

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
HELP = "Run a local Anthropic-compatible model server (no key, no internet) with optional injected faults."


def sim(
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    latency_ms: Annotated[float | None, typer.Option(help="Median response time in ms (lognormal).")] = None,
    latency_sigma: Annotated[float | None, typer.Option(help="Sigma of the lognormal response time.")] = None,
    ttft_ms: Annotated[float | None, typer.Option(help="Time to first token of a stream, in ms.")] = None,
    error_rate_429: Annotated[float | None, typer.Option(help="Share of requests answered 429 (0-1).")] = None,
    retry_after: Annotated[float | None, typer.Option(help="retry-after seconds sent with a 429.")] = None,
    error_rate_529: Annotated[float | None, typer.Option(help="Share answered 529 overloaded (0-1).")] = None,
    error_rate_500: Annotated[float | None, typer.Option(help="Share answered 500 api_error (0-1).")] = None,
    hang_rate: Annotated[float | None, typer.Option(help="Share of requests that stall (0-1).")] = None,
    hang_seconds: Annotated[float | None, typer.Option(help="How long a stalled request stalls.")] = None,
    batch_delay: Annotated[float | None, typer.Option(help="Seconds a message batch stays in progress.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the fault RNG, for reproducible chaos.")] = None,
    provider_update: Annotated[
        list[str] | None,
        typer.Option(help="Model id whose behaviour silently changes (repeatable).", metavar="MODEL"),
    ] = None,
) -> None:
    """Serve until Ctrl-C; point any Anthropic SDK at the printed ANTHROPIC_BASE_URL."""
    options: dict[str, Any] = {
        "latency_median_ms": latency_ms,
        "latency_sigma": latency_sigma,
        "ttft_ms": ttft_ms,
        "error_rate_429": error_rate_429,
        "retry_after_seconds": retry_after,
        "error_rate_529": error_rate_529,
        "error_rate_500": error_rate_500,
        "hang_rate": hang_rate,
        "hang_seconds": hang_seconds,
        "batch_delay_seconds": batch_delay,
        "seed": seed,
        "provider_updated_models": provider_update,
    }
    try:
        config = SimConfig(**{name: value for name, value in options.items() if value is not None})
    except ValidationError as error:
        raise typer.BadParameter(describe_validation_error(error)) from None

    server = SimServer(config, host=host, port=port)
    try:
        server.start()
    except RuntimeError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1) from None

    url = server.base_url
    changed = config.model_dump(mode="json", exclude_defaults=True)
    typer.echo(f"llmops sim: Anthropic-compatible model server on {url}")
    typer.echo(f"  Point the SDK at it:  export ANTHROPIC_BASE_URL={url} ANTHROPIC_API_KEY=sim")
    typer.echo(f"  or: anthropic.Anthropic(base_url={url!r}, api_key='sim')")
    typer.echo(f"  Settings: {changed or 'defaults'}  (change live: POST {url}/_sim/config)")
    typer.echo(f"  Counts: GET {url}/_sim/stats   Ctrl-C to stop.")

    stop_requested = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stop_requested.set()) for number in STOP_SIGNALS}
    try:
        while not stop_requested.wait(0.5):
            pass
    finally:
        server.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
        typer.echo("llmops sim: stopped")


def register(app: typer.Typer) -> None:
    """Add ``sim`` to the root CLI."""
    app.command("sim", help=HELP)(sim)
