"""The package as another project installs it: ``python -m build``, then the wheel alone in a fresh
venv. Its only top-level packages are the product's own, the base install carries no Prefect,
pandas, matplotlib, torch or Slack, and an application can record a trace against the local
model server and resolve a prompt with it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from llmops.prompts import get_prompt
from llmops.release.registry import get_registry
from llmops.sim import SimConfig, SimServer
from llmops.store.engine import dispose_engines, get_engine
from llmops.store.models import Trace

REPO = Path(__file__).resolve().parents[2]
HEAVY = {"prefect", "pandas", "matplotlib", "torch", "slack-sdk", "scipy", "numpy", "llmlingua"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel and sdist ``python -m build`` makes from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory, built: dict[str, Path]) -> Iterator[Path]:
    """A fresh venv with the wheel's base install only (no extras)."""
    venv = tmp_path_factory.mktemp("base-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(built["wheel"])], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    yield python


def test_the_wheel_installs_only_the_products_own_top_level_packages(built: dict[str, Path]) -> None:
    with zipfile.ZipFile(built["wheel"]) as wheel:
        tops = {name.split("/")[0] for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}
        names = set(wheel.namelist())
    assert tops == {"llmops", "prefect_llmops"}
    assert {
        "prefect_llmops/flows/promote_prompt.py",
        "prefect_llmops/blocks/store.py",
        "prefect_llmops/cli/__init__.py",
        "prefect_llmops/deployments/prefect.yaml",
    } <= names
    assert "llmops/store/migrations/alembic.ini" in names or any(n.startswith("llmops/store/migrations/versions/") for n in names)


def test_the_base_install_is_the_application_side_alone(base_venv: Path) -> None:
    listed = subprocess.run([str(base_venv), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert "prefect-llmops" in installed
    assert not installed & HEAVY, installed & HEAVY
    cli = base_venv.parent / "llmops"
    missing = subprocess.run([str(cli), "eval", "run", "support"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: llmops eval needs an optional install: pip install 'prefect-llmops[ops]'"


def test_an_application_records_a_trace_and_resolves_a_prompt_with_the_base_install(
    base_venv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'app-store.db'}"
    registry = get_registry(url)
    prompt = get_prompt("support-chat", "2.3.1", REPO / "prompts")
    registry.register(prompt, actor="tests")
    registry.set_label("support-chat", "production", "2.3.1", actor="tests", reason="release")
    dispose_engines()
    script = textwrap.dedent(
        f"""
        import anthropic
        import llmops.release.registry, llmops.tracing  # the application side imports alone
        from llmops import get_registry, trace_anthropic, trace_context
        from llmops.tracing import TraceRecorder, store_sink

        served = get_registry({url!r}).resolve("support-chat", "u-42")
        recorder = TraceRecorder(store_sink)
        client = trace_anthropic(anthropic.Anthropic(base_url=BASE_URL, api_key="sim", max_retries=0), recorder=recorder,
                                 feature="chat_response", prompt_name="support-chat")
        with trace_context(user_id="u-42", prompt_version=served.version):
            client.messages.create(model=served.model, system=served.system, max_tokens=256,
                                   messages=[{{"role": "user", "content": "I want a refund for my blender."}}])
        recorder.close(timeout=30)
        print(served.version, recorder.stats.written)
        """
    )
    with SimServer(SimConfig(latency_median_ms=2, seed=3)) as sim:
        environment = {"LLMOPS_DATABASE_URL": url, "LLMOPS_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
        result = subprocess.run(
            [str(base_venv), "-c", f"BASE_URL = {sim.base_url!r}\n{script}"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=environment,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["2.3.1", "1"]
    with get_engine(url).connect() as connection:
        [trace] = connection.execute(select(Trace.prompt_name, Trace.prompt_version, Trace.feature, Trace.status)).all()
    assert tuple(trace) == ("support-chat", "2.3.1", "chat_response", "ok")


def test_the_sdist_builds_and_installs_too(built: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "sdist-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", str(built["sdist"])],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "show", "-f", "prefect-llmops"], capture_output=True, text=True
    )
    assert "prefect_llmops/flows/promote_prompt.py" in listed.stdout and "llmops/tracing/__init__.py" in listed.stdout
    assert "prefect_llmops/deployments/prefect.yaml" in listed.stdout


@pytest.fixture(scope="module")
def ops_venv(tmp_path_factory: pytest.TempPathFactory, built: dict[str, Path]) -> Path:
    """A fresh venv with the wheel itself (no checkout on the path) and the ``[ops]`` packages borrowed from
    this one: a ``.pth`` line adds this venv's site-packages, whose editable-install hook does not run there."""
    venv = tmp_path_factory.mktemp("ops-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(built["wheel"])], capture_output=True, text=True, timeout=600
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    [own_site] = (venv / "lib").glob("python3*/site-packages")
    borrowed = next(Path(p) for p in sys.path if p.endswith("site-packages") and (Path(p) / "prefect").is_dir())
    (own_site / "borrowed-ops.pth").write_text(f"{borrowed}\n")
    return python


def test_the_installed_wheel_serves_its_deployments_from_a_project_without_a_checkout(ops_venv: Path, tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import importlib.metadata, json, yaml
        from prefect.flows import Flow, load_flow_from_entrypoint
        import prefect_llmops
        from prefect_llmops.deployments import serve

        deployments = yaml.safe_load(serve.PREFECT_FILE.read_text())["deployments"]
        flows = {d["name"]: load_flow_from_entrypoint(d["entrypoint"]) for d in deployments}
        [collection] = [e for e in importlib.metadata.entry_points(group="prefect.collections") if e.name == "prefect_llmops"]
        blocks = collection.load()
        print(json.dumps({
            "package": prefect_llmops.__file__,
            "prefect_file": str(serve.PREFECT_FILE),
            "project_dir": str(serve.PROJECT_DIR),
            "flows": sorted(name for name, flow in flows.items() if isinstance(flow, Flow)),
            "deployments": sorted(flows),
            "blocks": sorted(blocks.__all__),
        }))
        """
    )
    environment = {"PATH": "/usr/bin:/bin", "LLMOPS_HOME": str(tmp_path / "home"), "DO_NOT_TRACK": "1"}
    result = subprocess.run(
        [str(ops_venv), "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=environment
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    site = ops_venv.parent.parent / "lib"
    assert Path(found["package"]).is_relative_to(site), found["package"]
    assert Path(found["prefect_file"]) == Path(found["package"]).parent / "deployments" / "prefect.yaml"
    assert Path(found["project_dir"]) == tmp_path  # the flows run from the project, not site-packages
    assert found["flows"] == found["deployments"] and "promote-prompt" in found["flows"] and len(found["flows"]) == 9
    assert {"TraceStore", "TraceSource", "AnthropicModel", "SlackDigest", "LinguaModel"} <= set(found["blocks"])
    command = subprocess.run(
        [str(ops_venv.parent / "llmops"), "rollouts", "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=environment
    )  # fmt: skip
    assert command.returncode == 0, command.stderr[-2000:]
