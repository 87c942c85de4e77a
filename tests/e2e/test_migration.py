"""The migration as operators run it: flags toggled with `python -m router`, jobs dispatched by
`router.dispatch` to the shipped function (Lambda-shaped) or to a real Celery worker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import datetime

import boto3
import pytest

import router
from router import LiveFlags
from router.sources import EnvironmentSource, SSMParameterSource
from sandbox.media import make_video
from tests.jobworld import queue_job

FLAGS_PARAMETER = "/easy-video-share/dev/router-flags"
CACHE_SECONDS = 1.0
ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


def request_for(queued) -> dict:
    return {"job_id": queued.job_id, "s3_key": queued.s3_key, "user_id": "user-1", "file_size": 10_000,
            "cutting_options": {"type": "fixed", "duration_seconds": 2}, "text_strategy": "one_for_all",
            "text_input": {"strategy": "one_for_all", "base_text": "migrating"}}


def test_a_flag_toggle_shifts_the_next_jobs_and_jobs_in_flight_finish_where_they_started(
        backend_world, moto, local_lambda, celery_queue, redis_url, clip, monkeypatch, tmp_path):
    boto3.client("ssm").put_parameter(Name=FLAGS_PARAMETER, Type="String", Value=json.dumps({"phase": "celery"}))
    wiring = {"VIDEO_PROCESSOR_FUNCTION_NAME": local_lambda.spec.name, "DYNAMODB_TABLE_NAME": backend_world.table,
              "S3_BUCKET_NAME": backend_world.bucket, "CELERY_BROKER_URL": redis_url,
              "VIDEO_PROCESSOR_CELERY_QUEUE": celery_queue, "ROUTER_FLAGS_PARAMETER": FLAGS_PARAMETER,
              "AWS_ENDPOINT_URL_LAMBDA": local_lambda.endpoint}
    for name, value in wiring.items():
        monkeypatch.setenv(name, value)
    flags = LiveFlags([SSMParameterSource(FLAGS_PARAMETER), EnvironmentSource()], ttl=CACHE_SECONDS)

    # Long enough to be still in flight when the toggle lands.
    long_clip = make_video(tmp_path / "long.mp4", duration=30.0, width=1280, height=720)
    first = queue_job(backend_world, long_clip, str(uuid.uuid4()))
    assert router.dispatch(request_for(first), flags=flags).backend == "celery"

    # An operator moves everything to Lambda while the first job is in flight.
    operator = subprocess.run([sys.executable, "-m", "router", "flags", "set", "phase=lambda"],
                              capture_output=True, text=True, timeout=60)
    assert operator.returncode == 0, operator.stderr
    toggled = time.monotonic()
    while flags.current().phase != "lambda":
        assert time.monotonic() - toggled < CACHE_SECONDS + 5, "the toggle did not reach the router"
        time.sleep(0.05)
    assert first.row()["status"] in ("QUEUED", "PROCESSING"), "the first job was no longer in flight"

    second = queue_job(backend_world, clip, str(uuid.uuid4()))
    decision = router.dispatch(request_for(second), flags=flags)
    assert (decision.backend, decision.reason, decision.fell_back) == ("lambda", "phase", False)

    first_row, second_row = first.wait_for("COMPLETED"), second.wait_for("COMPLETED")
    assert (first_row["processing_backend"], first_row["processed_by"]) == ("celery", "celery")
    assert (second_row["processing_backend"], second_row["processed_by"]) == ("lambda", "lambda")

    # Both real jobs appear in the operator's report with the timings their attempts recorded.
    shown = subprocess.run([sys.executable, "-m", "router", "report", "--since", "1h", "--json"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    for backend, row in (("celery", first_row), ("lambda", second_row)):
        figures = report["backends"][backend]
        assert (figures["jobs"], figures["completed"], figures["failed"], figures["open"]) == (1, 1, 0, 0)
        processing, video = float(row["processing_seconds"]), float(row["input_duration_seconds"])
        assert figures["processing_p50"] == figures["processing_p95"] == processing > 0
        wait = (datetime.strptime(row["processing_started_at"], ISO)
                - datetime.strptime(row["dispatched_at"], ISO)).total_seconds()
        assert figures["queue_wait_p50"] == figures["queue_wait_p95"] == pytest.approx(wait, abs=1e-6)
        assert figures["video_seconds_per_second"] == pytest.approx(video / processing)
    assert "processing_memory_mb" not in first_row
    memory = int(second_row["processing_memory_mb"])
    assert memory == local_lambda.spec.memory_mb
    assert report["backends"]["lambda"]["cost_per_job"] == pytest.approx(
        memory / 1024 * float(second_row["processing_seconds"]) * 0.0000166667 + 0.20 / 1e6)
    assert report["backends"]["celery"]["cost_per_job"] is None
