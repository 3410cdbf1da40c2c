"""``llmops``: the same product as the flows, for people and scripts.

Exit status: 0 success, 1 a check failed, 2 usage error, 3 partial success.
"""

from __future__ import annotations

import typer

from cli import compress, costs, db, digest, drift, evals, prompts, registry, rollouts, sim, traces

app = typer.Typer(
    name="llmops",
    help="Operations for LLM applications: traces, costs, evaluations, prompt rollouts, compression, digests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db.register(app)
traces.register(app)
costs.register(app)
digest.register(app)
drift.register(app)
evals.register(app)
sim.register(app)
prompts.register(app)
registry.register(app)
rollouts.register(app)
compress.register(app)
registry.register_prompts(prompts.prompts_app)


def main() -> None:
    app()
