"""Prompt compression as Prefect tasks: the candidates, their token counts, the traffic they are
priced on, and the registration of the chosen one. The decisions live in ``llmops.compression``.

Compressing runs a local model and is deterministic, so it is not retried; counting tokens and
reading traffic talk to the model API and the store, and are.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from llmops.compression.experiment import REGISTERED_CREATOR, Candidate, changelog, write_version_file
from llmops.compression.lingua import CompressedText, LinguaCompressor, Method
from llmops.compression.protect import Protection
from llmops.compression.savings import Traffic, recent_traffic
from llmops.compression.tokens import system_prompt_tokens
from llmops.evals.store import adopt_run
from llmops.prompts import PromptVersion
from llmops.release.registry import Registry
from prefect_llmops.blocks.compression import LinguaModel
from prefect_llmops.blocks.model import AnthropicModel
from prefect_llmops.blocks.store import TraceStore
from prefect_llmops.tasks.common import MODEL_API, QUICK, STORE, store_engine
from prefect_llmops.tasks.evals import model_client

COMPRESSION_TIMEOUT_SECONDS = 30 * 60
"""A whole set of candidates; one 2,000-token prompt takes ~10 s on two cores."""


@task(name="compress-candidates", timeout_seconds=COMPRESSION_TIMEOUT_SECONDS, cache_policy=NO_CACHE)
def compress_candidates(
    system: str, rates: list[float], method: Method, protection: Protection, lingua: LinguaModel | None = None
) -> list[CompressedText]:
    """One compression of ``system`` per rate, with the model loaded once."""
    logger = get_run_logger()
    compressor = LinguaCompressor(method, lingua.model_dir if lingua else None)
    logger.info("%s with %s loaded in %.1f s", method, compressor.model, compressor.load_seconds)
    results = []
    for rate in rates:
        result = compressor.compress(system, rate, protection)
        logger.info(
            "rate %g: %d → %d %s tokens in %.1f s", rate, result.lingua_tokens_before, result.lingua_tokens_after,
            compressor.model, result.seconds,
        )  # fmt: skip
        results.append(result)
    return results


@task(name="count-prompt-tokens", **MODEL_API.options(), timeout_seconds=300, cache_policy=NO_CACHE)
def count_prompt_tokens(model_id: str, systems: list[str], model: AnthropicModel | None = None) -> list[int]:
    """Each system prompt's tokens in ``model_id``'s own count (its provider's count_tokens)."""

    async def count() -> list[int]:
        async with model_client(model) as client:
            return await system_prompt_tokens(client, model_id, systems)

    return asyncio.run(count())


@task(name="recent-traffic", **STORE.options(), cache_policy=NO_CACHE)
def recent_traffic_task(prompt: PromptVersion, store: TraceStore | None = None) -> Traffic:
    """The version's calls over the last 30 days, which the projected saving is priced on."""
    return recent_traffic(store_engine(store), prompt.name, prompt.version, prompt.model)


@task(name="register-candidate", **QUICK.options(), cache_policy=NO_CACHE)
def register_candidate(
    source: PromptVersion, candidate: Candidate, actor: str, prompts_dir: Path, store: TraceStore | None = None
) -> Path:
    """Write the candidate as its version file, record it in the registry, and make its eval runs its own.

    Safe to retry: a file that already holds exactly this content is kept. Never promotes.
    """
    prompt = candidate.prompt.model_copy(update={"changelog": changelog(source, candidate), "author": actor})
    path = write_version_file(prompt, prompts_dir)
    engine = store_engine(store)
    Registry(engine).register(prompt, actor=actor)
    for comparison in candidate.comparisons:
        adopt_run(engine, comparison.candidate.id, REGISTERED_CREATOR)
    get_run_logger().info("registered %s as %s", prompt.ref, path)
    return path
