"""``python -m router report``: figures from a synthetic mixed history in the moto table, checked by hand."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from itertools import zip_longest

import pytest

from router.cli import main
from router.flags import RouterFlags
from router.guard import compare_report
from router.guard_run import report_since
from router.record import JobTable
from router.report import JobFacts, percentile
from tests.router.history import Past, completed, write_history, write_unrouted

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
MEMORY = 2048
# Lambda: (queue wait, processing, video seconds) of ten completed jobs, then two failures and one running.
LAMBDA_DONE = [(2, 12, 30), (4, 15, 30), (1, 9, 20), (3, 30, 60), (5, 11, 30), (2, 14, 30), (6, 10, 20),
               (1, 13, 30), (2, 16, 30), (8, 40, 90)]
CELERY_DONE = [(1, 10, 30), (1, 12, 30), (2, 8, 20), (1, 20, 60), (3, 11, 30), (1, 9, 30), (2, 10, 20),
               (1, 25, 90)]


def mixed_history() -> list[Past]:
    lambda_jobs = completed("lambda", LAMBDA_DONE, MEMORY)
    # A row from before processing_seconds existed: the time comes from its timestamps.
    lambda_jobs[2] = replace(lambda_jobs[2], recorded=False)
    # A retried job (its last attempt claimed 100 s after the first) that then fanned out: 9
    # invocations billed 150.5 s together (its 40 s are wall time) and 12 state transitions.
    # Its queue wait ends at the first claim.
    lambda_jobs[9] = replace(lambda_jobs[9], attempts=2, transitions=12, retried_after=100, billed=150.5,
                             invocations=9)
    lambda_jobs += [Past("lambda", "FAILED", wait=3, processing=5, memory_mb=MEMORY, error_type="timeout"),
                    Past("lambda", "FAILED", wait=7, processing=6, memory_mb=MEMORY, error_type="not_a_video"),
                    Past("lambda", "PROCESSING", wait=4, memory_mb=MEMORY)]
    celery_jobs = completed("celery", CELERY_DONE)
    celery_jobs[0] = replace(celery_jobs[0], fell_back=True)
    celery_jobs[5] = replace(celery_jobs[5], fell_back=True)
    celery_jobs += [Past("celery", "FAILED", wait=2, processing=4, error_type="internal_error"),
                    Past("celery", "QUEUED")]
    # Outside the window (24 h): must not count.
    stale = [Past("lambda", "FAILED", wait=1, processing=1, error_type="timeout", minutes_ago=25 * 60)] * 3
    # Interleaved, so backends and pages mix.
    return [job for pair in zip_longest(lambda_jobs, celery_jobs + stale) for job in pair if job]


@pytest.fixture
def history(backend_world):
    jobs = mixed_history()
    assert len(jobs) == 13 + 10 + 3
    write_history(backend_world.table, jobs, NOW)
    write_unrouted(backend_world.table, "legacy-job", NOW)
    return backend_world


def test_percentiles_are_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([4, 1, 3, 2], 50) == 2 and percentile([4, 1, 3, 2], 95) == 4
    assert percentile(list(range(1, 101)), 95) == 95 and percentile(list(range(1, 21)), 95) == 19


def test_the_report_equals_the_figures_computed_by_hand(history):
    report = report_since(JobTable(name=history.table), 24 * 3600, NOW, page_size=4)
    assert (report.rows, report.unrouted) == (13 + 10 + 1, 1)
    lam, cel = report.backends["lambda"], report.backends["celery"]

    assert (lam.jobs, lam.completed, lam.failed, lam.open, lam.fallbacks) == (13, 10, 2, 1, 0)
    assert lam.failures_by_type == {"not_a_video": 1, "timeout": 1}
    assert lam.failure_rate == pytest.approx(2 / 12)
    # Waits of all 13 claimed jobs (to the first claim), sorted: 1 1 2 2 2 3 3 4 4 5 6 7 8 -> 7th and 13th.
    assert (lam.queue_wait_p50, lam.queue_wait_p95) == pytest.approx((3, 8), abs=1e-3)
    # Processing of the completed, sorted: 9 10 11 12 13 14 15 16 30 40 -> 5th and 10th.
    assert (lam.processing_p50, lam.processing_p95) == pytest.approx((13, 40), abs=1e-3)
    assert lam.video_seconds_per_second == pytest.approx(370 / 170, rel=1e-4)
    # 2 GB x (170 s completed, the fan-out's 40 s of wall time billed as 150.5 s, + 11 s failed)
    # + 20 invocations (11 single passes, the fan-out's 9) + 12 transitions, over 12 finished jobs.
    by_hand = (2 * (170 - 40 + 150.5 + 11) * 0.0000166667 + 20 * 0.20 / 1e6 + 12 * 0.025 / 1000) / 12
    assert (lam.cost_per_job, lam.costed_jobs) == (pytest.approx(by_hand, rel=1e-6), 12)

    assert (cel.jobs, cel.completed, cel.failed, cel.open, cel.fallbacks) == (10, 8, 1, 1, 2)
    assert cel.failures_by_type == {"internal_error": 1}
    assert cel.failure_rate == pytest.approx(1 / 9)
    # Waits of the 9 claimed: 1 1 1 1 1 2 2 2 3 -> 5th and 9th; processing 8 9 10 10 11 12 20 25 -> 4th, 8th.
    assert (cel.queue_wait_p50, cel.queue_wait_p95) == pytest.approx((1, 3), abs=1e-3)
    assert (cel.processing_p50, cel.processing_p95) == pytest.approx((10, 25), abs=1e-3)
    assert cel.video_seconds_per_second == pytest.approx(310 / 105, rel=1e-4)
    assert cel.cost_per_job is None

    # The guard leaves the upload's own failure (not_a_video) out: Lambda 1 of 11 (9.1%) against
    # 1 of 9 (11.1%), -2.0 points, within; counted, it would be 2 of 12 (16.7%), +5.6 points. 1.6x is outside.
    comparison = compare_report(report, RouterFlags(guard_min_jobs=5))
    assert comparison.breaches == ("p95 processing 40.0 s vs 25.0 s (1.60x, limit 1.5x)",)
    assert "failure rate 9.1% vs 11.1% (-2.0 points, limit +5; upload failures left out)" in comparison.summary
    assert compare_report(report, RouterFlags(guard_min_jobs=5, guard_failure_points=0,
                                              guard_p95_ratio=1.6)).breaches == ()
    assert compare_report(report, RouterFlags(guard_min_jobs=9)).enough_jobs  # Lambda judged 11, Celery 9
    assert compare_report(report, RouterFlags(guard_min_jobs=12)).summary == (
        "too few jobs to compare (lambda judged 11, celery judged 9; the guard needs 12 on each, "
        "upload failures left out)")


def test_a_shorter_window_leaves_older_jobs_out(history):
    report = report_since(JobTable(name=history.table), 6 * 60, NOW)  # only the legacy row, 5 min ago
    assert (report.rows, report.unrouted) == (1, 1)
    assert report.backends["lambda"].jobs == report.backends["celery"].jobs == 0


def test_the_command_prints_a_table_and_json(backend_world, flags_parameter, capsys):
    now = datetime.now(timezone.utc)
    write_history(backend_world.table, completed("lambda", LAMBDA_DONE, MEMORY) + completed("celery", CELERY_DONE),
                  now)
    assert main(["flags", "set", "phase=canary", "guard_min_jobs=8"]) == 0
    capsys.readouterr()
    assert main(["report", "--since", "2h", "--json", "--gb-second-price", "0.00001"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["backends"]["lambda"]["processing_p95"] == pytest.approx(40)
    assert shown["backends"]["lambda"]["cost_per_job"] == pytest.approx((2 * 170 * 0.00001 + 10 * 0.2e-6) / 10)
    assert shown["comparison"]["breaches"] == ["p95 processing 40.0 s vs 25.0 s (1.60x, limit 1.5x)"]

    assert main(["report"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["lambda", "celery"]
    assert next(line for line in out if line.startswith("processing p95")).split()[2:] == ["40.0", "s", "25.0", "s"]
    assert out[-1].startswith("Lambda vs Celery: failure rate 0.0% vs 0.0% (+0.0 points, limit +5; upload failures "
                              "left out); ")
    assert out[-1].endswith("outside the guard's thresholds")


@pytest.mark.parametrize(("args", "message"), [
    (["report", "--since", "yesterday"], "'yesterday' is not a duration"),
    (["report", "--gb-second-price", "-1"], "must be a price in USD"),
    (["guard", "--window", "0m"], "'0m' is not a duration"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_an_unreadable_table_is_exit_1(aws, capsys):
    assert main(["report", "--table", "no-such-table"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m router: could not read the job table no-such-table") and "Traceback" not in err


def test_a_row_the_router_did_not_time_waits_from_the_backends_created_at():
    # The backend writes whole seconds; the processor fractions. A row dispatched before
    # dispatched_at existed counts its wait from created_at.
    facts = JobFacts.from_row({"video_id": "j", "status": "COMPLETED", "processed_by": "celery",
                               "created_at": "2026-11-28T12:00:05Z",
                               "processing_started_at": "2026-11-28T12:00:07.500000Z",
                               "completed_at": "2026-11-28T12:00:19.750000Z"})
    assert (facts.queue_wait, facts.processing, facts.error_type, facts.invocations) == (2.5, 12.25, None, 1)
    failed = JobFacts.from_row({"video_id": "j", "status": "FAILED", "processing_backend": "lambda",
                                "created_at": "not a time"})
    assert (failed.backend, failed.queue_wait, failed.processing, failed.error_type) == ("lambda", None, None,
                                                                                         "unknown")
    assert JobFacts.from_row({"video_id": "j", "status": "COMPLETED"}) is None
