"""``llmops prompts``: validate, list, show and diff prompt version files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from llmops.prompts import (
    PromptFileError,
    PromptNotFoundError,
    diff,
    get_prompt,
    latest_version,
    load_prompts,
    parse_ref,
    prompt_files,
    validate_prompts,
)
from prefect_llmops.cli.output import EXIT_CHECK_FAILED, echo, fail, print_json, print_table

prompts_app = typer.Typer(help="Prompt version files: prompts/<name>/<version>.yaml.", no_args_is_help=True)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Prompts directory; default $LLMOPS_PROMPTS_DIR, else the current store's (the demo's copy), else ./prompts.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@contextmanager
def _exits_on_bad_prompts() -> Iterator[None]:
    """Exit 2 for a missing directory or an unknown prompt, 1 when a prompt file has errors."""
    try:
        yield
    except (FileNotFoundError, PromptNotFoundError) as exc:
        raise fail(str(exc)) from None
    except PromptFileError as exc:
        message = f"invalid prompt files (see `llmops prompts validate`):\n{exc}"
        raise fail(message, EXIT_CHECK_FAILED) from None


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@prompts_app.command("validate")
def validate(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Prompts directory; default $LLMOPS_PROMPTS_DIR, else the current store's (the demo's copy), else ./prompts."
        ),
    ] = None,
    allow_unknown_model: Annotated[
        bool, typer.Option("--allow-unknown-model", help="No warning for models genai-prices cannot price.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print every problem as `path:line: field: message`; exit 1 on any error (warnings alone: 0)."""
    try:
        problems = validate_prompts(directory, allow_unknown_models=allow_unknown_model)
        checked = len(prompt_files(directory))
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    errors = sum(problem.severity == "error" for problem in problems)
    warnings = len(problems) - errors
    if as_json:
        print_json({"files": checked, "errors": errors, "warnings": warnings,
                    "problems": [problem.to_dict() for problem in problems]})  # fmt: skip
    else:
        for problem in problems:
            echo(problem)
        typer.echo(f"{_count(checked, 'prompt file')} checked: {_count(errors, 'error')}, {_count(warnings, 'warning')}")
    if errors:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _labels(names: list[str], environment: str) -> dict[str, dict[str, dict[str, object]]] | None:
    """``{prompt: {label: {"version", "traffic_percent"}}}`` from the registry; None (and a warning) without a store."""
    from sqlalchemy.exc import SQLAlchemyError

    from llmops.release.registry import RegistryError, get_registry

    try:
        registry = get_registry()
        states = {name: registry.labels(name, environment) for name in names}
    except (SQLAlchemyError, RegistryError, OSError) as exc:
        echo(f"warning: labels not shown, the registry could not be read: {str(exc).splitlines()[0]}", err=True)
        return None
    return {
        name: {
            label: {"version": slot.version, "traffic_percent": slot.traffic_percent}
            for label, slot in sorted(state.slots.items()) if slot.version is not None
        }
        for name, state in states.items()
    }  # fmt: skip


def _label_cell(labels: dict[str, dict[str, object]], label: str) -> str | None:
    slot = labels.get(label)
    if slot is None:
        return None
    traffic = slot["traffic_percent"]
    return f"{slot['version']} ({traffic:g} %)" if isinstance(traffic, int | float) else str(slot["version"])


@prompts_app.command("list")
def list_prompts(
    directory: DirOption = None,
    environment: Annotated[str, typer.Option(help="Whose labels to show (the registry's environment).")] = "production",
    as_json: JsonOption = False,
) -> None:
    """Each prompt with its versions, its latest release and that release's model, and the
    versions its registry labels point at (production, canary with its traffic share, others)."""
    with _exits_on_bad_prompts():
        prompts = load_prompts(directory)
    labels = _labels(list(prompts), environment)
    rows = []
    for name, versions in prompts.items():
        latest = versions[latest_version(versions)]
        row: dict[str, object] = {"name": name, "versions": list(versions), "latest": latest.version, "model": latest.model}
        if labels is not None:
            row["labels"] = labels.get(name, {})
        rows.append(row)
    if as_json:
        print_json(rows)
        return
    shown = []
    for row in rows:
        line = {key: ", ".join(value) if key == "versions" else value for key, value in row.items() if key != "labels"}  # type: ignore[arg-type]
        if labels is not None:
            prompt_labels: dict[str, dict[str, object]] = row["labels"]  # type: ignore[assignment]
            line["production"] = _label_cell(prompt_labels, "production")
            line["canary"] = _label_cell(prompt_labels, "canary")
            others = [
                f"{label} {_label_cell(prompt_labels, label)}" for label in prompt_labels if label not in ("production", "canary")
            ]
            line["other labels"] = ", ".join(others) or None
        shown.append(line)
    print_table(shown, title="prompts" if labels is None else f"prompts, with their labels in {environment}")


@prompts_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(metavar="NAME[@VERSION]", help="A prompt, at its latest release by default.")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """One version's fields and system prompt."""
    with _exits_on_bad_prompts():
        prompt = get_prompt(*parse_ref(ref), directory=directory)
    if as_json:
        print_json(prompt.model_dump(mode="json"))
        return
    parameters = ", ".join(f"{key}={value}" for key, value in prompt.parameters.model_dump(exclude_none=True).items())
    header = {
        "prompt": prompt.ref,
        "model": prompt.model,
        "parameters": parameters,
        "created": prompt.created.isoformat(),
        "author": prompt.author,
        "changelog": prompt.changelog,
        "content hash": prompt.content_hash,
        "variables": ", ".join(prompt.variables) or "none",
        "file": str(prompt.path),
    }
    if prompt.eval_metrics:
        header["eval metrics"] = ", ".join(f"{key}={value}" for key, value in prompt.eval_metrics.items())
    for label, value in header.items():
        echo(f"{label + ':':<14}{value}")
    typer.echo("system:")
    echo(prompt.system.rstrip("\n"))


@prompts_app.command("diff")
def diff_versions(
    name: Annotated[str, typer.Argument(help="The prompt.")],
    old: Annotated[str, typer.Argument(metavar="V1", help="The version to compare from.")],
    new: Annotated[str, typer.Argument(metavar="V2", help="The version to compare to.")],
    directory: DirOption = None,
) -> None:
    """Model and parameter changes, then a unified diff of the system prompts."""
    with _exits_on_bad_prompts():
        before, after = get_prompt(name, old, directory), get_prompt(name, new, directory)
    echo(diff(before, after))


def register(app: typer.Typer) -> None:
    app.add_typer(prompts_app, name="prompts")
