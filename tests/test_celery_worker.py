"""The Celery fallback: a real worker process on a real Redis server runs today's task name."""

from __future__ import annotations

import json
import os
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


@pytest.fixture(scope="module")
def worker(moto, redis_url, tmp_path_factory):
    """A `celery worker` process consuming a queue of its own, configured like the Railway worker."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **moto.environment(), "CELERY_BROKER_URL": redis_url,
           "S3_BUCKET_NAME": backend.DEFAULT_BUCKET, "DYNAMODB_TABLE_NAME": backend.DEFAULT_TABLE}
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
    deadline = time.monotonic() + 10
    while not (events := [e for e in worker.log_events(job_id) if e["event"] == "invalid_job"]):
        assert time.monotonic() < deadline, f"no invalid_job log line for {job_id} in the worker's output"
        time.sleep(0.2)
    assert events[0]["row_marked_failed"] is True and events[0]["level"] == "ERROR"
    assert events[0]["error"] == row["error_message"]
