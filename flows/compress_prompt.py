"""The ``compress-prompt`` flow: LLMLingua candidates of a prompt, each proven on its own evaluation.

For each requested rate the system prompt is compressed (its facts, variables and format kept
verbatim), counted in the pinned model's tokens, and evaluated on every dataset of the prompt
against the pinned model, next to the uncompressed version. The most compressed candidate
that is not a regression on any metric becomes the next patch version's file, with a
changelog that says how it was made and what it saves; a person promotes it from the
promote-prompt form like any other version. The table artifact shows every rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from llmops import settings
from llmops.compression.experiment import (
    REGISTERED_CREATOR,
    Candidate,
    CompressionRequest,
    candidate_prompt,
    candidate_rows,
    candidate_version,
    choose,
    ineffective,
    protection_for,
    why_none,
    written_before,
)
from llmops.compression.lingua import CompressionUnavailable, default_method, missing_extra
from llmops.compression.savings import project
from llmops.evals.datasets import dataset_paths
from llmops.evals.runner import RunSettings
from llmops.evals.store import COMPRESSION_CANDIDATE_CREATOR
from llmops.evals.verdicts import VerdictPolicy
from llmops.prompts import PromptVersion, get_prompt, load_prompts
from llmops.release.registry import Registry, get_registry
from llmops.release.rollouts import default_actor
from llmops.text import markdown_code, markdown_escape
from prefect_llmops.blocks.compression import LinguaModel
from prefect_llmops.blocks.model import AnthropicModel
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.flows.artifact_keys import artifact_key
from prefect_llmops.tasks.common import store_engine
from prefect_llmops.tasks.compression import compress_candidates, count_prompt_tokens, recent_traffic_task, register_candidate
from prefect_llmops.tasks.digest import send_alert
from prefect_llmops.tasks.evals import compare_task, evaluate_prompt


def source_version(request: CompressionRequest, registry: Registry) -> PromptVersion:
    """The version named, else the one in production, else the latest release."""
    version = request.version or registry.labels(request.prompt_name).production
    return get_prompt(request.prompt_name, version)


def versions_for(source: PromptVersion, registry: Registry) -> Callable[[str], str]:
    """The version a compressed system prompt gets: the one it was registered as before, else
    the next patch number not used in the files or in the store."""
    files = load_prompts(settings.prompts_dir()).get(source.name, {})
    fresh = candidate_version(source, set(files) | {registered.version for registered in registry.versions(source.name)})
    return lambda system: written_before(source, system, files.values()) or fresh


def _markdown(source: PromptVersion, candidates: list[Candidate], chosen: Candidate | None, registered: str | None) -> str:
    md = markdown_escape  # every name, version, verdict and note below is data
    lines = [f"## Compression of {md(source.ref)} ({len(candidates)} rates)", ""]
    if chosen is None:
        lines.append(f"**Nothing registered.** {md(why_none(candidates))}")
    else:
        where = f"registered as {markdown_code(registered)}" if registered else "not registered (register was off)"
        lines += [
            f"**{md(source.name)} {md(chosen.prompt.version)}**: rate {chosen.rate:g}, {chosen.tokens_before:,} → "
            f"{chosen.tokens_after:,} tokens ({chosen.ratio:.0%}), {md(chosen.verdict)}; {where}.",
            "",
            f"Projected saving: {md(chosen.projection.summary()) if chosen.projection else '–'}.",
            "",
            "Promote it with the promote-prompt form or "
            f"{markdown_code(f'llmops promote {source.name} {chosen.prompt.version} --strategy canary')}.",
        ]
    lines += ["", "| rate | ratio | status | why |", "|---|---|---|---|"]
    lines += [f"| {c.rate:g} | {c.ratio:.0%} | {md(c.status)} | {md(c.note)} |" for c in candidates]
    return "\n".join(lines)


@flow(
    name="compress-prompt",
    description="Compress a prompt with LLMLingua at several rates; register the best candidate that is not a regression.",
)
def compress_prompt(
    request: CompressionRequest,
    store_block: str | None = None,
    model_block: str | None = None,
    lingua_block: str | None = None,
    concurrency: int = 16,
) -> dict[str, Any]:
    """Build, evaluate and judge one candidate per rate; register the most compressed one that passed.

    Returns the candidates as rows and what was registered. Fails at once, with the command to
    install it, when the compression extra is missing.
    """
    if problem := missing_extra():
        raise CompressionUnavailable(problem)
    logger = get_run_logger()
    store = TraceStore.load(store_block) if store_block else None
    model = AnthropicModel.load(model_block) if model_block else None
    lingua = LinguaModel.load(lingua_block) if lingua_block else None
    engine = store_engine(store)
    registry = Registry(engine) if store is not None else get_registry()
    source = source_version(request, registry)
    paths = dataset_paths(source.name)
    if not paths:
        raise FileNotFoundError(
            f"{source.name} has no evaluation dataset: a compressed version is registered only after its evaluation"
        )
    method = request.method or (lingua.method if lingua else default_method())
    actor = request.actor or default_actor()

    compressed = compress_candidates(source.system, request.rates, method, protection_for(source), lingua)
    before, *after = count_prompt_tokens(source.model, [source.system, *(c.text for c in compressed)], model)
    version_for = versions_for(source, registry)
    candidates = [
        Candidate(result.rate, candidate_prompt(source, result, version_for(result.text)), result, before, tokens)
        for result, tokens in zip(compressed, after, strict=True)
    ]
    run_settings = RunSettings(concurrency=concurrency)
    policy = VerdictPolicy(tolerance=request.tolerance)
    for candidate in candidates:
        if reason := ineffective(before, candidate.tokens_after, request.min_saving):
            candidate.status, candidate.note = "ineffective", reason
    evaluated = [candidate for candidate in candidates if candidate.status == "pending"]
    if evaluated:
        for path in paths:
            baseline = evaluate_prompt(source, source.version, path, run_settings, REGISTERED_CREATOR, store, model)
            for candidate in evaluated:
                label = f"{candidate.prompt.version}-rate-{candidate.rate:g}"
                run = evaluate_prompt(candidate.prompt, label, path, run_settings, COMPRESSION_CANDIDATE_CREATOR, store, model)
                candidate.comparisons.append(compare_task(baseline.id, run.id, policy, store))
        for candidate in evaluated:
            candidate.judge()
    traffic = recent_traffic_task(source, store)
    for candidate in candidates:
        candidate.projection = project(traffic, before - candidate.tokens_after)

    chosen = choose(candidates)
    registered = None
    if chosen is not None and request.register_version:
        registered = str(register_candidate(source, chosen, actor, settings.prompts_dir(), store))
        chosen.status = "registered"
        send_alert(
            "compression",
            f"{source.name} {chosen.prompt.version} is ready to promote",
            f"Compressed from {source.version} at rate {chosen.rate:g}: {chosen.tokens_before:,} → {chosen.tokens_after:,} "
            f"tokens ({chosen.ratio:.0%}), {chosen.verdict} on its evaluation.\n"
            f"Projected saving: {chosen.projection.summary() if chosen.projection else '–'}.\n"
            f"Promote: llmops promote {source.name} {chosen.prompt.version} --strategy canary",
            "info",
            store=store,
        )  # fmt: skip
    rows = candidate_rows(candidates)
    create_table_artifact(
        key=artifact_key("compression", source.name), table=rows,
        description=f"Compression candidates of {source.ref} ({method}); tokens in {source.model}'s count",
    )  # fmt: skip
    create_markdown_artifact(
        key=artifact_key("compression-summary", source.name), markdown=_markdown(source, candidates, chosen, registered),
        description=f"Compression of {source.ref}",
    )  # fmt: skip
    logger.info("%s", f"registered {registered}" if registered else f"nothing registered: {why_none(candidates)}")
    return {
        "prompt": source.name,
        "source_version": source.version,
        "method": method,
        "model": compressed[0].model if compressed else None,
        "candidates": rows,
        "chosen": chosen.prompt.version if chosen else None,
        "chosen_rate": chosen.rate if chosen else None,
        "registered": registered,
        "why_none": None if chosen else why_none(candidates),
        "projection": chosen.projection.summary() if chosen and chosen.projection else None,
    }
