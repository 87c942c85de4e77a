"""The progress the backend's processing page sees, from both backends, on real jobs.

A Lambda job runs from the built zips in the Lambda-shaped process and publishes to Redis as
deployed: the URL comes from the SecureString parameter the Pulumi program declares. A Celery
job runs on a real worker with the Railway worker's REDIS_URL. For each, a completed and a
failed job: every message on ``job_progress_{job_id}`` and every one `router.progress_events`
yields validates as the backend's ``ProgressUpdate``; ``completed`` lists the row's keys in
order, ``failed`` carries the row's reason.
"""

from __future__ import annotations

import json

import pytest
from celery import Celery

from processor.contract import CELERY_TASK_NAME, make_job
from sandbox.media import make_not_a_video
from tests.jobworld import queue_job
from tests.progress_checks import ChannelRecorder, HelperRecorder, assert_no_repeats, check_job_messages


@pytest.fixture(scope="module")
def not_a_video(tmp_path_factory):
    return make_not_a_video(tmp_path_factory.mktemp("e2e-bad") / "notes.mp4")


def send(backend, queued, redis_url, lambda_client, local_lambda, celery_queue):
    options = {"cutting_options": {"type": "fixed", "duration_seconds": 2}, "text_strategy": "one_for_all",
               "text_input": {"strategy": "one_for_all", "base_text": "progress"}}
    if backend == "lambda":
        response = lambda_client.invoke(FunctionName=local_lambda.spec.name, InvocationType="Event",
                                        Payload=json.dumps(queued.event(**options)))
        assert response["StatusCode"] == 202
    else:
        job = make_job(job_id=queued.job_id, s3_key=queued.s3_key, user_id="user-1", **options)
        Celery(broker=redis_url).send_task(CELERY_TASK_NAME, args=job.celery_args(), task_id=queued.job_id,
                                           queue=celery_queue)


@pytest.mark.parametrize("backend", ["lambda", "celery"])
@pytest.mark.parametrize("outcome", ["completed", "failed"])
def test_a_real_job_tells_the_page_everything_in_todays_shape(
        backend, outcome, backend_world, progress_parameter, local_lambda, lambda_client, celery_queue, redis_url,
        clip, not_a_video, job_id):
    queued = queue_job(backend_world, clip if outcome == "completed" else not_a_video, job_id)
    channel = ChannelRecorder(redis_url, job_id)
    helper = HelperRecorder(job_id, redis_url=redis_url, table=backend_world.table)
    send(backend, queued, redis_url, lambda_client, local_lambda, celery_queue)

    published = channel.until_terminal()
    row = queued.wait_for(outcome.upper())
    assert row["processed_by"] == backend
    on_channel = check_job_messages(published, row, job_id=job_id)
    streamed = helper.result()
    check_job_messages(streamed, row, job_id=job_id)
    assert_no_repeats(streamed)

    stages = [update.stage for update in on_channel]
    if outcome == "completed":
        assert stages[:4] == ["queued", "downloading_video", "analyzing_duration", "processing_segment"]
        assert stages[-2:] == ["uploading_results", "completed"]
        assert [len(u.output_urls) for u in on_channel if u.stage == "segment_uploaded"] == [1, 2, 3]
        assert on_channel[-1].output_urls == [f"processed/{job_id}/segment_{i:03d}.mp4" for i in range(3)]
        assert (row["processing_stage"], row["current_segment"], row["total_segments"]) == ("completed", 3, 3)
    else:
        assert stages == ["queued", "downloading_video", "analyzing_duration", "failed"]
        assert row["error_type"] == "not_a_video"
        assert row["processing_stage"] == "failed"
    # What the page shows last is the same whichever way it came.
    assert streamed[-1]["stage"] == on_channel[-1].stage
    assert streamed[-1]["output_urls"] == on_channel[-1].output_urls
    assert streamed[-1]["error_message"] == on_channel[-1].error_message
