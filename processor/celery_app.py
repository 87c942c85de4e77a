"""The Celery app of the fallback worker: ``celery -A processor.celery_app worker``.

Broker chosen by URL (``CELERY_BROKER_URL``, else ``REDIS_URL``), as in the running backend.
With ``acks_late`` a task whose worker dies runs again: a pool child's death is rejected back
to the queue at once, a killed worker's task comes back after a visibility timeout of about two
job leases (`processor.redelivery`). Both are safe because the job claim makes the task
idempotent: a copy of a task that is still running retries after the holder's lease.
"""

from __future__ import annotations

import os

from celery import Celery

from processor.config import lease_seconds
from processor.redelivery import transport_options

TASK_TIME_LIMIT_SECONDS = int(os.environ.get("TASK_TIME_LIMIT_SECONDS", "3600"))


def broker_url() -> str:
    return os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


app = Celery("video_processor", broker=broker_url(), include=["processor.tasks"])
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_time_limit=TASK_TIME_LIMIT_SECONDS + 60,
    task_ignore_result=True,
    broker_transport_options=transport_options(lease_seconds()),
    broker_connection_retry_on_startup=True,
)
