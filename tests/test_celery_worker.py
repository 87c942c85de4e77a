"""The Celery fallback: a real worker process on a real Redis server runs today's task name."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from celery import Celery

from processor.contract import CELERY_TASK_NAME, make_job
from sandbox import backend
from sandbox.servers import ServerUnavailable
from sandbox.workers import celery_worker
from tests.jobworld import queue_job
from sandbox.media import make_video


@pytest.fixture(scope="module")
def worker(moto, redis_url, tmp_path_factory):
    """A `celery worker` process consuming a queue of its own, configured like the Railway worker."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **moto.environment(), "CELERY_BROKER_URL": redis_url,
           "S3_BUCKET_NAME": backend.DEFAULT_BUCKET, "DYNAMODB_TABLE_NAME": backend.DEFAULT_TABLE}
    client = Celery("test-client", broker=redis_url)
    try:
        with celery_worker(env, tmp_path_factory.mktemp("worker") / "worker.log", queue=queue):
            yield lambda args, task_id: client.send_task(CELERY_TASK_NAME, args=args, task_id=task_id, queue=queue)
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
