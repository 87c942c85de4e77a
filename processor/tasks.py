"""``tasks.process_video_task``: today's Celery task name and positional signature, new engine.

The task takes whatever a delivery carries and binds it to today's signature itself
(`processor.contract.parse_celery_call`): a delivery with arguments that do not match would
otherwise raise a TypeError before any of this code ran, Celery would log and acknowledge it,
and the job row would say QUEUED for ever.
"""

from __future__ import annotations

import time
from typing import Any

from processor.celery_app import TASK_TIME_LIMIT_SECONDS, app
from processor.contract import CELERY_TASK_NAME, celery_job_id, parse_celery_call
from processor.errors import TransientError
from processor.pipeline import JobBusyError, build_runner

SAFETY_MARGIN_SECONDS = 30.0
RETRY_BASE_SECONDS = 10


@app.task(name=CELERY_TASK_NAME, bind=True)
def process_video_task(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    deadline = time.monotonic() + TASK_TIME_LIMIT_SECONDS - SAFETY_MARGIN_SECONDS
    runner = build_runner("celery")
    try:
        # Never wait here for another attempt: it would hold a worker slot for a whole job.
        outcome = runner.run_request(lambda: parse_celery_call(args, kwargs, bucket=runner.settings.bucket),
                                     celery_job_id(args, kwargs, self.request.id),
                                     deadline=deadline, wait_if_busy=False)
    except JobBusyError as error:
        # Not counted against the retries: the holder may simply still be working.
        raise self.retry(exc=error, countdown=error.retry_after + 1, max_retries=None)
    except TransientError as error:
        # Same budget as Lambda's async retries; the claim's attempt count ends the job when spent.
        # A retry waits at most one lease: the broker's visibility timeout (`processor.redelivery`)
        # must outlast every countdown.
        countdown = min(RETRY_BASE_SECONDS * 2 ** self.request.retries, runner.settings.lease_seconds)
        raise self.retry(exc=error, countdown=countdown, max_retries=runner.settings.max_attempts - 1)
    return outcome.to_dict()
