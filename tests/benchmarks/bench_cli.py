"""Start time of the command line: ``llmops --help``, ``costs --help``, ``costs`` on an empty store,
``resolve`` on a small store, and ``promote``/``rollback`` run here (no Prefect API), each the median
of several runs of the installed ``llmops`` script, against ``python -c pass`` in the same venv
measured in the same run. Wall time and CPU time (user + system of the child): on a busy machine
the wall time grows with the load and the CPU time much less.

Goal (issue 14): under 0.5 s for a command that does not run a flow; ``promote`` and ``rollback``
under 3 s without a Prefect server. Measured, not asserted.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llmops import settings

RUNS = int(os.environ.get("BENCH_CLI_RUNS", "7"))
BIN = Path(sys.executable).parent
LLMOPS = str(BIN / "llmops")
REPO = Path(__file__).resolve().parents[2]


def run_once(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of the child, and its exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def measure(command: list[str], env: dict[str, str], runs: int = RUNS) -> tuple[float, float, int]:
    """Median wall and CPU seconds of ``runs`` runs (after one warm-up), and the last exit code."""
    run_once(command, env)
    walls, cpus, code = [], [], 0
    for _ in range(runs):
        wall, cpu, code = run_once(command, env)
        walls.append(wall)
        cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus), code


def environment(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LLMOPS_", "PREFECT_"))}
    env |= {
        settings.LLMOPS_HOME: str(home),
        settings.LLMOPS_PROMPTS_DIR: str(REPO / "prompts"),
        settings.PREFECT_HOME: str(home / "prefect-home"),
        settings.DO_NOT_TRACK: "1",
        "COLUMNS": "120",
    }
    return env


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="llmops-bench-cli-") as folder:
        home = Path(folder)
        env = environment(home)
        subprocess.run([LLMOPS, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=300)
        release = [LLMOPS, "promote", "support-chat", "2.3.0", "--strategy", "immediate", "--force-without-eval", "--no-tag",
                   "--reason", "bench"]  # fmt: skip
        subprocess.run(release, env=env, check=True, capture_output=True, timeout=300)

        base_wall, base_cpu, _ = measure([sys.executable, "-c", "pass"], env)
        print(f"baseline `python -c pass`: {base_wall * 1000:.0f} ms wall, {base_cpu * 1000:.0f} ms CPU (median of {RUNS})")
        print(f"{'command':<44} {'wall ms':>8} {'CPU ms':>7} {'× pass':>7}  exit")
        commands = {
            "llmops --help": [LLMOPS, "--help"],
            "llmops costs --help": [LLMOPS, "costs", "--help"],
            "llmops costs --since 2026-10-01 (empty store)": [LLMOPS, "costs", "--since", "2026-10-01"],
            "llmops resolve support-chat --user u-42": [LLMOPS, "resolve", "support-chat", "--user", "u-42"],
            "llmops prompts list": [LLMOPS, "prompts", "list"],
        }
        for label, command in commands.items():
            wall, cpu, code = measure(command, env)
            print(f"{label:<44} {wall * 1000:>8.0f} {cpu * 1000:>7.0f} {wall / base_wall:>6.1f}×  {code}")

        # promote then roll back, alternately, so every run changes production (fewer runs: each writes)
        promote = [LLMOPS, "promote", "support-chat", "2.3.1", "--strategy", "immediate", "--force-without-eval", "--no-tag",
                   "--reason", "bench"]  # fmt: skip
        rollback = [LLMOPS, "rollback", "support-chat", "--reason", "bench"]
        timings: dict[str, list[tuple[float, float]]] = {"promote": [], "rollback": []}
        for _ in range(max(RUNS // 2, 2)):
            for label, command in (("promote", promote), ("rollback", rollback)):
                wall, cpu, code = run_once(command, env)
                assert code == 0, f"{label} failed in the benchmark"
                timings[label].append((wall, cpu))
        for label, pairs in timings.items():
            wall = statistics.median(pair[0] for pair in pairs)
            cpu = statistics.median(pair[1] for pair in pairs)
            print(f"{'llmops ' + label + ' (here, no Prefect API)':<44} {wall * 1000:>8.0f} {cpu * 1000:>7.0f} "
                  f"{wall / base_wall:>6.1f}×  0")  # fmt: skip
        print(
            "goal: < 500 ms for a command that runs no flow; promote and rollback < 3 s (load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs while measuring)"
        )


if __name__ == "__main__":
    main()
