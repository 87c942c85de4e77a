"""The Celery fallback: a real worker process on a real Redis server runs today's task name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from celery import Celery

from processor.contract import CELERY_TASK_NAME, make_job
from sandbox import backend
from sandbox.servers import ServerUnavailable
from sandbox.workers import celery_worker
from tests.jobworld import queue_job
from sandbox.media import make_video


ROW_WAIT_SECONDS = 5


@dataclass(frozen=True)
class Worker:
    send: Callable[..., Any]
    log_path: Path

    def __call__(self, args, task_id, **kwargs):
        return self.send(args, task_id, **kwargs)

    def log_events(self, job_id: str) -> list[dict]:
        """The processor's JSON log lines about ``job_id`` in the worker's output.

        Celery logs what the task writes to stderr behind its own prefix.
        """
        events = []
        for line in self.log_path.read_text().splitlines():
            if "{" in line and f'"job_id": "{job_id}"' in line:
                events.append(json.loads(line[line.index("{"):]))
        return events

    def metric_lines(self, job_id: str, timeout: float = 30.0) -> list[dict]:
        """The Embedded Metric Format lines of ``job_id`` (written just after the row's terminal status)."""
        deadline = time.monotonic() + timeout
        while True:
            # Whole lines: Celery's logger prefix (what print would get) would break the format.
            lines = [json.loads(line) for line in self.log_path.read_text().splitlines()
                     if line.startswith('{"_aws"') and f'"job_id":"{job_id}"' in line]
            if lines or time.monotonic() >= deadline:
                return lines
            time.sleep(0.2)

    def logged(self, event: str, job_id: str, timeout: float = 60.0) -> dict:
        """The worker's JSON log line for ``event`` of ``job_id`` (fails the test if none comes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.log_events(job_id) if line["event"] == event]
            if found:
                return found[0]
            time.sleep(0.2)
        pytest.fail(f"the worker logged no {event} for job {job_id}:\n{self.log_path.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def worker(moto, redis_url, tmp_path_factory):
    """A `celery worker` process consuming a queue of its own, configured like the Railway worker."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **moto.environment(), "CELERY_BROKER_URL": redis_url,
           "S3_BUCKET_NAME": backend.DEFAULT_BUCKET, "DYNAMODB_TABLE_NAME": backend.DEFAULT_TABLE,
           "JOB_ROW_WAIT_SECONDS": str(ROW_WAIT_SECONDS)}
    client = Celery("test-client", broker=redis_url)
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"

    def send(args, task_id, kwargs=None):
        return client.send_task(CELERY_TASK_NAME, args=args, kwargs=kwargs, task_id=task_id, queue=queue)

    try:
        with celery_worker(env, log_path, queue=queue):
            yield Worker(send, log_path)
    except ServerUnavailable as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("media") / "clip.mp4", duration=5.0)



def test_worker_runs_todays_task_to_completion(backend_world, worker, video, job_id):
    queued = queue_job(backend_world, video, job_id)
    job = make_job(job_id=job_id, s3_key=queued.s3_key, cutting_options={"type": "fixed", "duration_seconds": 2},
                   text_strategy="one_for_all", text_input={"base_text": "from celery"}, user_id="user-1")
    worker(job.celery_args(), job_id)
    row = queued.wait_for("COMPLETED")
    assert row["output_s3_urls"] == [f"processed/{job_id}/segment_{i:03d}.mp4" for i in range(3)]
    assert row["processed_by"] == "celery"
    assert queued.segment_keys() == row["output_s3_urls"]
    # What the report needs, as on Lambda; no memory size: the worker's host is not billed per job.
    assert float(row["input_duration_seconds"]) == pytest.approx(5.0, abs=0.05)
    assert float(row["processing_seconds"]) > 0 and "processing_memory_mb" not in row
    [metrics] = worker.metric_lines(job_id)
    assert (metrics["Backend"], metrics["Jobs"], metrics["Failures"]) == ("celery", 1, 0)
    assert metrics["ProcessingTime"] == float(row["processing_seconds"])


def test_a_redelivered_task_runs_once(backend_world, worker, video, job_id):
    queued = queue_job(backend_world, video, job_id)
    job = make_job(job_id=job_id, s3_key=queued.s3_key)
    worker(job.celery_args(), job_id)
    worker(job.celery_args(), job_id)
    row = queued.wait_for("COMPLETED")
    time.sleep(1.0)  # let the second delivery run too
    assert queued.row()["processing_attempts"] == 1
    assert queued.object_versions() == 1


@pytest.mark.parametrize("arguments, problem", [
    (lambda key, job_id: ([key, job_id, None, None, None, "u1", "extra"], None, "task-extra"),
     "task arguments: too many positional arguments"),
    # The router sends the job id as the task id: the only place left to find it.
    (lambda key, job_id: ([key], None, job_id), "task arguments: missing a required argument: 'job_id'"),
    (lambda key, job_id: ([key, job_id], {"segment_length": 5}, "task-kwargs"),
     "task arguments: got an unexpected keyword argument 'segment_length'"),
    (lambda key, job_id: ([key, job_id, "ten seconds"], None, "task-types"),
     "cutting_options: must be an object, got str"),
    (lambda key, job_id: ([key, job_id, None, None, None, ["u1"]], None, "task-user"), "user_id: must be a string"),
], ids=["extra-argument", "too-few", "unknown-keyword", "wrong-type", "wrong-user-type"])
def test_a_delivery_the_task_cannot_accept_fails_the_job_with_the_reason(backend_world, worker, video, job_id,
                                                                         arguments, problem):
    queued = queue_job(backend_world, video, job_id)
    args, kwargs, task_id = arguments(queued.s3_key, job_id)
    worker(args, f"{task_id}-{uuid.uuid4().hex[:6]}" if task_id.startswith("task-") else task_id, kwargs=kwargs)
    row = queued.wait_for("FAILED")
    assert row["error_type"] == "invalid_job"
    assert row["error_message"].startswith(problem), row["error_message"]
    assert queued.segment_keys() == []
    event = worker.logged("invalid_job", job_id, timeout=10)
    assert event["row_marked_failed"] is True and event["level"] == "ERROR"
    assert event["error"] == row["error_message"]


def test_the_legacy_order_task_first_row_later_completes_and_stays_completed(backend_world, worker, video, job_id):
    """/api/upload/complete-multipart today: the task is sent, the row's PutItem lands 0 to 3 s later.

    A claim on the missing row would run the job, and the late PutItem would then set the row back
    to QUEUED with no outputs, for ever. The worker waits for the row instead.
    """
    orphan = queue_job(backend_world, video, job_id, with_row=False)
    job = make_job(job_id=job_id, s3_key=orphan.s3_key, cutting_options={"type": "fixed", "duration_seconds": 2})
    worker(job.celery_args(), job_id)
    worker.logged("row_awaited", job_id)  # the worker has tried to claim the missing row
    backend.put_job_row(job_id, orphan.s3_key, table=backend_world.table)
    row = orphan.wait_for("COMPLETED")
    assert row["output_s3_urls"] == orphan.segment_keys() and len(row["output_s3_urls"]) == 3
    assert row["processing_attempts"] == 1


def test_a_task_for_a_job_that_never_gets_a_row_is_not_run(backend_world, worker, video, job_id):
    orphan = queue_job(backend_world, video, job_id, with_row=False)
    worker(make_job(job_id=job_id, s3_key=orphan.s3_key).celery_args(), job_id)
    line = worker.logged("row_missing", job_id)
    assert f"after {ROW_WAIT_SECONDS} s: not processed" in line["error"] and line["backend"] == "celery"
    assert orphan.row() is None and orphan.segment_keys() == []


def test_the_worker_refuses_to_start_without_its_bucket(moto, redis_url, tmp_path):
    """A worker that started anyway would fail every job it takes; it stops at once, saying why."""
    env = {name: value for name, value in os.environ.items() if name not in ("S3_BUCKET_NAME", "AWS_BUCKET_NAME")}
    env.update({**moto.environment(), "REDIS_URL": redis_url, "VIDEO_PROCESSOR_CELERY_QUEUE": f"test-{uuid.uuid4().hex}"})
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "processor.celery_app", "worker", "--pool=solo"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert ("processor worker: cannot start: environment variable S3_BUCKET_NAME or AWS_BUCKET_NAME is not set"
            in result.stderr + result.stdout)
