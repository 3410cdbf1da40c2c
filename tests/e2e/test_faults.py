"""A fault test per dependency: a hung store, a store that drops the connection mid-batch, a full
disk under the SQLite store, and Slack and the model server hanging.

Each must end within its deadline with a clear message, and lose nothing already stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from llmops import settings
from llmops.evals import store as eval_store
from llmops.evals.datasets import Dataset, EvalExample
from llmops.evals.limits import RetryPolicy
from llmops.evals.runner import MODEL_MAX_RETRIES, MODEL_TIMEOUT_SECONDS, RunSettings, async_client, run_eval
from llmops.ingest.pipeline import import_file
from llmops.release.registry import Registry, RegistryUnavailable
from llmops.report.digest import compute_digest
from llmops.report.slack import OUTBOX, SlackConfig, deliver_pending, enqueue_digest
from llmops.store.engine import dispose_engines, get_engine
from llmops.store.tables import TRACES
from prefect_llmops.cli import app
from tests.e2e.fault_servers import FaultProxy, SilentServer
from tests.e2e.test_eval_runner import make_prompt

pytestmark = pytest.mark.e2e
PASSWORD = "s3cret-pw"
DAY = date(2026, 11, 26)


def silent_store_url(server: SilentServer) -> str:
    return f"postgresql+psycopg://llmops:{PASSWORD}@127.0.0.1:{server.port}/llmops"


def one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def trace_lines(count: int) -> list[str]:
    return [
        json.dumps(
            {
                "trace_id": f"fault-{index:05d}",
                "timestamp": f"2026-11-{10 + index % 10:02d}T{index % 24:02d}:00:00Z",
                "feature": "support_chat",
                "model": "claude-3-5-sonnet-20241022",
                "input_tokens": 1000 + index,
                "output_tokens": 200,
                "latency_ms": 900.0 + index,
                "status": "ok",
            }
        )
        for index in range(count)
    ]


def stored_trace_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(TRACES.c.trace_id)).scalars())


# --- a hung store ------------------------------------------------------------------------


@pytest.fixture
def hung_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """LLMOPS_DATABASE_URL points at a server that accepts connections and never answers."""
    with SilentServer() as server:
        url = silent_store_url(server)
        monkeypatch.setenv(settings.LLMOPS_DATABASE_URL, url)
        yield url


def test_a_hung_store_fails_costs_in_one_masked_line_within_the_connect_timeout(
    hung_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(settings.LLMOPS_STORE_CONNECT_TIMEOUT_SECONDS, "2")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["costs"])
    elapsed = time.monotonic() - started

    assert result.exit_code == 1
    assert elapsed < 2 + 3  # the connect timeout, plus a margin for a loaded machine
    line = one_line(result.output)
    assert line.startswith("error: the store failed at postgresql+psycopg://llmops:***@127.0.0.1:")
    assert "timeout" in line and settings.LLMOPS_STORE_CONNECT_TIMEOUT_SECONDS in line
    assert PASSWORD not in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["costs"],
        ["traces", "import", "TRACES"],
        ["digest"],
        ["db", "upgrade"],
        ["db", "rebuild-rollups"],
        ["drift"],
        ["rollouts"],
        ["prompts", "history", "support-chat"],
    ],
    ids=" ".join,
)
def test_every_command_fails_in_one_masked_line_when_the_store_is_down(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    closed = SilentServer()
    port = closed.port
    closed.__exit__()  # nothing listens there any more: connections are refused
    monkeypatch.setenv(settings.LLMOPS_DATABASE_URL, f"postgresql+psycopg://llmops:{PASSWORD}@127.0.0.1:{port}/llmops")
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(trace_lines(3)) + "\n")
    result = CliRunner().invoke(app, [str(path) if part == "TRACES" else part for part in command])

    assert result.exit_code == 1, result.output
    line = one_line(result.output)
    assert line.startswith(f"error: the store failed at postgresql+psycopg://llmops:***@127.0.0.1:{port}/llmops: ")
    assert "Connection refused" in line and "check that the database server is running" in line
    assert PASSWORD not in result.output and PASSWORD not in caplog.text


def test_resolve_against_a_hung_store_answers_within_its_own_deadline(hung_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.LLMOPS_RESOLVE_TIMEOUT_SECONDS, "1")  # shorter than the 10 s connect timeout
    started = time.monotonic()
    result = CliRunner().invoke(app, ["resolve", "support-chat", "--user", "u-1"])
    elapsed = time.monotonic() - started

    assert result.exit_code == 1
    assert elapsed < 1 + 2
    line = one_line(result.output)
    assert "no answer within 1 s" in line and "no last known version" in line
    assert "llmops:***@" in line and PASSWORD not in result.output


def test_a_hung_store_never_blocks_another_store(hung_store: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(settings.LLMOPS_STORE_CONNECT_TIMEOUT_SECONDS, "5")
    failures: list[BaseException] = []

    def open_hung() -> None:
        try:
            get_engine(hung_store)
        except BaseException as exc:  # the connect timeout, expected
            failures.append(exc)

    hung = threading.Thread(target=open_hung)
    hung.start()
    time.sleep(0.3)  # the hung store's first connect is under way
    started = time.monotonic()
    healthy = get_engine(f"sqlite:///{tmp_path / 'healthy.db'}")
    with healthy.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
    assert time.monotonic() - started < 4  # not the hung store's 5 s
    assert hung.is_alive()
    hung.join(timeout=10)
    assert failures and "timeout" in str(failures[0]).lower()


@pytest.mark.postgres
def test_resolve_serves_the_last_known_version_while_the_store_hangs(postgres_url: str) -> None:
    target = make_url(postgres_url)
    with FaultProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        proxied = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine = get_engine(proxied)
        registry = Registry(engine, cache_ttl=0, timeout=1)
        registry.register(make_prompt("1.0.0", name="faults-chat"), actor="tests")
        registry.set_label("faults-chat", "production", "1.0.0", actor="tests", reason="first release")
        assert registry.resolve("faults-chat", "u-1").version == "1.0.0"

        proxy.hang()  # the pooled connection and any new one stop answering
        started = time.monotonic()
        served = [registry.resolve("faults-chat", f"u-{index}") for index in range(20)]
        elapsed = time.monotonic() - started

        assert elapsed < 1 + 1.5  # one caller waits the deadline once; the rest are served at once
        assert {resolved.version for resolved in served} == {"1.0.0"}
        assert all(resolved.stale for resolved in served)
        started = time.monotonic()
        with pytest.raises(RegistryUnavailable, match="no last known version"):  # never resolved here before
            registry.resolve("another-prompt", "u-1")
        assert time.monotonic() - started < 1 + 1.5
    dispose_engines()


# --- a store that drops the connection mid-batch -----------------------------------------


@pytest.mark.postgres
def test_a_store_that_drops_the_connection_mid_batch_keeps_the_committed_batches(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(trace_lines(300)) + "\n")
    direct = get_engine(postgres_url)
    with direct.begin() as connection:
        connection.execute(text("TRUNCATE traces, trace_rollups"))
    target = make_url(postgres_url)
    with FaultProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        proxied = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        monkeypatch.setenv(settings.LLMOPS_DATABASE_URL, proxied)
        # batches 1 and 2 commit; the third is cut before its COMMIT reaches the server
        proxy.cut_on(b"COMMIT", 3, after=b"INSERT INTO traces")
        started = time.monotonic()
        result = CliRunner().invoke(app, ["traces", "import", str(path), "--batch-size", "50", "--workers", "0"])
        elapsed = time.monotonic() - started
    dispose_engines()

    assert proxy.cuts == 1
    assert result.exit_code == 1, result.output
    assert elapsed < 30
    line = one_line(result.output)
    assert line.startswith("error: the store failed at postgresql+psycopg://") and "closed" in line.lower()
    kept = stored_trace_ids(get_engine(postgres_url))
    assert len(kept) == 100  # the two committed batches, intact

    monkeypatch.setenv(settings.LLMOPS_DATABASE_URL, postgres_url)
    again = CliRunner().invoke(app, ["traces", "import", str(path), "--batch-size", "50", "--workers", "0"])
    assert again.exit_code == 0, again.output
    assert "imported 200" in again.output and "duplicates 100" in again.output
    assert len(stored_trace_ids(get_engine(postgres_url))) == 300


# --- a full disk under the SQLite store --------------------------------------------------

FULL_DISK_IMPORT = """
import resource, signal, sys
from prefect_llmops.cli import main
from llmops.store.engine import get_engine
get_engine()  # the store exists, migrated, before the disk fills
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing us
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.argv = ["llmops", "traces", "import", sys.argv[2], "--batch-size", "200", "--workers", "0"]
main()
"""


def test_a_full_disk_fails_the_import_in_one_line_and_keeps_the_store_intact(llmops_home: Path, tmp_path: Path) -> None:
    env = {**os.environ, settings.LLMOPS_HOME: str(llmops_home), settings.LLMOPS_USER_ID_SALT: "faults-test-salt"}
    env.pop(settings.LLMOPS_DATABASE_URL, None)
    first = tmp_path / "first.jsonl"
    first.write_text("\n".join(trace_lines(400)) + "\n")
    assert import_file(get_engine(), first, batch_size=200, workers=0).written.inserted == 400
    dispose_engines()
    database = llmops_home / "llmops.db"
    limit = database.stat().st_size + 256 * 1024  # a few batches fit in the write-ahead log, then EFBIG

    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(line.replace("fault-", "big-") for line in trace_lines(5_000)) + "\n")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK_IMPORT, str(limit), str(big)], env=env, capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - started

    assert result.returncode == 1, result.stderr
    assert elapsed < 60
    line = one_line(result.stderr)
    assert line.startswith("error: the store failed at sqlite:///") and "free space" in line, line
    dispose_engines()
    engine = get_engine()
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        assert connection.execute(select(func.count()).select_from(TRACES)).scalar_one() >= 400
    ids = stored_trace_ids(engine)
    assert {f"fault-{index:05d}" for index in range(400)} <= ids  # nothing stored before was lost
    new = len([trace_id for trace_id in ids if trace_id.startswith("big-")])
    assert 0 < new < 5_000 and new % 200 == 0  # whole batches committed before the disk filled, none half


# --- Slack hanging -----------------------------------------------------------------------


def test_a_hung_slack_leaves_the_message_pending_within_the_timeout() -> None:
    engine = get_engine()
    from llmops.demo import generate_traces
    from llmops.store.writer import write_traces

    write_traces(engine, list(generate_traces(days=8, end_day=DAY, calls_per_weekday=10)))
    with SilentServer() as server:
        config = SlackConfig(
            bot_token=SecretStr("xoxb-fault-token"),
            channel="#llm-ops",
            base_url=f"http://127.0.0.1:{server.port}/api/",
            timeout_seconds=2,
        )
        enqueue_digest(engine, compute_digest(engine, DAY), config)
        started = time.monotonic()
        report = deliver_pending(engine, config)
        elapsed = time.monotonic() - started

    assert elapsed < 2 * 3 + 3  # each attempt bounded by the timeout, few attempts
    assert not report.ok and report.pending == [f"digest:{DAY}:#llm-ops"] and report.sent == []
    assert report.errors and "timed out" in report.errors[0].lower()
    with engine.connect() as connection:
        row = dict(connection.execute(select(OUTBOX)).mappings().one())
    assert row["status"] == "pending" and row["claimed_until"] is None  # the next run retries it
    assert "xoxb-fault-token" not in row["last_error"]


# --- the model server hanging ------------------------------------------------------------


def test_a_hung_model_server_ends_the_eval_run_within_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = Dataset(
        name="faults",
        prompt_name="support",
        examples=[EvalExample(id=f"case-{index}", input="Where is my order?", assertions=[]) for index in range(4)],
    )
    with SilentServer() as server:
        client = async_client(api_key="test", base_url=f"http://127.0.0.1:{server.port}")
        settings_ = RunSettings(
            concurrency=4, call_timeout=1.0, retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.05), cache="off"
        )
        started = time.monotonic()
        record = run_eval(make_prompt(), dataset, client=client, settings=settings_, scorers=[])
        elapsed = time.monotonic() - started

    assert elapsed < 2 * 1.0 + 3  # two attempts of 1 s per case, the cases in parallel
    assert record.status == "incomplete" and record.cases_failed == 4
    errors = [row["error"] for row in eval_store.results(get_engine(), record.id)]
    assert len(errors) == 4 and all(error and error.startswith("timeout") for error in errors), errors


def test_the_default_model_client_has_a_timeout_and_bounded_retries() -> None:
    client = async_client(api_key="test", base_url="http://127.0.0.1:9")  # not the SDK's default of 10 minutes
    assert client.timeout == MODEL_TIMEOUT_SECONDS <= 60 and client.max_retries == MODEL_MAX_RETRIES <= 2
