"""The stuck-job sweep on the moto server's table: what it finds, what each mode does, and a
real re-dispatch through the router to a real Celery worker from `python -m processor sweep`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import boto3
import pytest
import redis

from processor.jobs import JobStore
from processor.sweep import SweepError, parse_duration, sweep
from router import RouterFlags, dispatch
from sandbox import backend
from sandbox.media import make_video
from sandbox.servers import ServerUnavailable
from sandbox.workers import celery_worker
from tests.jobworld import queue_job



def hour_ago() -> str:
    return (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # the backend's format


def now_epoch() -> int:
    return int(time.time())


def event_of(job_id: str, key: str) -> dict:
    return {"s3_bucket": backend.DEFAULT_BUCKET, "s3_key": key, "job_id": job_id, "user_id": "user-1",
            "cutting_options": {"type": "fixed", "duration_seconds": 2}, "text_strategy": "one_for_all",
            "text_input": {"strategy": "one_for_all", "base_text": "again", "context": None, "unique_texts": []},
            "file_size": None, "source": "router"}


def put(table: str, job_id: str, **attributes) -> str:
    backend.put_job_row(job_id, f"uploads/user-1/{job_id}.mp4", table=table, **attributes)
    return job_id


def age(table: str, job_id: str) -> None:
    """As if an hour had passed since the row last changed."""
    boto3.resource("dynamodb").Table(table).update_item(
        Key={"video_id": job_id}, UpdateExpression="SET updated_at = :old", ExpressionAttributeValues={":old": hour_ago()})


@pytest.fixture
def store(backend_world):
    return JobStore(backend_world.table)


@pytest.fixture
def rows(backend_world):
    """One row in every state the table holds; only two of them are stuck."""
    table = backend_world.table
    ids = {
        "queued_old": put(table, "queued-old", updated_at=hour_ago(),
                          dispatch_event=json.dumps(event_of("queued-old", "uploads/user-1/queued-old.mp4"))),
        "lapsed_old": put(table, "lapsed-old", status="PROCESSING", lease_expires_at=now_epoch() - 600,
                          updated_at=hour_ago()),
        "queued_fresh": put(table, "queued-fresh"),
        "live_old": put(table, "live-old", status="PROCESSING", lease_expires_at=now_epoch() + 600,
                        updated_at=hour_ago()),
        "lapsed_fresh": put(table, "lapsed-fresh", status="PROCESSING", lease_expires_at=now_epoch() - 5),
        "completed_old": put(table, "completed-old", status="COMPLETED", updated_at=hour_ago()),
        "failed_old": put(table, "failed-old", status="FAILED", updated_at=hour_ago()),
        # Today's worker sets PROCESSING without a lease: not the processor's to judge.
        "legacy_processing_old": put(table, "legacy-processing-old", status="PROCESSING", updated_at=hour_ago()),
    }
    # A video's metadata row without a job status.
    boto3.resource("dynamodb").Table(table).put_item(Item={"video_id": "metadata-only", "updated_at": hour_ago()})
    for i in range(30):
        put(table, f"done-{i:02d}", status="COMPLETED", updated_at=hour_ago())
    return ids


def snapshot(table: str) -> list[dict]:
    return sorted(boto3.resource("dynamodb").Table(table).scan(ConsistentRead=True)["Items"],
                  key=lambda item: item["video_id"])


def test_durations_read_as_an_operator_writes_them():
    assert [parse_duration(v) for v in ("90s", "15m", "2h", "1d")] == [90, 900, 7200, 86400]
    for bad in ("15", "0m", "m", "1.5h", "-5m", "15 minutes"):
        with pytest.raises(SweepError):
            parse_duration(bad)


def test_it_pages_through_the_table_and_finds_exactly_the_stuck_rows(store, rows, backend_world):
    before = snapshot(backend_world.table)
    results = sweep(store, older_than_seconds=15 * 60, page_size=4)  # 39 rows: ten pages
    found = {r.job.job_id: r for r in results}
    assert set(found) == {rows["queued_old"], rows["lapsed_old"]}
    assert found["queued-old"].action.startswith("stuck QUEUED for 60 min: no worker picked the job up")
    assert found["lapsed-old"].action.startswith("stuck PROCESSING for 60 min under a lapsed lease")
    assert snapshot(backend_world.table) == before, "reporting changed the table"


def test_dry_run_says_what_it_would_do_and_changes_nothing(store, rows, backend_world):
    before = snapshot(backend_world.table)
    results = {r.job.job_id: r.action for r in sweep(store, mode="redispatch", dry_run=True, redispatch=print)}
    assert results == {
        "queued-old": "would be re-dispatched (1 of 2)",
        "lapsed-old": "would be marked FAILED: stuck PROCESSING for 60 min under a lapsed lease: its worker "
                      "stopped; the row holds no dispatched request to send again",
    }
    assert snapshot(backend_world.table) == before


def test_mark_failed_fails_each_stuck_job_with_the_reason_and_nothing_else(store, rows, backend_world):
    before = {item["video_id"]: item for item in snapshot(backend_world.table)}
    results = sweep(store, mode="mark_failed")
    assert {r.job.job_id for r in results} == {"queued-old", "lapsed-old"}
    after = {item["video_id"]: item for item in snapshot(backend_world.table)}
    for job_id in ("queued-old", "lapsed-old"):
        assert (after[job_id]["status"], after[job_id]["error_type"]) == ("FAILED", "stuck")
        assert after[job_id]["error_message"].startswith(f"stuck {before[job_id]['status']} for 60 min")
        assert after[job_id]["bucket_location"] == before[job_id]["bucket_location"]  # the backend's row kept
    assert {k: v for k, v in after.items() if k not in ("queued-old", "lapsed-old")} == \
        {k: v for k, v in before.items() if k not in ("queued-old", "lapsed-old")}


def test_redispatch_is_counted_on_the_row_and_ends_in_failed_after_the_limit(store, backend_world):
    table = backend_world.table
    event = event_of("stranded", "uploads/user-1/stranded.mp4")
    put(table, "stranded", updated_at=hour_ago(), dispatch_event=json.dumps(event))
    sent = []

    assert [r.action for r in sweep(store, mode="redispatch", redispatch=sent.append)] == ["re-dispatched (1 of 2)"]
    row = backend.get_job_row("stranded", table)
    assert (sent, row["status"], row["sweep_redispatches"]) == ([event], "QUEUED", 1)
    # Just re-dispatched: the job gets a whole threshold again before the next sweep touches it.
    assert sweep(store, mode="redispatch", redispatch=sent.append) == []

    age(table, "stranded")
    assert [r.action for r in sweep(store, mode="redispatch", redispatch=sent.append)] == ["re-dispatched (2 of 2)"]
    age(table, "stranded")
    [last] = sweep(store, mode="redispatch", redispatch=sent.append)
    assert last.action == "marked FAILED: stuck QUEUED for 60 min: no worker picked the job up, after 2 re-dispatches"
    row = backend.get_job_row("stranded", table)
    assert (len(sent), row["status"], row["error_type"], row["sweep_redispatches"]) == (2, "FAILED", "stuck", 2)


def test_a_failed_send_is_counted_and_reported_and_the_sweep_goes_on(store, backend_world):
    table = backend_world.table
    for job_id in ("first", "second"):
        put(table, job_id, updated_at=hour_ago(), dispatch_event=json.dumps(event_of(job_id, f"uploads/user-1/{job_id}.mp4")))

    def refuse(event):
        raise ConnectionError(f"broker down for {event['job_id']}")

    results = {r.job.job_id: r.action for r in sweep(store, mode="redispatch", redispatch=refuse)}
    assert results == {job_id: "re-dispatch failed (ConnectionError: broker down for " + job_id +
                       "); counted; tried again by a later sweep" for job_id in ("first", "second")}
    assert [backend.get_job_row(j, table)["sweep_redispatches"] for j in ("first", "second")] == [1, 1]


def test_the_command_redispatches_a_lost_celery_job_through_the_router_to_a_real_worker(
        backend_world, moto, redis_url, job_id, tmp_path, monkeypatch):
    lost, live = f"lost-{uuid.uuid4().hex[:8]}", f"sweep-{uuid.uuid4().hex[:8]}"
    queued = queue_job(backend_world, make_video(tmp_path / "clip.mp4", duration=4.0), job_id)
    wiring = {"CELERY_BROKER_URL": redis_url, "DYNAMODB_TABLE_NAME": backend_world.table,
              "S3_BUCKET_NAME": backend_world.bucket}
    for name, value in {**wiring, "VIDEO_PROCESSOR_CELERY_QUEUE": lost}.items():
        monkeypatch.setenv(name, value)
    # Dispatched to a queue no worker reads: the message is as good as lost.
    request = {"job_id": job_id, "s3_key": queued.s3_key, "user_id": "user-1",
               "cutting_options": {"type": "fixed", "duration_seconds": 2}, "text_strategy": "one_for_all",
               "text_input": {"strategy": "one_for_all", "base_text": "swept"}}
    assert dispatch(request, flags=RouterFlags(phase="celery")).backend == "celery"
    redis.Redis.from_url(redis_url).delete(lost, f"_kombu.binding.{lost}")
    age(backend_world.table, job_id)

    env = {**os.environ, **moto.environment(), **wiring, "VIDEO_PROCESSOR_CELERY_QUEUE": live}
    try:
        with celery_worker(env, tmp_path / "worker.log", queue=live):
            result = subprocess.run([sys.executable, "-m", "processor", "sweep", "--older-than", "30m", "--redispatch"],
                                    env=env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            assert result.stdout.splitlines() == [f"{job_id:36}  QUEUED      re-dispatched (1 of 2)",
                                                  "1 stuck job(s) older than 30m"]
            row = queued.wait_for("COMPLETED")
    except ServerUnavailable as error:
        pytest.fail(str(error))
    assert (row["processed_by"], row["sweep_redispatches"], row["processing_attempts"]) == ("celery", 1, 1)
    assert row["output_s3_urls"] == [f"processed/{job_id}/segment_{i:03d}.mp4" for i in range(2)]


@pytest.mark.parametrize("args, message", [
    (["--older-than", "soon"], "--older-than: 'soon' is not a duration"),
    (["--redispatch", "--mark-failed"], "not allowed with argument"),
    (["--max-redispatches", "-1"], "--max-redispatches must be 0 or more"),
])
def test_bad_sweep_options_exit_2_with_one_line(args, message):
    result = subprocess.run([sys.executable, "-m", "processor", "sweep", "--table", "jobs", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
