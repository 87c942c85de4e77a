"""One job, start to finish: claim -> download -> probe -> plan -> ffmpeg -> upload -> job row.

Shared by the Lambda handler and the Celery task, so both backends produce the same segments
and the same row. The outcome of an attempt is one of:

- completed: every segment uploaded, then the row set COMPLETED (never the other way round);
- failed: a permanent error (bad input, timeout, not a video); the row says FAILED with the
  error, and this job's segment keys are removed so no half-set lingers;
- skipped: a duplicate delivery of a finished job (COMPLETED or FAILED);
- refused: the job has no row, even after waiting a moment for it (the backend's legacy order
  writes the row just after sending the task); nothing is processed and the log says why;
- a raised TransientError: the claim is released and the caller's retry runs the job again.
  A job held by another attempt whose lease is alive raises `JobBusyError` (transient), after
  waiting for it where the caller allows: a duplicate is never silently dropped, since the
  holder may have died and only the retry can finish the job.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import boto3

from processor import backend_env, limits
from processor.binaries import font_table
from processor.command import stream_copy_possible
from processor.config import Settings
from processor.contract import Job, validate_job_id
from processor.engine import check_texts, cut
from processor.errors import DeadlineExceededError, InvalidJobError, NotAVideoError, ProcessorError, TransientError
from processor.jobs import PROCESSING, Claim, ClaimLostError, JobStore
from processor.logs import log
from processor.metrics import emit, job_metrics
from processor.plan import Segment, candidate_texts, plan
from processor.probe import MediaInfo, probe
from processor import progress_update as stages
from processor.progress import ProgressReporter
from processor.publisher import ProgressPublisher, progress_publisher
from processor.storage import VideoStorage
from processor.text_model import generate_texts
from processor.variations import MODEL, apply, drawable, wants_variations

if TYPE_CHECKING:  # processor.fanout_steps builds on this module
    from processor.fanout_steps import FanoutStarter

BUSY_POLL_SECONDS = 3.0
ROW_POLL_SECONDS = 0.5


class JobBusyError(TransientError):
    """Another attempt holds the job and its lease is alive; try again after the lease."""

    error_type = "job_busy"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RowMissingError(ProcessorError):
    """The job has no row: only the backend writes one, and a job without it is never processed."""

    error_type = "row_missing"


class InternalError(ProcessorError):
    """An unexpected exception: a bug, which a retry would repeat."""

    error_type = "internal_error"


@dataclass(frozen=True)
class Outcome:
    job_id: str
    status: str  # completed | failed | skipped | refused | fanned_out (a Step Functions execution runs it)
    output_keys: list[str] = field(default_factory=list)
    error_type: str | None = None
    message: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def check_deadline(deadline: float) -> None:
    if time.monotonic() >= deadline:
        raise DeadlineExceededError("processing stopped before the time limit; the video is too long "
                                    "for the configured timeout and memory")


class JobRunner:
    def __init__(self, settings: Settings, store: JobStore, storage: VideoStorage, backend: str,
                 publisher: ProgressPublisher | None = None, fanout: FanoutStarter | None = None) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.backend = backend
        self.publisher = publisher
        # Lambda only: starts a Step Functions execution for a job that qualifies (processor.fanout_steps).
        self.fanout = fanout

    def run_request(self, parse: Callable[[], Job], job_id: Any, *, deadline: float, wait_if_busy: bool) -> Outcome:
        """Validate (``parse``) then run; a job that breaks the contract is failed, not retried."""
        try:
            job = parse()
        except InvalidJobError as error:
            marked = False
            try:
                marked = self.store.fail_unclaimed(validate_job_id(job_id), str(error), error.error_type)
            except InvalidJobError:
                pass  # Without a usable job id there is no row to mark; the log line is the record.
            log("invalid_job", job_id=job_id if isinstance(job_id, str) else None, level=logging.ERROR,
                error=str(error), row_marked_failed=marked, backend=self.backend)
            if marked:
                # The browser waiting on this job learns why, as from any other failure.
                reporter = ProgressReporter(job_id, publisher=self.publisher)
                reporter.failed(str(error))
                reporter.close()
            return Outcome(str(job_id), "failed", error_type=error.error_type, message=str(error))
        return self.run(job, deadline=deadline, wait_if_busy=wait_if_busy)

    def _claim(self, job: Job, attempt: str, deadline: float, wait_if_busy: bool) -> Claim:
        """Claim the job; while another attempt's lease is alive, wait (if allowed) or raise.

        A missing row is waited for, up to ``row_wait_seconds``, then `RowMissingError`.
        """
        row_deadline = min(time.monotonic() + self.settings.row_wait_seconds, deadline)
        waiting_for_row = False
        while True:
            claim = self.store.claim(job.job_id, attempt, self.backend, limits.memory_limit_mb())
            if not claim.row_exists:
                if not waiting_for_row:
                    # The backend's legacy order (task first, row a moment later) passes through here.
                    log("row_awaited", job_id=job.job_id, backend=self.backend,
                        seconds=self.settings.row_wait_seconds)
                    waiting_for_row = True
                if time.monotonic() + ROW_POLL_SECONDS > row_deadline:
                    raise RowMissingError(
                        f"job {job.job_id} has no row in table {self.settings.table} after "
                        f"{self.settings.row_wait_seconds} s: not processed (the backend writes the job's row, "
                        "status QUEUED, when it starts the job; a job without one is never run)")
                time.sleep(ROW_POLL_SECONDS)
                continue
            if claim.claimed or claim.status != PROCESSING:
                return claim
            retry_after = max(1.0, claim.lease_expires_at - time.time())
            if not wait_if_busy or time.monotonic() + BUSY_POLL_SECONDS >= deadline:
                log("busy", job_id=job.job_id, level=logging.WARNING, backend=self.backend,
                    lease_left=round(retry_after))
                raise JobBusyError(f"job {job.job_id} is PROCESSING under another attempt "
                                   f"(lease alive for {retry_after:.0f} s more)", retry_after)
            time.sleep(min(BUSY_POLL_SECONDS, retry_after))

    def run(self, job: Job, *, deadline: float, wait_if_busy: bool) -> Outcome:
        """Process ``job`` once; ``deadline`` is a ``time.monotonic()`` value."""
        attempt = uuid.uuid4().hex
        try:
            claim = self._claim(job, attempt, deadline, wait_if_busy)
        except RowMissingError as error:
            log("row_missing", job_id=job.job_id, level=logging.ERROR, backend=self.backend, error=str(error))
            return Outcome(job.job_id, "refused", error_type=error.error_type, message=str(error))
        if not claim.claimed:
            log("duplicate_skipped", job_id=job.job_id, status=claim.status, backend=self.backend)
            return Outcome(job.job_id, "skipped", message=f"job is already {claim.status}")
        log("claimed", job_id=job.job_id, attempt=attempt, attempts=claim.attempts, backend=self.backend,
            s3_key=job.s3_key)
        reporter = ProgressReporter(job.job_id, store=self.store, attempt_id=attempt, publisher=self.publisher)
        try:
            return self._attempt(job, attempt, claim, reporter, deadline, time.monotonic())
        finally:
            reporter.close()

    def _attempt(self, job: Job, attempt: str, claim: Claim, reporter: ProgressReporter, deadline: float,
                 started: float) -> Outcome:
        # An earlier attempt that died may have uploaded some of its segments.
        planned = claim.segments_planned
        try:
            reporter.stage(stages.QUEUED)
            check_deadline(deadline)
            if claim.upload_key is not None and claim.upload_key != job.s3_key:
                # The request names the key; the backend's own row says which upload this job is.
                raise InvalidJobError("s3_key", f"{job.s3_key!r} is not this job's upload "
                                                f"({claim.upload_key!r} on the job row)")
            # Before the download: a caption no font can draw fails the job at once.
            check_texts(candidate_texts(job.text_strategy, job.text_input))
            if self.fanout is not None:
                fanned_out = self._fan_out(job, claim, reporter, started)
                if fanned_out is not None:
                    return fanned_out
            with tempfile.TemporaryDirectory(dir=self.settings.scratch_dir, prefix="job-") as scratch:
                work = Path(scratch)
                reporter.stage(stages.DOWNLOADING)
                source = self.storage.download(
                    job.s3_key, work, lambda f: reporter.stage(stages.DOWNLOADING, fraction=f))
                check_deadline(deadline)
                reporter.stage(stages.ANALYZING)
                media = probe(source)
                segments = plan(job, media.duration)
                if not self._copies(media, segments):
                    self._check_fits(media, deadline)  # at once: before the model and the encode
                planned = max(planned, len(segments))
                reporter.plan([segment.end for segment in segments])
                segments = self.vary_texts(job, segments, claim, reporter)
                (work / "segments").mkdir()
                reporter.stage(stages.PROCESSING, message=f"Processing {len(segments)} segments...",
                               current_segment=1)
                files = cut(source, segments, work / "segments", self.settings.encode, media=media,
                            on_progress=reporter.encoding, deadline=deadline,
                            before_encode=lambda: self._check_fits(media, deadline))
                check_deadline(deadline)
                # Stream copy cuts at keyframes: there may be fewer files than planned segments.
                reporter.total_segments = len(files)

                def uploaded(index: int) -> None:
                    reporter.segment_uploaded([job.output_key(i) for i in range(index + 1)])
                    check_deadline(deadline)

                keys = self.storage.upload_segments(job, [f.path for f in files], uploaded)
                reporter.stage(stages.UPLOADING, output_urls=keys)
                elapsed = time.monotonic() - started
                self.store.complete(job.job_id, attempt, keys, [f.duration for f in files],
                                    input_seconds=media.duration, processing_seconds=elapsed)
        except ClaimLostError as error:
            log("superseded", job_id=job.job_id, level=logging.WARNING, error=str(error))
            return Outcome(job.job_id, "skipped", message=str(error))
        except TransientError as error:
            if claim.attempts < self.settings.max_attempts:
                self.store.release(job.job_id, attempt, str(error))
                log("transient_error", job_id=job.job_id, level=logging.WARNING, error=str(error),
                    attempts=claim.attempts)
                raise
            return self.fail(job, attempt, reporter, error.error_type, planned,
                             f"gave up after {claim.attempts} attempts: {error}", time.monotonic() - started)
        except ProcessorError as error:
            return self.fail(job, attempt, reporter, error.error_type, planned, str(error),
                             time.monotonic() - started)
        except Exception as error:  # noqa: BLE001 - a bug must still end the job, not leave it PROCESSING
            logging.getLogger("processor").exception("unexpected error")
            return self.fail(job, attempt, reporter, InternalError.error_type, planned,
                             f"internal error: {type(error).__name__}: {error}", time.monotonic() - started)
        emit(job_metrics(self.backend, job.job_id, failed=False, processing_seconds=elapsed,
                         video_seconds=media.duration))
        reporter.completed(keys)
        return Outcome(job.job_id, "completed", output_keys=keys)

    def _fan_out(self, job: Job, claim: Claim, reporter: ProgressReporter, started: float) -> Outcome | None:
        """Start the fan-out when the job qualifies, from a probe that reads only the upload's
        index; None: the job takes the single pass. Only an upload the probe over HTTP refuses
        (a container outside processor.fanout.RANGED_CONTAINERS, or no video, which the single
        pass's own probe then names) falls back; any other error is the job's, and a transient
        one retries it rather than sending a long job to the single pass."""
        try:
            media = self.fanout.probe(self.storage, job.s3_key)
        except NotAVideoError as error:
            log("fanout_probe_failed", job_id=job.job_id, error=str(error))
            return None
        segments = plan(job, media.duration)
        # A stream copy cuts at the input's keyframes, which items encoded apart cannot agree on.
        qualifies = self.fanout.settings.qualifies(len(segments), media.duration, media.container)
        if self._copies(media, segments) or not qualifies:
            return None
        reporter.plan([segment.end for segment in segments])
        # The execution holds this claim from here: its steps renew the lease and end the job.
        launched = self.fanout.start(job, claim, media)
        if launched:
            bill(self.store, job.job_id, claim.attempt_id, time.monotonic() - started)
        return Outcome(job.job_id, "fanned_out" if launched else "skipped",
                       message=None if launched else "the fan-out of this claim is already running")

    def _copies(self, media: MediaInfo, segments: list[Segment]) -> bool:
        """Whether the job may be stream-copied: a copy decodes nothing and always fits."""
        encode = self.settings.encode
        return encode.stream_copy and stream_copy_possible(media, segments, encode.max_long_side)

    def _check_fits(self, media: MediaInfo, deadline: float) -> None:
        """Refuse a job whose encode cannot fit this invocation (processor.limits): before any
        work, and again when a stream copy turns into an encode (engine.cut's ``before_encode``)."""
        encode = self.settings.encode
        limits.check_fits(media, media.duration, encode.max_long_side, encode.preset, deadline)

    def vary_texts(self, job: Job, segments: list[Segment], claim: Claim, reporter: ProgressReporter) -> list[Segment]:
        """base_vary: the model's texts, stored on the row before encoding; an earlier attempt's if stored.

        Storing first is what makes a retry, a duplicate or the other backend burn in the same
        texts (and never ask the model twice); the model failing only means base_text.
        """
        if not wants_variations(job, len(segments)):
            return segments
        base_text = job.text_input.base_text
        reporter.stage(stages.GENERATING_TEXT)
        variations = claim.text_variations
        if variations is not None:
            log("text_variations_reused", job_id=job.job_id, source=variations.source)
        else:
            variations = generate_texts(base_text, len(segments), job.text_input.context, self.settings.text_model)
            variations = drawable(variations, base_text, font_table().can_draw)
            self.store.save_text_variations(job.job_id, claim.attempt_id, variations)
            level = logging.INFO if variations.source == MODEL else logging.WARNING
            log("text_variations", job_id=job.job_id, level=level, source=variations.source,
                reason=variations.reason, model=self.settings.text_model.model)
        return apply(segments, variations.fitted(len(segments), base_text))

    def fail(self, job: Job, attempt: str, reporter: ProgressReporter, error_type: str, planned: int,
             message: str, elapsed: float) -> Outcome:
        """FAILED under this attempt's claim after ``elapsed`` seconds of processing, its
        ``planned`` segment keys removed, the browser told."""
        marked = self.store.fail(job.job_id, attempt, message, error_type, elapsed)
        if marked:
            # Only the holder of the job may remove its segments: a newer attempt may be writing them.
            self.storage.delete(job, planned)
        log("failed", job_id=job.job_id, level=logging.ERROR, error_type=error_type, error=message)
        if marked:
            emit(job_metrics(self.backend, job.job_id, failed=True, processing_seconds=elapsed,
                             error_type=error_type))
            # Told only with the row: a job another attempt now holds has not failed.
            reporter.failed(message)
        return Outcome(job.job_id, "failed", error_type=error_type, message=message)


def bill(store: JobStore, job_id: str, attempt: str, seconds: float, state_transitions: int | None = None) -> None:
    """A fan-out invocation's billed seconds on the row (JobStore.add_billing), for the
    report's cost (router.report); best effort: a job never fails for its bill."""
    try:
        store.add_billing(job_id, attempt, seconds, state_transitions)
    except ProcessorError as error:
        log("billing_not_recorded", job_id=job_id, level=logging.WARNING, error=str(error))


@cache
def _aws(endpoints: tuple[tuple[str, str], ...], region: str) -> tuple[Any, Any]:
    # Clients are reused across warm Lambda invocations and Celery tasks; keyed by the
    # AWS_ENDPOINT_URL* variables so a process pointed elsewhere never reuses a stale client.
    # The region as the backend reads it: its worker on Railway has AWS_REGION, which botocore ignores.
    return boto3.client("s3", region_name=region), boto3.resource("dynamodb", region_name=region)


def build_runner(backend: str) -> JobRunner:
    """A runner configured from the environment (see `processor.config`)."""
    settings = Settings.from_env()
    s3, dynamodb = _aws(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL"))),
                        backend_env.region())
    return JobRunner(settings, JobStore(settings.table, dynamodb, settings.lease_seconds),
                     VideoStorage(settings.bucket, s3), backend,
                     progress_publisher(settings.redis_url, settings.progress_redis_parameter))
