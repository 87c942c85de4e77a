"""``tasks.process_video_task``: today's Celery task name and positional signature, new engine."""

from __future__ import annotations

import time
from typing import Any

from processor.celery_app import TASK_TIME_LIMIT_SECONDS, app
from processor.contract import CELERY_TASK_NAME, make_job
from processor.errors import TransientError
from processor.pipeline import JobBusyError, build_runner

SAFETY_MARGIN_SECONDS = 30.0
RETRY_BASE_SECONDS = 10


@app.task(name=CELERY_TASK_NAME, bind=True)
def process_video_task(self: Any, s3_input_key: str, job_id: str, cutting_options: Any = None,
                       text_strategy: Any = None, text_input: Any = None, user_id: Any = None) -> dict[str, Any]:
    deadline = time.monotonic() + TASK_TIME_LIMIT_SECONDS - SAFETY_MARGIN_SECONDS
    runner = build_runner("celery")

    def parse():
        return make_job(job_id=job_id, s3_key=s3_input_key, cutting_options=cutting_options,
                        text_strategy=text_strategy, text_input=text_input, user_id=user_id,
                        bucket=runner.settings.bucket, source="celery")

    try:
        # Never wait here for another attempt: it would hold a worker slot for a whole job.
        outcome = runner.run_request(parse, job_id, deadline=deadline, wait_if_busy=False)
    except JobBusyError as error:
        # Not counted against the retries: the holder may simply still be working.
        raise self.retry(exc=error, countdown=error.retry_after + 1, max_retries=None)
    except TransientError as error:
        # Same budget as Lambda's async retries; the claim's attempt count ends the job when spent.
        raise self.retry(exc=error, countdown=RETRY_BASE_SECONDS * 2 ** self.request.retries,
                         max_retries=runner.settings.max_attempts - 1)
    return outcome.to_dict()
