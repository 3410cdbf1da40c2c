"""Sticky canary buckets: stable across processes and releases, evenly spread, monotone in traffic."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from llmops.release.registry import BUCKETS, bucket, canary_threshold

USERS = [f"user-{n}" for n in range(10_000)]


def test_buckets_are_pinned_values_so_a_release_cannot_reshuffle_users() -> None:
    # Changing these reassigns every user of a running canary: treat as a breaking change.
    assert bucket("support", "user-1") == 119
    assert bucket("support", "alice@example.com") == 1819
    assert bucket("billing", "user-1") == 3816
    assert bucket("support", "") == 5191


def test_the_bucket_is_the_documented_formula() -> None:
    for user in USERS[:100]:
        digest = hashlib.sha256(f"support:{user}".encode()).digest()
        assert bucket("support", user) == int.from_bytes(digest[:8], "big") % 10_000


def test_another_process_computes_the_same_buckets() -> None:
    # str hashes are salted per process (PYTHONHASHSEED); the bucket must not depend on that.
    code = "from llmops.release.registry import bucket; print([bucket('support', f'user-{n}') for n in range(50)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"})  # fmt: skip
    assert other.stdout.strip() == str([bucket("support", f"user-{n}") for n in range(50)])


@pytest.mark.parametrize("percent", [1, 10, 25, 50])
def test_a_canary_share_serves_that_share_of_ten_thousand_users(percent: int) -> None:
    in_canary = sum(bucket("support", user) < canary_threshold(percent) for user in USERS)
    assert abs(in_canary / len(USERS) * 100 - percent) <= 1


def test_raising_the_canary_only_adds_users() -> None:
    steps = [5, 25, 50, 100]
    cohorts = [{user for user in USERS if bucket("support", user) < canary_threshold(p)} for p in steps]
    for smaller, larger in zip(cohorts, cohorts[1:], strict=False):
        assert smaller < larger
    assert cohorts[-1] == set(USERS)


def test_each_prompt_splits_users_independently() -> None:
    threshold = canary_threshold(10)
    support = {user for user in USERS if bucket("support", user) < threshold}
    billing = {user for user in USERS if bucket("billing", user) < threshold}
    assert len(support & billing) < len(support) / 5  # ~10 % overlap, not the same users every time


def test_traffic_percent_maps_to_buckets_at_a_hundredth_of_a_percent() -> None:
    assert [canary_threshold(p) for p in (None, 0, 0.01, 12.5, 100)] == [0, 0, 1, 1250, BUCKETS]
