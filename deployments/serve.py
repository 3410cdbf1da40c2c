"""``make serve``: the Prefect cockpit on this machine, from a fresh clone, with no keys.

    python -m prefect_llmops.deployments.serve [--port 4200] [--host 127.0.0.1] [--workers 1]

From a checkout it deploys the checkout's prefect.yaml; installed from a wheel, the
current directory's prefect.yaml, or the one the package ships when there is none.

What it starts, in order, and stops again on Ctrl-C (or SIGTERM):
1. a real ``prefect server start`` on 127.0.0.1, its database in ``PREFECT_HOME``
   (default ``$LLMOPS_HOME/prefect/``, SQLite) or PostgreSQL when
   ``PREFECT_API_DATABASE_CONNECTION_URL`` is set; telemetry off;
2. the ``llmops`` process work pool, the llmops Block types, and the TraceSource blocks the
   deployments' parameters name (``app-traces``: the demo application's table in
   ``$LLMOPS_HOME/demo-app.db``, created empty when missing, so the scheduled pulls succeed);
3. every deployment of prefect.yaml (``prefect deploy --all``) with its schedules (in
   ``LLMOPS_TIMEZONE``: see ``localized_prefect_yaml``) and the automations of its ``triggers:``,
   checked through the API;
4. ``llmops sim`` as the model, unless ``ANTHROPIC_API_KEY`` or ``ANTHROPIC_BASE_URL`` is set;
5. ``prefect worker start --pool llmops`` (``--workers N`` of them).

The flow runs read and write the store the ``llmops`` commands read (``LLMOPS_DATABASE_URL``, else
the demo's after ``make demo`` until ``llmops demo reset``, else ``$LLMOPS_HOME/llmops.db``), which
it names when it starts. Running it again reuses the same ``PREFECT_HOME`` and database: deploying is idempotent, and
nothing pauses the schedules on shutdown (workers, unlike ``serve()``, own no schedules).
Every process runs in its own process group, and stopping kills the groups of all their
descendants too (a worker's flow runs sit in groups of their own), so nothing is orphaned.

``Cockpit`` is the same thing as a Python API, for tests::

    with Cockpit(CockpitConfig.from_environment(port=4300)) as cockpit:
        print(cockpit.ui_url)
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import yaml
from sqlalchemy.engine import make_url

from llmops import privacy, settings
from prefect_llmops.cli.output import safe_text
from prefect_llmops.cli.store_note import store_line

PREFECT_FILE_NAME = "prefect.yaml"
CHECKOUT_DIR = Path(__file__).resolve().parent.parent
PROJECT_DIR = CHECKOUT_DIR if (CHECKOUT_DIR / PREFECT_FILE_NAME).is_file() else Path.cwd()
"""Where the flows run from: the checkout, or (installed from a wheel) the current directory."""


def _prefect_file() -> Path:
    """The project's prefect.yaml; when it has none, the copy the package ships."""
    own = PROJECT_DIR / PREFECT_FILE_NAME
    return own if own.is_file() else Path(__file__).resolve().with_name(PREFECT_FILE_NAME)


PREFECT_FILE = _prefect_file()
BIN_DIR = Path(sys.executable).parent
HOST = "127.0.0.1"
DEFAULT_PORT = 4200
STARTUP_TIMEOUT_SECONDS = 180.0
DEPLOY_TIMEOUT_SECONDS = 600.0
STOP_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.5
SIM_API_KEY = "sim"
APP_DATABASE_FILE = "demo-app.db"
LOG_TAIL_LINES = 30


class CockpitError(RuntimeError):
    """The cockpit could not start; the message says which part and why."""


# -- prefect.yaml ----------------------------------------------------------------------------


def project_deployments() -> list[dict[str, Any]]:
    """The deployments of prefect.yaml as written there."""
    return yaml.safe_load(PREFECT_FILE.read_text())["deployments"]


def work_pool_name() -> str:
    """The one work pool every deployment of prefect.yaml runs on."""
    pools = {deployment["work_pool"]["name"] for deployment in project_deployments()}
    if len(pools) != 1:
        raise CockpitError(f"{PREFECT_FILE.name}: expected one work pool for every deployment, found {sorted(pools)}")
    return pools.pop()


def localized_prefect_yaml(text: str, zone: str) -> str:
    """prefect.yaml with its schedules, and the times its descriptions name, in ``zone`` instead of UTC.

    prefect.yaml is written in UTC, so ``prefect deploy`` from a checkout works without any
    variable; ``make serve`` deploys this copy when ``LLMOPS_TIMEZONE`` names another zone, so the
    08:00 digest is sent at 08:00 where the team is and the description says so.

    Args:
        text: prefect.yaml as written.
        zone: An IANA time zone name (``Europe/Berlin``).

    Returns:
        The text to deploy; ``text`` itself for UTC.
    """
    if zone == "UTC":
        return text
    document = yaml.safe_load(text)
    for deployment in document["deployments"]:
        for schedule in deployment.get("schedules") or []:
            if schedule.get("timezone", "UTC") == "UTC":
                schedule["timezone"] = zone
        if deployment.get("description"):
            deployment["description"] = re.sub(r"\bUTC\b", zone, deployment["description"])
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def trigger_names(deployments: list[dict[str, Any]]) -> list[str]:
    """The automations ``prefect deploy`` creates from the deployments' ``triggers:``."""
    return [trigger["name"] for deployment in deployments for trigger in deployment.get("triggers", [])]


def source_block_names(deployments: list[dict[str, Any]]) -> set[str]:
    """The TraceSource blocks the deployments' default parameters name."""
    return {
        value
        for deployment in deployments
        for key, value in (deployment.get("parameters") or {}).items()
        if key == "source_block" and isinstance(value, str)
    }


# -- processes -------------------------------------------------------------------------------


@dataclass
class ManagedProcess:
    """A process the cockpit started, in its own process group, writing to its own log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _process_table() -> dict[int, tuple[int, int, str]]:
    """pid → (parent pid, process group, state) of every process, from /proc (Linux)."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def process_groups(pid: int) -> set[int]:
    """The process groups of ``pid`` and all its descendants (a worker's flow runs have their own)."""
    table = _process_table()
    groups, family, frontier = set(), {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        if parent in table:
            groups.add(table[parent][1])
        children = [child for child, (ppid, _, _) in table.items() if ppid == parent and child not in family]
        family.update(children)
        frontier.extend(children)
    return groups or {pid}


def groups_alive(groups: set[int]) -> set[int]:
    """The groups that still hold a process that is not a zombie."""
    return {pgid for _, pgid, state in _process_table().values() if pgid in groups and state != "Z"}


def _signal_groups(groups: set[int], number: int) -> None:
    for pgid in groups:
        try:
            os.killpg(pgid, number)
        except (ProcessLookupError, PermissionError):
            pass


def stop_processes(processes: list[ManagedProcess], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM to the processes' groups and their descendants' groups, all at once; SIGKILL what is left at the deadline."""
    groups = set().union(*(process_groups(process.popen.pid) for process in processes)) - {os.getpgrp()}
    _signal_groups(groups, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            process.popen.poll()  # reap our own children, or they stay zombies that count as alive
        if not groups_alive(groups):
            break
        time.sleep(0.2)
    _signal_groups(groups_alive(groups), signal.SIGKILL)
    for process in processes:
        try:
            process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], process: ManagedProcess, what: str, timeout: float) -> None:
    """Poll ``check`` until it holds; fail with the process's log if it exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        if not process.running():
            raise CockpitError(f"{process.name} exited ({process.popen.returncode}) before {what}:\n{process.log_tail()}")
        if time.monotonic() > deadline:
            raise CockpitError(f"{what} did not happen within {timeout:.0f} s; {process.name}'s log:\n{process.log_tail()}")
        time.sleep(POLL_SECONDS)


def answers(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


# -- the cockpit -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CockpitConfig:
    """Where the cockpit keeps its state and what it starts."""

    home: Path
    """``LLMOPS_HOME`` of the worker's flow runs (store, outbox, logs of the cockpit's processes)."""
    prefect_home: Path
    """``PREFECT_HOME`` of the server and worker: the server's SQLite database lives here."""
    port: int = DEFAULT_PORT
    host: str = HOST
    database_connection_url: str | None = None
    """The Prefect server's database (``postgresql+asyncpg://…``); None: SQLite in ``prefect_home``."""
    workers: int = 1
    deployments: tuple[str, ...] = ()
    """Deployment names of prefect.yaml to deploy; empty: all of them."""
    worker_env: Mapping[str, str] = field(default_factory=dict)
    """Extra variables for the worker and its flow runs (e.g. ``LLMOPS_PROMPTS_DIR``)."""
    worker_poll_seconds: float | None = None
    """How often a worker asks for runs (Prefect's default, 10 s, when None)."""
    always_sim: bool = False
    """Serve the flow runs ``llmops sim`` even when an Anthropic key or endpoint is configured (tests)."""
    startup_timeout_seconds: float = STARTUP_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be between 1 and 65535, got {self.port}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        unknown = set(self.deployments) - {deployment["name"] for deployment in project_deployments()}
        if unknown:
            raise ValueError(f"no deployment named {sorted(unknown)} in {PREFECT_FILE.name}")

    @classmethod
    def from_environment(cls, **overrides: Any) -> CockpitConfig:
        """``LLMOPS_HOME``, ``PREFECT_HOME`` (default ``$LLMOPS_HOME/prefect``) and the server's database URL from the environment."""
        home = settings.home().resolve()
        prefect_home = Path(settings.env(settings.PREFECT_HOME) or home / "prefect").expanduser().resolve()
        defaults: dict[str, Any] = {
            "home": home,
            "prefect_home": prefect_home,
            "database_connection_url": settings.env(settings.PREFECT_API_DATABASE_CONNECTION_URL),
        }
        return cls(**{**defaults, **overrides})


def _database_description(url: str | None, prefect_home: Path) -> str:
    if url is None:
        return f"SQLite in {prefect_home}"
    return make_url(url).render_as_string(hide_password=True)


class Cockpit:
    """A Prefect server with every deployment, its automations, a model and workers; ``stop()`` ends them all."""

    def __init__(self, config: CockpitConfig, report: Callable[[str], None] = lambda line: None) -> None:
        self.config = config
        self.report = report
        self.home = config.home
        self.ui_url = f"http://{config.host}:{config.port}"
        self.api_url = f"{self.ui_url}/api"
        self.pool = work_pool_name()
        self.processes: list[ManagedProcess] = []
        self.model_url: str | None = None
        self.env: dict[str, str] = {
            settings.PREFECT_API_URL: self.api_url,
            settings.PREFECT_UI_URL: self.ui_url,
            settings.PREFECT_HOME: str(config.prefect_home),
            settings.LLMOPS_HOME: str(config.home),
            settings.DO_NOT_TRACK: "1",
            settings.PREFECT_SERVER_ANALYTICS_ENABLED: "false",
            settings.PWD: str(PROJECT_DIR),  # prefect.yaml's pull step runs the flows from {{ $PWD }}
        }
        """What the worker and its flow runs get on top of the inherited environment."""
        if store_url := settings.env(settings.LLMOPS_DATABASE_URL):
            self.env[settings.LLMOPS_DATABASE_URL] = store_url
        if config.worker_poll_seconds is not None:
            self.env[settings.PREFECT_WORKER_QUERY_SECONDS] = str(config.worker_poll_seconds)
        self.env.update(config.worker_env)

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def deployment_configs(self) -> list[dict[str, Any]]:
        chosen = set(self.config.deployments)
        return [d for d in project_deployments() if not chosen or d["name"] in chosen]

    def __enter__(self) -> Cockpit:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> Cockpit:
        """Everything; slow starts overlap (the model with the server, the workers with the deploy).

        On any failure, what was started is stopped again.
        """
        try:
            server = self.launch_server()
            model = self.launch_model()
            self.wait_for_server(server)
            self.prepare()
            if model is not None:
                self.wait_for_model(model)
            workers = self.launch_workers()
            self.deploy()
            self.wait_for_workers(workers)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Workers first (so no run starts on a dying server), then the model and the server."""
        workers = [process for process in self.processes if process.name in self.worker_names()]
        for group in (workers, [process for process in self.processes if process not in workers]):
            if group:
                stop_processes(group)
                self.report(f"stopped {', '.join(process.name for process in group)}")
        self.processes.clear()

    # -- the parts -------------------------------------------------------------------------

    def _process_env(self) -> dict[str, str]:
        """The inherited environment, this cockpit's variables, and the server's database URL (or none)."""
        environment = {**os.environ, **self.env}
        environment.pop(settings.PREFECT_API_DATABASE_CONNECTION_URL, None)
        if self.config.database_connection_url:
            environment[settings.PREFECT_API_DATABASE_CONNECTION_URL] = self.config.database_connection_url
        return environment

    def _launch(self, name: str, argv: list[str], environment: dict[str, str]) -> ManagedProcess:
        privacy.private_dir(self.log_dir)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                argv, cwd=PROJECT_DIR, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        process = ManagedProcess(name, popen, log_path)
        self.processes.append(process)
        return process

    def start_server(self) -> None:
        """The Prefect server alone (e.g. to look at what an earlier run left), ready when this returns."""
        self.wait_for_server(self.launch_server())

    def launch_server(self) -> ManagedProcess:
        """``prefect server start`` on the configured port, in the background."""
        config = self.config
        if port_in_use(config.host, config.port):
            raise CockpitError(f"{config.host}:{config.port} is already in use (another `make serve`?): stop it or pass --port")
        privacy.private_dir(config.prefect_home)
        return self._launch(
            "prefect-server",
            [str(BIN_DIR / "prefect"), "server", "start", "--host", config.host, "--port", str(config.port)],
            self._process_env(),
        )

    def wait_for_server(self, server: ManagedProcess) -> None:
        config = self.config
        wait_until(lambda: answers(f"{self.api_url}/health"), server, "the Prefect API answered", config.startup_timeout_seconds)
        self.report(
            f"Prefect server {self.ui_url} (database: {_database_description(config.database_connection_url, config.prefect_home)})"
        )

    @contextmanager
    def client(self) -> Iterator[Any]:
        """A synchronous Prefect client of this cockpit's API, whatever this process's own settings say."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.api_url}), get_client(sync_client=True) as client:
            yield client

    def prepare(self) -> None:
        """The work pool, the Block types, and the TraceSource blocks the deployments name."""
        from prefect.exceptions import ObjectNotFound
        from prefect.workers.process import ProcessWorker

        from prefect_llmops.blocks import AnthropicModel, SlackDigest, TraceSource, TraceStore

        with self.client() as client:
            try:
                client.read_work_pool(self.pool)
            except ObjectNotFound:
                from prefect.client.schemas.actions import WorkPoolCreate

                client.create_work_pool(
                    WorkPoolCreate(
                        name=self.pool,
                        type=ProcessWorker.type,
                        base_job_template=ProcessWorker.get_default_base_job_template(),
                        description="Runs the prefect-llmops flows as local processes.",
                    )
                )
                self.report(f"created the process work pool {self.pool!r}")
            for block in (TraceSource, TraceStore, AnthropicModel, SlackDigest):  # the UI's forms for them
                block.register_type_and_schema()
            for name in sorted(source_block_names(self.deployment_configs)):
                try:
                    TraceSource.load(name)
                except ValueError:  # no such block yet: a user's own is never overwritten
                    self._save_demo_source(name)

    def _save_demo_source(self, name: str) -> None:
        """Point ``name`` at the demo application's table, created empty when ``make demo`` has not run."""
        from sqlalchemy import create_engine

        from prefect_llmops.blocks import TraceSource
        from prefect_llmops.deployments.demo import APP_TABLE, create_application_table

        app_database = self.home / APP_DATABASE_FILE
        app_url = f"sqlite:///{app_database}"
        privacy.private_dir(self.home)
        engine = create_engine(app_url)
        create_application_table(engine)
        engine.dispose()
        TraceSource(url=app_url, table=APP_TABLE).save(name)
        self.report(
            f"saved TraceSource block {name!r}: the demo application's table {APP_TABLE} in {app_database} "
            "(`make demo` fills it; save your own block under this name to pull from your application)"
        )

    def deploy(self) -> None:
        """``prefect deploy`` of prefect.yaml, then a check through the API that every deployment and automation exists.

        ``prefect deploy`` sets each schedule's ``active`` from prefect.yaml; a schedule someone
        paused in the UI is paused again afterwards, so restarting the cockpit wakes nothing up.
        """
        paused = self.paused_schedules()
        prefect_file = self.prefect_file_to_deploy()
        names = [f"--name={name}" for name in self.config.deployments] or ["--all"]
        log_path = self.log_dir / "deploy.log"
        privacy.private_dir(self.log_dir)
        with log_path.open("ab") as log:
            try:
                finished = subprocess.run(
                    [str(BIN_DIR / "prefect"), "--no-prompt", "deploy", "--prefect-file", str(prefect_file), *names],
                    cwd=PROJECT_DIR, env=self._process_env(), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, timeout=DEPLOY_TIMEOUT_SECONDS,
                )  # fmt: skip
            except subprocess.TimeoutExpired as exc:
                raise CockpitError(
                    f"prefect deploy did not finish within {DEPLOY_TIMEOUT_SECONDS:.0f} s; see {log_path}"
                ) from exc
        if finished.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
            raise CockpitError(f"prefect deploy failed ({finished.returncode}):\n{tail}")
        self.pause_again(paused)
        for line in self.check_deployed():
            self.report(line)

    @property
    def timezone(self) -> str:
        """The zone the schedules run in: ``LLMOPS_TIMEZONE`` of the cockpit's flow runs, default UTC."""
        name = {**os.environ, **self.env}.get(settings.LLMOPS_TIMEZONE) or "UTC"
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise CockpitError(f"{settings.LLMOPS_TIMEZONE}={name!r} is not an IANA time zone (e.g. 'Europe/Berlin')") from None
        return name

    def prefect_file_to_deploy(self) -> Path:
        """prefect.yaml itself in UTC; else a copy in ``$LLMOPS_HOME/deploy/`` with the schedules in ``timezone``."""
        zone = self.timezone
        if zone == "UTC":
            return PREFECT_FILE
        directory = privacy.private_dir(self.home / "deploy")
        copy = directory / PREFECT_FILE_NAME
        copy.write_text(localized_prefect_yaml(PREFECT_FILE.read_text(), zone))
        self.report(f"schedules in {zone} ({settings.LLMOPS_TIMEZONE})")
        return copy

    def paused_schedules(self) -> set[tuple[str, str]]:
        """(deployment, schedule) pairs that are paused on the server now."""
        with self.client() as client:
            return {
                (deployment.name, schedule_spec(schedule))
                for deployment in client.read_deployments()
                for schedule in deployment.schedules
                if not schedule.active
            }

    def pause_again(self, paused: set[tuple[str, str]]) -> None:
        """Pause the schedules of ``paused`` that a deploy has just made active."""
        if not paused:
            return
        with self.client() as client:
            for deployment in client.read_deployments():
                for schedule in deployment.schedules:
                    spec = schedule_spec(schedule)
                    if schedule.active and (deployment.name, spec) in paused:
                        client.update_deployment_schedule(deployment.id, schedule.id, active=False)
                        self.report(f"kept {deployment.name}'s schedule {spec} paused, as it was")

    def check_deployed(self) -> list[str]:
        """One line per deployment (schedules) and automation, read back from the API; missing ones raise."""
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

        configs = self.deployment_configs
        lines: list[str] = []
        wanted_deployments = [config["name"] for config in configs]
        with self.client() as client:
            deployed = {
                deployment.name: deployment
                for deployment in client.read_deployments(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=wanted_deployments))
                )
            }
            missing_deployments = [name for name in wanted_deployments if name not in deployed]
            if missing_deployments:
                raise CockpitError(f"deployments missing after prefect deploy: {missing_deployments}")
            for name in wanted_deployments:
                schedules = ", ".join(describe_schedule(schedule) for schedule in deployed[name].schedules) or "manual"
                lines.append(f"deployment {name}: {schedules}")
            wanted = trigger_names(configs)
            found = {automation.name for automation in client.read_automations() if automation.enabled}
            missing = [name for name in wanted if name not in found]
            if missing:
                raise CockpitError(f"automations missing after prefect deploy: {missing}")
            lines.extend(f"automation {name}: enabled" for name in wanted)
        return lines

    def launch_model(self) -> ManagedProcess | None:
        """``llmops sim`` for the flow runs, unless an Anthropic key or endpoint is configured."""
        configured = {**os.environ, **self.env}
        if not self.config.always_sim and (
            configured.get(settings.ANTHROPIC_API_KEY) or configured.get(settings.ANTHROPIC_BASE_URL)
        ):
            self.report("model: the configured ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL")
            return None
        port = free_port(self.config.host)
        sim = self._launch(
            "llmops-sim",
            [str(BIN_DIR / "llmops"), "sim", "--host", self.config.host, "--port", str(port)],
            self._process_env(),
        )
        self.model_url = f"http://{self.config.host}:{port}"
        self.env[settings.ANTHROPIC_BASE_URL] = self.model_url
        self.env[settings.ANTHROPIC_API_KEY] = SIM_API_KEY
        return sim

    def wait_for_model(self, sim: ManagedProcess) -> None:
        wait_until(
            lambda: answers(f"{self.model_url}/_sim/stats"), sim, "llmops sim answered", self.config.startup_timeout_seconds
        )
        self.report(f"model: llmops sim on {self.model_url} (no ANTHROPIC_API_KEY set)")

    def worker_names(self) -> list[str]:
        return [f"llmops-worker-{number}" for number in range(1, self.config.workers + 1)]

    def launch_workers(self) -> list[ManagedProcess]:
        """Process workers on the pool (its runs get ``self.env``), in the background."""
        return [
            self._launch(
                name,
                [str(BIN_DIR / "prefect"), "worker", "start", "--pool", self.pool, "--type", "process", "--name", name],
                self._process_env(),
            )
            for name in self.worker_names()
        ]

    def wait_for_workers(self, workers: list[ManagedProcess]) -> None:
        """Until the API lists every worker online."""
        for worker in workers:
            wait_until(
                lambda: worker.name in self.online_workers(),
                worker,
                f"{worker.name} came online",
                self.config.startup_timeout_seconds,
            )
            self.report(f"worker {worker.name} on pool {self.pool!r}")

    def online_workers(self) -> set[str]:
        from prefect.client.schemas.filters import WorkerFilter, WorkerFilterStatus

        with self.client() as client:
            workers = client.read_workers_for_work_pool(
                self.pool, worker_filter=WorkerFilter(status=WorkerFilterStatus(any_=["ONLINE"]))
            )
        return {worker.name for worker in workers}

    def dead_processes(self) -> list[ManagedProcess]:
        return [process for process in self.processes if not process.running()]


def schedule_spec(schedule: Any) -> str:
    """``cron 0 8 * * * (UTC)`` or ``every 15 min``."""
    inner = schedule.schedule
    if getattr(inner, "cron", None):
        return f"cron {inner.cron} ({inner.timezone or 'UTC'})"
    if getattr(inner, "interval", None):
        return f"every {inner.interval.total_seconds() / 60:g} min"
    return type(inner).__name__


def describe_schedule(schedule: Any) -> str:
    """The schedule's spec, marked when paused."""
    return schedule_spec(schedule) + ("" if schedule.active else " [paused]")


# -- make serve ------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="Port of the Prefect server and UI.")
    parser.add_argument("--host", default=HOST, help="Interface the server listens on.")
    parser.add_argument("--workers", type=int, default=1, help="Process workers on the llmops pool.")
    return parser.parse_args(argv)


def _raise_interrupt(_number: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _print(line: str, stream: IO[str] = sys.stdout) -> None:
    print(safe_text(f"  {line}", multiline=True), file=stream, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        config = CockpitConfig.from_environment(port=args.port, host=args.host, workers=args.workers)
    except ValueError as exc:
        print(safe_text(f"error: {exc}", multiline=True), file=sys.stderr)
        return 2
    cockpit = Cockpit(config, report=_print)
    for number in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell's background job starts with it ignored
        signal.signal(number, _raise_interrupt)
    print(f"llmops cockpit: starting (PREFECT_HOME={config.prefect_home}, logs in {cockpit.log_dir})", flush=True)
    _print(f"flow runs' {store_line(settings.database_url())}")  # the same store as the llmops commands
    status = 0
    try:
        cockpit.start()
        print(f"\nPrefect UI: {cockpit.ui_url}   API: {cockpit.api_url}   Ctrl-C stops everything.", flush=True)
        while not (dead := cockpit.dead_processes()):
            time.sleep(1)
        for process in dead:
            tail = safe_text(process.log_tail(), multiline=True)
            print(f"error: {process.name} exited ({process.popen.returncode}):\n{tail}", file=sys.stderr)
        status = 1
    except CockpitError as exc:
        print(safe_text(f"error: {exc}", multiline=True), file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("\nllmops cockpit: stopping", flush=True)
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        cockpit.stop()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
