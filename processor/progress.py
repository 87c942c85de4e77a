"""One attempt's progress, told three ways: the job row, the backend's Redis channel, the log.

The messages are today's (`processor.progress_update`), so the backend's processing page works
whichever backend ran the job. The row carries the same state (``processing_stage``,
``progress_percentage``, ``current_segment``, ``total_segments``) for the backend's status
endpoint and for browsers whose progress cannot come through Redis (`router.progress`).

Each stage change and each new segment is told at once; progress within a stage at most once
a second. Row writes are throttled the same way (DynamoDB bills each write) and double as the
claim's heartbeat: one goes out at least every quarter lease even when nothing moved. Progress
is best effort: neither Redis nor a throttled row write ever fails a job.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Sequence

from processor import progress_update as updates
from processor.contract import PROGRESS_CHANNEL
from processor.errors import TransientError
from processor.jobs import JobStore
from processor.logs import log
from processor.progress_update import ProgressUpdate
from processor.publisher import ProgressPublisher

MIN_INTERVAL_SECONDS = 1.0
# Stages whose messages carry "segment x of y", as today's.
_COUNTED = (updates.PROCESSING, updates.SEGMENT_UPLOADED)


class ProgressReporter:
    def __init__(self, job_id: str, *, store: JobStore | None = None, attempt_id: str | None = None,
                 publisher: ProgressPublisher | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.job_id = job_id
        self.store = store
        self.attempt_id = attempt_id
        self.publisher = publisher
        self.clock = clock
        self.total_segments: int | None = None
        self.segments_planned = 0
        self._segment_ends: tuple[float, ...] = ()
        # The row write renews the claim's lease, so it also goes out when nothing moved.
        self.heartbeat_seconds = store.lease_seconds / 4 if store else float("inf")
        self._last: ProgressUpdate | None = None
        self._published_at = float("-inf")
        self._written_at = float("-inf")
        # S3 transfers report from their worker threads.
        self._lock = threading.Lock()

    @property
    def reached(self) -> float:
        """The percentage told so far (what a failure keeps)."""
        return self._last.progress_percentage if self._last else 0.0

    def plan(self, segment_ends: Sequence[float]) -> None:
        """The planned segments' end times: how many there are, and which one the encoder is in."""
        self._segment_ends = tuple(segment_ends)
        self.total_segments = self.segments_planned = len(self._segment_ends)

    def stage(self, stage: str, *, fraction: float = 0.0, message: str | None = None,
              current_segment: int | None = None, output_urls: Sequence[str] | None = None) -> None:
        """Tell that the job is ``fraction`` (0..1) through ``stage`` (one of today's stages)."""
        counted = stage in _COUNTED
        self._tell(updates.make(self.job_id, stage, fraction=fraction, floor=self.reached, message=message,
                                current_segment=current_segment if counted else None,
                                total_segments=self.total_segments if counted else None,
                                output_urls=output_urls))

    def encoding(self, fraction: float) -> None:
        """ffmpeg's progress over the whole input, with the segment it is writing."""
        self.stage(updates.PROCESSING, fraction=fraction,
                   current_segment=updates.segment_at(fraction, self._segment_ends) or None)

    def segment_uploaded(self, keys: Sequence[str]) -> None:
        """Segment ``len(keys)`` is in S3; ``keys`` are all uploaded so far, in order."""
        total = self.total_segments or len(keys)
        self.stage(updates.SEGMENT_UPLOADED, fraction=len(keys) / total, current_segment=len(keys), output_urls=keys)

    def completed(self, keys: Sequence[str]) -> None:
        """Announce the outcome the row already holds (written with it): every key, in order."""
        self._finish(updates.make(self.job_id, updates.COMPLETED, output_urls=keys))

    def failed(self, error_message: str) -> None:
        self._finish(updates.failed(self.job_id, error_message, self.reached))

    def close(self) -> None:
        if self.publisher:
            self.publisher.disconnect()

    def _finish(self, update: ProgressUpdate) -> None:
        with self._lock:
            self._last = update
            log("stage", job_id=self.job_id, stage=update.stage, progress_percentage=update.progress_percentage,
                message=update.message)
            self._publish(update)

    def _tell(self, update: ProgressUpdate) -> None:
        with self._lock:
            now, last = self.clock(), self._last
            if updates.is_newer(update, last):
                new_stage = last is None or update.stage != last.stage
                notable = (new_stage or update.stage == updates.SEGMENT_UPLOADED
                           or update.current_segment != last.current_segment)
                if notable or now - self._published_at >= MIN_INTERVAL_SECONDS:
                    self._last = update
                    if new_stage:
                        log("stage", job_id=self.job_id, stage=update.stage,
                            progress_percentage=update.progress_percentage, message=update.message)
                    self._publish(update)
                    self._published_at = now
                    if new_stage or now - self._written_at >= MIN_INTERVAL_SECONDS:
                        self._write_row(update, now)
                    return
            if self._last is not None and now - self._written_at >= self.heartbeat_seconds:
                self._write_row(self._last, now)

    def _write_row(self, update: ProgressUpdate, now: float) -> None:
        if not (self.store and self.attempt_id):
            return
        self._written_at = now
        try:
            self.store.progress(self.job_id, self.attempt_id, stage=update.stage,
                                percentage=update.progress_percentage, current_segment=update.current_segment,
                                total_segments=self.total_segments, segments_planned=self.segments_planned)
        except TransientError as error:
            # A throttled progress write must not throw away a healthy encode; the next
            # heartbeat renews the lease. Losing the claim (ClaimLostError) still stops the job.
            log("progress_write_failed", job_id=self.job_id, level=logging.WARNING, error=str(error))

    def _publish(self, update: ProgressUpdate) -> None:
        if self.publisher:
            self.publisher.publish(PROGRESS_CHANNEL.format(job_id=self.job_id), update.to_json(), job_id=self.job_id)
