"""Prefect Blocks: the credentials and settings the flows load by name.

Registered with Prefect through the ``prefect.collections`` entry point, so
``Block.load("llmops-trace-source/app-traces")`` finds the classes without importing them.
"""

from prefect_llmops.blocks.compression import LinguaModel
from prefect_llmops.blocks.model import AnthropicModel
from prefect_llmops.blocks.slack import SlackDigest
from prefect_llmops.blocks.source import TraceSource
from prefect_llmops.blocks.store import TraceStore

__all__ = ["AnthropicModel", "LinguaModel", "SlackDigest", "TraceSource", "TraceStore"]
