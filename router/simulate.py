"""The share of jobs each backend would get under some flags, before an operator sets them.

Pure apart from reading the CSV: jobs go through `decide` exactly as `dispatch` would send
them (fallbacks aside, which depend on the network).
"""

from __future__ import annotations

import csv
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from router.decide import BACKENDS, decide
from router.flags import RouterFlags
from router.sizes import parse_size


@dataclass
class Tally:
    jobs: int = 0
    backends: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def share(self, backend: str) -> float:
        return 100 * self.backends[backend] / self.jobs if self.jobs else 0.0

    def lines(self) -> list[str]:
        lines = [f"{'backend':<10}{'jobs':>10}{'share':>10}"]
        lines += [f"{backend:<10}{self.backends[backend]:>10}{self.share(backend):>9.2f}%" for backend in BACKENDS]
        lines += ["", f"{'reason':<14}{'jobs':>10}"]
        lines += [f"{reason:<14}{count:>10}" for reason, count in sorted(self.reasons.items())]
        return lines


def tally(jobs: Iterable[dict[str, Any]], flags: RouterFlags) -> Tally:
    result = Tally()
    for job in jobs:
        decision = decide(job, flags)
        result.jobs += 1
        result.backends[decision.backend] += 1
        result.reasons[decision.reason] += 1
    return result


def synthetic_jobs(count: int, file_size: int | None, seed: int) -> Iterator[dict[str, Any]]:
    """Fresh job and user ids (one job per user), reproducible from ``seed``."""
    rng = random.Random(seed)
    for _ in range(count):
        yield {"job_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
               "user_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "file_size": file_size}


def csv_jobs(path: str) -> list[dict[str, Any]]:
    """Jobs from a CSV with a header: ``job_id`` (required), ``user_id``, ``file_size`` (bytes or 120MB).

    Read whole before tallying so a bad line fails the command before any output.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "job_id" not in reader.fieldnames:
            raise ValueError(f"{path}: the header must name a job_id column (and optionally user_id, file_size)")
        jobs = []
        for row in reader:
            where = f"{path} line {reader.line_num}"
            job_id = (row.get("job_id") or "").strip()
            if not job_id:
                raise ValueError(f"{where}: job_id is empty")
            size = (row.get("file_size") or "").strip()
            try:
                file_size = parse_size(size) if size else None
            except ValueError as error:
                raise ValueError(f"{where}: file_size: {error}") from None
            jobs.append({"job_id": job_id, "user_id": (row.get("user_id") or "").strip() or None,
                         "file_size": file_size})
    return jobs
