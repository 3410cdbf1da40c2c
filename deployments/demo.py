"""``make demo``: Acme Corp's support assistant, thirty days of it, in a store of its own.

    python -m deployments.demo [--calls-per-weekday N] [--seed S] [--no-sample-calls] [--no-compression]

What it does, in order:
1. picks the store: ``LLMOPS_DATABASE_URL`` if you set one, else ``$LLMOPS_HOME/demo.db``, which it
   makes the default store (``$LLMOPS_HOME/current-store``) of every ``llmops`` command and of
   ``make serve`` until ``llmops demo reset``;
2. starts the local Anthropic-compatible simulator and makes ~50 real calls through the
   tracing SDK, so some of today's traces come from real SDK calls;
3. writes the generated 30-day history ending yesterday (``llmops.demo``) into the store;
4. prints ``llmops costs --by feature`` (30 days) and ``--by day`` (7 days) and says where
   to look: the cost spike of ``document_summarization`` and chat's slow last day;
5. evaluates support-chat 2.3.0 and 2.3.1 against the simulator (assertions, the LLM judge,
   similarity), prints the verdict per metric, releases 2.3.0 (the version the history's chat
   calls were served by) and starts the canary of 2.3.1 behind that evaluation: only today's
   canary calls carry 2.3.1; drift detection on the history's last day (its findings are that
   day's incident on 2.3.0, never the canary's) and the Slack digest follow.

Why a separate ``demo.db``: the history is made up, and mixing it into ``llmops.db`` would put
invented costs next to your application's real ones. The demo therefore never writes to
``llmops.db`` unless you point ``LLMOPS_DATABASE_URL`` there yourself, and never deletes
anything but its own files. Commands name the store they read on stderr; ``llmops demo reset``
deletes the demo's files and makes ``llmops.db`` the default again.

Running it twice changes nothing and prints the same sections: trace ids are derived from the
seed, so the history is stored once, the sample calls are skipped when today already has traces,
and a live canary is not started again (its evaluation is printed from the stored runs). When
the window moves (a new day, another seed or volume, a new version of the story), ``demo.db`` is
rebuilt, since mixing two generated histories would show two cost spikes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

from llmops import privacy, settings
from llmops.demo import (
    DEFAULT_CALLS_PER_WEEKDAY,
    DEFAULT_SEED,
    DEMO_INCIDENTS,
    FEATURES,
    Incident,
    default_end_day,
    generate_traces,
    plan_days,
)
from llmops.demo.store import (
    APP_DATABASE_FILE,
    DEMO_PROMPTS_DIR,
    DEMO_STORE_FILE,
    HISTORY_MARKER_FILE,
    demo_store_url,
    make_current,
    remove_sqlite,
)
from llmops.records import TRACE_FIELDS, TraceRecord
from llmops.release.registry import get_registry
from llmops.release.rollouts import AdvancedPromotion, PromotionForm, live_rollout
from llmops.report.digest import compute_digest
from llmops.report.slack import SlackConfig, deliver_pending, enqueue_digest, render_digest
from llmops.store.engine import dispose_engines, get_engine
from llmops.store.rollups import cost_report
from llmops.store.writer import write_traces

DEMO_DAYS = 30
APP_TABLE = "llm_calls"
SOURCE_BLOCK = "demo-app-traces"
JSON_FIELDS = ("tags", "metadata")
_COLUMN_TYPES: dict[str, Any] = {
    "timestamp": DateTime(timezone=True),
    "input_tokens": Integer,
    "output_tokens": Integer,
    "cache_read_input_tokens": Integer,
    "cache_creation_input_tokens": Integer,
    "user_message_length": Integer,
    "latency_ms": Float,
    "ttft_ms": Float,
    "user_feedback": Float,
    "automated_eval_score": Float,
    "cost_usd": Numeric(20, 12),
    "is_batch": Boolean,
}
STORY_VERSION = 2
"""Part of the history marker: bumped when the generated history's story changes (2: chat is served
by support-chat 2.3.0 until the canary), so that a store seeded with an older story is rebuilt."""
BATCH_SIZE = 5_000
SAMPLE_CALLS = 50
SAMPLE_REQUESTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "chat_response": (
        "You are a customer support assistant for Acme Corp. Be concise and friendly.",
        (
            "My order #4411 arrived damaged, can I get a refund?",
            "How do I reset my password?",
            "Can I change the delivery address after ordering?",
        ),
    ),
    "document_summarization": (
        "Summarize the document for a support agent in three bullet points.",
        (
            "Acme Corp's return policy: items may be returned within 30 days of delivery when unused. "
            "Refunds go to the original payment method within 5 business days. Damaged items are "
            "replaced free of charge; the customer keeps the damaged item.",
        ),
    ),
    "code_review": (
        "Review the code change for bugs, security problems and readability.",
        ("```python\ndef refund(order):\n    if order.total > 0:\n        return order.total * 1.0\n```",),
    ),
    "help_center": (
        "You are the help-center assistant of Acme Corp. Answer with the policy that applies and its numbers.",
        ("Do gift cards expire?", "How long does international delivery take?"),
    ),
}
"""System prompt and a few user messages per feature for the live sample calls."""

console = Console(soft_wrap=True)


def _say(text: str) -> None:
    """A line holding data from the store or a flow, printed as text (never markup), terminal-safe."""
    from prefect_llmops.cli.output import plain

    console.print(plain(text, multiline=True), highlight=False)


def demo_database_url() -> tuple[str, bool]:
    """The store the demo writes to, and whether it is the demo's own (and so may be rebuilt)."""
    url = settings.env(settings.LLMOPS_DATABASE_URL)
    if url:
        return url, False
    return demo_store_url(), True


def llmops_command() -> str:
    """``llmops`` as it runs from this shell: ``llmops`` when the PATH finds this environment's, else
    its path (``.venv/bin/llmops`` from the checkout), so that every hint the demo prints runs as printed."""
    binary = Path(sys.executable).parent / "llmops"
    found = shutil.which("llmops")
    if found and binary.exists() and os.path.samefile(found, binary):
        return "llmops"
    try:
        return str(binary.relative_to(Path.cwd()))
    except ValueError:
        return str(binary)


def shown_url(url: str) -> str:
    """The store's URL as the demo prints it: the password masked (``***``)."""
    return make_url(url).render_as_string(hide_password=True)


def history_marker(seed: int, calls_per_weekday: int, end_day: date) -> dict[str, Any]:
    return {
        "seed": seed, "calls_per_weekday": calls_per_weekday, "days": DEMO_DAYS, "end_day": end_day.isoformat(),
        "story": STORY_VERSION,
    }  # fmt: skip


def prepare_demo_store(url: str, owned: bool, marker: dict[str, Any]) -> str | None:
    """Rebuild the demo's own store when it holds another history; say what was done, if anything."""
    marker_path = settings.home() / HISTORY_MARKER_FILE
    previous = json.loads(marker_path.read_text()) if marker_path.is_file() else None
    note = None
    if previous is not None and previous != marker:
        if owned:
            for name in (DEMO_STORE_FILE, APP_DATABASE_FILE):
                remove_sqlite(settings.home() / name)
            store = settings.home() / DEMO_STORE_FILE
            held = f"the history ending {previous.get('end_day')} (seed {previous.get('seed')})"
            if previous.get("story") != marker.get("story"):
                held = f"an older version of the demo's history, ending {previous.get('end_day')}"
            note = f"rebuilt {store}: it held {held}"
        else:
            note = (
                f"{shown_url(url)} already holds a demo history ending {previous['end_day']}; the new one is added "
                "next to it (set no LLMOPS_DATABASE_URL to get a store of the demo's own)"
            )
    privacy.private_dir(marker_path.parent)
    marker_path.write_text(json.dumps(marker))
    return note


def _batches(records: Iterable[TraceRecord], size: int) -> Iterator[list[TraceRecord]]:
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def create_application_table(engine: Engine) -> Table:
    """The application's table of LLM calls, created when missing (``make serve`` points app-traces at it)."""
    metadata = MetaData()
    table = Table(
        APP_TABLE,
        metadata,
        *(Column(name, Text if name in JSON_FIELDS else _COLUMN_TYPES.get(name, Text)) for name in TRACE_FIELDS),
        UniqueConstraint("trace_id"),
    )
    metadata.create_all(engine)
    return table


def write_application_history(
    app_url: str,
    *,
    end_day: date,
    calls_per_weekday: int = DEFAULT_CALLS_PER_WEEKDAY,
    seed: int = DEFAULT_SEED,
    days: int = DEMO_DAYS,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Play the application: its own table of LLM calls, which ``ingest-traces`` pulls from.

    Rows already there (same deterministic trace id) are left alone, so a rerun adds nothing.
    """
    engine = create_engine(app_url)
    table = create_application_table(engine)
    insert = sqlite_insert(table).on_conflict_do_nothing(index_elements=["trace_id"])
    traces = generate_traces(days=days, end_day=end_day, calls_per_weekday=calls_per_weekday, seed=seed)
    for batch in _batches(traces, BATCH_SIZE):
        rows = [record.model_dump() for record in batch]
        for row in rows:
            for name in JSON_FIELDS:
                row[name] = json.dumps(row[name])
        with engine.begin() as connection:
            connection.execute(insert, rows)
        if on_batch is not None:
            on_batch(len(batch))
    engine.dispose()


def pull_with_ingest_flow(app_url: str) -> Any:
    """Save the application database as a TraceSource block and run the ``ingest-traces`` flow on it."""
    from prefect_llmops.blocks.source import TraceSource
    from prefect_llmops.flows.ingest_traces import ingest_traces

    TraceSource(url=app_url, table=APP_TABLE).save(SOURCE_BLOCK, overwrite=True)
    return ingest_traces(source_block=SOURCE_BLOCK)


def make_sample_calls(engine: Engine, *, count: int = SAMPLE_CALLS, seed: int = DEFAULT_SEED) -> int:
    """Real calls through the official SDK and the tracing wrapper, answered by the local simulator.

    Returns how many traces the recorder wrote. Imported here so that the history alone
    needs neither the simulator nor the SDK.
    """
    import anthropic

    from llmops.sim import SimConfig, SimServer
    from llmops.tracing import TraceRecorder, trace_anthropic, trace_context

    recorder = TraceRecorder(lambda records: write_traces(engine, records))
    today = datetime.now(settings.timezone()).date()
    with SimServer(SimConfig(latency_median_ms=60, seed=seed)) as sim:
        client = trace_anthropic(anthropic.Anthropic(base_url=sim.base_url, api_key="sim", max_retries=0), recorder=recorder)
        for index in range(count):
            profile = FEATURES[index % len(FEATURES)]
            system, messages = SAMPLE_REQUESTS[profile.feature]
            request: dict[str, Any] = {
                "model": profile.models[0].model,
                "system": system,
                "max_tokens": 512,
                "messages": [{"role": "user", "content": messages[index % len(messages)]}],
            }
            with trace_context(
                feature=profile.feature,
                prompt_name=profile.prompt_name,
                prompt_version=profile.prompt_version,
                environment="production",
                user_id=f"acme-user-{index % 17:05d}",
                session_id=f"live-{today:%Y%m%d}-{index % 17:05d}",
                tags=["live-sample"],
            ):
                if profile.feature == "chat_response":
                    with client.messages.stream(**request) as stream:
                        stream.get_final_message()
                else:
                    client.messages.create(**request)
        recorder.close(timeout=30)
    return recorder.stats.written


def today_has_traces(engine: Engine) -> bool:
    today = datetime.now(settings.timezone()).date()
    return any(line["requests"] for line in cost_report(engine, today, today, "feature"))


def _feature_day(engine: Engine, day: date, feature: str) -> dict[str, Any] | None:
    return next((line for line in cost_report(engine, day, day, "feature") if line["feature"] == feature), None)


def _incident_finding(engine: Engine, incident: Incident, end_day: date) -> str:
    """The incident as the store shows it: its day against the median of the other days."""
    day = incident.day(end_day)
    others = [end_day - timedelta(days=offset) for offset in range(DEMO_DAYS)]
    lines = {d: _feature_day(engine, d, incident.feature) for d in others}
    if incident.kind == "cost_spike":
        metric, label = "cost_usd", "cost"
    else:
        metric, label = "p95_latency_ms", "p95 latency"
    values = [line[metric] for d, line in lines.items() if d != day and line and line[metric] is not None]
    spot = lines.get(day)
    if not values or not spot or spot[metric] is None:
        return f"{day}: {incident.feature} has no data for {label} in this store"
    ratio = spot[metric] / statistics.median(values)
    shown = f"${spot[metric]:,.2f}" if metric == "cost_usd" else f"{spot[metric]:,.0f} ms"
    return (
        f"{day} ({day:%a}, day {DEMO_DAYS - (end_day - day).days} of {DEMO_DAYS}): {incident.feature} {label} "
        f"{shown}, {ratio:.1f}x its median day — {incident.description}"
    )


def print_report(engine: Engine, end_day: date) -> None:
    """The same tables ``llmops costs`` prints, then where to look."""
    from prefect_llmops.cli.costs import costs

    first = end_day - timedelta(days=DEMO_DAYS - 1)
    costs(since=first.isoformat(), until=end_day.isoformat(), by="feature", as_json=False)
    costs(since=(end_day - timedelta(days=6)).isoformat(), until=end_day.isoformat(), by="day", as_json=False)
    console.print("\n[bold]What to look at[/bold]")
    for incident in DEMO_INCIDENTS:
        _say(f"  • {_incident_finding(engine, incident, end_day)}")
    console.print(
        "  • the unpriced requests are chat calls on the internal fine-tune 'acme-ft-support-v1', which "
        "genai-prices has no price for: counted, never priced at $0",
        highlight=False,
    )


CANARY_PROMPT = "support-chat"
CANARY_BASELINE, CANARY_CANDIDATE = "2.3.0", "2.3.1"
CANARY_CALLS = 300
"""Calls made after the canary starts, each served the version registry.resolve() picks for its user."""


EVAL_CONCURRENCY = 32


def evaluate_before_promotion(engine: Engine, base_url: str) -> None:
    """The nightly evaluation of support-chat 2.3.0 and 2.3.1 on their dataset against the local
    model server, with the configured scorers (assertions, the LLM judge, embedding similarity),
    then ``llmops eval compare``: per metric the paired delta, its interval and the verdict. The
    canary's evaluation gate reads these runs."""
    from llmops.evals.datasets import load_datasets
    from llmops.evals.runner import RunSettings, async_client, evaluate
    from llmops.evals.store import RunRecord
    from llmops.prompts import get_prompt

    [dataset] = load_datasets(CANARY_PROMPT)
    console.print(
        f"\n[bold]Evaluation before the canary[/bold]: {CANARY_PROMPT} {CANARY_BASELINE} and {CANARY_CANDIDATE} on "
        f"{dataset.name} ({len(dataset)} examples) against the local model server …"
    )

    async def run_both() -> list[RunRecord]:
        async with async_client("sim", base_url) as client:
            return [
                await evaluate(
                    get_prompt(CANARY_PROMPT, version),
                    dataset,
                    engine=engine,
                    client=client,
                    settings=RunSettings(concurrency=EVAL_CONCURRENCY),
                    created_by="demo",
                )  # fmt: skip
                for version in (CANARY_BASELINE, CANARY_CANDIDATE)
            ]

    baseline, candidate = asyncio.run(run_both())
    print_evaluation(baseline, candidate)


def print_evaluation(baseline: Any, candidate: Any) -> None:
    """The two runs and ``llmops eval compare`` of them: per metric the paired delta, its interval and the verdict."""
    from prefect_llmops.cli.evals import compare

    for run in (baseline, candidate):
        judge = run.details.get("judge") or {}
        console.print(
            f"  run {run.id}: {run.prompt_version} {run.status}, {run.cases_done}/{run.cases_total} cases "
            f"({run.cases_cached} from the output cache), ${run.cost_usd:.4f} with judge {judge.get('model', '–')}",
            highlight=False,
        )
    compare(run_a=baseline.id, run_b=candidate.id, tolerance=0.02, confidence=0.95, fail_on_regression=False, as_json=False)


def print_stored_evaluation(engine: Engine, why: str) -> None:
    """A rerun's evaluation section: the runs the canary's gate read, as stored, not run again."""
    from llmops.evals.datasets import load_datasets
    from llmops.evals.store import find_runs

    [dataset] = load_datasets(CANARY_PROMPT)
    console.print(
        f"\n[bold]Evaluation before the canary[/bold]: {CANARY_PROMPT} {CANARY_BASELINE} and {CANARY_CANDIDATE} on "
        f"{dataset.name} ({len(dataset)} examples), as an earlier run of the demo stored it ({why}: not evaluated again)"
    )
    runs = [
        find_runs(engine, CANARY_PROMPT, version=version, dataset_hash=dataset.content_hash, limit=1)
        for version in (CANARY_BASELINE, CANARY_CANDIDATE)
    ]
    if not all(runs):
        console.print(
            f"  no stored evaluation of both versions: {llmops_command()} eval run {CANARY_PROMPT} makes one", highlight=False
        )
        return
    print_evaluation(runs[0][0], runs[1][0])


def start_canary(engine: Engine, base_url: str) -> None:
    """Evaluate support-chat 2.3.0 and 2.3.1, release 2.3.0, start a 5 → 25 → 100 % canary of 2.3.1
    through the promote-prompt flow (its evaluation gate reads the runs just made), send calls as
    the application would (resolve, call, trace), and run advance-rollouts once. Rerun: an
    existing rollout is left as it is and looked at again. No git tag: the demo's releases are not yours."""
    import anthropic

    from llmops.tracing import TraceRecorder, trace_anthropic, trace_context
    from prefect_llmops.flows.advance_rollouts import advance_rollouts
    from prefect_llmops.flows.promote_prompt import promote_prompt

    registry = get_registry(engine.url.render_as_string(hide_password=False))
    common = {"prompt_name": CANARY_PROMPT, "git_tag": False, "actor": "demo"}
    production = registry.labels(CANARY_PROMPT).production
    live = live_rollout(engine, CANARY_PROMPT, "production")
    if live is None and production in (None, CANARY_BASELINE):
        evaluate_before_promotion(engine, base_url)
        if production is None:
            promote_prompt(
                PromotionForm(
                    version=CANARY_BASELINE, strategy="immediate", reason="demo: the version the app served until now", **common
                )
            )
        promote_prompt(
            PromotionForm(
                version=CANARY_CANDIDATE,
                strategy="canary",
                reason="demo: explicit refund policy, clearer escalation",
                advanced=AdvancedPromotion(steps=[5, 25, 100], min_step_minutes=60, min_requests_per_step=100),
                **common,
            )
        )
        recorder = TraceRecorder(lambda records: write_traces(engine, records))
        _, messages = SAMPLE_REQUESTS["chat_response"]
        client = trace_anthropic(anthropic.Anthropic(base_url=base_url, api_key="sim", max_retries=0), recorder=recorder)
        for index in range(CANARY_CALLS):
            user = f"acme-user-{index:05d}"
            served = registry.resolve(CANARY_PROMPT, user)
            context = trace_context(
                feature="chat_response",
                prompt_name=CANARY_PROMPT,
                prompt_version=served.version,
                environment="production",
                user_id=user,
                tags=["canary-demo"],
            )
            with context:
                client.messages.create(
                    model=served.model,
                    system=served.system,
                    max_tokens=512,
                    messages=[{"role": "user", "content": messages[index % len(messages)]}],
                )
        recorder.close(timeout=30)
    else:
        print_stored_evaluation(engine, "the canary is live" if live is not None else f"production serves {production}")
    advance_rollouts()


@contextmanager
def local_model(seed: int) -> Iterator[str]:
    """The local model server, also as the flows' model (ANTHROPIC_BASE_URL): promotion keeps each
    serving version's pinned reference answers and drift-detection asks again, as with a real key."""
    from llmops.sim import SimConfig, SimServer

    names = (settings.ANTHROPIC_BASE_URL, settings.ANTHROPIC_API_KEY)
    saved = {name: os.environ.get(name) for name in names}
    with SimServer(SimConfig(latency_median_ms=5, seed=seed)) as sim:
        os.environ.update({settings.ANTHROPIC_BASE_URL: sim.base_url, settings.ANTHROPIC_API_KEY: "sim"})
        try:
            yield sim.base_url
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def print_canary() -> None:
    """The rollout as `llmops rollouts` shows it, and what to try next."""
    from prefect_llmops.cli.rollouts import rollouts

    console.print("\n[bold]Prompt rollout in progress[/bold]")
    rollouts(as_json=False)
    cli = llmops_command()
    console.print(
        f"  try: {cli} ab report {CANARY_PROMPT} · {cli} prompts history {CANARY_PROMPT} · "
        f"{cli} rollback {CANARY_PROMPT} --reason '…'",
        highlight=False, markup=False,
    )  # fmt: skip


def print_drift(end_day: date) -> None:
    """The drift-detection flow on the last day: chat's latency regression is its only drift (the
    pinned-model re-runs find the model unchanged);
    the pinning audit lists chat's calls on Haiku and on the undated fine-tune.

    The day is the history's last, before the canary started (today): its findings are about the
    version production served then, and the narration says so rather than blame the canary."""
    from prefect_llmops.flows.drift_detection import drift_detection

    result = drift_detection(day=end_day)
    console.print(f"\n[bold]Drift on {end_day}[/bold] ({result['tests']} tests against the 14 days before)")
    for line in result["pinned"]:
        _say(f"  • pinned model: {line}")
    for finding in result["findings"]:
        where = f"{finding['feature']} {finding['prompt_name']}@{finding['prompt_version']} on {finding['model']}"
        _say(f"  • {finding['kind']}: {where}: {finding['summary']}")
    for line in drift_story(result["findings"], end_day):
        _say(f"  {line}")
    for event in result["events"]:
        if event.get("label") == "canary":
            what = "under a Prefect server, a canary's event starts the rollback-prompt automation"
        else:
            what = "the rollback-prompt automation acts on a canary's event only, so nothing is rolled back"
        _say(f"  llmops.drift.detected for {event['version']} ({event.get('label') or 'no label'}): {what}")


def drift_story(findings: list[dict[str, Any]], end_day: date) -> list[str]:
    """What the night's trace findings are: the history's incident of that day, on the version
    that served it; never the canary, which started after that day."""
    lines = []
    drifted = [finding for finding in findings if finding["kind"] == "trace"]
    for incident in DEMO_INCIDENTS:
        if incident.day(end_day) != end_day:
            continue
        mine = sorted({f"{f['prompt_name']}@{f['prompt_version']}" for f in drifted if f["feature"] == incident.feature})
        if mine:
            lines.append(
                f"{incident.feature}'s findings are {end_day}'s incident on {', '.join(mine)}, the version production "
                f"served that day: {incident.description}"
            )
    canary = f"{CANARY_PROMPT}@{CANARY_CANDIDATE}"
    if not any(f"{f['prompt_name']}@{f['prompt_version']}" == canary for f in drifted):
        lines.append(
            f"none is the canary's: {canary} started after {end_day}, on today's traffic, which its rollout's gates judge"
        )
    return lines


def print_digest(engine: Engine, end_day: date) -> None:
    """The digest of the demo's last day, printed; sent to Slack when a token or webhook is configured."""
    digest = compute_digest(engine, end_day)
    message = render_digest(digest)
    _say(f"\n{message.plain}")
    config = SlackConfig.from_env()
    entry = enqueue_digest(engine, digest, config, message)
    if config.configured:
        _say(f"  Slack: {deliver_pending(engine, config).summary()}")
    else:
        console.print(
            f"  stored in the outbox ({entry.dedupe_key}); set SLACK_BOT_TOKEN and SLACK_CHANNEL to post it",
            highlight=False,
        )


COMPRESSED_PROMPT, COMPRESSED_VERSION = "help-center", "1.0.0"
COMPRESSION_RATES = [0.2, 0.3, 0.5]


def use_demo_prompts() -> Path:
    """The demo's own copy of the prompt files, so the version compression registers never lands in
    your checkout's ``prompts/``; files are only added, so a rerun keeps what an earlier one wrote.
    ``LLMOPS_PROMPTS_DIR``, if you set it, is used as it is."""
    if configured := settings.env(settings.LLMOPS_PROMPTS_DIR):
        return Path(configured)
    source, target = settings.prompts_dir(), settings.home() / DEMO_PROMPTS_DIR
    for path in source.glob("*/*.yaml"):
        copy = target / path.relative_to(source)
        if not copy.exists():
            privacy.private_dir(copy.parent)
            shutil.copyfile(path, copy)
    os.environ[settings.LLMOPS_PROMPTS_DIR] = str(target)
    return target


def compress_long_prompt() -> None:
    """The compress-prompt flow on the help center's ~2,300-token handbook prompt: one LLMLingua
    candidate per rate (SmolLM2 on this CPU), each evaluated on its 113 examples against the local
    model, which states only what the prompt it receives still says; the most compressed candidate
    that is not a regression is registered, never promoted."""
    from llmops.compression import CompressionRequest
    from prefect_llmops.cli.output import print_table
    from prefect_llmops.flows.compress_prompt import compress_prompt

    console.print(
        f"\n[bold]Compressing {COMPRESSED_PROMPT} {COMPRESSED_VERSION}[/bold] (its whole policy handbook) with LLMLingua "
        f"at rates {', '.join(f'{rate:g}' for rate in COMPRESSION_RATES)}, each candidate evaluated against the local model …"
    )
    request = CompressionRequest(
        prompt_name=COMPRESSED_PROMPT, version=COMPRESSED_VERSION, rates=COMPRESSION_RATES, method="llmlingua", actor="demo"
    )
    outcome = compress_prompt(request)
    print_table(
        outcome["candidates"],
        f"{COMPRESSED_PROMPT} {COMPRESSED_VERSION}: candidates ({outcome['model']}; tokens by the pinned model's count)",
    )
    if outcome["chosen"]:
        _say(f"  registered {COMPRESSED_PROMPT} {outcome['chosen']} (rate {outcome['chosen_rate']:g}) as {outcome['registered']}")
        _say(f"  projected saving: {outcome['projection']}")
        console.print(
            f"  not promoted: try LLMOPS_PROMPTS_DIR={settings.prompts_dir()} {llmops_command()} prompts diff "
            f"{COMPRESSED_PROMPT} {COMPRESSED_VERSION} {outcome['chosen']}",
            highlight=False, markup=False,
        )  # fmt: skip
    else:
        _say(f"  nothing registered: {outcome['why_none']}")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deployments.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--calls-per-weekday", type=int, default=DEFAULT_CALLS_PER_WEEKDAY)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--no-sample-calls", action="store_true", help="Skip the live calls through the simulator.")
    parser.add_argument(
        "--no-compression", action="store_true", help="Skip compressing the help center's prompt (minutes on a slow CPU)."
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    privacy.private_dir(settings.home())  # 0700: the demo's stores, prompts and Prefect home are inside
    privacy.use_demo_salt()  # invented users: hashed with the demo's own salt, no default-salt warning
    os.environ.setdefault("PREFECT_HOME", str((settings.home() / "prefect").resolve()))  # keep ~/.prefect clean
    url, owned = demo_database_url()
    prompts = use_demo_prompts()
    end_day = default_end_day()
    note = prepare_demo_store(url, owned, history_marker(args.seed, args.calls_per_weekday, end_day))
    os.environ[settings.LLMOPS_DATABASE_URL] = url  # the CLI functions below read the store from here
    dispose_engines()
    engine = get_engine(url)
    console.print(f"[bold]llmops demo[/bold]: Acme Corp's support assistant, store {engine.url!r}")
    if note:
        _say(f"  {note}")
    if owned:
        make_current(url, prompts)
        _say(
            f"  the default store of every llmops command and make serve from now on, until {llmops_command()} demo reset "
            f"({settings.DEFAULT_STORE_FILE}, where your own traces go, is left as it is)"
        )

    if not args.no_sample_calls:
        if today_has_traces(engine):
            console.print("  live sample calls: today already has traces, not repeated")
        else:
            written = make_sample_calls(engine, seed=args.seed)
            console.print(f"  live sample calls: {written} traced calls through the SDK to the local simulator (today)")

    app_url = f"sqlite:///{(settings.home() / APP_DATABASE_FILE).resolve()}"
    total = sum(plan.total_calls for plan in plan_days(DEMO_DAYS, end_day, args.calls_per_weekday, args.seed))
    with Progress(
        TextColumn("[bold]application history"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("", total=total)
        write_application_history(
            app_url,
            end_day=end_day,
            calls_per_weekday=args.calls_per_weekday,
            seed=args.seed,
            on_batch=lambda rows: progress.advance(task, rows),
        )
    console.print(f"  the application's table {APP_TABLE} in {app_url}: {DEMO_DAYS} days to {end_day}")
    console.print("  running the ingest-traces flow (Prefect) to pull it into the store …")
    report = pull_with_ingest_flow(app_url)
    _say(f"  ingest-traces: {report.summary()}")
    print_report(engine, end_day)
    with local_model(args.seed) as base_url:
        start_canary(engine, base_url)
        print_canary()
        print_drift(end_day)
        if args.no_compression:
            console.print(f"\n[bold]Compressing {COMPRESSED_PROMPT} {COMPRESSED_VERSION}[/bold]: skipped (--no-compression)")
        else:
            compress_long_prompt()
    print_digest(engine, end_day)
    print_next_steps(url, owned, prompts, end_day)
    return 0


def print_next_steps(url: str, owned: bool, prompts: Path, end_day: date) -> None:
    """Commands to explore the demo's data, each runnable as printed from where the demo ran."""
    cli = llmops_command()
    if owned:
        console.print(
            f"\n[bold]Explore it yourself[/bold]: every llmops command reads the demo's store now "
            f"({cli} demo reset returns to {settings.DEFAULT_STORE_FILE})"
        )
    else:  # the user's own store: the commands need the same LLMOPS_DATABASE_URL
        console.print(f"\n[bold]Explore it yourself[/bold] (with LLMOPS_DATABASE_URL={shown_url(url)} set, as for the demo)")
    commands = [
        f"{cli} costs --by model",
        f"{cli} rollouts",
        f"{cli} drift --date {end_day}",
        f"{cli} digest --date {end_day} --dry-run",
    ]
    compressed = sorted(path.stem for path in (prompts / COMPRESSED_PROMPT).glob("*.yaml") if path.stem != COMPRESSED_VERSION)
    if compressed:  # the demo's own copy of the prompts holds the compressed version
        commands.append(
            f"LLMOPS_PROMPTS_DIR={prompts} {cli} prompts diff {COMPRESSED_PROMPT} {COMPRESSED_VERSION} {compressed[-1]}"
        )
    for command in commands:
        console.print(f"  {command}", highlight=False, markup=False)


if __name__ == "__main__":
    raise SystemExit(main())
