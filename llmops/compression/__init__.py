"""Prompt compression with LLMLingua, proven on the prompt's own evaluation before it can ship.

``protect`` finds what must survive verbatim (facts, variables, format), ``lingua`` runs
LLMLingua offline on the rest, ``tokens`` counts the result in the pinned model's tokens,
``savings`` projects money and time saved from the prompt's recent traffic, and
``experiment`` turns candidates and their eval verdicts into a registered version (or a
reason why not). torch and llmlingua load only when a compressor is built.
"""

from llmops.compression.experiment import Candidate, CompressionRequest
from llmops.compression.lingua import CompressedText, CompressionUnavailable, LinguaCompressor, missing_extra
from llmops.compression.protect import Protection, segment
from llmops.compression.savings import Projection, project, recent_traffic

__all__ = [
    "Candidate",
    "CompressedText",
    "CompressionRequest",
    "CompressionUnavailable",
    "LinguaCompressor",
    "Projection",
    "Protection",
    "missing_extra",
    "project",
    "recent_traffic",
    "segment",
]
