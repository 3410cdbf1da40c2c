"""Prefect Blocks: the credentials and settings the flows load by name.

Registered with Prefect through the ``prefect.collections`` entry point, so
``Block.load("llmops-trace-source/app-traces")`` finds the classes without importing them.
"""

from blocks.compression import LinguaModel
from blocks.model import AnthropicModel
from blocks.slack import SlackDigest
from blocks.source import TraceSource
from blocks.store import TraceStore

__all__ = ["AnthropicModel", "LinguaModel", "SlackDigest", "TraceSource", "TraceStore"]
