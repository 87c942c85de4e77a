"""The function's fan-out steps, as the state machine (infra/state_machine.py) invokes them.

The starting invocation claims the job as every job is claimed, probes it over HTTP without
downloading it (``probe_upload``), and starts the execution (``start``) instead of encoding;
the execution then carries that claim's attempt id
through every step, so the steps write the row only while the claim is theirs (the job row's
conditions, processor.jobs), and a step of a superseded execution changes nothing.

- prepare: plans again (processor.plan is deterministic), checks that the longest item can
  finish inside the function's memory and time (processor.limits), asks the model for base_vary's texts and stores
  them, puts the plan's size on the row, and returns the items (or their S3 key);
- item: reads the upload's bytes it needs over a loopback HTTP server (processor.ranged_input),
  encodes its segments (processor.engine.cut_item) and uploads them with their durations,
  renewing the lease while it works; counts them done on the row;
- finish: reads every planned key's duration from S3, then COMPLETED under the claim, with the
  job's processing time since the claim (the row's and the EMF line's, as the single pass's);
- fail: FAILED with the reason that reached it, and the job's keys removed.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import boto3
from botocore.exceptions import ClientError

from processor import backend_env, limits
from processor import progress_update as stages
from processor.aws_errors import aws_call
from processor.command import HTTP_PROTOCOLS, HttpInput, output_rate
from processor.contract import Job, parse_event, parse_utc_timestamp
from processor.engine import cut_item
from processor.errors import InvalidJobError, ProcessorError, TransientError
from processor.fanout import (FAIL, FINISH, ITEM, ITEMS_KEY, MODES, PREPARE, RANGED_CONTAINERS, FanoutSettings, Item,
                              StepFailed, StepRetry, execution_name, failure_of, inline, item_cut, plan_items,
                              state_machine_arn, state_transitions)
from processor.jobs import FAILED, Claim, ClaimLostError
from processor.logs import log
from processor.metrics import emit, job_metrics
from processor.pipeline import JobRunner, bill
from processor.plan import Segment, plan
from processor.probe import MediaInfo, probe_url
from processor.ranged_input import RangedInput
from processor.progress import ProgressReporter
from processor.storage import VideoStorage
from processor.variations import TextVariations, apply, wants_variations

# What an item spends besides encoding (start-up, reading the index, the upload), kept back
# from the time an invocation has when prepare checks that the longest item fits.
ITEM_OVERHEAD_SECONDS = 15.0


def is_step_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("fanout") in MODES


def media_to_dict(media: MediaInfo) -> dict[str, Any]:
    return {**asdict(media), "fps": str(media.fps)}


def media_from_dict(value: dict[str, Any]) -> MediaInfo:
    return MediaInfo(**{**value, "fps": Fraction(value["fps"])})


def probe_upload(storage: VideoStorage, key: str) -> MediaInfo:
    """What ffprobe finds in an upload, reading only its index over HTTP: whether a job fans out
    is known before any download, and a job that does is never downloaded whole."""
    with RangedInput(storage.s3, storage.bucket, key, storage.size(key)) as upload:
        return probe_url(upload.url, Path(key).name, HTTP_PROTOCOLS, ",".join(sorted(RANGED_CONTAINERS)))


class FanoutStarter:
    """Starts the fan-out execution of a claimed job (the Lambda side of JobRunner's hook)."""

    def __init__(self, settings: FanoutSettings, function_arn: str, client: Any = None) -> None:
        self.settings = settings
        self.arn = state_machine_arn(function_arn, settings.state_machine)
        self.client = client or boto3.client("stepfunctions", region_name=backend_env.region())

    def probe(self, storage: VideoStorage, key: str) -> MediaInfo:
        return probe_upload(storage, key)

    def start(self, job: Job, claim: Claim, media: MediaInfo) -> bool:
        """Start the execution for this claim; False when it was already started, which Step
        Functions refuses by the execution's name."""
        name = execution_name(job.job_id, claim.attempts)
        payload = {"job": job.to_event(), "attempt": claim.attempt_id, "media": media_to_dict(media)}
        with aws_call(f"Step Functions StartExecution {name}"):
            try:
                self.client.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(payload))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                    log("fanout_already_started", job_id=job.job_id, execution=name, level=logging.WARNING)
                    return False
                raise
        log("fanout_started", job_id=job.job_id, execution=name, state_machine=self.arn)
        return True


class FanoutSteps:
    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    def run(self, event: dict[str, Any], deadline: float) -> dict[str, Any]:
        """One step; a transient failure raises StepRetry (the state's Retry), any other StepFailed
        (its Catch, then the fail step), so the Lambda error's type tells the state machine which."""
        mode, attempt = event["fanout"], event.get("attempt")
        began = time.monotonic()
        request = event.get("job")
        job_id = request.get("job_id") if isinstance(request, dict) else None
        result: dict[str, Any] = {}
        try:
            job = parse_event(request, expected_bucket=self.runner.settings.bucket)
            if not isinstance(attempt, str):
                raise InvalidJobError("attempt", f"a fan-out step needs its claim's attempt id, got {attempt!r}")
            if mode == FAIL:
                result = self.fail(job, attempt, event.get("error"))
                return result
            steps: dict[str, Callable[[], dict[str, Any]]] = {
                PREPARE: lambda: self.prepare(job, attempt, media_from_dict(event["media"]), deadline),
                ITEM: lambda: self.item(job, attempt, Item.from_dict(event.get("item")),
                                        media_from_dict(event["media"]), deadline),
                FINISH: lambda: self.finish(job, attempt, media_from_dict(event["media"])),
            }
            result = steps[mode]()
            return result
        except TransientError as error:
            raise StepRetry(str(error)) from error
        except ProcessorError as error:
            log("fanout_step_failed", job_id=job_id, level=logging.ERROR, step=mode,
                error_type=error.error_type, error=str(error))
            if mode == ITEM and isinstance(job_id, str) and isinstance(attempt, str) \
                    and not isinstance(error, ClaimLostError):
                self._keep_item_error(job_id, attempt, error)
            raise StepFailed(error.error_type, str(error)) from error
        finally:
            if isinstance(job_id, str) and isinstance(attempt, str):
                bill(self.runner.store, job_id, attempt, time.monotonic() - began, result.get("state_transitions"))

    def _keep_item_error(self, job_id: Any, attempt: str, error: ProcessorError) -> None:
        """The item's reason on the row for the fail step (JobStore.note_item_error); best
        effort: the Map's failure still fails the job without it."""
        try:
            self.runner.store.note_item_error(str(job_id), attempt, error.error_type, str(error))
        except ProcessorError as failed:
            log("fanout_item_error_not_kept", job_id=job_id, level=logging.WARNING, error=str(failed))

    def _reporter(self, job: Job, attempt: str | None = None) -> ProgressReporter:
        return ProgressReporter(job.job_id, store=self.runner.store if attempt else None, attempt_id=attempt,
                                publisher=self.runner.publisher)

    def _segments(self, job: Job, duration: float, row: dict[str, Any]) -> list[Segment]:
        segments = plan(job, duration)
        stored = TextVariations.from_row(row)
        if stored is None or not wants_variations(job, len(segments)):
            return segments
        # Prepare stored base_vary's texts before any item started (JobRunner.vary_texts).
        return apply(segments, stored.fitted(len(segments), job.text_input.base_text))

    def prepare(self, job: Job, attempt: str, media: MediaInfo, deadline: float) -> dict[str, Any]:
        row = self.runner.store.held(job.job_id, attempt)
        segments = plan(job, media.duration)
        items = plan_items(segments)
        self._check_fits(segments, items, media, deadline)
        reporter = self._reporter(job, attempt)
        try:
            reporter.plan([segment.end for segment in segments])
            claim = Claim(True, attempt, text_variations=TextVariations.from_row(row))
            self.runner.vary_texts(job, segments, claim, reporter)
            self.runner.store.start_counting(job.job_id, attempt, len(segments))
            reporter.stage(stages.PROCESSING, message=f"Processing {len(segments)} segments in {len(items)} parts...",
                           current_segment=0)
        finally:
            reporter.close()
        listed = [item.to_dict() for item in items]
        log("fanout_prepared", job_id=job.job_id, segments=len(segments), items=len(items))
        if inline(items):
            return {"items": listed, "items_key": None}
        key = ITEMS_KEY.format(job_id=job.job_id, execution=attempt)
        self.runner.storage.put_json(key, listed)
        return {"items": [], "items_key": key}

    def _check_fits(self, segments: list[Segment], items: list[Item], media: MediaInfo, deadline: float) -> None:
        """Fail before any encode when the longest item cannot finish inside one invocation, by
        the single pass's own estimate (processor.limits) for the item's seconds of video."""
        encode = self.runner.settings.encode
        longest = max(items, key=lambda item: segments[item.first + item.count - 1].end - segments[item.first].start)
        length = segments[longest.first + longest.count - 1].end - segments[longest.first].start
        try:
            limits.check_fits(media, length, encode.max_long_side, encode.preset, deadline,
                              reserve_seconds=ITEM_OVERHEAD_SECONDS)
        except limits.TooLargeError as error:
            raise limits.TooLargeError(f"segments {longest.first + 1} to {longest.first + longest.count} "
                                       f"({length:.0f} s) cannot be encoded by one invocation: {error}") from None

    def item(self, job: Job, attempt: str, item: Item, media: MediaInfo, deadline: float) -> dict[str, Any]:
        store, storage = self.runner.store, self.runner.storage
        row = store.held(job.job_id, attempt)
        heartbeat = _Heartbeat(job.job_id, lambda: store.renew(job.job_id, attempt), store.lease_seconds / 4)
        segments = self._segments(job, media.duration, row)
        part = item_cut(segments, item, output_rate(media))
        # Only the bytes of its own segments (and the index) are read: not the whole upload.
        with tempfile.TemporaryDirectory(dir=self.runner.settings.scratch_dir, prefix="item-") as scratch, \
                RangedInput(storage.s3, storage.bucket, job.s3_key, storage.size(job.s3_key)) as upload:
            files = cut_item(HttpInput(upload.url, media.container), part, Path(scratch) / "segments",
                             self.runner.settings.encode, media=media, on_progress=lambda _: heartbeat(),
                             deadline=deadline)
            # The job may have failed while this item encoded (another item's error): upload nothing.
            store.held(job.job_id, attempt)
            storage.upload_segments(job, [f.path for f in files], lambda _: heartbeat(), first=item.first,
                                    durations=[f.duration for f in files])
        try:
            done = store.count_done(job.job_id, attempt, range(item.first, item.first + item.count), len(segments))
        except ClaimLostError:
            self._remove_after_fail(job, attempt, item)
            raise
        reporter = self._reporter(job)
        reporter.total_segments = len(segments)
        reporter.stage(stages.PROCESSING, fraction=done / len(segments), current_segment=done)
        reporter.close()
        log("fanout_item_done", job_id=job.job_id, first=item.first, count=item.count, done=done,
            total=len(segments), bytes_read=upload.bytes_served, input_bytes=upload.size)
        return {"done": done}

    def _remove_after_fail(self, job: Job, attempt: str, item: Item) -> None:
        """Remove the item's own keys when the fail step of this execution ran while it uploaded
        (it deleted the job's keys before these existed). Only then: a job a later claim holds
        writes the same keys, and they are that claim's."""
        row = self.runner.store.get(job.job_id) or {}
        if row.get("status") == FAILED and row.get("processing_attempt_id") == attempt:
            self.runner.storage.delete(job, item.count, first=item.first)
            log("fanout_item_removed", job_id=job.job_id, first=item.first, count=item.count,
                level=logging.WARNING)

    def finish(self, job: Job, attempt: str, media: MediaInfo) -> dict[str, Any]:
        row = self.runner.store.held(job.job_id, attempt)
        count = int(row.get("segments_planned", 0))
        durations = self.runner.storage.segment_durations(job, count)
        keys = [job.output_key(i) for i in range(count)]
        elapsed = _elapsed(row)
        self.runner.store.complete(job.job_id, attempt, keys, durations, input_seconds=media.duration,
                                   processing_seconds=elapsed)
        self.runner.storage.delete_key(ITEMS_KEY.format(job_id=job.job_id, execution=attempt))
        emit(job_metrics(self.runner.backend, job.job_id, failed=False, processing_seconds=elapsed,
                         video_seconds=media.duration))
        reporter = self._reporter(job)
        reporter.completed(keys)
        reporter.close()
        log("completed", job_id=job.job_id, segments=count, backend=self.runner.backend, fanout=True)
        return {"status": "completed", "segments": count,
                "state_transitions": state_transitions(len(plan_items(plan(job, media.duration))))}

    def fail(self, job: Job, attempt: str, error: Any) -> dict[str, Any]:
        row = self.runner.store.get(job.job_id) or {}
        recorded = row.get("fanout_item_error")
        error_type, message = failure_of(
            error, recorded if isinstance(recorded, dict) and recorded.get("attempt") == attempt else None)
        reporter = self._reporter(job, attempt)
        try:
            outcome = self.runner.fail(job, attempt, reporter, error_type, int(row.get("segments_planned", 0)),
                                       message, _elapsed(row))
        finally:
            reporter.close()
        self.runner.storage.delete_key(ITEMS_KEY.format(job_id=job.job_id, execution=attempt))
        return outcome.to_dict()


def _elapsed(row: dict[str, Any]) -> float:
    """Seconds since the claim the execution runs under (the row's processing_started_at): the
    job's processing time, as the single pass records it, across every step."""
    started = parse_utc_timestamp(row.get("processing_started_at"))
    return max(0.0, (datetime.now(timezone.utc) - started).total_seconds()) if started else 0.0


class _Heartbeat:
    """Renews the claim's lease at most every ``interval`` seconds, from ffmpeg's progress calls."""

    def __init__(self, job_id: str, renew: Callable[[], None], interval: float) -> None:
        self.job_id = job_id
        self.renew = renew
        self.interval = interval
        self.last = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            try:
                self.renew()
            except TransientError as error:
                # A throttled renewal must not throw away a healthy encode (as ProgressReporter's
                # row writes): the next call renews. Losing the claim (ClaimLostError) still stops it.
                log("lease_renewal_failed", job_id=self.job_id, level=logging.WARNING, error=str(error))
