"""The Celery app of the fallback worker: ``celery -A processor.celery_app worker``.

Broker chosen by URL, as the backend reads it (`processor.backend_env`): ``CELERY_BROKER_URL``,
else ``REDIS_URL``, else ``REDISHOST``/``REDISPORT``/``REDIS_PASSWORD``. The worker consumes a
queue of its own (``VIDEO_PROCESSOR_CELERY_QUEUE``, default ``video-processor``), where the
router publishes: today's worker keeps Celery's default queue and the backend's other tasks
(``sync_social_media_metrics_task``, ``batch_sync_social_media_task``), which this worker does
not have and would otherwise discard as unregistered.

With ``acks_late`` a task whose worker dies runs again: a pool child's death is rejected back
to the queue at once, a killed worker's task comes back after a visibility timeout of about two
job leases (`processor.redelivery`). Both are safe because the job claim makes the task
idempotent: a copy of a task that is still running retries after the holder's lease.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

from processor import backend_env
from processor.config import lease_seconds
from processor.redelivery import transport_options

TASK_TIME_LIMIT_SECONDS = int(os.environ.get("TASK_TIME_LIMIT_SECONDS", "3600"))
# Celery's own default broker, kept for a worker started on a developer's machine with no variable.
LOCAL_BROKER = "redis://127.0.0.1:6379/0"


def broker_url() -> str:
    return backend_env.broker_url() or LOCAL_BROKER


app = Celery("video_processor", broker=broker_url(), include=["processor.tasks"])
app.conf.update(
    task_default_queue=backend_env.celery_queue(),
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=TASK_TIME_LIMIT_SECONDS + 60,
    task_ignore_result=True,
    broker_transport_options=transport_options(lease_seconds()),
    broker_connection_retry_on_startup=True,
)


@signals.worker_init.connect
def check_environment(**_: Any) -> None:
    """Refuse to start without the bucket, ffmpeg or the caption fonts, rather than fail every job later.

    SystemExit, not an exception: Celery logs and ignores an exception raised by a signal handler.
    """
    from processor.binaries import font_table, tool
    from processor.config import Settings
    from processor.errors import ConfigurationError

    try:
        Settings.from_env()
        tool("ffmpeg"), tool("ffprobe"), font_table()
    except ConfigurationError as error:
        raise SystemExit(f"processor worker: cannot start: {error}") from None
