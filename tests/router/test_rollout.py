"""Rollout bucketing: sticky, monotonic, and as large as the percent says."""

from __future__ import annotations

import random
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from router.decide import decide
from router.flags import RouterFlags
from router.rollout import BUCKETS, bucket, in_rollout

percents = st.integers(min_value=0, max_value=10_000).map(lambda steps: steps / 100)
keys = st.text(min_size=1, max_size=64)
salts = st.text(min_size=1, max_size=32)
# 10,000 job-id-like keys, the same on every run.
_rng = random.Random(20251124)
KEYS = [str(uuid.UUID(int=_rng.getrandbits(128), version=4)) for _ in range(10_000)]
DEFAULT_SALT = RouterFlags().salt


@given(salts, keys)
def test_a_key_always_lands_in_the_same_bucket(salt, key):
    assert 0 <= bucket(salt, key) < BUCKETS
    assert bucket(salt, key) == bucket(salt, str(key))


def test_buckets_are_stable_across_releases():
    # Changing the hash would silently move users between backends mid-rollout.
    assert [bucket("video-router", key) for key in ("user-1", "user-2", "3f0c1b9e")] == [4490, 9571, 4810]


@given(salts, keys, percents, percents)
def test_raising_the_percent_only_adds_keys(salt, key, low, high):
    low, high = min(low, high), max(low, high)
    if in_rollout(salt, key, low):
        assert in_rollout(salt, key, high)


@given(keys, percents)
def test_the_same_request_gets_the_same_decision(key, percent):
    flags = RouterFlags(phase="canary", lambda_percent=percent, unknown_size="rollout")
    request = {"job_id": "job", "user_id": key, "file_size": None}
    assert decide(request, flags) == decide(dict(request), RouterFlags(**flags.to_plain()))


@settings(max_examples=60, deadline=None)
@given(percents)
def test_the_realised_share_is_within_one_point_over_ten_thousand_keys(percent):
    share = 100 * sum(in_rollout(DEFAULT_SALT, key, percent) for key in KEYS) / len(KEYS)
    assert abs(share - percent) <= 1.0


def test_the_ends_are_exact():
    assert not any(in_rollout(DEFAULT_SALT, key, 0) for key in KEYS)
    assert all(in_rollout(DEFAULT_SALT, key, 100) for key in KEYS)


def test_a_new_salt_reshuffles_everyone():
    before = {key for key in KEYS if in_rollout("salt-a", key, 50)}
    after = {key for key in KEYS if in_rollout("salt-b", key, 50)}
    # Independent halves overlap on about a quarter of the keys.
    assert abs(100 * len(before & after) / len(KEYS) - 25) <= 2
