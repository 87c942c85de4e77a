"""The Lambda handler against a real moto server and the real pinned ffmpeg.

Covers the contract with the backend's job row, duplicate delivery, retry after a transient
error, a timeout about to strike, and inputs that must fail cleanly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime

import boto3
import pytest

from processor import handler, limits
from processor.handler import lambda_handler
from processor.probe import probe
from sandbox import backend
from sandbox.servers import free_port
from tests.jobworld import LambdaContext, queue_job
from tests.processes import kill_first_ffmpeg
from tests.progress_checks import ChannelRecorder, check_job_messages
from sandbox.media import make_not_a_video, make_video


@pytest.fixture(scope="session")
def short_video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("media") / "short.mp4", duration=5.0)


@pytest.fixture
def queued(backend_world, short_video, job_id):
    return queue_job(backend_world, short_video, job_id)


def test_job_completes_with_ordered_keys_and_the_backends_attributes_kept(queued):
    before = queued.row()
    result = lambda_handler(queued.event(), LambdaContext())
    row = queued.row()
    keys = [f"processed/{queued.job_id}/segment_{i:03d}.mp4" for i in range(3)]
    assert result["status"] == "completed" and result["output_keys"] == keys
    assert row["status"] == "COMPLETED"
    assert row["output_s3_urls"] == keys
    assert row["segments_created"] == 3
    assert [float(d) for d in row["segment_durations"]] == pytest.approx([2, 2, 1], abs=0.05)
    assert row["progress_percentage"] == 100
    for name in ("user_id", "created_at", "bucket_location", "filename", "file_size", "upload_date"):
        assert row[name] == before[name], name
    assert row["updated_at"].endswith("Z") and row["completed_at"].endswith("Z")
    assert row["processed_by"] == "lambda"
    assert queued.segment_keys() == keys
    head = boto3.client("s3").head_object(Bucket=queued.bucket, Key=keys[0])
    assert head["ContentType"] == "video/mp4"


def emf_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith('{"_aws"')]


def test_the_row_and_an_emf_line_record_what_the_report_needs(queued, monkeypatch, capfd):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
    capfd.readouterr()
    lambda_handler(queued.event(), LambdaContext())
    row = queued.row()
    assert (row["processed_by"], row["processing_memory_mb"]) == ("lambda", 3008)
    assert float(row["input_duration_seconds"]) == pytest.approx(5.0, abs=0.05)
    started, finished = (datetime.strptime(row[name], "%Y-%m-%dT%H:%M:%S.%fZ")
                         for name in ("processing_started_at", "completed_at"))
    # Measured by the attempt itself: within the claim-to-completion span of the row's timestamps.
    assert 0 < float(row["processing_seconds"]) <= (finished - started).total_seconds() + 0.01
    [line] = emf_lines(capfd.readouterr().out)
    assert line["_aws"]["CloudWatchMetrics"] == [{"Namespace": "VideoProcessor", "Dimensions": [["Backend"]],
                                                  "Metrics": [{"Name": "Jobs", "Unit": "Count"},
                                                              {"Name": "Failures", "Unit": "Count"},
                                                              {"Name": "ProcessingTime", "Unit": "Seconds"},
                                                              {"Name": "VideoSeconds", "Unit": "Seconds"}]}]
    assert (line["Backend"], line["Jobs"], line["Failures"], line["job_id"]) == ("lambda", 1, 0, queued.job_id)
    assert line["ProcessingTime"] == float(row["processing_seconds"])
    assert line["VideoSeconds"] == pytest.approx(5.0, abs=0.05)


def test_a_failed_job_counts_as_a_failure_with_its_duration(backend_world, tmp_path, job_id, capfd):
    queued = queue_job(backend_world, make_not_a_video(tmp_path / "not-a-video.mp4"), job_id)
    capfd.readouterr()
    assert lambda_handler(queued.event(), LambdaContext())["status"] == "failed"
    row = queued.row()
    assert float(row["processing_seconds"]) > 0 and "processing_memory_mb" not in row
    [line] = emf_lines(capfd.readouterr().out)
    assert (line["Jobs"], line["Failures"], line["error_type"]) == (1, 1, row["error_type"])
    assert "VideoSeconds" not in line and line["ProcessingTime"] == float(row["processing_seconds"])


def test_duplicate_delivery_of_a_completed_job_changes_nothing(queued):
    assert lambda_handler(queued.event(), LambdaContext())["status"] == "completed"
    row, versions = queued.row(), queued.object_versions()
    again = lambda_handler(queued.event(), LambdaContext())
    assert again["status"] == "skipped"
    assert queued.row() == row
    assert queued.object_versions() == versions


def hold(queued, attempt: str, lease_seconds: float) -> None:
    """Another attempt's claim, as its claim would have written it."""
    boto3.resource("dynamodb").Table(queued.table).update_item(
        Key={"video_id": queued.job_id},
        UpdateExpression="SET #s = :p, processing_attempt_id = :a, lease_expires_at = :l",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":p": "PROCESSING", ":a": attempt, ":l": int(time.time() + lease_seconds)})


def test_a_job_held_by_a_live_attempt_is_waited_for_then_handed_back_to_the_retry(queued):
    hold(queued, "other", lease_seconds=600)
    row = queued.row()
    with pytest.raises(Exception) as raised:
        lambda_handler(queued.event(), LambdaContext(remaining_seconds=handler.SAFETY_MARGIN_SECONDS + 2))
    assert type(raised.value).__name__ == "JobBusyError"  # retryable: Lambda will deliver it again
    assert queued.row() == row
    assert queued.segment_keys() == []


def test_a_duplicate_waits_for_a_lapsing_lease_and_takes_the_job_over(queued):
    hold(queued, "went-silent", lease_seconds=2)
    assert lambda_handler(queued.event(), LambdaContext())["status"] == "completed"
    assert queued.row()["status"] == "COMPLETED"


def test_a_killed_attempt_stops_renewing_and_its_retry_finishes_the_job(backend_world, tmp_path, job_id, moto):
    """SIGKILL in the middle of ffmpeg (an out-of-memory kill, a redeployed worker)."""
    long_video = make_video(tmp_path / "long.mp4", duration=40.0, width=640, height=360)
    queued = queue_job(backend_world, long_video, job_id)
    event = queued.event(cutting_options={"type": "fixed", "duration_seconds": 10})
    env = {**os.environ, "JOB_LEASE_SECONDS": "3"}
    script = ("import json, sys; from processor.handler import lambda_handler; from tests.jobworld import LambdaContext; "
              "lambda_handler(json.loads(sys.argv[1]), LambdaContext())")
    child = subprocess.Popen([sys.executable, "-c", script, json.dumps(event)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while (queued.row() or {}).get("processing_stage") != "processing_segment":
        assert time.monotonic() < deadline and child.poll() is None, "the first attempt never reached ffmpeg"
        time.sleep(0.05)
    child.kill()
    child.wait()
    assert queued.row()["status"] == "PROCESSING"
    os.environ["JOB_LEASE_SECONDS"] = "3"
    try:
        result = lambda_handler(event, LambdaContext())
    finally:
        del os.environ["JOB_LEASE_SECONDS"]
    row = queued.row()
    assert result["status"] == "completed"
    assert (row["status"], row["processing_attempts"], row["segments_created"]) == ("COMPLETED", 2, 4)


def test_a_key_that_is_not_the_jobs_upload_is_refused(queued):
    other = "uploads/someone-else/their-video.mp4"
    boto3.client("s3").copy_object(Bucket=queued.bucket, Key=other, CopySource={"Bucket": queued.bucket,
                                                                                 "Key": queued.s3_key})
    lambda_handler(queued.event(s3_key=other), LambdaContext())
    row = queued.row()
    assert (row["status"], row["error_type"]) == ("FAILED", "invalid_job")
    assert row["error_message"].startswith("s3_key:") and queued.s3_key in row["error_message"]
    assert queued.segment_keys() == []


def test_an_expired_claim_is_taken_over(queued):
    hold(queued, "killed", lease_seconds=-1)
    assert lambda_handler(queued.event(), LambdaContext())["status"] == "completed"
    assert queued.row()["status"] == "COMPLETED"


def test_a_bad_event_fails_the_job_naming_the_field(queued):
    result = lambda_handler(queued.event(cutting_options={"type": "fixed", "duration_seconds": 0}), LambdaContext())
    row = queued.row()
    assert result["status"] == "failed"
    assert row["status"] == "FAILED"
    assert row["error_type"] == "invalid_job"
    assert row["error_message"].startswith("cutting_options.duration_seconds:")
    assert queued.segment_keys() == []


def test_an_event_for_another_bucket_is_refused(queued):
    result = lambda_handler(queued.event(s3_bucket="someone-elses-bucket"), LambdaContext())
    assert result["error_type"] == "invalid_job"
    assert queued.row()["error_message"].startswith("s3_bucket:")


def test_a_file_that_is_not_a_video_fails_cleanly(backend_world, tmp_path, job_id):
    queued = queue_job(backend_world, make_not_a_video(tmp_path / "notes.mp4"), job_id)
    result = lambda_handler(queued.event(), LambdaContext())
    row = queued.row()
    assert result["status"] == "failed"
    assert (row["status"], row["error_type"]) == ("FAILED", "not_a_video")
    assert "lease_expires_at" not in row
    assert queued.segment_keys() == []


def test_a_missing_upload_fails_cleanly(queued):
    boto3.client("s3").delete_object(Bucket=queued.bucket, Key=queued.s3_key)
    lambda_handler(queued.event(), LambdaContext())
    row = queued.row()
    assert (row["status"], row["error_type"]) == ("FAILED", "input_not_found")


def test_a_caption_no_font_can_draw_fails_the_job_before_the_download(queued):
    # Without the upload, a job that downloaded first would fail as input_not_found.
    boto3.client("s3").delete_object(Bucket=queued.bucket, Key=queued.s3_key)
    result = lambda_handler(queued.event(text_strategy="unique_for_all", text_input={
        "unique_texts": ["fine", "our logo \uf8ff"]}), LambdaContext())
    row = queued.row()
    assert result["status"] == "failed"
    assert (row["status"], row["error_type"]) == ("FAILED", "invalid_job")
    assert "U+F8FF (a private-use code point" in row["error_message"]
    assert row["error_message"].startswith("text_input: the caption 'our logo")


def test_no_time_left_fails_the_job_instead_of_leaving_it_processing(queued):
    lambda_handler(queued.event(), LambdaContext(remaining_seconds=handler.SAFETY_MARGIN_SECONDS - 1))
    row = queued.row()
    assert (row["status"], row["error_type"]) == ("FAILED", "timeout")
    assert queued.segment_keys() == []


def test_a_timeout_striking_during_ffmpeg_stops_it_and_fails_the_job(backend_world, tmp_path, job_id, monkeypatch):
    long_video = make_video(tmp_path / "long.mp4", duration=40.0, width=640, height=360)
    queued = queue_job(backend_world, long_video, job_id)
    # The estimate (processor.limits) lets it start: about 1.6 s at veryfast's speed, under the
    # 4 s left; at the slow preset it takes several times that.
    monkeypatch.setenv("VIDEO_PRESET", "slow")
    started = time.monotonic()
    lambda_handler(queued.event(cutting_options={"type": "fixed", "duration_seconds": 5},
                                text_strategy="one_for_all", text_input={"base_text": "slow"}),
                   LambdaContext(remaining_seconds=handler.SAFETY_MARGIN_SECONDS + 4.0))
    row = queued.row()
    assert (row["status"], row["error_type"]) == ("FAILED", "timeout"), row
    # ffmpeg was stopped at the deadline, not left to finish the whole video.
    assert time.monotonic() - started < handler.SAFETY_MARGIN_SECONDS
    assert queued.segment_keys() == []


def test_an_ffmpeg_killed_mid_job_is_retried_and_the_retry_completes(backend_world, tmp_path, job_id, monkeypatch):
    video = make_video(tmp_path / "in.mp4", duration=12.0, width=640, height=360)
    queued = queue_job(backend_world, video, job_id)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
    killer = kill_first_ffmpeg(os.getpid())
    with pytest.raises(Exception) as raised:
        lambda_handler(queued.event(), LambdaContext())
    killer.join()
    assert type(raised.value).__name__ == "FFmpegKilledError"
    row = queued.row()
    assert row["status"] == "PROCESSING" and row["lease_expires_at"] == 0
    assert row["last_error"].startswith("ffmpeg was killed (SIGKILL), most likely out of memory at 3008 MB")
    assert queued.segment_keys() == []
    # Lambda's retry: a fresh invocation with its memory back.
    assert lambda_handler(queued.event(), LambdaContext())["status"] == "completed"
    row = queued.row()
    assert (row["status"], row["processing_attempts"], row["segments_created"]) == ("COMPLETED", 2, 6)


def test_an_ffmpeg_killed_on_the_last_attempt_fails_the_job_saying_what_to_change(queued, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
    monkeypatch.setenv("MAX_ATTEMPTS", "1")
    killer = kill_first_ffmpeg(os.getpid(), after=0.05)
    result = lambda_handler(queued.event(), LambdaContext())
    killer.join()
    row = queued.row()
    assert result["status"] == "failed"
    assert (row["status"], row["error_type"]) == ("FAILED", "ffmpeg_killed")
    assert row["error_message"] == ("gave up after 1 attempts: ffmpeg was killed (SIGKILL), most likely out of "
                                    "memory at 3008 MB; raise function.memoryMb or lower "
                                    "function.maxOutputLongSide (the output size)")
    assert queued.segment_keys() == []


def test_a_video_too_large_for_the_functions_memory_fails_before_encoding(queued, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    result = lambda_handler(queued.event(), LambdaContext())
    row = queued.row()
    assert result["status"] == "failed"
    assert (row["status"], row["error_type"]) == ("FAILED", "input_too_large")
    assert row["error_message"].startswith("encoding this video at 320x240 needs about ")
    assert row["error_message"].endswith(" MB, more than the 128 MB of this function; raise function.memoryMb or "
                                         "lower function.maxOutputLongSide (the output size)")
    assert queued.segment_keys() == []


def test_a_video_too_long_for_the_time_left_fails_at_once_with_the_reason(backend_world, tmp_path, job_id,
                                                                           monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3008")
    # 15 s of 720p per core: about 5 s of encoding at best whatever the machine, over the 2 s left.
    video = make_video(tmp_path / "in.mp4", duration=15.0 * limits.cores(), width=1280, height=720)
    queued = queue_job(backend_world, video, job_id)
    assert limits.estimate(probe(video), probe(video).duration, 1920).wall_seconds(limits.cores()) > 4
    result = lambda_handler(queued.event(), LambdaContext(remaining_seconds=handler.SAFETY_MARGIN_SECONDS + 2.0))
    row = queued.row()
    assert result["status"] == "failed"
    assert (row["status"], row["error_type"]) == ("FAILED", "input_too_large"), row
    assert row["error_message"].startswith("encoding this video at 1280x720 takes about ")
    assert " s left; raise function.memoryMb (more cores)" in row["error_message"]
    assert queued.segment_keys() == []


def test_a_stream_copy_turned_into_an_encode_is_checked_before_encoding(backend_world, tmp_path, job_id,
                                                                        monkeypatch):
    # One keyframe: the copy cannot honour 2 s segments (processor.command.copy_shortfall).
    queued = queue_job(backend_world, make_video(tmp_path / "in.mp4", duration=5.0, keyframe_every=1000), job_id)
    monkeypatch.setenv("VIDEO_STREAM_COPY", "true")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    result = lambda_handler(queued.event(), LambdaContext())
    row = queued.row()
    assert result["status"] == "failed"
    assert (row["status"], row["error_type"]) == ("FAILED", "input_too_large"), row
    assert queued.segment_keys() == []


def test_a_transient_s3_outage_is_retried_and_the_retry_resumes(queued, monkeypatch):
    # A closed port: every S3 call fails to connect, while DynamoDB keeps working.
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(Exception) as raised:
        lambda_handler(queued.event(), LambdaContext())
    assert type(raised.value).__name__ == "TransientError"
    row = queued.row()
    assert row["status"] == "PROCESSING" and row["lease_expires_at"] == 0 and "S3" in row["last_error"]
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    assert lambda_handler(queued.event(), LambdaContext())["status"] == "completed"
    row = queued.row()
    assert row["status"] == "COMPLETED" and row["processing_attempts"] == 2
    assert "last_error" not in row


def test_the_last_attempt_fails_the_job_instead_of_raising(queued, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("MAX_ATTEMPTS", "2")
    with pytest.raises(Exception):
        lambda_handler(queued.event(), LambdaContext())
    result = lambda_handler(queued.event(), LambdaContext())
    row = queued.row()
    assert result["status"] == "failed"
    assert (row["status"], row["error_type"]) == ("FAILED", "transient_error")
    assert row["error_message"].startswith("gave up after 2 attempts")


def test_progress_is_published_in_todays_shape_and_logged_per_stage(queued, redis_url, monkeypatch, capfd):
    monkeypatch.setenv("REDIS_URL", redis_url)
    channel = ChannelRecorder(redis_url, queued.job_id)
    lambda_handler(queued.event(), LambdaContext())
    messages = channel.until_terminal()
    row = queued.row()
    updates = check_job_messages(messages, row, job_id=queued.job_id)
    assert [u.stage for u in updates][:4] == ["queued", "downloading_video", "analyzing_duration",
                                              "processing_segment"]
    assert {"segment_uploaded", "uploading_results", "completed"} <= {u.stage for u in updates}
    # Three 2-second segments of a 5-second clip: the segment the encoder is in as it advances
    # (ffmpeg reports four times a second, so a fast encode may skip one), then each upload
    # with the keys so far.
    encoding = [u.current_segment for u in updates if u.stage == "processing_segment"]
    assert encoding == sorted(encoding) and encoding[0] == 1 and encoding[-1] == 3
    assert [len(u.output_urls) for u in updates if u.stage == "segment_uploaded"] == [1, 2, 3]
    assert {u.total_segments for u in updates if u.total_segments is not None} == {3}
    # The row holds the state of the last message, for the backend's status endpoint.
    assert (row["processing_stage"], row["progress_percentage"], row["current_segment"], row["total_segments"]) == (
        "completed", 100, 3, 3)
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    # One log line per stage.
    stages = [line["stage"] for line in lines if line.get("event") == "stage"]
    assert stages == list(dict.fromkeys(u.stage for u in updates))
    assert all(line["job_id"] == queued.job_id for line in lines)


def test_a_failed_job_publishes_failed_with_the_reason(backend_world, tmp_path, job_id, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    queued = queue_job(backend_world, make_not_a_video(tmp_path / "notes.mp4"), job_id)
    channel = ChannelRecorder(redis_url, job_id)
    lambda_handler(queued.event(), LambdaContext())
    row = queued.row()
    updates = check_job_messages(channel.until_terminal(), row, job_id=job_id)
    assert [u.stage for u in updates] == ["queued", "downloading_video", "analyzing_duration", "failed"]
    assert updates[-1].progress_percentage == updates[-2].progress_percentage  # kept, never falls to 0
    assert (row["processing_stage"], row["progress_percentage"]) == ("failed", updates[-1].progress_percentage)


def test_a_bad_event_publishes_failed_naming_the_field(queued, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    channel = ChannelRecorder(redis_url, queued.job_id)
    lambda_handler(queued.event(cutting_options={"type": "random", "min_duration": 9, "max_duration": 3}),
                   LambdaContext())
    updates = check_job_messages(channel.until_terminal(), queued.row(), job_id=queued.job_id)
    assert [u.stage for u in updates] == ["failed"]
    assert updates[0].error_message.startswith("cutting_options.min_duration:")


def test_a_job_without_a_row_is_waited_for_then_refused_and_nothing_is_cut(backend_world, short_video, job_id,
                                                                            monkeypatch, capfd):
    """The row was never written: no claim creates one, no segment is cut, one log line says why."""
    monkeypatch.setenv("JOB_ROW_WAIT_SECONDS", "1")
    orphan = queue_job(backend_world, short_video, job_id, with_row=False)
    result = lambda_handler(orphan.event(), LambdaContext())
    assert (result["status"], result["error_type"]) == ("refused", "row_missing")
    assert orphan.row() is None and orphan.segment_keys() == []
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    assert [entry["event"] for entry in lines if entry["event"].startswith("row_")] == ["row_awaited", "row_missing"]
    [line] = [entry for entry in lines if entry["event"] == "row_missing"]
    assert line["job_id"] == job_id and line["level"] == "ERROR"
    assert f"has no row in table {backend_world.table} after 1 s: not processed" in line["error"]


def test_a_row_written_a_moment_after_the_event_is_waited_for(backend_world, short_video, job_id):
    """The backend's legacy order: the job is sent first, the row PutItem lands a moment later."""
    orphan = queue_job(backend_world, short_video, job_id, with_row=False)
    late_put = threading.Timer(1.5, lambda: backend.put_job_row(job_id, orphan.s3_key, table=backend_world.table))
    late_put.start()
    try:
        result = lambda_handler(orphan.event(), LambdaContext())
    finally:
        late_put.join()
    row = orphan.row()
    assert result["status"] == "completed"
    assert (row["status"], row["processing_attempts"]) == ("COMPLETED", 1)
    assert row["output_s3_urls"] == orphan.segment_keys() and len(row["output_s3_urls"]) == 3
