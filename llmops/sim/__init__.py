"""An Anthropic-compatible local model server: the demo's default model, a test double, a chaos tool.

from llmops.sim import SimServer, SimConfig
with SimServer(SimConfig(latency_median_ms=5, seed=1)) as sim:
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="sim")
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
