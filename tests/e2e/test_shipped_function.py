"""The function zip and layer zip, unpacked and run as Lambda runs them, on real jobs."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from celery import Celery

from processor.contract import CELERY_TASK_NAME, FixedCut, make_job
from processor.engine import EncodeSettings, cut
from processor.plan import Segment, plan_boundaries
from processor.probe import probe
from sandbox import backend
from sandbox.lambda_invoker import FunctionSpec, LocalLambda
from sandbox.media import gray_frame
from sandbox.servers import free_port
from tests.jobworld import queue_job

FRAME = 1 / 30



def invoke_async(lambda_client, local_lambda, event) -> str:
    response = lambda_client.invoke(FunctionName=local_lambda.spec.name, InvocationType="Event",
                                    Payload=json.dumps(event))
    assert response["StatusCode"] == 202
    return response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_the_shipped_zips_complete_a_job_in_a_lambda_shaped_process(backend_world, local_lambda, lambda_client,
                                                                     clip, job_id):
    queued = queue_job(backend_world, clip, job_id)
    request_id = invoke_async(lambda_client, local_lambda, queued.event(
        text_strategy="unique_for_all", text_input={"unique_texts": ["one: 'quoted'", "two %{pts}"]}))
    local_lambda.wait_idle(120)
    invocation = local_lambda.invocations[request_id]
    assert invocation.status == "succeeded", (invocation.error, invocation.logs[-1].read_text()[-3000:])
    assert invocation.result["status"] == "completed"
    row = queued.row()
    assert row["status"] == "COMPLETED" and row["processed_by"] == "lambda"
    assert row["output_s3_urls"] == [f"processed/{job_id}/segment_{i:03d}.mp4" for i in range(3)]
    assert queued.segment_keys() == row["output_s3_urls"]
    # The function logged one JSON line per stage, with its job id.
    logs = [json.loads(line) for line in invocation.logs[-1].read_text().splitlines() if line.startswith("{")]
    assert {"downloading_video", "processing_segment", "uploading_results", "completed"} <= {
        line["stage"] for line in logs if line.get("event") == "stage" and line["job_id"] == job_id}


def test_captions_in_other_scripts_are_drawn_in_lambda_as_on_this_machine(
        backend_world, local_lambda, lambda_client, clip, job_id, tmp_path):
    """The function has no system fonts and no fontconfig setup (hidden as in Lambda): its
    frames carry the same pixels as the engine draws here, where test_captions reads them."""
    texts = ["你好，世界 🎉", "مرحبا بالعالم", "नमस्ते 👍🏽"]
    queued = queue_job(backend_world, clip, job_id)
    request_id = invoke_async(lambda_client, local_lambda, queued.event(
        text_strategy="unique_for_all", text_input={"unique_texts": texts}))
    local_lambda.wait_idle(120)
    invocation = local_lambda.invocations[request_id]
    assert invocation.status == "succeeded", (invocation.error, invocation.logs[-1].read_text()[-3000:])
    keys = queued.row()["output_s3_urls"]
    bounds = plan_boundaries(probe(clip).duration, FixedCut(2), job_id)
    here = cut(clip, [Segment(i, a, b, texts[i]) for i, (a, b) in enumerate(bounds)], tmp_path / "here",
               EncodeSettings())
    bare = cut(clip, [Segment(i, a, b) for i, (a, b) in enumerate(bounds)], tmp_path / "bare", EncodeSettings())
    assert len(keys) == len(here) == 3
    for key, drawn_here, without in zip(keys, here, bare):
        downloaded = tmp_path / key.rsplit("/", 1)[-1]
        boto3.client("s3").download_file(queued.bucket, key, str(downloaded))
        assert gray_frame(downloaded, index=10) == gray_frame(drawn_here.path, index=10), key
        assert gray_frame(downloaded, index=10) != gray_frame(without.path, index=10), key


def test_lambda_and_celery_give_the_same_segments_and_rows(backend_world, local_lambda, lambda_client,
                                                           celery_queue, redis_url, clip, job_id):
    """The same job (same id: the same random plan) through each backend in turn."""
    options = {"type": "random", "min_duration": 1, "max_duration": 3}
    texts = {"strategy": "base_vary", "base_text": "base", "unique_texts": ["a", "b"]}
    queued = queue_job(backend_world, clip, job_id)
    invoke_async(lambda_client, local_lambda, queued.event(cutting_options=options, text_strategy="base_vary",
                                                           text_input=texts))
    lambda_row = queued.wait_for("COMPLETED")
    queue_job(backend_world, clip, job_id)  # the backend writes a fresh QUEUED row for the rerun
    job = make_job(job_id=job_id, s3_key=queued.s3_key, cutting_options=options, text_strategy="base_vary",
                   text_input=texts, user_id="user-1")
    Celery(broker=redis_url).send_task(CELERY_TASK_NAME, args=job.celery_args(), task_id=job_id, queue=celery_queue)
    celery_row = queued.wait_for("COMPLETED")
    assert (lambda_row["processed_by"], celery_row["processed_by"]) == ("lambda", "celery")
    # The same attributes, but for the memory Lambda bills by (the report's cost), which a worker has not.
    assert set(celery_row) == set(lambda_row) - {"processing_memory_mb"}
    assert lambda_row["processing_memory_mb"] == local_lambda.spec.memory_mb
    assert celery_row["output_s3_urls"] == lambda_row["output_s3_urls"]
    assert celery_row["segments_created"] == lambda_row["segments_created"] > 1
    for ours, theirs in zip(celery_row["segment_durations"], lambda_row["segment_durations"]):
        assert abs(float(ours) - float(theirs)) <= FRAME


def test_an_event_delivered_twice_is_processed_once(backend_world, local_lambda, lambda_client, clip, job_id):
    queued = queue_job(backend_world, clip, job_id)
    request_id = invoke_async(lambda_client, local_lambda, queued.event())
    duplicate = local_lambda.redeliver(request_id)  # at-least-once delivery: the same event again, at once
    local_lambda.wait_idle(120)
    row = queued.wait_for("COMPLETED")
    assert row["processing_attempts"] == 1
    assert queued.object_versions() == row["segments_created"]
    deliveries = [local_lambda.invocations[request_id], duplicate]
    assert sorted(delivery.result["status"] for delivery in deliveries) == ["completed", "skipped"]


def test_a_job_sent_to_both_backends_is_processed_once(backend_world, local_lambda, lambda_client, celery_queue,
                                                       redis_url, clip, job_id):
    """What a fallback after a lost Lambda reply produces: the event queued in Lambda and the task in Celery."""
    queued = queue_job(backend_world, clip, job_id)
    job = make_job(job_id=job_id, s3_key=queued.s3_key, bucket=backend.DEFAULT_BUCKET)
    invoke_async(lambda_client, local_lambda, job.to_event())
    Celery(broker=redis_url).send_task(CELERY_TASK_NAME, args=job.celery_args(), task_id=job_id, queue=celery_queue)
    row = queued.wait_for("COMPLETED")
    local_lambda.wait_idle(120)
    time.sleep(1.0)  # the Celery task, if it lost the race, has finished skipping by now
    row = queued.row()
    assert row["status"] == "COMPLETED" and row["processing_attempts"] == 1
    assert queued.object_versions() == row["segments_created"]


def test_a_permanent_error_is_not_retried(backend_world, local_lambda, lambda_client, clip, job_id):
    queued = queue_job(backend_world, clip, job_id)
    boto3.client("s3").delete_object(Bucket=queued.bucket, Key=queued.s3_key)
    request_id = invoke_async(lambda_client, local_lambda, queued.event())
    local_lambda.wait_idle(120)
    row = queued.row()
    assert (row["status"], row["error_type"]) == ("FAILED", "input_not_found")
    assert local_lambda.invocations[request_id].attempts == 1
    assert local_lambda.failures == []


def test_a_transient_failure_is_retried_and_the_last_attempt_fails_the_job(
        moto, declared, shipped_zips, backend_world, clip, job_id, tmp_path):
    """S3 unreachable from the function: Lambda's two retries run, and the third attempt (the
    declared MAX_ATTEMPTS) fails the job instead of leaving it PROCESSING."""
    layer_zip, code_zip = shipped_zips
    spec = FunctionSpec.declared(declared.named("video-processor").inputs, declared.function_environment, code_zip,
                                 layer_zip, timeout_seconds=60, retry_delays=(0.2, 0.2))
    unreachable_s3 = {**moto.environment(), "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}",
                      "AWS_MAX_ATTEMPTS": "1"}
    queued = queue_job(backend_world, clip, job_id)
    with LocalLambda(spec, unreachable_s3, tmp_path / "lambda") as broken:
        request_id = broken.invoke_async(queued.event())
        broken.wait_idle(120)
    invocation = broken.invocations[request_id]
    assert invocation.attempts == 3
    assert invocation.result["status"] == "failed"
    row = queued.row()
    assert (row["status"], row["error_type"]) == ("FAILED", "transient_error")
    assert row["processing_attempts"] == 3
    assert row["error_message"].startswith("gave up after 3 attempts")
