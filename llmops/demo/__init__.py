"""The demo application's history: Acme Corp's support assistant, 30 days, two incidents.

from llmops.demo import generate_traces, DEMO_INCIDENTS
"""

from llmops.demo.traffic import (
    DEFAULT_CALLS_PER_WEEKDAY,
    DEFAULT_SEED,
    DEMO_INCIDENTS,
    FEATURES,
    FEATURES_BY_NAME,
    UNKNOWN_MODEL,
    DayPlan,
    FeatureProfile,
    Incident,
    ModelProfile,
    default_end_day,
    generate_traces,
    plan_days,
    window,
)

__all__ = [
    "DEFAULT_CALLS_PER_WEEKDAY",
    "DEFAULT_SEED",
    "DEMO_INCIDENTS",
    "FEATURES",
    "FEATURES_BY_NAME",
    "UNKNOWN_MODEL",
    "DayPlan",
    "FeatureProfile",
    "Incident",
    "ModelProfile",
    "default_end_day",
    "generate_traces",
    "plan_days",
    "window",
]
