"""Progress, told three ways: the job row, the backend's Redis channel, and the log.

The backend relays ``job_progress_{job_id}`` messages to browsers as server-sent events, in
today's JSON shape. Row writes are throttled (DynamoDB bills each write); Redis messages are
cheap but still throttled to keep the browser stream readable. Progress is best effort: a Redis
outage never fails a job.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

from processor.contract import PROGRESS_CHANNEL, utc_timestamp
from processor.errors import TransientError
from processor.jobs import JobStore
from processor.logs import log

MIN_INTERVAL_SECONDS = 1.0

# Share of the whole job each stage covers, so percentages only ever rise.
STAGE_RANGES = {
    "downloading": (0, 5),
    "analyzing": (5, 10),
    "generating_text": (10, 10),  # today's stage name; the model's answer has no fraction to report
    "processing": (10, 85),
    "uploading": (85, 99),
}


def _redis_publisher(redis_url: str) -> Callable[[str, str], None]:
    import redis  # Imported here: the local command and most tests never need it.

    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    return lambda channel, message: client.publish(channel, message)


class ProgressReporter:
    def __init__(self, job_id: str, *, store: JobStore | None = None, attempt_id: str | None = None,
                 redis_url: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.job_id = job_id
        self.store = store
        self.attempt_id = attempt_id
        self.publish = _redis_publisher(redis_url) if redis_url else None
        self.clock = clock
        self.total_segments = 0
        # The row write renews the claim's lease, so it also goes out when nothing moved.
        self.heartbeat_seconds = store.lease_seconds / 4 if store else float("inf")
        self._last_sent = float("-inf")
        self._last_stage: str | None = None
        self._last_percentage = 0
        # S3 transfers report from their worker threads.
        self._lock = threading.Lock()

    def update(self, stage: str, fraction: float = 0.0, message: str = "", current_segment: int | None = None) -> None:
        """Report ``fraction`` (0..1) of ``stage``; stage changes are always sent, the rest throttled."""
        low, high = STAGE_RANGES[stage]
        with self._lock:
            percentage = max(self._last_percentage, round(low + (high - low) * min(max(fraction, 0.0), 1.0)))
            new_stage = stage != self._last_stage
            now = self.clock()
            since = now - self._last_sent
            moved = percentage != self._last_percentage and since >= MIN_INTERVAL_SECONDS
            if not (new_stage or moved or since >= self.heartbeat_seconds):
                return
            self._last_sent, self._last_stage, self._last_percentage = now, stage, percentage
            if new_stage:
                log("stage", job_id=self.job_id, stage=stage, progress_percentage=percentage, message=message)
            self._write_row(stage, percentage)
            self._publish(stage, message or stage, percentage, current_segment)

    def _write_row(self, stage: str, percentage: int) -> None:
        if not (self.store and self.attempt_id):
            return
        try:
            self.store.progress(self.job_id, self.attempt_id, stage, percentage, self.total_segments)
        except TransientError as error:
            # A throttled progress write must not throw away a healthy encode; the next
            # heartbeat renews the lease. Losing the claim (ClaimLostError) still stops the job.
            log("progress_write_failed", job_id=self.job_id, level=logging.WARNING, error=str(error))

    def finish(self, stage: str, message: str) -> None:
        """Announce ``completed`` or ``failed``; the row already says so (written with the outcome)."""
        percentage = 100 if stage == "completed" else self._last_percentage
        log("stage", job_id=self.job_id, stage=stage, progress_percentage=percentage, message=message)
        self._publish(stage, message, percentage, None)

    def _publish(self, stage: str, message: str, percentage: int, current_segment: int | None) -> None:
        if not self.publish:
            return
        payload = json.dumps({
            "job_id": self.job_id, "stage": stage, "message": message,
            "progress_percentage": percentage, "current_segment": current_segment,
            "total_segments": self.total_segments, "timestamp": utc_timestamp(),
        })
        try:
            self.publish(PROGRESS_CHANNEL.format(job_id=self.job_id), payload)
        except Exception as error:  # noqa: BLE001 - progress must never fail the job
            log("progress_publish_failed", job_id=self.job_id, level=logging.WARNING, error=str(error))
            self.publish = None
