"""Releasing prompts: what a version is, which version serves whom, and how a new one takes over.

``prompts`` reads and checks the version files (one immutable YAML file per version);
``registry`` records released versions and the labels that route traffic to them, and resolves
a user to a version in microseconds; ``rollouts`` moves labels step by step behind gates
(immediate, canary, blue-green, A/B) and rolls back; ``experiments`` compares two versions from
their traces, clustered by user, for the A/B report and the trace gate.
"""
