"""Tiny LLMLingua models for the session, and no leaks of the process environment LLMLingua needs.

The models are built once per session under ``tmp_path_factory`` (see ``tests/lingua_models``):
random weights, vocabularies trained offline, a few seconds in all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops import settings
from tests.lingua_models import tiny_causal_lm, tiny_token_classifier


@pytest.fixture(scope="session")
def causal_lm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny LlamaForCausalLM folder for the ``llmlingua`` method."""
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-causal-lm"))


@pytest.fixture(scope="session")
def token_classifier_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BertForTokenClassification folder (named for bert-base-multilingual-cased) for ``llmlingua2``."""
    return tiny_token_classifier(tmp_path_factory.mktemp("tiny-token-classifier"))


@pytest.fixture(autouse=True)
def lingua_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``LinguaCompressor`` sets HF_HUB_OFFLINE and TIKTOKEN_CACHE_DIR in ``os.environ`` (the latter to
    this test's LLMOPS_HOME): registered here, both are put back as they were after each test."""
    monkeypatch.setenv(settings.HF_HUB_OFFLINE, "1")
    monkeypatch.delenv(settings.TIKTOKEN_CACHE_DIR, raising=False)
    monkeypatch.delenv(settings.LLMOPS_LLMLINGUA_MODEL, raising=False)
    monkeypatch.delenv(settings.LLMOPS_LLMLINGUA2_MODEL, raising=False)
