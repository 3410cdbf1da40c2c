"""Privacy before storage (issue 13, items 8-10): the redaction detectors, own patterns, the
default-salt warning, private files, and the demo's masked store URL."""

from __future__ import annotations

import json
import logging
import os
import random
import stat
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from llmops import privacy, settings
from llmops.privacy import Redactor, pseudonyms, redaction

R = Redactor()


# --------------------------------------------------------------------------- detectors: what they find


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jane.doe@example.com", "[redacted:email]"),
        ("mail first.last+tag@sub.example.co.uk, thanks", "mail [redacted:email], thanks"),
        ("<bob_smith@mail-server.example.org>", "<[redacted:email]>"),
        ("sess-alice@example.com-42", "[redacted:email]-42"),
    ],
)
def test_email_addresses_are_redacted(text: str, expected: str) -> None:
    assert R.text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +44 20 7946 0958 today", "call [redacted:phone] today"),
        ("+1 (212) 555-0123", "[redacted:phone]"),
        ("+4915112345678", "[redacted:phone]"),
        ("+33-1-42-68-53-00", "[redacted:phone]"),
        ("(212) 555-0123", "[redacted:phone]"),
        ("212-555-0123", "[redacted:phone]"),
        ("212.555.0123 or 1-800-555-0199", "[redacted:phone] or [redacted:phone]"),
    ],
)
def test_phone_numbers_are_redacted(text: str, expected: str) -> None:
    assert R.text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4111 1111 1111 1111", "[redacted:card]"),  # Visa test number
        ("card: 4111-1111-1111-1111.", "card: [redacted:card]."),
        ("5555555555554444", "[redacted:card]"),  # Mastercard
        ("2223003122003222", "[redacted:card]"),  # Mastercard 2-series
        ("3782 822463 10005", "[redacted:card]"),  # Amex 4-6-5
        ("6011111111111117", "[redacted:card]"),  # Discover
        ("4111 1111 1111 1111 2 items", "[redacted:card] 2 items"),  # a card, then another number
    ],
)
def test_card_numbers_are_redacted(text: str, expected: str) -> None:
    assert R.text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SSN 123-45-6789.", "SSN [redacted:ssn]."),
        ("ssn:078-05-1120", "ssn:[redacted:ssn]"),
        ("NINO AB 12 34 56 C", "NINO [redacted:nino]"),
        ("AB123456D", "[redacted:nino]"),
    ],
)
def test_national_id_numbers_are_redacted(text: str, expected: str) -> None:
    assert R.text(text) == expected


# --------------------------------------------------------------------------- detectors: what they leave alone


@pytest.mark.parametrize(
    "text",
    [
        "2025-11-15T10:00:00Z",
        "2025-11-15T10:00:00.123456+09:00",
        "2025-11-15 10:00:00",
        "20251115-00003-1",  # the demo's session ids
        "20251115103000",  # a compact timestamp (would pass Luhn as a number starting with 2, but no card network)
        "1731664800123",  # epoch milliseconds
        "1731664800123456789",  # epoch nanoseconds
        "v1.2.3",
        "10.212.555.1",
        "2.3.1-rc.1+build.20251115",
        "msg_01ABCDEF1234567890123456",
        "trace_4111111111111111",
        "toolu_01A09q90qw90lq917835lq9",
        "4f3c2b1a-9d8e-4c7b-a6f5-123456789012",
        "input_tokens=1200 output_tokens=300 cache_read_input_tokens=204800",
        "$1,234.56 or 1234.56 USD",
        "000-12-3456",  # no SSN starts with 000
        "666-12-3456",  # nor 666
        "912-34-5678",  # nor 9xx
        "123-00-4567",  # nor group 00
        "4111 1111 1111 1112",  # fails Luhn
        "123-456-7890",  # no area code starts with 1
        "+1.2.3",
        "score +0.123456789",
        "user@localhost",
        "@alice",
        "DQ 12 34 56 C",  # NINO prefixes never start with D
        "",
    ],
)
def test_realistic_look_alikes_are_left_alone(text: str) -> None:
    assert R.text(text) == text


def test_only_the_chosen_detectors_run() -> None:
    text = "jane@example.com 123-45-6789"
    assert Redactor(["ssn"]).text(text) == "jane@example.com [redacted:ssn]"
    assert Redactor([]).text(text) == text
    with pytest.raises(ValueError, match="unknown detector"):
        Redactor(["passport"])


def test_long_texts_are_scanned_around_each_hint_with_the_same_result() -> None:
    filler = "Lorem ipsum dolor sit amet, 2025-11-15 version 1.2.3 costs $12.50. " * 40
    text = f"{filler}call +44 20 7946 0958 {filler}card 4111 1111 1111 1111 and 123-45-6789 {filler}AB 12 34 56 C"
    redacted = R.text(text)
    assert R._numbers is not None
    assert redacted == R._numbers.sub(R._number, text)  # the whole-text scan, as for short texts
    for kind in ("phone", "card", "ssn", "nino"):
        assert f"[redacted:{kind}]" in redacted


def test_keyed_placeholders_keep_distinct_values_distinct() -> None:
    keyed = R.keyed(b"salt")
    alice, bob = keyed.text("chat-alice@example.com"), keyed.text("chat-bob@example.com")
    assert alice != bob and alice.startswith("[redacted:email:") and "alice" not in alice
    assert keyed.text("chat-alice@example.com") == alice
    assert R.keyed(b"salt") is keyed


# --------------------------------------------------------------------------- nested metadata and own patterns


def test_every_string_in_nested_metadata_is_redacted_and_the_rest_kept() -> None:
    metadata = {
        "customer": {"ssn": "123-45-6789", "contacts": ["jane@example.com", {"phone": "(212) 555-0123"}]},
        "visits": 3,
        "vip": True,
        "ratio": 0.25,
        "note": None,
        "when": "2025-11-15T10:00:00Z",
    }
    assert R.json(metadata) == {
        "customer": {"ssn": "[redacted:ssn]", "contacts": ["[redacted:email]", {"phone": "[redacted:phone]"}]},
        "visits": 3,
        "vip": True,
        "ratio": 0.25,
        "note": None,
        "when": "2025-11-15T10:00:00Z",
    }


def test_metadata_nested_deeper_than_the_limit_is_cut_not_crashing() -> None:
    deep: object = "123-45-6789"
    for _ in range(redaction.MAX_DEPTH + 50):
        deep = {"a": deep}
    redacted = R.json(deep)
    assert "123-45-6789" not in json.dumps(redacted) and "[redacted:nested]" in json.dumps(redacted)


def test_own_patterns_from_a_json_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.LLMOPS_REDACT_PATTERNS, json.dumps({"employee_id": r"EMP-\d{6}", "ticket": r"TCK-\d+"}))
    assert privacy.redactor().text("EMP-123456 opened TCK-77 for jane@example.com") == (
        "[redacted:employee_id] opened [redacted:ticket] for [redacted:email]"
    )


def test_own_patterns_from_a_file_and_the_detectors_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    patterns = tmp_path / "patterns.txt"
    patterns.write_text("# name=regex, one a line\ncustomer_no=CUST\\d{5}\n\nicd10 = [A-TV-Z]\\d\\d\\.\\d\n")
    monkeypatch.setenv(settings.LLMOPS_REDACT_PATTERNS, str(patterns))
    monkeypatch.setenv(settings.LLMOPS_REDACT_DETECTORS, "ssn")
    redactor = privacy.redactor()
    assert redactor.detectors == ("ssn",)
    assert redactor.text("CUST12345 J45.9 jane@example.com 123-45-6789") == (
        "[redacted:customer_no] [redacted:icd10] jane@example.com [redacted:ssn]"
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (settings.LLMOPS_REDACT_PATTERNS, '{"bad name": "x"}', "must be lowercase"),
        (settings.LLMOPS_REDACT_PATTERNS, '{"broken": "(unclosed"}', "not a valid regular expression"),
        (settings.LLMOPS_REDACT_PATTERNS, "{not json", "not a JSON object"),
        (settings.LLMOPS_REDACT_PATTERNS, "/no/such/patterns.txt", "neither a JSON object nor a readable file"),
        (settings.LLMOPS_REDACT_DETECTORS, "email,passport", "unknown detector"),
    ],
)
def test_bad_redaction_settings_name_the_setting(
    variable: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=message) as raised:
        privacy.redactor()
    assert variable in str(raised.value)


def test_detectors_none_turns_the_built_ins_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.LLMOPS_REDACT_DETECTORS, "none")
    assert privacy.redactor().text("jane@example.com 123-45-6789") == "jane@example.com 123-45-6789"


# --------------------------------------------------------------------------- properties


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if redaction._luhn(body + check):
            return body + check
    raise AssertionError("a Luhn check digit always exists")


CARD_PREFIXES = ["4", "51", "52", "53", "54", "55", "2221", "2720", "34", "37", "6011", "65", "62"]
cards = st.builds(
    lambda prefix, digits: _luhn_complete((prefix + digits)[:15]),
    st.sampled_from(CARD_PREFIXES),
    st.text("0123456789", min_size=14, max_size=14),
)
surrounding = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40).map(lambda text: text + " ")


@hypothesis_settings(max_examples=300, deadline=None)
@given(before=surrounding, card=cards, grouped=st.booleans(), after=surrounding)
def test_any_luhn_valid_16_digit_card_number_in_text_is_redacted(before: str, card: str, grouped: bool, after: str) -> None:
    shown = " ".join(card[i : i + 4] for i in range(0, 16, 4)) if grouped else card
    redacted = R.text(f"{before}{shown} {after}")
    assert card not in redacted.replace(" ", "")
    assert "[redacted:card]" in redacted


pii = st.sampled_from(
    ["jane@example.com", "+44 20 7946 0958", "(212) 555-0123", "4111 1111 1111 1111", "123-45-6789", "AB 12 34 56 C"]
)
texts = st.lists(
    st.one_of(st.text(max_size=20), pii, st.sampled_from(["2025-11-15T10:00:00Z", "v1.2.3", "msg_01AB"])), max_size=8
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(parts=texts)
@example(parts=["00000", "+100000000000000", "0@0.AA", "+100000000000000"])  # once cut by a scan window
def test_redaction_is_idempotent(parts: list[str]) -> None:
    text = " ".join(parts)
    once = R.text(text)
    assert R.text(once) == once
    keyed = R.keyed(b"k")
    assert keyed.text(keyed.text(text)) == keyed.text(text)


@hypothesis_settings(max_examples=200, deadline=None)
@given(parts=texts, filler=st.integers(min_value=0, max_value=80))
@example(parts=["0000000000000000", "0000000000000000", "+10000000000000"], filler=0)  # a match past the window
def test_long_and_short_scans_agree(parts: list[str], filler: int) -> None:
    text = ("x " * filler) + " ".join(parts)
    assert R._numbers is not None
    expected = R._numbers.sub(R._number, text)
    assert R._numbers_around_hints(text) == expected


# --------------------------------------------------------------------------- the default salt warning


@pytest.fixture
def fresh_salt_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pseudonyms, "_salt_warned", False)
    monkeypatch.delenv(pseudonyms._SALT_WARNED_MARKER, raising=False)
    monkeypatch.delenv(settings.LLMOPS_USER_ID_SALT, raising=False)


def _salt_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "llmops.privacy"]


def test_the_default_salt_warns_once_per_process(fresh_salt_warning: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="llmops.privacy")
    for _ in range(3):
        assert privacy.user_id_salt() == settings.DEFAULT_USER_ID_SALT.encode()
    [message] = _salt_warnings(caplog)
    assert settings.LLMOPS_USER_ID_SALT in message and "\n" not in message and "openssl rand" in message


def test_the_default_salt_set_explicitly_warns_too(
    fresh_salt_warning: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="llmops.privacy")
    monkeypatch.setenv(settings.LLMOPS_USER_ID_SALT, settings.DEFAULT_USER_ID_SALT)
    privacy.user_id_salt()
    assert len(_salt_warnings(caplog)) == 1


def test_an_own_salt_does_not_warn(
    fresh_salt_warning: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="llmops.privacy")
    monkeypatch.setenv(settings.LLMOPS_USER_ID_SALT, "9c1f0e…a deployment secret")
    privacy.user_id_salt()
    assert _salt_warnings(caplog) == []


def test_the_demo_says_demo_with_its_own_salt_and_does_not_warn(
    fresh_salt_warning: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="llmops.privacy")
    privacy.use_demo_salt()
    try:
        assert privacy.user_id_salt() == privacy.DEMO_USER_ID_SALT.encode()
    finally:
        os.environ.pop(settings.LLMOPS_USER_ID_SALT, None)
    assert _salt_warnings(caplog) == []


def test_the_demo_keeps_a_salt_that_is_already_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.LLMOPS_USER_ID_SALT, "mine")
    privacy.use_demo_salt()
    assert os.environ[settings.LLMOPS_USER_ID_SALT] == "mine"


# --------------------------------------------------------------------------- user-id pseudonyms


def test_a_pseudonym_is_the_stores_hash_and_round_trips() -> None:
    pseudonym = privacy.user_id_pseudonym(" u-42 ", b"salt")
    assert pseudonym == f"[user_id:{privacy.hash_user_id('u-42', b'salt')}]"
    assert privacy.stored_user_id(pseudonym, b"salt") == privacy.hash_user_id("u-42", b"salt")
    assert privacy.user_id_pseudonym(pseudonym, b"salt") == pseudonym
    assert privacy.stored_user_id("u-42", b"salt") == privacy.hash_user_id("u-42", b"salt")


@pytest.mark.parametrize(
    "raw",
    [
        '{"trace_id":"t1","user_id":"carol@example.com","input_tokens":-5,"metadata":{"ssn":"123-45-6789"}}',
        '{"trace_id":"t1","user_id":"carol@example.com","input_tokens":-5,"metadata":{"ssn":"123-45-6789"',  # cut off
        '{"trace_id":"t1", "user_id": "carol@example.com", "latency_ms": Infinity, "note": "123-45-6789"}',  # not JSON
        '{"trace_id":"t1","user_id":"carol@exam',  # cut inside the user id
        '{"attributes":[{"key":"user.id","value":{"stringValue":"carol@example.com"}},{"key":"x","value":{"stringValue":"123-45-6789"}}]}',
        '{"attributes":[{"key":"enduser.id","value":{"stringValue":"carol@example.com"}}, '
        '{"key": "x", "value": {"stringValue": "123-45-6789"',
    ],
)
def test_a_rejected_line_keeps_no_user_id_and_no_personal_data(raw: str) -> None:
    scrubbed = privacy.scrub_raw(raw, Redactor(), b"salt")
    assert "carol" not in scrubbed and "123-45-6789" not in scrubbed
    assert "[user_id:" in scrubbed


# --------------------------------------------------------------------------- private files


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_folders_and_files_are_for_their_owner_only(tmp_path: Path) -> None:
    database = privacy.private_file(tmp_path / "home" / "nested" / "llmops.db")
    assert _mode(tmp_path / "home") == 0o700 and _mode(tmp_path / "home" / "nested") == 0o700
    assert _mode(database) == 0o600 and database.stat().st_size == 0
    database.write_bytes(b"kept")
    privacy.private_file(database)  # an existing file is left as it is
    assert database.read_bytes() == b"kept"


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    privacy.private_dir(shared)
    assert _mode(shared) == 0o755


def test_the_sqlite_store_and_llmops_home_are_created_private(llmops_home: Path) -> None:
    from llmops.store.engine import get_engine

    assert not llmops_home.exists()
    engine = get_engine()
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    assert _mode(llmops_home) == 0o700
    assert _mode(llmops_home / "llmops.db") == 0o600
    for suffix in ("-wal", "-shm"):
        side = llmops_home / f"llmops.db{suffix}"
        if side.exists():
            assert _mode(side) & 0o077 == 0


# --------------------------------------------------------------------------- the demo's store URL


def test_the_demo_masks_the_store_password(llmops_home: Path) -> None:
    from prefect_llmops.deployments import demo

    url = "postgresql+psycopg://llmops:s3cret-pw@db.example:5432/llmops"
    assert demo.shown_url(url) == "postgresql+psycopg://llmops:***@db.example:5432/llmops"
    assert demo.prepare_demo_store(url, False, {"seed": 1, "end_day": "2025-11-14"}) is None
    note = demo.prepare_demo_store(url, False, {"seed": 2, "end_day": "2025-11-15"})
    assert note is not None and "s3cret-pw" not in note and "llmops:***@db.example" in note
    assert _mode(llmops_home) == 0o700


def test_the_demo_prints_no_raw_store_url() -> None:
    """Every place the demo prints its store goes through ``shown_url`` (or SQLAlchemy's masked repr)."""
    import inspect

    from prefect_llmops.deployments import demo

    source = inspect.getsource(demo)
    assert "LLMOPS_DATABASE_URL={url}" not in source and 'f"{url} ' not in source
    assert "LLMOPS_DATABASE_URL={shown_url(url)}" in source


def test_random_text_never_crashes_the_redactor() -> None:
    rng = random.Random(13)
    alphabet = "0123456789 -.()+@abcXYZ_\n\t"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 120)))
        assert isinstance(R.text(text), str)


def test_worker_processes_started_after_the_warning_stay_quiet(tmp_path: Path) -> None:
    """An import's worker processes: one warning for the whole command, not one per worker."""
    import subprocess
    import sys

    script = (
        "import multiprocessing, logging\n"
        "from llmops import privacy\n"
        "def child():\n"
        "    privacy.user_id_salt()\n"
        "if __name__ == '__main__':\n"
        "    privacy.user_id_salt()\n"
        "    for method in ('spawn', 'forkserver'):\n"
        "        process = multiprocessing.get_context(method).Process(target=child)\n"
        "        process.start(); process.join()\n"
    )
    (tmp_path / "salted.py").write_text(script)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in (settings.LLMOPS_USER_ID_SALT, pseudonyms._SALT_WARNED_MARKER)
    }
    done = subprocess.run([sys.executable, "salted.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("llmops: user ids are hashed with the built-in default salt") == 1, done.stderr
