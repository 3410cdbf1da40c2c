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

DirOption = Annotated[Path | None, typer.Option("--dir", help="Prompts directory; default $LLMOPS_PROMPTS_DIR or ./prompts.")]
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
    directory: Annotated[Path | None, typer.Argument(help="Prompts directory; default $LLMOPS_PROMPTS_DIR or ./prompts.")] = None,
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


@prompts_app.command("list")
def list_prompts(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """Each prompt with its versions, its latest release and that release's model."""
    with _exits_on_bad_prompts():
        prompts = load_prompts(directory)
    rows = []
    for name, versions in prompts.items():
        latest = versions[latest_version(versions)]
        rows.append({"name": name, "versions": list(versions), "latest": latest.version, "model": latest.model})
    if as_json:
        print_json(rows)
    else:
        print_table([{**row, "versions": ", ".join(row["versions"])} for row in rows], title="prompts")


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
