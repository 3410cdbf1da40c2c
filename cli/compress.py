"""``llmops compress NAME``: LLMLingua candidates of a prompt, evaluated, the best one registered.

It runs the compress-prompt flow, so the run and its artifacts show in the Prefect UI. Exit
status: 0 a candidate was registered (or chosen, with ``--no-register``), 1 no candidate
passed its evaluation (the table says why), 2 usage errors and a missing compression extra.
"""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from llmops.compression.experiment import CompressionRequest
from llmops.compression.lingua import CompressionUnavailable, missing_extra
from llmops.evals.runner import ModelUnavailable
from llmops.prompts import PromptFileError, PromptNotFoundError
from prefect_llmops.cli.output import EXIT_CHECK_FAILED, echo, fail, print_json, print_table


def _rates(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise fail(f"--rates takes shares of tokens to keep separated by commas, e.g. 0.3,0.5,0.7; got {text!r}") from None


def compress(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    version: Annotated[str | None, typer.Option(help="Version to compress; default: production, else the latest.")] = None,
    rates: Annotated[str, typer.Option(help="Shares of LLMLingua's tokens to keep, one candidate each.")] = "0.3,0.5,0.7",
    method: Annotated[
        str | None, typer.Option(help="llmlingua | llmlingua2; default: llmlingua2 when LLMOPS_LLMLINGUA2_MODEL is set.")
    ] = None,
    tolerance: Annotated[float, typer.Option(help="Score drop (0-1) a metric may show before it counts as a regression.")] = 0.02,
    register: Annotated[
        bool, typer.Option("--register/--no-register", help="Write the chosen candidate as the next version file.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the candidates and the outcome as JSON.")] = False,
) -> None:
    """Compress NAME's system prompt at each rate, evaluate every candidate against the uncompressed
    version on the prompt's datasets, and register the most compressed one that is not a regression."""
    try:
        request = CompressionRequest.model_validate(
            {"prompt_name": name, "version": version, "rates": _rates(rates), "method": method,
             "tolerance": tolerance, "register_version": register}
        )  # fmt: skip
    except ValidationError as exc:
        raise fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))) from None
    if problem := missing_extra():
        raise fail(problem)
    from prefect_llmops.flows.compress_prompt import compress_prompt

    try:
        outcome = compress_prompt(request)
    except (PromptNotFoundError, PromptFileError, FileNotFoundError, ModelUnavailable, CompressionUnavailable) as exc:
        raise fail(str(exc)) from None
    if as_json:
        print_json(outcome)
    else:
        print_table(
            outcome["candidates"], f"{name} {outcome['source_version']} compressed with {outcome['method']} ({outcome['model']})"
        )
        if outcome["chosen"]:
            where = f"registered {outcome['registered']}" if outcome["registered"] else "not registered (--no-register)"
            echo(f"{name} {outcome['chosen']} (rate {outcome['chosen_rate']:g}): {where}")
            echo(f"projected saving: {outcome['projection']}")
            echo(f"promote it: llmops promote {name} {outcome['chosen']} --strategy canary")
        else:
            echo(f"nothing registered: {outcome['why_none']}")
    if not outcome["chosen"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``compress`` to the root CLI."""
    app.command("compress")(compress)
