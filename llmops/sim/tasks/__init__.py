"""The simulated model's tasks: the demo application's features, and grading for LLM-as-judge.

Each task turns an ``Ask`` (the user's turn, what the system prompt asks for, the model's
profile and a seeded RNG) into an ``Answer`` in prose and as JSON. ``ask`` holds those shared
types; ``chat`` (support replies), ``summary`` (document summaries), ``code_review`` and
``grading`` are one task each. ``llmops.sim.responder`` picks the task and shapes the answer.
"""
