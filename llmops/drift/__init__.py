"""Finding out that something changed when nobody changed anything.

``trace`` tests each day's rollups against the days before it, per group, calibrated against
ordinary day-to-day variation; ``pinned`` re-asks a fixed subset of each serving version's
dataset and compares the answers with the reference captured at promotion, which catches a
provider changing a model under its pinned id; ``pinning`` audits which calls asked for a
model other than their version's pinned one; ``report`` turns all of it into findings,
stored once per day and alerted once.
"""
