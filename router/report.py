"""The migration's scorecard: per-backend figures computed from job rows, with no I/O.

Every figure comes from what the router and the processor already write on each row
(`router.record`, `processor.jobs`): which backend claimed the job (``processed_by``, else the
router's ``processing_backend``), ``dispatched_at`` (else the backend's ``created_at``),
``first_claimed_at`` (the first attempt's claim; else ``processing_started_at``, the last
attempt's, on rows written before it existed), ``completed_at``/``failed_at``,
``processing_seconds``, ``processing_memory_mb``, ``input_duration_seconds``, ``fell_back``,
``error_type``, ``processing_attempts``, and for a fanned-out job ``lambda_billed_seconds``,
``lambda_invocations`` and ``state_transitions`` (processor.jobs.JobStore.add_billing).

Definitions (docs/router.md, "Deciding the next step"):

- a job is *finished* when COMPLETED or FAILED, *open* otherwise; the failure rate is failed over
  finished, so jobs still running count neither way;
- percentiles are nearest-rank: the p-th of n sorted values is the ceil(p/100 * n)-th, an
  observed value, never an interpolation, so a reader can check it by hand;
- queue wait runs from dispatch to the first claim (a retry's earlier attempts are not waiting
  in a queue), processing time from claim to the terminal status
  (the recorded ``processing_seconds``, else the two timestamps), over completed jobs only: a job
  that fails fast would otherwise make a backend look quick;
- throughput is the video seconds of completed jobs per second of their processing time (how
  many times real time a backend cuts);
- Lambda's cost per job: memory (GB) x billed seconds x the GB-second price, plus the request
  price per invocation, plus the Step Functions price per state transition when a row carries
  ``state_transitions``. Billed seconds and invocations are the row's ``lambda_billed_seconds``
  and ``lambda_invocations`` when it has them (a fan-out's start, prepare, items, finish or
  fail, each adding its own), else the processing time and ``processing_attempts``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from processor.contract import parse_utc_timestamp

BACKENDS = ("lambda", "celery")
COMPLETED, FAILED = "COMPLETED", "FAILED"
# Read by the scan (`router.history`): everything the figures use, and nothing else.
ROW_ATTRIBUTES = ("video_id", "status", "processed_by", "processing_backend", "fell_back", "created_at",
                  "dispatched_at", "first_claimed_at", "processing_started_at", "completed_at", "failed_at",
                  "processing_seconds", "processing_memory_mb", "input_duration_seconds", "error_type",
                  "processing_attempts", "lambda_billed_seconds", "lambda_invocations", "state_transitions")


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices, x86_64 (DESIGN section 4); other regions differ: pass theirs."""

    gb_second: float = 0.0000166667
    request: float = 0.20 / 1_000_000
    state_transition: float = 0.025 / 1000


def _seconds(start: Any, end: Any) -> float | None:
    began, ended = parse_utc_timestamp(start), parse_utc_timestamp(end)
    if began is None or ended is None or ended < began:
        return None
    return (ended - began).total_seconds()


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@dataclass(frozen=True)
class JobFacts:
    """One row reduced to what the figures need."""

    backend: str
    status: str
    fell_back: bool
    error_type: str | None
    queue_wait: float | None
    processing: float | None
    video_seconds: float | None
    memory_mb: float | None
    invocations: int
    state_transitions: float | None
    billed_seconds: float | None = None  # a fan-out's invocations together (lambda_billed_seconds)

    @property
    def finished(self) -> bool:
        return self.status in (COMPLETED, FAILED)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobFacts | None:
        """None for a row no backend was chosen for (written before the router, or never dispatched)."""
        backend = row.get("processed_by") or row.get("processing_backend")
        if not isinstance(backend, str):
            return None
        status = str(row.get("status", ""))
        end = row.get("completed_at") if status == COMPLETED else row.get("failed_at") if status == FAILED else None
        processing = _number(row.get("processing_seconds"))
        if processing is None and end is not None:
            processing = _seconds(row.get("processing_started_at"), end)
        return cls(
            backend=backend, status=status, fell_back=row.get("fell_back") is True,
            error_type=str(row.get("error_type") or "unknown") if status == FAILED else None,
            queue_wait=_seconds(row.get("dispatched_at") or row.get("created_at"),
                                row.get("first_claimed_at") or row.get("processing_started_at")),
            processing=processing if end is not None else None,
            video_seconds=_number(row.get("input_duration_seconds")),
            memory_mb=_number(row.get("processing_memory_mb")),
            invocations=max(1, int(_number(row.get("lambda_invocations")) or _number(row.get("processing_attempts"))
                                   or 1)),
            state_transitions=_number(row.get("state_transitions")),
            billed_seconds=_number(row.get("lambda_billed_seconds")),
        )


@dataclass(frozen=True)
class Figures:
    """One backend's figures over the window; None where there is nothing to compute from."""

    backend: str
    jobs: int
    completed: int
    failed: int
    open: int
    failures_by_type: dict[str, int]
    fallbacks: int
    failure_rate: float | None  # failed / finished, as a fraction
    queue_wait_p50: float | None
    queue_wait_p95: float | None
    processing_p50: float | None
    processing_p95: float | None
    video_seconds_per_second: float | None
    cost_per_job: float | None  # USD; Lambda only, for jobs whose memory size is on the row
    costed_jobs: int = 0

    @property
    def finished(self) -> int:
        return self.completed + self.failed


def _cost(job: JobFacts, prices: Prices) -> float | None:
    if job.memory_mb is None or (job.processing is None and job.billed_seconds is None):
        return None
    # Lambda bills each invocation's duration rounded up to the millisecond (a fan-out's steps
    # each rounded theirs); a fan-out's wall time from claim to finish is not what it was billed.
    billed = job.billed_seconds if job.billed_seconds is not None else math.ceil(job.processing * 1000) / 1000
    cost = job.memory_mb / 1024 * billed * prices.gb_second + job.invocations * prices.request
    if job.state_transitions is not None:
        cost += job.state_transitions * prices.state_transition
    return cost


def figures(backend: str, jobs: Sequence[JobFacts], prices: Prices = Prices()) -> Figures:
    completed = [job for job in jobs if job.status == COMPLETED]
    failed = [job for job in jobs if job.status == FAILED]
    failures = Counter(job.error_type or "unknown" for job in failed)
    waits = [job.queue_wait for job in jobs if job.queue_wait is not None]
    times = [job.processing for job in completed if job.processing is not None]
    timed = [job for job in completed if job.processing and job.video_seconds is not None]
    costs = [cost for cost in (_cost(job, prices) for job in completed + failed) if cost is not None] \
        if backend == "lambda" else []
    finished = len(completed) + len(failed)
    return Figures(
        backend=backend, jobs=len(jobs), completed=len(completed), failed=len(failed),
        open=len(jobs) - finished, failures_by_type=dict(sorted(failures.items())),
        fallbacks=sum(job.fell_back for job in jobs),
        failure_rate=len(failed) / finished if finished else None,
        queue_wait_p50=percentile(waits, 50), queue_wait_p95=percentile(waits, 95),
        processing_p50=percentile(times, 50), processing_p95=percentile(times, 95),
        video_seconds_per_second=(sum(job.video_seconds or 0.0 for job in timed)
                                  / sum(job.processing or 0.0 for job in timed)) if timed else None,
        cost_per_job=sum(costs) / len(costs) if costs else None, costed_jobs=len(costs),
    )


@dataclass(frozen=True)
class Report:
    since: str
    until: str
    rows: int  # rows of the window, including those no backend was chosen for
    unrouted: int
    backends: dict[str, Figures] = field(default_factory=dict)

    def to_plain(self) -> dict[str, Any]:
        return {"since": self.since, "until": self.until, "rows": self.rows, "unrouted": self.unrouted,
                "backends": {name: {**asdict(f), "finished": f.finished} for name, f in self.backends.items()}}


def build_report(rows: Iterable[Mapping[str, Any]], *, since: str, until: str, prices: Prices = Prices()) -> Report:
    """Per-backend figures of ``rows`` (the window's rows, as `router.history` reads them)."""
    grouped: dict[str, list[JobFacts]] = {name: [] for name in BACKENDS}
    count = unrouted = 0
    for row in rows:
        count += 1
        facts = JobFacts.from_row(row)
        if facts is None:
            unrouted += 1
            continue
        grouped.setdefault(facts.backend, []).append(facts)
    return Report(since=since, until=until, rows=count, unrouted=unrouted,
                  backends={name: figures(name, jobs, prices) for name, jobs in grouped.items()})


def _show(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def table(report: Report) -> list[str]:
    """The report as a plain table, one column per backend."""
    names = list(report.backends)
    shown = [report.backends[name] for name in names]
    lines = [f"jobs from {report.since} to {report.until}: {report.rows} rows"
             + (f" ({report.unrouted} never routed, not counted)" if report.unrouted else "")]
    rows: list[tuple[str, Sequence[str]]] = [
        ("jobs", [str(f.jobs) for f in shown]),
        ("completed", [str(f.completed) for f in shown]),
        ("failed", [str(f.failed) for f in shown]),
        ("still open", [str(f.open) for f in shown]),
        ("failure rate", [_show(None if f.failure_rate is None else f.failure_rate * 100, "%") for f in shown]),
        ("fallbacks", [str(f.fallbacks) for f in shown]),
        ("queue wait p50", [_show(f.queue_wait_p50, " s") for f in shown]),
        ("queue wait p95", [_show(f.queue_wait_p95, " s") for f in shown]),
        ("processing p50", [_show(f.processing_p50, " s") for f in shown]),
        ("processing p95", [_show(f.processing_p95, " s") for f in shown]),
        ("video s per s", [_show(f.video_seconds_per_second, "x", 2) for f in shown]),
        ("cost per job", ["-" if f.cost_per_job is None else f"${f.cost_per_job:.6f}" for f in shown]),
    ]
    types = sorted({error for f in shown for error in f.failures_by_type})
    rows += [(f"  failed: {error}", [str(f.failures_by_type.get(error, 0)) for f in shown]) for error in types]
    width = max(len(label) for label, _ in rows) + 2
    lines.append(" " * width + "".join(f"{name:>14}" for name in names))
    lines += [f"{label:<{width}}" + "".join(f"{value:>14}" for value in values) for label, values in rows]
    return lines
