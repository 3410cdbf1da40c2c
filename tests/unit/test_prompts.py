"""Prompt version files: validation with line numbers, hashing, rendering, diffs and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from pydantic import ValidationError
from typer.testing import CliRunner

from llmops import settings
from llmops.demo.traffic import FEATURES
from llmops.prompts import (
    Problem,
    PromptFileError,
    PromptNotFoundError,
    PromptRenderError,
    PromptVersion,
    check_prompt_file,
    diff,
    get_prompt,
    latest_version,
    load_prompt_file,
    load_prompts,
    render,
    semver_key,
    sort_versions,
    validate_prompts,
)
from prefect_llmops.cli.prompts import register

REPO = Path(__file__).parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "prompts"
GOOD, BAD, WARNINGS = FIXTURES / "good", FIXTURES / "bad", FIXTURES / "warnings"
MANY_PROBLEMS = BAD / "many-problems" / "1.0.0.yaml"
runner = CliRunner()
app = typer.Typer()
register(app)


def located(problems: list[Problem]) -> set[tuple[int, str, str]]:
    return {(problem.line, problem.field, problem.severity) for problem in problems}


def copy_prompt(source: Path, directory: Path) -> Path:
    """A copy at the same <name>/<version>.yaml, so the name and version still match."""
    target = directory / source.parent.name / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return target


# --- validation ---------------------------------------------------------------------------


def test_every_problem_in_a_file_is_reported_with_its_line() -> None:
    _, problems = check_prompt_file(MANY_PROBLEMS)
    assert located(problems) == {
        (2, "author", "error"),  # missing: reported at the mapping's first line
        (2, "version", "error"),  # "1.0.1" in 1.0.0.yaml
        (3, "model", "error"),  # alias
        (6, "system", "error"),  # blank
        (8, "parameters.temperature", "error"),
        (9, "parameters.max_tokens", "error"),
        (10, "tags", "warning"),  # unknown key
    }
    messages = {problem.field: problem.message for problem in problems}
    assert "1.0.0.yaml" in messages["version"] and "'1.0.1'" in messages["version"]
    assert "1.5" in messages["parameters.temperature"]
    assert "got 0" in messages["parameters.max_tokens"]


def test_a_problem_renders_as_path_line_field_message() -> None:
    error = Problem(Path("prompts/a/1.0.0.yaml"), 3, "model", "pin a dated id")
    warning = Problem(Path("prompts/a/1.0.0.yaml"), 2, "tags", "unknown key", "warning")
    assert str(error) == "prompts/a/1.0.0.yaml:3: model: pin a dated id"
    assert str(warning) == "prompts/a/1.0.0.yaml:2: tags: warning: unknown key"


def test_unparseable_yaml_reports_yamls_own_line() -> None:
    prompt, problems = check_prompt_file(BAD / "unparseable" / "1.0.0.yaml")
    assert prompt is None
    assert [(problem.line, problem.field) for problem in problems] == [(4, "yaml")]
    assert "flow mapping opened on line 3" in problems[0].message


def test_a_file_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "faq" / "1.0.0.yaml"
    path.parent.mkdir()
    path.write_text("# just a comment\n- a list\n")
    _, problems = check_prompt_file(path)
    assert [(problem.line, problem.field) for problem in problems] == [(2, "document")]
    assert "expected a mapping" in problems[0].message


@pytest.mark.parametrize("alias", ["claude-3-5-sonnet-latest", "claude-sonnet-4-5", "claude-3-5-sonnet-2024"])
def test_model_aliases_are_refused(tmp_path: Path, alias: str) -> None:
    path = copy_prompt(GOOD / "acme-faq" / "1.2.0.yaml", tmp_path)
    path.write_text(path.read_text().replace("claude-3-haiku-20240307", alias))
    prompt, problems = check_prompt_file(path)
    assert prompt is None
    assert [(problem.line, problem.field, problem.severity) for problem in problems] == [(2, "model", "error")]
    assert "-YYYYMMDD" in problems[0].message


def test_dated_ids_of_other_providers_count_as_pinned(tmp_path: Path) -> None:
    path = copy_prompt(GOOD / "acme-faq" / "1.2.0.yaml", tmp_path)
    path.write_text(path.read_text().replace("claude-3-haiku-20240307", "claude-3-5-sonnet-v2@20241022"))
    prompt, problems = check_prompt_file(path, allow_unknown_models=True)
    assert prompt is not None and problems == []


def test_unknown_model_is_a_warning_that_can_be_allowed() -> None:
    problems = validate_prompts(WARNINGS)
    assert located(problems) == {(2, "model", "warning")}
    assert "genai-prices" in problems[0].message and "--allow-unknown-model" in problems[0].message
    assert validate_prompts(WARNINGS, allow_unknown_models=True) == []
    assert load_prompt_file(WARNINGS / "acme-ft" / "1.0.0.yaml").model == "acme-ft-support-20250601"


def test_version_must_be_semver() -> None:
    _, problems = check_prompt_file(BAD / "not-semver" / "v1.yaml")
    assert located(problems) == {(1, "version", "error")}
    assert "semantic version" in problems[0].message


def test_unquoted_version_read_as_a_number_says_to_quote_it(tmp_path: Path) -> None:
    path = copy_prompt(GOOD / "acme-faq" / "1.2.0.yaml", tmp_path)
    path.write_text(path.read_text().replace('version: "1.2.0"', "version: 1.2"))
    _, problems = check_prompt_file(path)
    assert ("version", 1) in {(problem.field, problem.line) for problem in problems}
    assert any("quoted" in problem.message for problem in problems)


def test_duplicate_keys_are_errors_and_lines_point_at_the_value_yaml_keeps(tmp_path: Path) -> None:
    path = copy_prompt(GOOD / "acme-faq" / "1.2.0.yaml", tmp_path)
    path.write_text(path.read_text() + "  temperature: 3\n")  # line 12, after max_tokens
    _, problems = check_prompt_file(path)
    assert located(problems) == {(12, "parameters.temperature", "error")}
    assert len(problems) == 2  # the duplicate, and the out-of-range value YAML kept
    assert any("first on line 10" in problem.message for problem in problems)


def test_typos_in_keys_get_a_suggestion(tmp_path: Path) -> None:
    path = copy_prompt(GOOD / "acme-faq" / "1.2.0.yaml", tmp_path)
    path.write_text(path.read_text().replace("changelog:", "chnagelog:").replace("temperature:", "temprature:"))
    _, problems = check_prompt_file(path)
    by_field = {problem.field: problem for problem in problems}
    assert by_field["chnagelog"].severity == "warning" and "'changelog'" in by_field["chnagelog"].message
    assert by_field["changelog"].message.startswith("missing required field")
    assert by_field["parameters.temprature"].line == 10 and "'temperature'" in by_field["parameters.temprature"].message


def test_validate_reports_every_file_and_stray_files(tmp_path: Path) -> None:
    shutil.copytree(BAD, tmp_path / "prompts")
    (tmp_path / "prompts" / "loose.yaml").write_text("version: '1.0.0'\n")
    (tmp_path / "prompts" / "not-semver" / "1.0.0.yml").write_text("version: '1.0.0'\n")
    problems = validate_prompts(tmp_path / "prompts")
    files = {(problem.path.relative_to(tmp_path / "prompts").as_posix(), problem.severity) for problem in problems}
    assert files == {
        ("loose.yaml", "error"),  # not at <name>/<version>.yaml
        ("not-semver/1.0.0.yml", "warning"),  # skipped: wrong extension
        ("many-problems/1.0.0.yaml", "error"),
        ("many-problems/1.0.0.yaml", "warning"),
        ("not-semver/v1.yaml", "error"),
        ("unparseable/1.0.0.yaml", "error"),
    }


def test_load_raises_with_every_error_of_every_file() -> None:
    with pytest.raises(PromptFileError) as raised:
        load_prompts(BAD)
    message = str(raised.value)
    assert "many-problems/1.0.0.yaml:3: model:" in message
    assert "unparseable/1.0.0.yaml:4: yaml:" in message
    assert "not-semver/v1.yaml:1: version:" in message
    assert "tags" not in message  # warnings do not stop loading


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no prompts directory"):
        validate_prompts(tmp_path / "nowhere")


def test_prompts_dir_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.LLMOPS_PROMPTS_DIR, str(GOOD))
    assert list(load_prompts()) == ["acme-faq"]


# --- loading, ordering --------------------------------------------------------------------


def test_versions_are_ordered_by_semver_and_latest_skips_pre_releases() -> None:
    versions = load_prompts(GOOD)["acme-faq"]
    assert list(versions) == ["1.2.0", "1.10.0", "2.0.0-rc.1"]
    assert latest_version(versions) == "1.10.0"
    assert get_prompt("acme-faq", directory=GOOD).version == "1.10.0"
    assert latest_version(["2.0.0-rc.1", "2.0.0-rc.2"]) == "2.0.0-rc.2"


def test_semver_precedence() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0", "1.0.1", "1.10.0"]
    assert sort_versions(reversed(ordered)) == ordered
    with pytest.raises(ValueError, match="not a semantic version"):
        semver_key("1.0")


def test_a_loaded_version_carries_its_name_path_and_fields() -> None:
    prompt = load_prompt_file(GOOD / "acme-faq" / "1.10.0.yaml")
    assert (prompt.name, prompt.version, prompt.ref) == ("acme-faq", "1.10.0", "acme-faq@1.10.0")
    assert prompt.parameters.temperature == 0.2 and prompt.parameters.max_tokens == 768
    assert prompt.eval_metrics == {"last_run": "2025-07-15", "faithfulness": 0.92}
    assert prompt.path == GOOD / "acme-faq" / "1.10.0.yaml"


def test_get_prompt_names_what_exists_when_asked_for_what_does_not() -> None:
    with pytest.raises(PromptNotFoundError, match=r"did you mean 'acme-faq'"):
        get_prompt("acme-fqa", directory=GOOD)
    with pytest.raises(PromptNotFoundError, match=r"versions: 1.2.0, 1.10.0, 2.0.0-rc.1"):
        get_prompt("acme-faq", "9.9.9", directory=GOOD)


# --- content hash -------------------------------------------------------------------------


def test_content_hash_ignores_eval_metrics_and_notes_but_not_the_prompt(tmp_path: Path) -> None:
    source = GOOD / "acme-faq" / "1.10.0.yaml"
    original = load_prompt_file(source).content_hash
    path = copy_prompt(source, tmp_path)
    text = path.read_text()

    path.write_text(text.replace("faithfulness: 0.92", "faithfulness: 0.71\n  relevance: 0.8"))
    assert load_prompt_file(path).content_hash == original
    path.write_text(text.replace("Greets the customer", "Greets each customer").replace("2025-07-14", "2025-07-20"))
    assert load_prompt_file(path).content_hash == original

    path.write_text(text.replace("from the FAQ for", "only from the FAQ for"))
    assert load_prompt_file(path).content_hash != original
    path.write_text(text.replace("max_tokens: 768", "max_tokens: 769"))
    assert load_prompt_file(path).content_hash != original
    path.write_text(text.replace("temperature: 0.2", "temperature: 0.20"))
    assert load_prompt_file(path).content_hash == original  # the same number


def test_a_version_round_trips_through_json_and_a_tampered_hash_is_refused() -> None:
    prompt = load_prompt_file(GOOD / "acme-faq" / "1.10.0.yaml")
    dumped = prompt.model_dump(mode="json")
    assert PromptVersion.model_validate(dumped) == prompt
    with pytest.raises(ValidationError, match="does not match the content"):
        PromptVersion.model_validate({**dumped, "system": "You answer anything."})


# --- render and diff ----------------------------------------------------------------------


def test_render_fills_variables_and_keeps_literal_braces() -> None:
    prompt = load_prompt_file(GOOD / "acme-faq" / "1.10.0.yaml")
    assert prompt.variables == ["customer_name"]
    text = render(prompt, {"customer_name": "Dana", "unused": "ignored"})
    assert "from the FAQ for Dana." in text
    assert '{"answer": "...", "faq_section": "..."}' in text  # JSON needs no escaping
    assert "look like {field}." in text  # {{field}} is a literal {field}


def test_render_names_every_missing_variable() -> None:
    prompt = load_prompt_file(GOOD / "acme-faq" / "1.10.0.yaml")
    with pytest.raises(PromptRenderError, match=r"acme-faq@1.10.0: no value for customer_name"):
        render(prompt, {})


def test_diff_shows_model_parameter_and_system_changes() -> None:
    old = load_prompt_file(GOOD / "acme-faq" / "1.2.0.yaml")
    new = load_prompt_file(GOOD / "acme-faq" / "1.10.0.yaml")
    lines = diff(old, new).splitlines()
    assert lines[0] == "acme-faq@1.2.0 -> acme-faq@1.10.0"
    assert "model: claude-3-haiku-20240307 -> claude-3-5-sonnet-20241022" in lines
    assert "parameters.max_tokens: 512 -> 768" in lines
    assert "parameters.top_p: unset -> 0.9" in lines
    assert "-You answer questions about Acme Corp from the FAQ." in lines
    assert "+You answer questions about Acme Corp from the FAQ for {customer_name}." in lines
    assert " Say when the FAQ does not cover a question." in lines
    unchanged = diff(old, old)
    assert "model and parameters: unchanged" in unchanged and "system: unchanged" in unchanged


# --- CLI ----------------------------------------------------------------------------------


def test_cli_validate_clean_directory_exits_0() -> None:
    result = runner.invoke(app, ["prompts", "validate", str(GOOD)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "3 prompt files checked: 0 errors, 0 warnings"


def test_cli_validate_prints_every_problem_and_exits_1() -> None:
    result = runner.invoke(app, ["prompts", "validate", str(BAD)])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert f"{MANY_PROBLEMS}:3: model: 'claude-3-5-sonnet-latest' is an alias" in "\n".join(lines)
    assert f"{MANY_PROBLEMS}:10: tags: warning: unknown key" in "\n".join(lines)
    assert f"{BAD / 'unparseable' / '1.0.0.yaml'}:4: yaml: not valid YAML" in "\n".join(lines)
    assert lines[-1] == "3 prompt files checked: 8 errors, 1 warning"


def test_cli_validate_warnings_alone_exit_0_and_the_override_silences_them() -> None:
    result = runner.invoke(app, ["prompts", "validate", str(WARNINGS)])
    assert result.exit_code == 0, result.output
    assert f"{WARNINGS / 'acme-ft' / '1.0.0.yaml'}:2: model: warning:" in result.stdout
    allowed = runner.invoke(app, ["prompts", "validate", str(WARNINGS), "--allow-unknown-model"])
    assert allowed.exit_code == 0 and "warning:" not in allowed.stdout


def test_cli_validate_json() -> None:
    result = runner.invoke(app, ["prompts", "validate", str(BAD), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["files"], report["errors"], report["warnings"]) == (3, 8, 1)
    not_semver = [problem for problem in report["problems"] if problem["path"] == str(BAD / "not-semver" / "v1.yaml")]
    assert [(problem["line"], problem["field"], problem["severity"]) for problem in not_semver] == [(1, "version", "error")]


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["prompts", "validate", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no prompts directory" in missing.stderr
    unknown = runner.invoke(app, ["prompts", "show", "nope", "--dir", str(GOOD)])
    assert unknown.exit_code == 2 and "no prompt named 'nope'" in unknown.stderr


def test_cli_list_and_show() -> None:
    listed = runner.invoke(app, ["prompts", "list", "--dir", str(GOOD), "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [
        {"name": "acme-faq", "versions": ["1.2.0", "1.10.0", "2.0.0-rc.1"], "latest": "1.10.0",
         "model": "claude-3-5-sonnet-20241022", "labels": {}}
    ]  # fmt: skip

    latest = runner.invoke(app, ["prompts", "show", "acme-faq", "--dir", str(GOOD), "--json"])
    shown = json.loads(latest.stdout)
    assert (shown["version"], shown["content_hash"]) == ("1.10.0", get_prompt("acme-faq", directory=GOOD).content_hash)

    pinned = runner.invoke(app, ["prompts", "show", "acme-faq@1.2.0", "--dir", str(GOOD)])
    assert pinned.exit_code == 0, pinned.output
    assert "acme-faq@1.2.0" in pinned.stdout and "max_tokens=512, temperature=0.3" in pinned.stdout
    assert pinned.stdout.rstrip().endswith("Say when the FAQ does not cover a question.")


def test_cli_list_refuses_a_directory_with_bad_files() -> None:
    result = runner.invoke(app, ["prompts", "list", "--dir", str(BAD)])
    assert result.exit_code == 1
    assert "llmops prompts validate" in result.stderr and "many-problems/1.0.0.yaml:3: model:" in result.stderr


def test_cli_diff() -> None:
    result = runner.invoke(app, ["prompts", "diff", "acme-faq", "1.2.0", "1.10.0", "--dir", str(GOOD)])
    assert result.exit_code == 0, result.output
    assert "parameters.max_tokens: 512 -> 768" in result.stdout
    assert "+You answer questions about Acme Corp from the FAQ for {customer_name}." in result.stdout
    missing = runner.invoke(app, ["prompts", "diff", "acme-faq", "1.2.0", "3.0.0", "--dir", str(GOOD)])
    assert missing.exit_code == 2 and "no version '3.0.0'" in missing.stderr


# --- the demo application's prompts -------------------------------------------------------


def test_shipped_prompts_validate_clean() -> None:
    assert validate_prompts(REPO / "prompts") == []


def test_the_demo_history_is_served_by_shipped_versions_the_canary_prompt_by_the_one_before_its_latest() -> None:
    prompts = load_prompts(REPO / "prompts")
    for feature in FEATURES:
        versions = prompts[feature.prompt_name]
        served = versions[feature.prompt_version]
        latest = latest_version(versions)
        if feature.prompt_name == "support-chat":  # the demo canaries its latest version today
            assert sort_versions(versions)[-2:] == [feature.prompt_version, latest]
        else:
            assert feature.prompt_version == latest
        assert served.model in {profile.model for profile in feature.models}
        assert len({version.system for version in versions.values()}) == len(versions)
    assert sum(len(prompts[feature.prompt_name]) == 2 for feature in FEATURES) == 3, (
        "the demo's compression adds help-center's second"
    )
