"""The guard's judgement: Lambda's figures against Celery's, under thresholds held in the flags.

Pure: figures and flags in, a `Verdict` out (what to change in the flags, and why). Reading the
rows, writing the flags and storing the verdict are `router.guard_run`'s. Like a canary analysis
(Argo Rollouts, Flagger) or a guarded release (LaunchDarkly), it compares the new path with the
baseline over the same window, and acts only in the safe direction unless asked to advance:

- fewer than ``guard_min_jobs`` finished jobs on either backend: *insufficient*, nothing changes;
- Lambda's failure rate above Celery's by more than ``guard_failure_points`` points, or its
  p95 processing time above ``guard_p95_ratio`` times Celery's: *breach*, and ``guard_action``
  sets ``kill_switch`` or goes back to canary at ``guard_fallback_percent``;
- otherwise *healthy*; with ``auto_advance`` on, in canary, ``lambda_percent`` rises to the next
  of `ADVANCE_STEPS`. The guard never changes the phase forward: leaving canary is an operator's call.

Nothing to judge (phase celery or lambda_only: one backend only) or a kill switch already on:
*idle*, nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from router.flags import RouterFlags
from router.report import Figures, Report

BREACH, HEALTHY, INSUFFICIENT, IDLE = "breach", "healthy", "insufficient", "idle"
# The documented ladder auto_advance climbs, one step per healthy run.
ADVANCE_STEPS = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0)


@dataclass(frozen=True)
class Comparison:
    """Lambda against Celery under the flags' thresholds; ``breaches`` empty when within them."""

    enough_jobs: bool
    breaches: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class Verdict:
    verdict: str  # breach | healthy | insufficient | idle
    reason: str
    changes: dict[str, Any] = field(default_factory=dict)  # flags to store; empty: nothing to write

    def to_plain(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "changes": self.changes}


def _points(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def compare(lambda_: Figures, celery: Figures, flags: RouterFlags) -> Comparison:
    low = [f"{f.backend} finished {f.finished}" for f in (lambda_, celery) if f.finished < flags.guard_min_jobs]
    if low:
        return Comparison(False, (), f"too few jobs to compare ({', '.join(low)}; the guard needs "
                                     f"{flags.guard_min_jobs} on each)")
    breaches = []
    # Both rates exist: each backend finished at least guard_min_jobs >= 1 jobs.
    difference = ((lambda_.failure_rate or 0.0) - (celery.failure_rate or 0.0)) * 100
    failure = (f"failure rate {_points(lambda_.failure_rate)} vs {_points(celery.failure_rate)} "
               f"({difference:+.1f} points, limit +{flags.guard_failure_points:g})")
    if difference > flags.guard_failure_points:
        breaches.append(failure)
    if lambda_.processing_p95 is None or celery.processing_p95 is None:
        speed = "p95 processing: no completed job on one side"
    else:
        ratio = lambda_.processing_p95 / celery.processing_p95 if celery.processing_p95 else float("inf")
        speed = (f"p95 processing {lambda_.processing_p95:.1f} s vs {celery.processing_p95:.1f} s "
                 f"({ratio:.2f}x, limit {flags.guard_p95_ratio:g}x)")
        if lambda_.processing_p95 > flags.guard_p95_ratio * celery.processing_p95:
            breaches.append(speed)
    verdict = "outside the guard's thresholds" if breaches else "within the guard's thresholds"
    return Comparison(True, tuple(breaches), f"Lambda vs Celery: {failure}; {speed}: {verdict}")


def compare_report(report: Report, flags: RouterFlags) -> Comparison:
    return compare(report.backends["lambda"], report.backends["celery"], flags)


def _next_step(percent: float) -> float | None:
    return next((step for step in ADVANCE_STEPS if step > percent), None)


def judge(report: Report, flags: RouterFlags) -> Verdict:
    """What the guard does about ``report`` under ``flags`` (the stored flags it would change)."""
    if flags.kill_switch:
        return Verdict(IDLE, "kill_switch is on: every job goes to Celery, nothing to compare")
    if flags.phase not in ("canary", "lambda"):
        return Verdict(IDLE, f"phase {flags.phase}: only one backend runs, nothing to compare")
    comparison = compare_report(report, flags)
    if not comparison.enough_jobs:
        return Verdict(INSUFFICIENT, comparison.summary)
    if comparison.breaches:
        if flags.guard_action == "kill_switch":
            changes: dict[str, Any] = {"kill_switch": True}
        else:
            changes = {"phase": "canary", "lambda_percent": flags.guard_fallback_percent}
        return Verdict(BREACH, "Lambda regressed: " + "; ".join(comparison.breaches), changes)
    step = _next_step(flags.lambda_percent) if flags.auto_advance and flags.phase == "canary" else None
    if step is None:
        return Verdict(HEALTHY, comparison.summary)
    return Verdict(HEALTHY, f"{comparison.summary}; auto_advance: lambda_percent {flags.lambda_percent:g} -> {step:g}",
                   {"lambda_percent": step})
