"""Percentage rollout: a salted stable hash of a key into a grid of 10,000 buckets.

A key is in the rollout when its bucket is below ``percent * 100``. The bucket depends only on
the salt and the key, so the same key always lands the same way, and raising the percent only
adds buckets: no job or user ever moves from Lambda back to Celery as a rollout grows. A new
salt reshuffles everyone. blake2b is in the standard library, fast on short inputs, and mixes
well enough that the share realised over a few thousand keys follows the percent.
"""

from __future__ import annotations

from hashlib import blake2b

BUCKETS = 10_000


def bucket(salt: str, key: str) -> int:
    digest = blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def threshold(percent: float) -> int:
    """The number of buckets in the rollout (percent comes in steps of 0.01)."""
    return round(percent * BUCKETS / 100)


def in_rollout(salt: str, key: str, percent: float) -> bool:
    return bucket(salt, key) < threshold(percent)
