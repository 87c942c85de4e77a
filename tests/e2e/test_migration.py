"""The migration as operators run it: flags toggled with `python -m router`, jobs dispatched by
`router.dispatch` to the shipped function (Lambda-shaped) or to a real Celery worker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import boto3

import router
from router import LiveFlags
from router.sources import EnvironmentSource, SSMParameterSource
from sandbox.media import make_video
from tests.jobworld import queue_job

FLAGS_PARAMETER = "/easy-video-share/dev/router-flags"
CACHE_SECONDS = 1.0


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
