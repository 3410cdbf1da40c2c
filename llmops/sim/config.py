"""The simulator's model catalogue and its runtime configuration (faults, latency, drift).

One pydantic model holds every knob so that the constructor, the CLI flags and
``POST /_sim/config`` validate changes the same way.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator, model_validator

Tier = Literal["haiku", "sonnet", "opus"]

KNOWN_MODELS: dict[str, Tier] = {
    "claude-3-haiku-20240307": "haiku",
    "claude-3-5-haiku-20241022": "haiku",
    "claude-haiku-4-5-20251001": "haiku",
    "claude-3-5-sonnet-20241022": "sonnet",
    "claude-sonnet-4-20250514": "sonnet",
    "claude-sonnet-4-5-20250929": "sonnet",
    "claude-opus-4-1-20250805": "opus",
}
"""Dated model ids the simulator answers as, with the size tier that shapes their answers."""

MODEL_ALIASES: dict[str, str] = {
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-3-5-sonnet-latest": "claude-3-5-sonnet-20241022",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
}
"""Moving aliases: accepted, answered under the dated id (what a pinning audit looks for)."""

TIER_LATENCY_MULTIPLIER: dict[Tier, float] = {"haiku": 0.5, "sonnet": 1.0, "opus": 1.8}


class UnknownModelError(ValueError):
    """A model id that is neither a known dated id nor an alias."""


def resolve_model(name: str) -> str:
    """The dated model id for ``name`` (itself when already dated).

    Args:
        name: A dated model id or a moving alias.

    Returns:
        The dated id the simulator answers as.

    Raises:
        UnknownModelError: Neither a known dated id nor an alias; the message lists both.

    Example:
        >>> resolve_model("claude-3-5-sonnet-latest")
        'claude-3-5-sonnet-20241022'
    """
    if name in KNOWN_MODELS:
        return name
    if name in MODEL_ALIASES:
        return MODEL_ALIASES[name]
    raise UnknownModelError(
        f"model: {name!r} is not a model the simulator knows. "
        f"Known models: {', '.join(KNOWN_MODELS)}. Aliases: {', '.join(MODEL_ALIASES)}."
    )


def model_tier(model_id: str) -> Tier:
    """Size tier of a dated or aliased model id, which shapes its answers and latency.

    Raises:
        UnknownModelError: The simulator does not know the model.

    Example:
        >>> model_tier("claude-haiku-4-5")
        'haiku'
    """
    return KNOWN_MODELS[resolve_model(model_id)]


def describe_validation_error(error: ValidationError) -> str:
    """Pydantic's errors as one line a user can act on: ``field: problem; field: problem``.

    Args:
        error: A validation error of ``SimConfig`` or of a request body.

    Returns:
        Every error as ``location: message``, joined by ``; ``.

    Example:
        >>> try:
        ...     SimConfig(hang_rate=2)
        ... except ValidationError as error:
        ...     print(describe_validation_error(error))
        hang_rate: Input should be less than or equal to 1
    """
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg'].removeprefix('Value error, ')}"
        for item in error.errors()
    )


Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class SimConfig(BaseModel):
    """Everything that can be injected: latency, errors, hangs, batch timing, provider drift.

    Frozen: a running server changes it with ``SimServer.configure`` (or ``POST /_sim/config``),
    which validates the whole new configuration. Error and hang rates are shares of requests
    drawn in one uniform draw, so together they must not exceed 1.

    Example:
        >>> config = SimConfig(latency_median_ms=5, error_rate_429=0.1, seed=1)
        >>> config.updated(provider_updated_models=["claude-sonnet-4-5"]).provider_updated_models
        frozenset({'claude-sonnet-4-5-20250929'})
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    latency_median_ms: float = Field(
        default=200.0, ge=0, description="Median of the lognormal response time (before model multiplier)."
    )
    latency_sigma: float = Field(default=0.3, ge=0, le=3, description="Sigma of the lognormal response time.")
    latency_multipliers: dict[str, float] = Field(
        default_factory=dict,
        description="Per-model factor on latency; default by tier (haiku 0.5, sonnet 1.0, opus 1.8).",
    )
    ttft_ms: float = Field(default=100.0, ge=0, description="Time to the first text delta of a stream (before model multiplier).")
    error_rate_429: Rate = Field(default=0.0, description="Share of API requests answered 429 rate_limit_error.")
    retry_after_seconds: float = Field(default=1.0, ge=0, description="Value of the retry-after header on a 429.")
    error_rate_529: Rate = Field(default=0.0, description="Share answered 529 overloaded_error.")
    error_rate_500: Rate = Field(default=0.0, description="Share answered 500 api_error.")
    hang_rate: Rate = Field(default=0.0, description="Share of API requests that stall for hang_seconds.")
    hang_seconds: float = Field(default=30.0, ge=0, description="How long a hung request stalls before answering.")
    seed: int | None = Field(default=None, description="Seed of the fault and latency RNG; None draws one.")
    batch_delay_seconds: float = Field(default=2.0, ge=0, description="How long a batch stays in_progress.")
    cache_ttl_seconds: float = Field(default=300.0, gt=0, description="Lifetime of a 5m prompt-cache entry.")
    provider_updated_models: frozenset[str] = Field(
        default_factory=frozenset,
        description="Dated model ids whose behaviour silently changed (same id, different answers).",
    )
    sampling_variation: bool = Field(
        default=False,
        description=(
            "Each call at a temperature above 0 draws a fresh answer, as a real model samples; "
            "off, an identical request always gets the identical answer."
        ),
    )

    @field_validator("latency_multipliers")
    @classmethod
    def _known_multiplier_models(cls, value: dict[str, float]) -> dict[str, float]:
        resolved: dict[str, float] = {}
        for name, factor in value.items():
            if factor < 0:
                raise ValueError(f"latency multiplier for {name!r} must be >= 0, got {factor}")
            resolved[resolve_model(name)] = factor
        return resolved

    @field_validator("provider_updated_models", mode="before")
    @classmethod
    def _dated_updated_models(cls, value: object) -> frozenset[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple | set | frozenset):
            raise ValueError("provider_updated_models must be a list of model ids")
        return frozenset(resolve_model(str(name)) for name in value)

    @field_serializer("provider_updated_models")
    def _sorted_models(self, value: frozenset[str]) -> list[str]:
        return sorted(value)

    @model_validator(mode="after")
    def _rates_fit_in_one_draw(self) -> SimConfig:
        total = self.error_rate_429 + self.error_rate_529 + self.error_rate_500 + self.hang_rate
        if total > 1.0 + 1e-9:
            raise ValueError(f"error_rate_429 + error_rate_529 + error_rate_500 + hang_rate must be at most 1, got {total:g}")
        return self

    def latency_multiplier(self, model_id: str) -> float:
        """Factor on latency and time to first token for this (dated) model.

        Example:
            >>> SimConfig().latency_multiplier("claude-opus-4-1-20250805")
            1.8
        """
        return self.latency_multipliers.get(model_id, TIER_LATENCY_MULTIPLIER[model_tier(model_id)])

    def updated(self, **changes: object) -> SimConfig:
        """A validated copy with ``changes`` applied.

        Args:
            **changes: Fields and their new values.

        Returns:
            The new configuration; this one is unchanged.

        Raises:
            pydantic.ValidationError: An unknown field or an invalid value.
        """
        return SimConfig.model_validate({**self.model_dump(), **changes})
