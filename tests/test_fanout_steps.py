"""The fan-out's row writes on a real moto server: the atomic count of segments done, and
nothing written under a claim that is not the step's."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import boto3
import pytest
from botocore.config import Config

from processor.contract import FixedCut, make_job
from processor.errors import TransientError
from processor.fanout import FanoutSettings, StepFailed
from processor.fanout_steps import FanoutStarter, FanoutSteps, _Heartbeat, media_to_dict, probe_upload
from processor.errors import ProcessorError
from processor.jobs import ClaimLostError, JobStore
from processor.pipeline import build_runner
from processor.probe import MediaInfo, probe
from sandbox import backend
from sandbox.media import make_video
from tests.router.faultproxy import FaultProxy

@pytest.fixture
def claimed(backend_world, job_id):
    key = f"uploads/user-1/{job_id}.mp4"
    backend.put_job_row(job_id, key, table=backend_world.table)
    store = JobStore(backend_world.table)
    claim = store.claim(job_id, uuid.uuid4().hex, "lambda")
    assert claim.claimed
    return store, claim, make_job(job_id=job_id, s3_key=key, bucket=backend_world.bucket)


def test_segments_done_are_counted_atomically_and_once(claimed):
    store, claim, job = claimed
    store.start_counting(job.job_id, claim.attempt_id, 40)
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(
            lambda first: store.count_done(job.job_id, claim.attempt_id, range(first, first + 4), 40), range(0, 40, 4)))
    assert sorted(counts)[-1] == 40 and len(set(counts)) == len(counts)
    # A retried item counts its segments again: nothing changes.
    assert store.count_done(job.job_id, claim.attempt_id, range(0, 4), 40) == 40
    row = store.get(job.job_id)
    assert row["segments_done"] == set(range(40)) and row["total_segments"] == row["segments_planned"] == 40
    # The row's progress reached the last count, whatever order the writes landed in.
    assert (row["current_segment"], row["progress_percentage"], row["processing_stage"]) == (
        40, 90, "processing_segment")


def test_a_step_under_a_lost_claim_writes_nothing(claimed):
    store, claim, job = claimed
    with pytest.raises(ClaimLostError):
        store.held(job.job_id, "another-attempt")
    with pytest.raises(ClaimLostError):
        store.count_done(job.job_id, "another-attempt", [0], 1)
    with pytest.raises(ClaimLostError):
        store.renew(job.job_id, "another-attempt")
    assert "segments_done" not in store.get(job.job_id)
    assert issubclass(ClaimLostError, ProcessorError)


MEDIA = MediaInfo(duration=410.0, width=1280, height=720, rotation=0, has_audio=True, fps=Fraction(30),
                  video_codec="h264", pix_fmt="yuv420p", audio_codec="aac", container="mov")


def step(job, attempt: str, mode: str, **fields) -> dict:
    return {"fanout": mode, "job": job.to_event(), "attempt": attempt, **fields}


def test_prepare_puts_a_long_item_list_in_s3_for_the_distributed_map(claimed):
    """41 items of 10 s: more than an inline Map runs at once."""
    store, claim, job = claimed
    job = dataclasses.replace(job, cut=FixedCut(10))
    steps = FanoutSteps(build_runner("lambda"))
    prepared = steps.run(step(job, claim.attempt_id, "prepare", media=media_to_dict(MEDIA)), time.monotonic() + 600)
    key = f"fanout-items/{job.job_id}/{claim.attempt_id}.json"
    assert prepared == {"items": [], "items_key": key}
    listed = json.loads(boto3.client("s3").get_object(Bucket=job.bucket, Key=key)["Body"].read())
    assert listed == [{"first": i, "count": 1} for i in range(41)]
    row = store.get(job.job_id)
    assert (row["segments_planned"], row["total_segments"], row["processing_stage"]) == (41, 41, "processing_segment")


def test_prepare_returns_a_short_item_list_inline(claimed):
    store, claim, job = claimed
    job = dataclasses.replace(job, cut=FixedCut(60))
    prepared = FanoutSteps(build_runner("lambda")).run(
        step(job, claim.attempt_id, "prepare", media=media_to_dict(MEDIA)), time.monotonic() + 600)
    assert prepared == {"items": [{"first": i, "count": 1} for i in range(7)], "items_key": None}


def test_a_step_of_a_superseded_claim_fails_as_claim_lost_and_the_fail_step_changes_nothing(claimed):
    store, claim, job = claimed
    steps = FanoutSteps(build_runner("lambda"))
    with pytest.raises(StepFailed) as failed:
        steps.run(step(job, "old-attempt", "prepare", media=media_to_dict(MEDIA)), time.monotonic() + 600)
    assert failed.value.error_type == "claim_lost"
    error = {"Error": "StepFailed", "Cause": json.dumps({"errorMessage": str(failed.value)})}
    assert steps.run(step(job, "old-attempt", "fail", error=error), time.monotonic() + 600)["status"] == "failed"
    row = store.get(job.job_id)
    assert (row["status"], row["processing_attempt_id"]) == ("PROCESSING", claim.attempt_id)


def test_a_distributed_maps_failure_fails_the_job_with_the_items_own_reason(claimed):
    """A distributed Map fails as States.ExceedToleratedFailureThreshold, whatever its child
    execution's error was: the item kept its reason on the row, and the fail step takes it."""
    store, claim, job = claimed  # the row's upload was never put in S3: the item fails for good
    steps = FanoutSteps(build_runner("lambda"))
    with pytest.raises(StepFailed) as failed:
        steps.run(step(job, claim.attempt_id, "item", item={"first": 0, "count": 1}, media=media_to_dict(MEDIA)),
                  time.monotonic() + 600)
    assert failed.value.error_type == "input_not_found"
    map_failed = {"Error": "States.ExceedToleratedFailureThreshold",
                  "Cause": "The specified tolerated failure threshold was exceeded"}
    failed_step = steps.run(step(job, claim.attempt_id, "fail", error=map_failed), time.monotonic() + 600)
    assert failed_step["status"] == "failed"
    row = store.get(job.job_id)
    assert (row["status"], row["error_type"]) == ("FAILED", "input_not_found"), row
    assert row["error_message"].startswith(f"input s3://{job.bucket}/{job.s3_key} does not exist"), row["error_message"]


def s3_through_a_proxy(claimed, tmp_path, monkeypatch):
    """The claimed job cut in 4 s segments of an uploaded 12 s clip, with S3 behind a fault
    proxy (the caller closes it)."""
    store, claim, job = claimed
    job = dataclasses.replace(job, cut=FixedCut(4))
    clip = make_video(tmp_path / "clip.mp4", duration=12.0)
    backend.upload_video(str(clip), job.s3_key, job.bucket)
    proxy = FaultProxy(os.environ["AWS_ENDPOINT_URL"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    return store, claim, job, clip, proxy


def test_an_s3_failure_while_an_item_reads_is_retried_not_called_a_corrupt_input(claimed, tmp_path, monkeypatch):
    """S3 failing every ranged GET (botocore's own retries exhausted) reaches ffmpeg as a
    connection closed early, which it reports as a truncated input; the step is retried
    instead, and once S3 answers again the item encodes."""
    store, claim, job, clip, proxy = s3_through_a_proxy(claimed, tmp_path, monkeypatch)
    try:
        steps = FanoutSteps(build_runner("lambda"))
        media = probe_upload(steps.runner.storage, job.s3_key)
        proxy.drop(match=lambda exchange: exchange.method == "GET" and "range" in exchange.headers)
        item = step(job, claim.attempt_id, "item", item={"first": 0, "count": 3}, media=media_to_dict(media))
        with pytest.raises(TransientError) as retried:
            steps.run(item, time.monotonic() + 600)
        assert "while ffmpeg read it" in str(retried.value), retried.value
        with pytest.raises(TransientError):
            probe_upload(steps.runner.storage, job.s3_key)
        proxy.heal()
        assert steps.run(item, time.monotonic() + 600) == {"done": 3}
    finally:
        proxy.close()
    assert media.duration == pytest.approx(probe(clip).duration)


FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:video-processor"


def test_a_transient_error_of_the_fanout_probe_retries_the_job_instead_of_a_single_pass(
        backend_world, job_id, tmp_path, monkeypatch):
    """The probe over HTTP hits S3 failing: a job that would fan out is released and raised for
    Lambda's retry, never downloaded and encoded in one pass."""
    key = f"uploads/user-1/{job_id}.mp4"
    backend.upload_video(str(make_video(tmp_path / "clip.mp4", duration=12.0)), key, backend_world.bucket)
    backend.put_job_row(job_id, key, table=backend_world.table)
    job = make_job(job_id=job_id, s3_key=key, bucket=backend_world.bucket, cutting_options={
        "type": "fixed", "duration_seconds": 4})
    proxy = FaultProxy(os.environ["AWS_ENDPOINT_URL"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
    try:
        runner = build_runner("lambda")
        runner.fanout = FanoutStarter(FanoutSettings("video-processor-fanout", 2, 0), FUNCTION_ARN)
        proxy.drop(match=lambda exchange: exchange.method == "GET" and "range" in exchange.headers)
        with pytest.raises(TransientError):
            runner.run(job, deadline=time.monotonic() + 600, wait_if_busy=False)
    finally:
        proxy.close()
    row = JobStore(backend_world.table).get(job_id)
    # Released for the retry: the lease given back, the error kept, nothing encoded.
    assert (row["status"], row["lease_expires_at"], row["processing_stage"]) == ("PROCESSING", 0, "queued"), row
    assert "while ffmpeg read it" in row["last_error"] and "output_s3_urls" not in row, row
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    assert not s3.list_objects_v2(Bucket=backend_world.bucket, Prefix=f"processed/{job_id}/").get(
        "Contents")


def test_a_throttled_lease_renewal_does_not_stop_an_item_but_a_lost_claim_does(claimed, backend_world):
    store, claim, job = claimed
    proxy = FaultProxy(os.environ["AWS_ENDPOINT_URL"])
    try:
        through_proxy = JobStore(backend_world.table, boto3.resource(
            "dynamodb", endpoint_url=proxy.url, config=Config(retries={"total_max_attempts": 1})))
        proxy.fail(429, match=lambda exchange: exchange.target.endswith(".UpdateItem"))
        with pytest.raises(TransientError):
            through_proxy.renew(job.job_id, claim.attempt_id)
        _Heartbeat(job.job_id, lambda: through_proxy.renew(job.job_id, claim.attempt_id), 0)()
        assert len(proxy.sent(lambda exchange: exchange.status == 429)) == 2
        proxy.heal()
        with pytest.raises(ClaimLostError):
            _Heartbeat(job.job_id, lambda: through_proxy.renew(job.job_id, "another-attempt"), 0)()
    finally:
        proxy.close()


def test_a_short_job_keeps_the_single_pass_with_fanout_configured(backend_world, job_id, tmp_path):
    """12 s in 3 segments, below the default thresholds (4 segments, 120 s): encoded in one pass.
    No state machine exists in moto, so a start would have failed the job."""
    key = f"uploads/user-1/{job_id}.mp4"
    backend.upload_video(str(make_video(tmp_path / "clip.mp4", duration=12.0)), key, backend_world.bucket)
    backend.put_job_row(job_id, key, table=backend_world.table)
    job = make_job(job_id=job_id, s3_key=key, bucket=backend_world.bucket, cutting_options={
        "type": "fixed", "duration_seconds": 4})
    runner = build_runner("lambda")
    runner.fanout = FanoutStarter(FanoutSettings("video-processor-fanout", 4, 120), FUNCTION_ARN)
    outcome = runner.run(job, deadline=time.monotonic() + 600, wait_if_busy=False)
    assert outcome.status == "completed" and len(outcome.output_keys) == 3, outcome
    row = JobStore(backend_world.table).get(job_id)
    assert row["status"] == "COMPLETED" and "lambda_invocations" not in row and "segments_done" not in row


def test_an_item_uploading_as_the_job_fails_removes_its_own_keys(claimed, tmp_path, monkeypatch):
    """The race the claim check before uploading leaves: the fail step runs between that check
    and the item's upload (on the wire, as the upload's PUT arrives), so the fail step removed
    the job's keys before these existed; the item finds its job FAILED under its own attempt
    and removes them."""
    store, claim, job, clip, proxy = s3_through_a_proxy(claimed, tmp_path, monkeypatch)
    try:
        steps = FanoutSteps(build_runner("lambda"))
        media = media_to_dict(probe_upload(steps.runner.storage, job.s3_key))
        steps.run(step(job, claim.attempt_id, "prepare", media=media), time.monotonic() + 600)
        failed_elsewhere = {"Error": "StepFailed", "Cause": json.dumps({"errorMessage": "ffmpeg_error: another item"})}
        proxy.before(lambda exchange: exchange.method == "PUT" and "/processed/" in exchange.path,
                     lambda: steps.run(step(job, claim.attempt_id, "fail", error=failed_elsewhere),
                                       time.monotonic() + 600))
        with pytest.raises(StepFailed) as lost:
            steps.run(step(job, claim.attempt_id, "item", item={"first": 0, "count": 3}, media=media),
                      time.monotonic() + 600)
    finally:
        proxy.close()
    assert lost.value.error_type == "claim_lost"
    row = store.get(job.job_id)
    assert (row["status"], row["error_type"]) == ("FAILED", "ffmpeg_error")
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    assert not s3.list_objects_v2(Bucket=job.bucket, Prefix=f"processed/{job.job_id}/").get("Contents")
