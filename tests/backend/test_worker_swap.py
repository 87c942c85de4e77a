"""The worker swap of docs/router.md: the processor's worker beside today's, nothing dropped.

Today's worker (the backend's ``tasks.py`` app, ``celery_app.worker_main(['worker', ...])``)
consumes Celery's default queue and also runs ``sync_social_media_metrics_task`` and
``batch_sync_social_media_task``. Both workers here are Celery 5.3.4 processes on a Redis of
their own, so the default queue names are the real ones (``celery``, ``video-processor``) and
no other test shares them. Neither worker is told a queue: each runs on its defaults.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import redis
from celery import Celery

from router import RouterFlags
from router.dispatch import Router
from router.settings import Settings
from sandbox import backend
from sandbox.media import make_video
from sandbox.servers import ServerUnavailable, redis_server
from sandbox.workers import celery_worker
from tests.jobworld import queue_job
from tests.router.conftest import upload

# Today's worker module, as far as queues and task names go: the app named like the backend's,
# its three tasks, each leaving a mark in Redis when it runs.
TODAYS_TASKS = '''
import os

import redis
from celery import Celery

celery_app = Celery("video_processor", broker=os.environ["REDIS_URL"], include=["tasks"])
marks = redis.Redis.from_url(os.environ["REDIS_URL"])


@celery_app.task(bind=True)
def process_video_task(self, s3_input_key, job_id, cutting_options=None, text_strategy=None, text_input=None,
                       user_id="anonymous_fallback"):
    marks.rpush("ran", f"today:process_video_task:{job_id}")


@celery_app.task(bind=True)
def sync_social_media_metrics_task(self, segment_id, platform):
    marks.rpush("ran", f"today:sync_social_media_metrics_task:{segment_id}:{platform}")


@celery_app.task(bind=True)
def batch_sync_social_media_task(self, user_id, platforms=None):
    marks.rpush("ran", f"today:batch_sync_social_media_task:{user_id}")
'''


@pytest.fixture(scope="module")
def own_redis():
    try:
        with redis_server(system=None) as url:
            yield url
    except ServerUnavailable as error:
        pytest.fail(str(error))


@pytest.fixture
def workers(own_redis, backend_world, tmp_path, monkeypatch):
    """Today's worker and the processor's, both on their defaults, on the backend's variables."""
    (tmp_path / "tasks.py").write_text(TODAYS_TASKS)
    env = {name: value for name, value in os.environ.items()
           if name not in ("S3_BUCKET_NAME", "DYNAMODB_TABLE_NAME", "CELERY_BROKER_URL", "VIDEO_PROCESSOR_CELERY_QUEUE")}
    env.update({"REDIS_URL": own_redis, "AWS_BUCKET_NAME": backend_world.bucket})
    redis.Redis.from_url(own_redis).flushall()
    try:
        with celery_worker({**env, "PYTHONPATH": str(tmp_path)}, tmp_path / "today.log", app="tasks", cwd=tmp_path), \
                celery_worker(env, tmp_path / "processor.log"):
            yield tmp_path
    except ServerUnavailable as error:
        pytest.fail(str(error))


def ran(url: str, expected: int, timeout: float = 60.0) -> list[str]:
    """The marks of today's tasks, once ``expected`` of them are there (or the time is up)."""
    marks = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    while marks.llen("ran") < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return sorted(mark.decode() for mark in marks.lrange("ran", 0, -1))


def test_both_workers_run_side_by_side_and_no_task_is_dropped(workers: Path, own_redis, backend_world, job_id,
                                                               tmp_path_factory):
    todays_app = Celery("video_processor", broker=own_redis)  # what the backend's routes and tasks send with
    clip = make_video(tmp_path_factory.mktemp("media") / "clip.mp4", duration=3.0)

    # The backend's other tasks go on reaching today's worker.
    todays_app.send_task("tasks.sync_social_media_metrics_task", args=["seg_1", "tiktok"])
    todays_app.send_task("tasks.batch_sync_social_media_task", args=["user-1"])

    # A job the router sends (the API's variables: no queue named) runs on the processor's worker.
    routed = queue_job(backend_world, clip, job_id)
    settings = Settings.from_environment({**os.environ, "REDIS_URL": own_redis, "CELERY_BROKER_URL": "",
                                          "VIDEO_PROCESSOR_CELERY_QUEUE": "", "AWS_BUCKET_NAME": backend_world.bucket})
    assert settings.celery_queue == "video-processor"
    router = Router.from_settings(settings).with_overrides(flags=RouterFlags(phase="celery"))
    assert router.dispatch(upload(job_id, s3_key=routed.s3_key)).backend == "celery"

    # An old instance of the API (a rolling deploy) still .delay()s today's task: today's worker runs it.
    legacy = "legacy-" + job_id
    todays_app.send_task("tasks.process_video_task", args=["uploads/old/video.mp4", legacy, None, None, None, "u"])

    row = routed.wait_for("COMPLETED")
    assert row["processed_by"] == "celery" and len(row["output_s3_urls"]) == 1
    assert ran(own_redis, 3) == sorted([
        "today:sync_social_media_metrics_task:seg_1:tiktok", "today:batch_sync_social_media_task:user-1",
        f"today:process_video_task:{legacy}"])
    # Neither worker saw the other's messages: nothing unregistered, nothing discarded.
    processor_log, today_log = (workers / "processor.log").read_text(), (workers / "today.log").read_text()
    assert "unregistered" not in processor_log.lower() and "unregistered" not in today_log.lower()
    assert legacy not in processor_log and job_id not in today_log.replace(legacy, "")
    assert backend.get_job_row(legacy) is None
