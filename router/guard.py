"""The guard's judgement: Lambda's figures against Celery's, under thresholds held in the flags.

Pure: figures and flags in, a `Verdict` out (what to change in the flags, and why). Reading the
rows, writing the flags and storing the verdict are `router.guard_run`'s. Like a canary analysis
(Argo Rollouts, Flagger) or a guarded release (LaunchDarkly), it compares the new path with the
baseline over the same window, and acts only in the safe direction unless asked to advance:

- fewer than ``guard_min_jobs`` judged jobs (finished, less those failed by their upload: see
  `UPLOAD_ERROR_TYPES`) on either backend: *insufficient*, nothing changes;
- Lambda's failure rate above Celery's by more than ``guard_failure_points`` points (over the
  judged jobs), or its p95 processing time above ``guard_p95_ratio`` times Celery's: *breach*,
  and ``guard_action`` sets ``kill_switch`` or goes back to canary at ``guard_fallback_percent``
  (never above the share Lambda had);
- otherwise *healthy*; with ``auto_advance`` on, in canary, and the flags unchanged for at least
  a whole window (so the window holds only traffic at the current percentage),
  ``lambda_percent`` rises to the next of `ADVANCE_STEPS`. The guard never goes past 50 % nor
  changes the phase forward: 100 % and leaving canary are an operator's call.

Nothing to judge (phase celery or lambda_only: one backend only) or a kill switch already on:
*idle*, nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from router.flags import RouterFlags
from router.report import Figures, Report

BREACH, HEALTHY, INSUFFICIENT, IDLE = "breach", "healthy", "insufficient", "idle"
# The documented ladder auto_advance climbs, one step per healthy window; 100 % is an operator's step.
ADVANCE_STEPS = (1.0, 5.0, 10.0, 25.0, 50.0)
# Failures the upload caused, whichever backend ran it (processor.errors, processor.pipeline):
# they say nothing about Lambda against Celery, so the guard leaves those jobs out of its
# failure rate and its job count (the report still shows them by type). Not input_too_large:
# that is the function's memory or time running short, which is what the guard watches for.
UPLOAD_ERROR_TYPES = frozenset({"not_a_video", "invalid_job", "input_not_found", "invalid_input", "row_missing"})


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


def _points(rate: float) -> str:
    return f"{rate * 100:.1f}%"


@dataclass(frozen=True)
class Judged:
    """A backend's finished jobs as the guard counts them: without those the upload failed."""

    finished: int
    failed: int

    @classmethod
    def of(cls, figures: Figures) -> Judged:
        upload = sum(count for error, count in figures.failures_by_type.items() if error in UPLOAD_ERROR_TYPES)
        return cls(figures.finished - upload, figures.failed - upload)

    @property
    def failure_rate(self) -> float:
        return self.failed / self.finished if self.finished else 0.0


def compare(lambda_: Figures, celery: Figures, flags: RouterFlags) -> Comparison:
    judged = {f.backend: Judged.of(f) for f in (lambda_, celery)}
    low = [f"{name} judged {j.finished}" for name, j in judged.items() if j.finished < flags.guard_min_jobs]
    if low:
        return Comparison(False, (), f"too few jobs to compare ({', '.join(low)}; the guard needs "
                                     f"{flags.guard_min_jobs} on each, upload failures left out)")
    breaches = []
    lam, cel = judged[lambda_.backend], judged[celery.backend]
    difference = (lam.failure_rate - cel.failure_rate) * 100
    failure = (f"failure rate {_points(lam.failure_rate)} vs {_points(cel.failure_rate)} "
               f"({difference:+.1f} points, limit +{flags.guard_failure_points:g}; upload failures left out)")
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


def _lambda_share(flags: RouterFlags) -> float:
    """The percentage of the rollout Lambda gets now: all of it in phase lambda."""
    return 100.0 if flags.phase == "lambda" else flags.lambda_percent


def judge(report: Report, flags: RouterFlags, *, flags_age_seconds: float | None,
          window_seconds: int) -> Verdict:
    """What the guard does about ``report`` under ``flags`` (the stored flags it would change).

    ``flags_age_seconds``: how long ago the flags last changed (None: unknown); auto_advance
    waits until that is at least ``window_seconds``, the report's window.
    """
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
            # Lower only: a canary already below the fallback stays where it is.
            changes = {"phase": "canary",
                       "lambda_percent": min(_lambda_share(flags), flags.guard_fallback_percent)}
        return Verdict(BREACH, "Lambda regressed: " + "; ".join(comparison.breaches), changes)
    step = _next_step(flags.lambda_percent) if flags.auto_advance and flags.phase == "canary" else None
    if step is None:
        return Verdict(HEALTHY, comparison.summary)
    if flags_age_seconds is None or flags_age_seconds < window_seconds:
        # The window would still hold traffic from before the last change: judge a whole window at this step first.
        why = ("the time of the flags' last change is unknown" if flags_age_seconds is None else
               f"the flags changed {flags_age_seconds / 60:.0f} min ago, within the {window_seconds / 60:g} min window")
        return Verdict(HEALTHY, f"{comparison.summary}; auto_advance waits: {why}")
    return Verdict(HEALTHY, f"{comparison.summary}; auto_advance: lambda_percent {flags.lambda_percent:g} -> {step:g}",
                   {"lambda_percent": step})
