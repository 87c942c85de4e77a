"""base_vary on both backends, against the local Gemini: the function zip with the environment the
Pulumi program declares (Vertex AI through workload identity federation from the function's
AWS credentials), and a real Celery worker with the backend's variables (Vertex AI with
application default credentials). Same job shape, same texts, whichever ran it; a job another
backend started keeps the texts that backend stored.
"""

from __future__ import annotations

import json
import os
import uuid
from urllib.parse import unquote

import boto3
import pytest
from celery import Celery

from infra.mocked import MINIMAL_CONFIG, run_program
from processor.contract import CELERY_TASK_NAME, make_job
from processor.jobs import JobStore
from processor.variations import TextVariations
from sandbox import backend
from sandbox.gemini import (IMPERSONATED_TOKEN, SERVICE_ACCOUNT_TOKEN, FakeGemini, external_account_config,
                            service_account_key)
from sandbox.lambda_invoker import FunctionSpec, InvokerUnavailable, LocalLambda
from sandbox.servers import ServerUnavailable
from sandbox.workers import celery_worker
from tests.jobworld import queue_job

BASE_VARY = {"strategy": "base_vary", "base_text": "Buy now", "context": "sales"}
CUT = {"type": "fixed", "duration_seconds": 2}
MODEL_TEXTS = ["Buy now", "Buy now (take 1)", "Buy now (take 2)"]
MODEL_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_API_KEY", "GEMINI_API_KEY",
                   "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CREDENTIAL_CONFIG")


@pytest.fixture(scope="module")
def gemini():
    with FakeGemini() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_gemini(gemini):
    gemini.behaviour = "variations"
    gemini.requests.clear()


@pytest.fixture(scope="module")
def model_lambda(moto, gemini, shipped_zips, tmp_path_factory):
    """The shipped zips with the function environment the program declares for this stack configuration."""
    declaration = run_program({**MINIMAL_CONFIG, "textVariations": {
        "project": "video-share", "location": "us-central1", "credentialConfig": external_account_config(gemini.url),
        "baseUrl": gemini.url, "timeoutSeconds": 5}})
    layer_zip, code_zip = shipped_zips
    spec = FunctionSpec.declared(declaration.named("video-processor").inputs, declaration.function_environment,
                                 code_zip, layer_zip, retry_delays=(0.5, 0.5))
    try:
        with LocalLambda(spec, moto.environment(), tmp_path_factory.mktemp("model-lambda")) as running:
            yield running
    except InvokerUnavailable as error:
        pytest.fail(f"cannot run the function as Lambda does: {error}")


@pytest.fixture(scope="module")
def model_worker(moto, redis_url, gemini, tmp_path_factory):
    """A Celery worker configured as the Railway worker is today: GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_LOCATION, ADC."""
    queue = f"e2e-text-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("model-worker")
    env = {name: value for name, value in os.environ.items() if name not in MODEL_VARIABLES}
    env.update(moto.environment())
    env.update({"CELERY_BROKER_URL": redis_url, "S3_BUCKET_NAME": backend.DEFAULT_BUCKET,
                "DYNAMODB_TABLE_NAME": backend.DEFAULT_TABLE, "GOOGLE_CLOUD_PROJECT": "video-share",
                "GOOGLE_CLOUD_LOCATION": "us-central1", "TEXT_VARIATIONS_BASE_URL": gemini.url,
                "GOOGLE_APPLICATION_CREDENTIALS": str(service_account_key(folder / "key.json", f"{gemini.url}/token")),
                "CLOUDSDK_CONFIG": str(folder / "gcloud")})
    client = Celery("text-variations-test", broker=redis_url)
    try:
        with celery_worker(env, folder / "worker.log", queue=queue):
            yield lambda job: client.send_task(CELERY_TASK_NAME, args=job.celery_args(), task_id=job.job_id,
                                               queue=queue)
    except ServerUnavailable as error:
        pytest.fail(str(error))


def celery_job(queued):
    return make_job(job_id=queued.job_id, s3_key=queued.s3_key, cutting_options=CUT, text_strategy="base_vary",
                    text_input=BASE_VARY, user_id="user-1")


def test_lambda_asks_vertex_ai_through_federation_and_stores_the_texts(moto, backend_world, model_lambda, gemini,
                                                                       clip, job_id):
    queued = queue_job(backend_world, clip, job_id)
    request_id = model_lambda.invoke_async(queued.event(cutting_options=CUT, text_strategy="base_vary",
                                                        text_input=BASE_VARY))
    row = queued.wait_for("COMPLETED")
    model_lambda.wait_idle(60)
    assert model_lambda.invocations[request_id].result["status"] == "completed"
    assert (row["text_variations"], row["text_variations_source"]) == (MODEL_TEXTS, "model")
    [call] = gemini.model_calls()
    assert call.path == "/v1beta1/projects/video-share/locations/us-central1/publishers/google/models/" \
                        "gemini-2.5-flash:generateContent"
    assert call.headers["authorization"] == f"Bearer {IMPERSONATED_TOKEN}"
    # The Google token was obtained with the function's own AWS credentials, as Lambda gives them.
    exchange = gemini.token_requests()[0]
    subject = json.loads(unquote(exchange.form()["subject_token"]))
    authorization = {h["key"]: h["value"] for h in subject["headers"]}["Authorization"]
    assert f"Credential={moto.environment()['AWS_ACCESS_KEY_ID']}/" in authorization


def test_the_celery_worker_asks_vertex_ai_with_default_credentials_and_gives_the_same_texts(
        backend_world, model_worker, gemini, clip, job_id):
    queued = queue_job(backend_world, clip, job_id)
    model_worker(celery_job(queued))
    row = queued.wait_for("COMPLETED")
    assert row["processed_by"] == "celery"
    assert (row["text_variations"], row["text_variations_source"]) == (MODEL_TEXTS, "model")
    [call] = gemini.model_calls()
    assert call.headers["authorization"] == f"Bearer {SERVICE_ACCOUNT_TOKEN}"


@pytest.mark.parametrize("behaviour", ["error500", "garbage"])
def test_a_failing_model_never_fails_a_job_on_either_backend(backend_world, model_lambda, model_worker, gemini,
                                                             clip, behaviour):
    gemini.behaviour = behaviour
    on_lambda, on_celery = (queue_job(backend_world, clip, str(uuid.uuid4())) for _ in range(2))
    model_lambda.invoke_async(on_lambda.event(cutting_options=CUT, text_strategy="base_vary", text_input=BASE_VARY))
    model_worker(celery_job(on_celery))
    rows = [on_lambda.wait_for("COMPLETED"), on_celery.wait_for("COMPLETED")]
    model_lambda.wait_idle(60)
    for row in rows:
        assert row["text_variations"] == ["Buy now"] * 3 and row["segments_created"] == 3
        assert row["text_variations_source"] == "fallback"
    assert rows[0]["text_variations_reason"] == rows[1]["text_variations_reason"]


def test_a_job_the_worker_started_keeps_its_stored_texts_when_lambda_takes_over(backend_world, model_lambda, gemini,
                                                                                 clip, job_id):
    queued = queue_job(backend_world, clip, job_id)
    store = JobStore(queued.table, boto3.resource("dynamodb"))
    # A Celery attempt stored its texts and died (a redeploy); its lease is gone.
    assert store.claim(job_id, "celery-attempt", "celery").claimed
    stored = TextVariations(("Buy now", "From the worker", "Also"), "model")
    store.save_text_variations(job_id, "celery-attempt", stored)
    store.release(job_id, "celery-attempt", "worker redeployed")
    model_lambda.invoke_async(queued.event(cutting_options=CUT, text_strategy="base_vary", text_input=BASE_VARY))
    row = queued.wait_for("COMPLETED")
    model_lambda.wait_idle(60)
    assert row["processed_by"] == "lambda" and row["processing_attempts"] == 2
    assert row["text_variations"] == ["Buy now", "From the worker", "Also"]
    assert gemini.requests == []
