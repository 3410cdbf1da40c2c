"""``make serve`` deploys the schedules in LLMOPS_TIMEZONE, and every deployment's description leads
with what the flow does and when to run it by hand, then its schedule with the zone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from prefect.cli.deploy._models import PrefectYamlModel

from llmops import settings
from prefect_llmops.deployments.serve import PREFECT_FILE, Cockpit, CockpitConfig, CockpitError, localized_prefect_yaml

ZONE = "Europe/Berlin"


def first_sentence(description: str) -> str:
    return re.split(r"(?<=[.!?])\s", description, maxsplit=1)[0]


def test_descriptions_lead_with_what_the_flow_does_when_to_run_it_by_hand_and_when_it_runs() -> None:
    for deployment in yaml.safe_load(PREFECT_FILE.read_text())["deployments"]:
        lead = first_sentence(deployment["description"])
        assert "by hand" in lead, f"{deployment['name']}: {lead}"
        for schedule in deployment.get("schedules") or []:
            if "cron" in schedule:  # a daily time names its zone where people read first
                assert "UTC" in lead, f"{deployment['name']}: {lead}"


def test_serve_deploys_the_schedules_and_the_times_in_the_descriptions_in_llmops_timezone() -> None:
    text = PREFECT_FILE.read_text()

    assert localized_prefect_yaml(text, "UTC") == text
    localized = localized_prefect_yaml(text, ZONE)

    document = yaml.safe_load(localized)
    PrefectYamlModel.model_validate(document)  # what `prefect deploy` reads
    digest = next(d for d in document["deployments"] if d["name"] == "daily-digest")
    assert [s["timezone"] for s in digest["schedules"]] == [ZONE]
    assert f"08:00 {ZONE}" in first_sentence(digest["description"])
    for deployment in document["deployments"]:
        assert all(schedule["timezone"] == ZONE for schedule in deployment.get("schedules") or [])
        assert "UTC" not in deployment["description"]
    assert [d["name"] for d in document["deployments"]] == [d["name"] for d in yaml.safe_load(text)["deployments"]]


def test_the_cockpit_deploys_a_copy_in_its_zone_and_refuses_an_unknown_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(settings.LLMOPS_TIMEZONE, raising=False)
    config = CockpitConfig(home=tmp_path / "home", prefect_home=tmp_path / "prefect")
    assert Cockpit(config).prefect_file_to_deploy() == PREFECT_FILE

    berlin = Cockpit(CockpitConfig(home=tmp_path / "home", prefect_home=tmp_path / "prefect",
                                   worker_env={settings.LLMOPS_TIMEZONE: ZONE}))  # fmt: skip
    copy = berlin.prefect_file_to_deploy()
    assert copy.parent == tmp_path / "home" / "deploy" and f"timezone: {ZONE}" in copy.read_text()

    monkeypatch.setenv(settings.LLMOPS_TIMEZONE, "Mars/Olympus")
    with pytest.raises(CockpitError, match="not an IANA time zone"):
        Cockpit(config).prefect_file_to_deploy()
