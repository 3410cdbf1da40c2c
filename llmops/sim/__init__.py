"""An Anthropic-compatible local model server: the demo's default model, a test double, a chaos tool.

    from llmops.sim import SimServer, SimConfig
    with SimServer(SimConfig(latency_median_ms=5, seed=1)) as sim:
        client = anthropic.Anthropic(base_url=sim.base_url, api_key="sim")

The HTTP side is ``server`` (endpoints, ``create_app``, ``SimServer``) over ``state`` (one
instance's configuration, faults, cache, batches, counters), ``protocol`` (requests, errors)
and ``messages`` (responses, streams). The model itself is ``responder``, which dispatches to
the ``tasks`` (chat, summary, code review, grading) using ``knowledge`` and ``grounding``;
``config``, ``faults``, ``usage`` and ``batches`` are the knobs, chaos, token accounting and
the Message Batches lifecycle.
"""

from llmops.sim.config import KNOWN_MODELS, MODEL_ALIASES, SimConfig, UnknownModelError, resolve_model
from llmops.sim.server import SimServer, create_app

__all__ = [
    "KNOWN_MODELS",
    "MODEL_ALIASES",
    "SimConfig",
    "SimServer",
    "UnknownModelError",
    "create_app",
    "resolve_model",
]
