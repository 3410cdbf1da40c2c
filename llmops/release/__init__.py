"""Releasing prompts: which version serves whom, and how a new one takes over.

The versions themselves are files, read and checked by ``llmops.prompts``. Here,
``label_store`` records released versions, the labels that route traffic to them and the audit
log of every move; ``registry`` adds the sticky, cached resolution of a user to a version in
microseconds, and is where both are imported from; ``experiments`` compares versions from
their traces, clustered by user; ``gates`` judges a candidate (evaluation, traces, the A/B
decision); ``rollouts`` moves labels step by step behind those gates (immediate, canary,
blue-green, A/B) and rolls back.
"""
