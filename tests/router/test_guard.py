"""``python -m router guard``: trips on a seeded regression, holds on a healthy window or too few jobs,
advances only when asked and never past canary, and writes nothing on a dry run."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import boto3
import pytest

from router.cli import main
from router.flags import RouterFlags
from router.guard import ADVANCE_STEPS, BREACH, HEALTHY, IDLE, INSUFFICIENT, judge
from router.guard_run import guard, last_verdict, verdict_parameter
from router.record import JobTable
from router.report import build_report
from router.sources import SSMParameterSource
from tests.router.conftest import put_flags
from tests.router.history import Past, completed, row, write_history

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
# Ten completed jobs each, the same speed on both backends.
EVEN = [(1, 10 + i, 30) for i in range(10)]


def seeded(lambda_failures: int, celery_failures: int, lambda_slowdown: float = 1.0) -> list[Past]:
    lambda_jobs = completed("lambda", [(w, p * lambda_slowdown, v) for w, p, v in EVEN], 3008)
    failures = [Past("lambda", "FAILED", wait=1, processing=3, error_type="timeout")] * lambda_failures
    return lambda_jobs + failures + completed("celery", EVEN) + \
        [Past("celery", "FAILED", wait=1, processing=3, error_type="internal_error")] * celery_failures


def stored(name: str) -> tuple[dict, int] | None:
    ssm = boto3.client("ssm", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    try:
        parameter = ssm.get_parameter(Name=name)["Parameter"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return json.loads(parameter["Value"]), parameter["Version"]


def run_guard(table: str, parameter: str, **options):
    return guard(SSMParameterSource(parameter), SSMParameterSource(verdict_parameter(parameter)),
                 JobTable(name=table), now=NOW, **options)


CANARY = {"phase": "canary", "lambda_percent": 10, "guard_min_jobs": 10}


@pytest.mark.parametrize(("jobs", "breach"), [
    # 3 of 13 failed (23.1%) against 0 of 10: +23.1 points.
    (seeded(3, 0), "failure rate 23.1% vs 0.0% (+23.1 points, limit +5)"),
    # p95 19 s x 2 = 38 s against 19 s: twice Celery's.
    (seeded(0, 0, lambda_slowdown=2), "p95 processing 38.0 s vs 19.0 s (2.00x, limit 1.5x)"),
])
def test_a_seeded_regression_trips_the_kill_switch_with_the_reason_stored(backend_world, flags_parameter, jobs,
                                                                          breach):
    write_history(backend_world.table, jobs, NOW)
    put_flags(flags_parameter, CANARY)
    run = run_guard(backend_world.table, flags_parameter)
    assert (run.verdict.verdict, run.verdict.changes, run.applied) == (BREACH, {"kill_switch": True}, True)
    assert stored(flags_parameter) == ({**CANARY, "kill_switch": True}, 2)
    verdict, _ = stored(verdict_parameter(flags_parameter))
    assert verdict["verdict"] == "breach" and verdict["reason"] == f"Lambda regressed: {breach}"
    assert (verdict["applied"], verdict["flags_version"], verdict["at"]) == (True, 2, "2026-11-28T12:00:00Z")
    # Tripped, the next run has nothing to compare and changes nothing.
    assert run_guard(backend_world.table, flags_parameter).verdict.verdict == IDLE
    assert stored(flags_parameter)[1] == 2


def test_lower_percent_goes_back_to_canary_at_the_fallback_percent(backend_world, flags_parameter):
    write_history(backend_world.table, seeded(3, 0), NOW)
    put_flags(flags_parameter, {"phase": "lambda", "guard_min_jobs": 10, "guard_action": "lower_percent",
                                "guard_fallback_percent": 2.5})
    assert run_guard(backend_world.table, flags_parameter).applied
    assert stored(flags_parameter)[0] == {"phase": "canary", "lambda_percent": 2.5, "guard_min_jobs": 10,
                                          "guard_action": "lower_percent", "guard_fallback_percent": 2.5}


def test_a_healthy_window_changes_nothing_and_records_why(backend_world, flags_parameter):
    # 1 of 11 failed (9.1%) against 0 of 10, within +10 points; same speed.
    write_history(backend_world.table, seeded(1, 0), NOW)
    put_flags(flags_parameter, {**CANARY, "guard_failure_points": 10})
    run = run_guard(backend_world.table, flags_parameter)
    assert (run.verdict.verdict, run.verdict.changes, run.applied) == (HEALTHY, {}, False)
    assert stored(flags_parameter)[1] == 1
    assert stored(verdict_parameter(flags_parameter))[0]["reason"].endswith("within the guard's thresholds")


def test_too_few_jobs_changes_nothing_even_when_lambda_looks_bad(backend_world, flags_parameter):
    write_history(backend_world.table, seeded(3, 0), NOW)
    put_flags(flags_parameter, {**CANARY, "guard_min_jobs": 11})  # Celery finished 10
    run = run_guard(backend_world.table, flags_parameter)
    assert run.verdict.verdict == INSUFFICIENT and not run.applied
    assert run.verdict.reason == "too few jobs to compare (celery finished 10; the guard needs 11 on each)"
    assert stored(flags_parameter)[1] == 1


def test_jobs_outside_the_window_are_not_judged(backend_world, flags_parameter):
    write_history(backend_world.table, [Past(**{**vars(job), "minutes_ago": 90}) for job in seeded(3, 0)], NOW)
    put_flags(flags_parameter, CANARY)
    assert run_guard(backend_world.table, flags_parameter).verdict.verdict == INSUFFICIENT
    assert run_guard(backend_world.table, flags_parameter, window_seconds=2 * 3600).verdict.verdict == BREACH


def test_a_dry_run_writes_nothing(backend_world, flags_parameter, capsys):
    write_history(backend_world.table, seeded(3, 0), datetime.now(timezone.utc))
    put_flags(flags_parameter, CANARY)
    assert main(["guard", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("guard: breach: Lambda regressed: failure rate 23.1% vs 0.0%")
    assert "dry run: would store {'kill_switch': True}" in out
    assert stored(flags_parameter) == (CANARY, 1)
    assert stored(verdict_parameter(flags_parameter)) is None


def test_the_command_trips_and_flags_show_displays_the_verdict(backend_world, flags_parameter, capsys):
    write_history(backend_world.table, seeded(3, 0), datetime.now(timezone.utc))
    put_flags(flags_parameter, CANARY)
    assert main(["flags", "show"]) == 0
    assert "guard: no verdict yet" in capsys.readouterr().out
    assert main(["guard"]) == 0
    assert stored(flags_parameter)[0]["kill_switch"] is True
    capsys.readouterr()
    assert main(["flags", "show"]) == 0
    shown = capsys.readouterr().out
    assert "  kill_switch               true" in shown
    assert "guard: breach at " in shown and "Lambda regressed: failure rate 23.1% vs 0.0%" in shown
    assert main(["flags", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["guard"]["changes"] == {"kill_switch": True}


def test_auto_advance_climbs_one_step_per_healthy_window(backend_world, flags_parameter):
    write_history(backend_world.table, seeded(0, 0), NOW)
    put_flags(flags_parameter, {**CANARY, "auto_advance": True})
    run = run_guard(backend_world.table, flags_parameter)
    assert (run.verdict.verdict, run.verdict.changes, run.applied) == (HEALTHY, {"lambda_percent": 25.0}, True)
    assert stored(flags_parameter)[0]["lambda_percent"] == 25.0
    assert run_guard(backend_world.table, flags_parameter).verdict.changes == {"lambda_percent": 50.0}


def test_an_operators_change_meanwhile_wins(backend_world, flags_parameter, monkeypatch):
    write_history(backend_world.table, seeded(3, 0), NOW)
    put_flags(flags_parameter, CANARY)
    source = SSMParameterSource(flags_parameter)
    read = source.read_document

    def read_then_operator_writes():
        document = read()
        put_flags(flags_parameter, {**CANARY, "lambda_percent": 1})
        return document

    monkeypatch.setattr(source, "read_document", read_then_operator_writes)
    run = guard(source, SSMParameterSource(verdict_parameter(flags_parameter)), JobTable(name=backend_world.table),
                now=NOW)
    assert run.verdict.verdict == BREACH and not run.applied and run.note.startswith("not stored: ")
    assert stored(flags_parameter) == ({**CANARY, "lambda_percent": 1}, 2)
    assert last_verdict(SSMParameterSource(verdict_parameter(flags_parameter)))["applied"] is False


# --- the judgement alone ---------------------------------------------------------------------------


def report_of(jobs: list[Past]):
    return build_report([row(f"j{i}", job, NOW) for i, job in enumerate(jobs)], since="s", until="u")


@pytest.mark.parametrize(("flags", "reason"), [
    (RouterFlags(phase="canary", lambda_percent=10, kill_switch=True, guard_min_jobs=1), "kill_switch is on"),
    (RouterFlags(phase="celery", guard_min_jobs=1), "phase celery"),
    (RouterFlags(phase="lambda_only", guard_min_jobs=1), "phase lambda_only"),
])
def test_nothing_to_judge_is_idle(flags, reason):
    verdict = judge(report_of(seeded(3, 0)), flags)
    assert verdict.verdict == IDLE and verdict.reason.startswith(reason) and verdict.changes == {}


def test_auto_advance_never_leaves_canary_nor_passes_100():
    healthy = report_of(seeded(0, 0))
    assert judge(healthy, RouterFlags(phase="lambda", auto_advance=True, guard_min_jobs=10)).changes == {}
    assert judge(healthy, RouterFlags(phase="canary", lambda_percent=100, auto_advance=True,
                                      guard_min_jobs=10)).changes == {}
    assert judge(healthy, RouterFlags(phase="canary", lambda_percent=0, auto_advance=True,
                                      guard_min_jobs=10)).changes == {"lambda_percent": ADVANCE_STEPS[0]}
    assert judge(healthy, RouterFlags(phase="canary", lambda_percent=7, auto_advance=False,
                                      guard_min_jobs=10)).changes == {}


def test_the_scheduled_handler_refuses_a_bad_window_or_a_missing_parameter(backend_world, flags_parameter,
                                                                           monkeypatch):
    from router.scheduled import GuardEventError, lambda_handler

    put_flags(flags_parameter, CANARY)
    with pytest.raises(GuardEventError, match="window_minutes must be a whole number of at least 1, got 0"):
        lambda_handler({"window_minutes": 0}, None)
    assert lambda_handler({"window_minutes": 5, "dry_run": True}, None)["verdict"] == INSUFFICIENT
    assert stored(verdict_parameter(flags_parameter)) is None  # a dry run, even from the schedule
    monkeypatch.delenv("ROUTER_FLAGS_PARAMETER")
    with pytest.raises(GuardEventError, match="ROUTER_FLAGS_PARAMETER and DYNAMODB_TABLE_NAME"):
        lambda_handler({}, None)


def test_flags_show_still_shows_the_flags_when_the_verdict_cannot_be_read(flags_parameter, ssm_proxy, capsys):
    put_flags(flags_parameter, CANARY)
    # Only the verdict's reads fail: an operator may lack the permission, or SSM may hiccup.
    ssm_proxy.fail(500, match=lambda exchange: exchange.json().get("Name") == verdict_parameter(flags_parameter))
    assert main(["flags", "show"]) == 0
    out = capsys.readouterr().out
    assert "  phase                     canary" in out
    assert out.strip().splitlines()[-1].startswith(
        f"guard: the last verdict could not be read: ssm:{verdict_parameter(flags_parameter)}: ")
