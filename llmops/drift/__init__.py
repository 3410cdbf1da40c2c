"""Finding out that something changed when nobody changed anything.

``trace`` tests each day's rollups against the days before it, per group, calibrated against
ordinary day-to-day variation (the groups and their days read from the store are ``history``'s,
what is measured of a day ``trace_metrics``'); ``pinned`` re-asks a fixed subset of each serving
version's dataset and compares the answers with the reference captured at promotion, which
catches a provider changing a model under its pinned id (the references are
``pinned_references``', the paired tests ``pinned_compare``'s); ``pinning`` audits which calls
asked for a model other than their version's pinned one; all three report ``findings``, which
``report`` stores once per day and alerts on once.
"""
