"""What a promotion asks for and the plan it expands to: strategies, steps and their validation.

A ``PromotionRequest`` is the promote-prompt form (and ``llmops promote``): it refuses invalid
values before any run starts, and ``plan()`` expands it into the ``RolloutPlan`` stored with
the rollout, so a later change of the defaults never moves a rollout already under way. The
prompt-name helpers are here because requests, events and automations all name prompts.
"""

from __future__ import annotations

import getpass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmops.prompts import prompt_names
from llmops.release.experiments import TOLERANCE_PRESETS, TolerancePreset, Tolerances

Strategy = Literal["immediate", "canary", "blue_green", "ab"]
DEFAULT_STEPS: dict[str, list[float]] = {"canary": [5, 25, 100], "blue_green": [10, 50, 100]}
"""The candidate's traffic share per step when a request names no steps."""
RESOURCE_PREFIX = "llmops.prompt."
"""Prefect event resources of prompts are ``llmops.prompt.<name>``."""


def prompt_name_from(value: str) -> str:
    """A prompt name from itself or from an event's resource id ``llmops.prompt.<name>``.

    Automations hand flows the resource id of the event that triggered them; people type the name.

    Args:
        value: A prompt name or a prompt's resource id.

    Returns:
        The bare prompt name, stripped of surrounding blanks.

    Example:
        >>> prompt_name_from("llmops.prompt.support-chat")
        'support-chat'
        >>> prompt_name_from(" support-chat ")
        'support-chat'
    """
    return value.strip().removeprefix(RESOURCE_PREFIX)


def resource_id(prompt_name: str) -> str:
    """The Prefect event resource id of a prompt, which automations match on.

    Args:
        prompt_name: The prompt.

    Returns:
        ``llmops.prompt.<prompt_name>``.

    Example:
        >>> resource_id("support-chat")
        'llmops.prompt.support-chat'
    """
    return f"{RESOURCE_PREFIX}{prompt_name}"


def default_actor() -> str:
    """Who runs the command line: the login name, recorded as the actor of what they do.

    Returns:
        The login name, or ``unknown`` when the system cannot tell.

    Example:
        ```python
        PromotionRequest(prompt_name="support-chat", version="1.3.0", reason="shorter answers", actor=default_actor())
        ```
    """
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class PlanStep(BaseModel):
    """One step: the candidate's share, and how long and how much traffic before it may pass.

    Example:
        >>> PlanStep(traffic_percent=25, min_minutes=60, min_requests=300).traffic_percent
        25.0
    """

    model_config = ConfigDict(frozen=True)

    traffic_percent: float
    min_minutes: float
    min_requests: int


class PromotionRequest(BaseModel):
    """What the promote-prompt form asks for; invalid values are refused before the run starts.

    Each field's description is the form's help text. A request names the version, the
    strategy and the pace; ``plan()`` turns it into the steps the rollout follows.

    Raises:
        pydantic.ValidationError: Steps that do not increase to 100, steps given to a strategy
            that takes none, or any out-of-range value.

    Example:
        >>> request = PromotionRequest(prompt_name="llmops.prompt.support-chat", version="1.3.0", reason="shorter answers", actor="alice")
        >>> request.prompt_name, [step.traffic_percent for step in request.plan().steps]
        ('support-chat', [5.0, 25.0, 100.0])
    """

    model_config = ConfigDict(
        extra="forbid",
        title="Promotion request",
        # the form shows this line, not the whole docstring
        json_schema_extra={
            "description": "What the promote-prompt form asks for; invalid values are refused before the run starts."
        },
    )

    prompt_name: str = Field(min_length=1, description="The prompt, e.g. support-chat.")
    version: str = Field(min_length=1, description="The version to promote; registered from its file if needed.")
    environment: str = Field(default="production", min_length=1, description="Registry environment.")
    strategy: Strategy = Field(
        default="canary",
        description="immediate | canary (5 → 25 → 100 %) | blue_green (10 → 50 → 100 %, old version kept as fallback) | ab.",
    )
    steps: list[float] | None = Field(
        default=None,
        description="Traffic % per step, increasing, ending at 100 (canary, blue_green). Empty: the strategy's default.",
    )
    min_step_minutes: float = Field(default=60, ge=0, description="Minimum time each step serves before it may pass.")
    min_requests_per_step: int = Field(default=300, ge=1, description="Candidate requests a step needs before it may pass.")
    ab_split: float = Field(default=50, gt=0, lt=100, description="ab: the candidate's share of traffic, in %.")
    ab_duration_hours: float = Field(default=24, gt=0, description="ab: how long the split runs before the report decides.")
    require_approval: bool = Field(default=False, description="Wait for `llmops rollout approve` between steps.")
    force_without_eval: bool = Field(
        default=False,
        description="Promote a version without a complete eval run (recorded in the audit log); a regression is never forced.",
    )
    tolerances: Tolerances = Field(default_factory=Tolerances, description="How much worse than control a step may be.")
    git_tag: bool = Field(
        default=True, description="Tag `prompt/<name>/<version>` in the prompt files' git checkout when it becomes production."
    )
    reason: str = Field(min_length=1, description="Why; stored with every label move.")
    actor: str = Field(min_length=1, description="Who asks for it; stored with every label move.")

    @field_validator("prompt_name")
    @classmethod
    def _bare_name(cls, name: str) -> str:
        return prompt_name_from(name)

    @field_validator("steps")
    @classmethod
    def _steps_increase_to_100(cls, steps: list[float] | None) -> list[float] | None:
        if not steps:
            return None
        if any(not 0 < step <= 100 for step in steps):
            raise ValueError(f"each step is a traffic share above 0 and at most 100 %, got {steps}")
        if any(later <= earlier for earlier, later in zip(steps, steps[1:], strict=False)):
            raise ValueError(f"steps must increase, got {steps}")
        if steps[-1] != 100:
            raise ValueError(f"the last step must be 100 (the candidate serves everyone), got {steps}")
        return steps

    @model_validator(mode="after")
    def _steps_fit_the_strategy(self) -> PromotionRequest:
        if self.steps and self.strategy in ("immediate", "ab"):
            raise ValueError(f"steps apply to canary and blue_green; {self.strategy} does not take them")
        return self

    def plan(self) -> RolloutPlan:
        """The steps this request expands to; stored with the rollout, so later edits of defaults do not move it.

        Returns:
            One 100 % step for ``immediate``; one step at ``ab_split`` for ``ab_duration_hours``
            for ``ab``; the request's steps, or the strategy's defaults, for the others.
        """
        if self.strategy == "immediate":
            steps = [PlanStep(traffic_percent=100, min_minutes=0, min_requests=0)]
        elif self.strategy == "ab":
            minutes = self.ab_duration_hours * 60
            steps = [PlanStep(traffic_percent=self.ab_split, min_minutes=minutes, min_requests=self.min_requests_per_step)]
        else:
            steps = [
                PlanStep(traffic_percent=share, min_minutes=self.min_step_minutes, min_requests=self.min_requests_per_step)
                for share in self.steps or DEFAULT_STEPS[self.strategy]
            ]
        return RolloutPlan(
            strategy=self.strategy,
            steps=steps,
            require_approval=self.require_approval,
            force_without_eval=self.force_without_eval,
            tolerances=self.tolerances,
            git_tag=self.git_tag,
            reason=self.reason,
        )


def _prompt_choices(schema: dict[str, Any]) -> None:
    """The form's prompt field lists the prompts of the prompt files when the schema is made (at deploy)."""
    try:
        names = prompt_names()
    except (FileNotFoundError, ValueError):
        return
    if names:
        schema["enum"] = names


class AdvancedPromotion(BaseModel):
    """The promote form's advanced section: the pace of the steps, the A/B split, custom tolerances."""

    model_config = ConfigDict(extra="forbid", title="Advanced")

    steps: list[float] | None = Field(
        default=None,
        description="Traffic % per step, increasing, ending at 100 (canary, blue_green). Empty: the strategy's default.",
    )
    min_step_minutes: float = Field(default=60, ge=0, description="Minimum time each step serves before it may pass.")
    min_requests_per_step: int = Field(default=300, ge=1, description="Candidate requests a step needs before it may pass.")
    ab_split: float = Field(default=50, gt=0, lt=100, description="ab: the candidate's share of traffic, in %.")
    ab_duration_hours: float = Field(default=24, gt=0, description="ab: how long the split runs before the report decides.")
    custom_tolerances: Tolerances | None = Field(
        default=None, description="Every tolerance by hand, instead of the preset. Empty: the preset."
    )


class PromotionForm(BaseModel):
    """The promote-prompt form: the five things a person decides, then a preset, then the rest.

    ``request()`` expands it into the ``PromotionRequest`` the rollout runs on. The prompt is a
    choice among the prompt files' names (in the UI), the tolerances a named preset; the
    statistical internals (bootstrap resamples, seed) are settings, not questions.

    Example:
        >>> form = PromotionForm(prompt_name="support-chat", version="2.3.1", reason="written refund policy", actor="alice")
        >>> request = form.request()
        >>> request.strategy, request.tolerances.max_p95_latency_increase, request.min_step_minutes
        ('canary', 0.15, 60.0)
        >>> strict = PromotionForm(prompt_name="support-chat", version="2.3.1", reason="r", actor="a", tolerances="strict")
        >>> strict.request().tolerances.max_cost_increase
        0.05
    """

    model_config = ConfigDict(
        extra="forbid",
        title="Promote a prompt version",
        json_schema_extra={"description": "Prompt, version, strategy, reason and who asks; the rest has defaults."},
    )

    prompt_name: str = Field(
        min_length=1, title="Prompt", description="The prompt to promote.", json_schema_extra=_prompt_choices
    )
    version: str = Field(min_length=1, description="The version to promote, e.g. 2.3.1; registered from its file if needed.")
    strategy: Strategy = Field(
        default="canary",
        description="immediate | canary (5 → 25 → 100 %) | blue_green (10 → 50 → 100 %, old version kept as fallback) | ab.",
    )
    reason: str = Field(min_length=1, description="Why; stored with every label move.")
    actor: str = Field(min_length=1, description="Who asks for it; stored with every label move.")
    tolerances: TolerancePreset = Field(
        default="default",
        description="How much worse than control a step may be: strict, default or lenient (see the README).",
    )
    environment: str = Field(default="production", min_length=1, description="Registry environment.")
    require_approval: bool = Field(default=False, description="Wait for `llmops rollout approve` between steps.")
    force_without_eval: bool = Field(
        default=False,
        description="Promote a version without a complete eval run (recorded in the audit log); a regression is never forced.",
    )
    git_tag: bool = Field(
        default=True, description="Tag `prompt/<name>/<version>` in the prompt files' git checkout when it becomes production."
    )
    advanced: AdvancedPromotion | None = Field(
        default=None, description="The pace of the steps, the A/B split and tolerances by hand. Empty: the defaults."
    )

    def request(self) -> PromotionRequest:
        """The full request this form stands for.

        Returns:
            A validated ``PromotionRequest``.

        Raises:
            pydantic.ValidationError: Steps that do not fit the strategy, or do not rise to 100.
        """
        advanced = self.advanced or AdvancedPromotion()
        return PromotionRequest(
            prompt_name=self.prompt_name, version=self.version, environment=self.environment, strategy=self.strategy,
            steps=advanced.steps, min_step_minutes=advanced.min_step_minutes,
            min_requests_per_step=advanced.min_requests_per_step, ab_split=advanced.ab_split,
            ab_duration_hours=advanced.ab_duration_hours, require_approval=self.require_approval,
            force_without_eval=self.force_without_eval,
            tolerances=advanced.custom_tolerances or TOLERANCE_PRESETS[self.tolerances],
            git_tag=self.git_tag, reason=self.reason, actor=self.actor,
        )  # fmt: skip


class RolloutPlan(BaseModel):
    """The stored plan (``rollouts.plan``): the steps and the rules a rollout follows to its end.

    Example:
        >>> plan = PromotionRequest(prompt_name="support-chat", version="1.3.0", strategy="immediate", reason="fix", actor="alice").plan()
        >>> plan.strategy, len(plan.steps)
        ('immediate', 1)
    """

    strategy: Strategy
    steps: list[PlanStep]
    require_approval: bool
    force_without_eval: bool
    tolerances: Tolerances
    git_tag: bool
    reason: str
