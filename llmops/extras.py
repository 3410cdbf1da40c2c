"""Which optional install provides a module: one line of advice instead of a traceback.

``pip install prefect-llmops`` is the application side (tracing, resolve, the store, pricing,
the command line's store commands). The operations side comes in extras: ``ops`` (Prefect, the
flows, Slack, charts, statistics, evaluations, the local model server), ``compression``
(``ops`` and LLMLingua with torch) and ``dask`` (``ops`` and evaluations on a Dask cluster).
"""

from __future__ import annotations

EXTRA_OF_MODULE: dict[str, str] = {
    "prefect": "ops",
    "numpy": "ops",
    "scipy": "ops",
    "matplotlib": "ops",
    "slack_sdk": "ops",
    "starlette": "ops",
    "uvicorn": "ops",
    "jsonschema": "ops",
    "tokenizers": "ops",
    "safetensors": "ops",
    "threadpoolctl": "ops",
    "aiohttp": "ops",
    "torch": "compression",
    "transformers": "compression",
    "llmlingua": "compression",
    "tiktoken": "compression",
    "gguf": "compression",
    "prefect_dask": "dask",
}
"""Top-level module → the extra that installs it."""


def install_hint(module: str | None) -> str | None:
    """The ``pip install`` that provides ``module`` (a dotted name is fine), or None if no extra does.

    Args:
        module: The name a ``ModuleNotFoundError`` carries.

    Returns:
        A one-line instruction, or None for a module the extras do not provide.

    Example:
        >>> install_hint("scipy.stats")
        "pip install 'prefect-llmops[ops]'"
        >>> install_hint("torch")
        "pip install 'prefect-llmops[compression]'"
    """
    extra = EXTRA_OF_MODULE.get((module or "").partition(".")[0])
    if extra is None:
        return None
    return f"pip install 'prefect-llmops[{extra}]'"
