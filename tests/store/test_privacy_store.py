"""What the store and the rejects file keep (issue 13, item 9): personal data redacted before
storage on every path, user ids never raw, prompt and answer text only when capture is on."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from llmops import privacy, settings
from llmops.records import TraceRecord
from llmops.store.writer import write_traces
from llmops.tracing import TraceRecorder, trace_anthropic, trace_context
from prefect_llmops.cli import app

runner = CliRunner()
SSN, EMAIL, PHONE, CARD = "123-45-6789", "carol@example.com", "+44 20 7946 0958", "4111 1111 1111 1111"


def stored(engine: Engine, trace_id: str) -> dict[str, Any]:
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT user_id, session_id, tags, metadata, input_text, output_text FROM traces WHERE trace_id = :id"),
            {"id": trace_id},
        ).one()
    values = dict(row._mapping)
    for name in ("tags", "metadata"):
        if isinstance(values[name], str):
            values[name] = json.loads(values[name])
    return values


def line(**fields: Any) -> str:
    return json.dumps({"timestamp": "2025-11-15T10:00:00Z", "model": "claude-3-5-haiku-latest", **fields})


def test_an_import_stores_metadata_session_ids_and_tags_redacted(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text(
        line(
            trace_id="t1",
            user_id=EMAIL,
            session_id=f"support:{EMAIL}",
            tags=["vip", f"callback {PHONE}"],
            metadata={"customer": {"ssn": SSN, "cards": [CARD]}, "when": "2025-11-15T10:00:00Z", "turns": 3},
        )
        + "\n"
    )
    result = runner.invoke(app, ["traces", "import", str(path)])
    assert result.exit_code == 0, result.output
    row = stored(store, "t1")
    assert row["metadata"] == {
        "customer": {"ssn": "[redacted:ssn]", "cards": ["[redacted:card]"]},
        "when": "2025-11-15T10:00:00Z",
        "turns": 3,
    }
    assert row["session_id"].startswith("support:[redacted:email:") and "carol" not in row["session_id"]
    assert row["tags"] == ["vip", "callback [redacted:phone]"]
    assert row["user_id"] == privacy.hash_user_id(EMAIL, settings.user_id_salt())


def test_the_rejects_file_and_the_reasons_hold_no_user_id_and_no_personal_data(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text(
        "\n".join(
            [
                line(trace_id="bad-1", user_id=EMAIL, input_tokens=-5, metadata={"ssn": SSN}),
                line(trace_id="bad-2", user_id=987654321, session_id=f"call {PHONE}"),  # a number: the wrong type
                line(trace_id="bad-3", metadata=SSN),  # not an object: the reason quotes it
                '{"trace_id": "bad-4", "user_id": "' + EMAIL + '", "latency_ms": Infinity, "note": "' + SSN + '"}',
            ]
        )
        + "\n"
    )
    result = runner.invoke(app, ["traces", "import", str(path)])
    assert result.exit_code == 3, result.output
    rejects = (tmp_path / "calls.jsonl.rejects.jsonl").read_text()
    for secret in ("carol", SSN, "987654321", "7946 0958"):
        assert secret not in rejects, secret
        assert secret not in result.output, secret
    lines = [json.loads(entry) for entry in rejects.splitlines()]
    assert len(lines) == 4
    salt = settings.user_id_salt()
    assert f"[user_id:{privacy.hash_user_id(EMAIL, salt)}]" in lines[0]["raw"]
    assert f"got [user_id:{privacy.hash_user_id('987654321', salt)}]" in lines[1]["reason"]


def test_a_corrected_rejected_line_keeps_its_user(store: Engine, tmp_path: Path) -> None:
    """The rejects file's pseudonym is the store's hash: importing the fixed line stores the same user."""
    path = tmp_path / "calls.jsonl"
    path.write_text(line(trace_id="fixed", user_id=EMAIL, input_tokens=-5) + "\n")
    runner.invoke(app, ["traces", "import", str(path)])
    rejected = json.loads((tmp_path / "calls.jsonl.rejects.jsonl").read_text())
    corrected = tmp_path / "corrected.jsonl"
    corrected.write_text(rejected["raw"].replace('"input_tokens":-5', '"input_tokens":5') + "\n")
    result = runner.invoke(app, ["traces", "import", str(corrected)])
    assert result.exit_code == 0, result.output
    assert stored(store, "fixed")["user_id"] == privacy.hash_user_id(EMAIL, settings.user_id_salt())


def test_csv_rejects_show_the_user_id_as_its_pseudonym(store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(
        "trace_id,timestamp,model,user_id,input_tokens,metadata\n"
        f'c1,2025-11-15T10:00:00Z,claude-3-5-haiku-latest,{EMAIL},-5,"{{""ssn"": ""{SSN}""}}"\n'
    )
    result = runner.invoke(app, ["traces", "import", str(path)])
    assert result.exit_code == 3, result.output
    rejects = (tmp_path / "calls.csv.rejects.jsonl").read_text()
    assert "carol" not in rejects and SSN not in rejects
    assert privacy.hash_user_id(EMAIL, settings.user_id_salt()) in rejects


# --------------------------------------------------------------------------- text capture through the tracing wrapper

QUESTION = f"My card {CARD} was charged twice, mail me at {EMAIL}"
ANSWER = "Sorry about that! I have refunded the second charge. " * 100


class FakeMessages:
    """``client.messages`` of an Anthropic client, answering at once."""

    def create(self, **request: Any) -> Any:
        return SimpleNamespace(
            id=f"msg_{uuid.uuid4().hex}",
            model=request["model"],
            stop_reason="end_turn",
            usage=SimpleNamespace(input_tokens=20, output_tokens=500, cache_read_input_tokens=0, cache_creation_input_tokens=0),
            content=[SimpleNamespace(type="text", text=ANSWER)],
        )


def traced_call(engine: Engine, **options: Any) -> dict[str, Any]:
    recorder = TraceRecorder(lambda records: write_traces(engine, records))
    client = trace_anthropic(SimpleNamespace(messages=FakeMessages()), recorder=recorder, feature="chat_response", **options)
    with trace_context(user_id=EMAIL, session_id=f"web-{EMAIL}", metadata={"ssn": SSN}):
        message = client.messages.create(
            model="claude-3-5-haiku-latest", max_tokens=512, messages=[{"role": "user", "content": QUESTION}]
        )
    assert recorder.close(timeout=30) and recorder.stats.written == 1
    return stored(engine, message.id)


def test_text_capture_is_off_by_default(store: Engine) -> None:
    row = traced_call(store)
    assert row["input_text"] is None and row["output_text"] is None
    assert row["metadata"] == {"ssn": "[redacted:ssn]"} and "carol" not in row["session_id"]


def test_captured_text_is_redacted_and_cut(store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.LLMOPS_CAPTURE_TEXT, "1")
    monkeypatch.setenv(settings.LLMOPS_CAPTURE_TEXT_MAX_CHARS, "200")
    row = traced_call(store)
    assert row["input_text"] == "My card [redacted:card] was charged twice, mail me at [redacted:email]"
    assert row["output_text"].startswith("Sorry about that!") and len(row["output_text"]) == 200
    assert row["output_text"].endswith("…")


def test_a_client_can_keep_its_text_out_while_capture_is_on(store: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.LLMOPS_CAPTURE_TEXT, "1")
    row = traced_call(store, capture_text=False)
    assert row["input_text"] is None and row["output_text"] is None


def test_the_store_drops_text_while_capture_is_off(store: Engine) -> None:
    """Imported files with text columns, or a client told to capture: without LLMOPS_CAPTURE_TEXT, no text is stored."""
    record = TraceRecord(
        trace_id="with-text", timestamp="2025-11-15T10:00:00Z", model="claude-3-5-haiku-latest", input_text=QUESTION
    )
    write_traces(store, [record])
    assert stored(store, "with-text")["input_text"] is None
    row = traced_call(store, capture_text=True)
    assert row["input_text"] is None
