"""The LLMLingua model that prompt compression runs, as a Prefect Block."""

from __future__ import annotations

from typing import Literal

from prefect.blocks.core import Block
from pydantic import Field

from prefect_llmops.blocks.catalog import DOCUMENTATION_URL, LOGO_URL


class LinguaModel(Block):
    """Which LLMLingua method compresses prompts, and the model folder it loads.

    ``llmlingua2`` (a token classifier such as a download of
    microsoft/llmlingua-2-xlm-roberta-large-meetingbank) is the production recommendation;
    ``llmlingua`` ranks tokens by perplexity under a small causal LM, SmolLM2-135M-Instruct
    by default, which needs no download. Models are read from disk only, never from a hub.

    Example:
        ```python
        from prefect_llmops.blocks import LinguaModel

        lingua = LinguaModel.load("BLOCK_NAME")
        print(lingua.method, lingua.model_dir)
        ```
    """

    _logo_url = LOGO_URL
    _documentation_url = DOCUMENTATION_URL
    _block_type_name = "LLMOps Lingua Model"
    _description = "The LLMLingua method and local model folder that compress prompts."

    method: Literal["llmlingua", "llmlingua2"] = Field(
        default="llmlingua2",
        description="llmlingua2: token classification (fast, faithful; needs model_dir). llmlingua: perplexity with a small causal LM.",
    )
    model_dir: str | None = Field(
        default=None,
        title="Model folder",
        description=(
            "A local model folder on the worker. llmlingua2: its name must contain bert-base-multilingual-cased or "
            "xlm-roberta-large, as Microsoft's published folders do. Empty: LLMOPS_LLMLINGUA2_MODEL / "
            "LLMOPS_LLMLINGUA_MODEL, and for llmlingua the bundled SmolLM2-135M-Instruct."
        ),
    )
