"""A Celery worker SIGKILLed mid-encode: a second worker on the same queue finishes the job.

Real parts throughout: two `celery worker` processes (solo pool, as the Railway worker runs),
a real Redis, the pinned ffmpeg and the moto server. The lease is short so the test runs in
seconds; the redelivery settings follow it (`processor.redelivery`), as in production.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery

from processor.contract import CELERY_TASK_NAME, make_job
from processor.redelivery import UNACKED_KEY_PREFIX, visibility_timeout
from sandbox.media import make_video
from sandbox.servers import ServerUnavailable
from sandbox.workers import celery_worker
from tests.jobworld import queue_job
from tests.processes import running_ffmpeg, wait_until

LEASE_SECONDS = 4
# Redis database of its own: a worker here restores any processor message older than its short
# visibility timeout, which must not touch other tests' (or other checkouts') long jobs.
REDIS_DB = 11


class Delivery:
    """A 20 s job (long enough that its encode still runs when a kill lands) and the
    environment of the workers that take it from a queue of its own."""

    def __init__(self, backend_world, moto, redis_url: str, job_id: str, tmp_path: Path, **text) -> None:
        self.broker = f"{redis_url}/{REDIS_DB}"
        self.queue = f"killed-{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, **moto.environment(), "CELERY_BROKER_URL": self.broker,
                    "JOB_LEASE_SECONDS": str(LEASE_SECONDS), "S3_BUCKET_NAME": backend_world.bucket,
                    "DYNAMODB_TABLE_NAME": backend_world.table}
        video = make_video(tmp_path / "long.mp4", duration=20.0, width=960, height=540)
        self.queued = queue_job(backend_world, video, job_id)
        self.job = make_job(job_id=job_id, s3_key=self.queued.s3_key,
                            cutting_options={"type": "fixed", "duration_seconds": 10}, **text)

    def send(self) -> None:
        Celery("test-client", broker=self.broker).send_task(CELERY_TASK_NAME, args=self.job.celery_args(),
                                                            task_id=self.job.job_id, queue=self.queue)

    def encoding_ffmpeg(self, worker, log: Path) -> int:
        """The worker's ffmpeg once the job is encoding."""
        return wait_until(
            lambda: (self.queued.row() or {}).get("processing_stage") == "processing_segment"
            and running_ffmpeg(worker.pid),
            90, lambda: f"the worker never started ffmpeg: {self.queued.row()}\n{log.read_text()[-3000:]}")


def test_a_worker_killed_mid_encode_is_replaced_and_the_job_completes(backend_world, moto, redis_url, job_id,
                                                                      tmp_path):
    delivery = Delivery(backend_world, moto, redis_url, job_id, tmp_path, text_strategy="one_for_all",
                        text_input={"base_text": "survives a kill"})
    env, queue, queued, broker = delivery.env, delivery.queue, delivery.queued, delivery.broker
    try:
        with celery_worker(env, tmp_path / "first.log", queue=queue) as first:
            delivery.send()
            ffmpeg = delivery.encoding_ffmpeg(first, tmp_path / "first.log")
            os.kill(first.pid, signal.SIGKILL)
            os.kill(ffmpeg, signal.SIGKILL)
            killed_at = time.monotonic()
            first.wait(timeout=10)
        killed_row = queued.row()
        assert (killed_row["status"], killed_row["processing_attempts"]) == ("PROCESSING", 1), killed_row
        unacked = redis.Redis.from_url(broker).hlen(UNACKED_KEY_PREFIX)
        assert unacked >= 1, "the killed worker's task is not in the processor's unacked set"

        with celery_worker(env, tmp_path / "second.log", queue=queue):
            # Generous: the redelivery needs one visibility timeout, a sweep and a whole encode.
            bound = visibility_timeout(LEASE_SECONDS) + 180
            wait_until(lambda: (queued.row() or {}).get("processing_attempts") == 2, bound,
                       lambda: f"the killed worker's task was not redelivered within {bound} s: {queued.row()}\n"
                               f"{(tmp_path / 'second.log').read_text()[-3000:]}", interval=0.25)
            claimed_in = time.monotonic() - killed_at
            row = wait_until(
                lambda: (row := queued.row()) and row["status"] == "COMPLETED" and "lease_expires_at" not in row
                and row,
                bound, lambda: f"the second worker did not complete the job within {bound} s: {queued.row()}\n"
                               f"{(tmp_path / 'second.log').read_text()[-3000:]}", interval=0.25)
            recovered_in = time.monotonic() - killed_at
    except ServerUnavailable as error:
        pytest.fail(str(error))

    assert row["processing_attempts"] == 2
    assert row["processed_by"] == "celery"
    assert row["output_s3_urls"] == [f"processed/{job_id}/segment_{i:03d}.mp4" for i in range(2)]
    assert queued.segment_keys() == row["output_s3_urls"]
    # The figure the README quotes comes from this line (pytest -s shows it).
    print(f"\nkilled worker's job claimed again {claimed_in:.1f} s and completed {recovered_in:.1f} s after the kill "
          f"(lease {LEASE_SECONDS} s, visibility timeout {visibility_timeout(LEASE_SECONDS)} s)")


def test_an_ffmpeg_killed_under_the_worker_is_retried_and_the_job_completes(backend_world, moto, redis_url, job_id,
                                                                            tmp_path):
    """The out-of-memory killer takes ffmpeg alone: the task's retry (not a redelivery) runs the
    job again, where before the job failed for good with 'ffmpeg exited with status -9'."""
    delivery = Delivery(backend_world, moto, redis_url, job_id, tmp_path)
    queued = delivery.queued
    try:
        with celery_worker(delivery.env, tmp_path / "worker.log", queue=delivery.queue) as worker:
            delivery.send()
            os.kill(delivery.encoding_ffmpeg(worker, tmp_path / "worker.log"), signal.SIGKILL)
            row = wait_until(
                lambda: (row := queued.row()) and row["status"] in ("COMPLETED", "FAILED")
                and "lease_expires_at" not in row and row,
                180, lambda: f"the job did not end after the kill: {queued.row()}\n"
                             f"{(tmp_path / 'worker.log').read_text()[-3000:]}", interval=0.25)
            log = (tmp_path / "worker.log").read_text()
    except ServerUnavailable as error:
        pytest.fail(str(error))

    assert (row["status"], row["processing_attempts"]) == ("COMPLETED", 2), row
    assert "ffmpeg was killed (SIGKILL), most likely out of memory; give the worker more memory" in log
    assert queued.segment_keys() == row["output_s3_urls"] == [f"processed/{job_id}/segment_{i:03d}.mp4"
                                                               for i in range(2)]
