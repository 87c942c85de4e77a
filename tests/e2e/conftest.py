"""The built artifacts as `pulumi up` would ship them, run the way Lambda runs them.

The function's settings (handler, environment, timeout) come from the Pulumi program run
under mocks, so a drift between infra and the processor breaks these tests.
"""

from __future__ import annotations

import os
import uuid

import boto3
import pytest
from botocore.config import Config

from infra import function_package
from infra.mocked import MINIMAL_CONFIG, run_program
from layers.ffmpeg import build as layer_build
from sandbox import backend
from sandbox.lambda_invoker import FunctionSpec, InvokerUnavailable, LocalLambda
from sandbox.servers import ServerUnavailable
from sandbox.workers import celery_worker
from sandbox.media import make_video

FUNCTION = "video-processor"


@pytest.fixture(scope="session")
def declared(redis_url):
    """What the Pulumi program declares for the function with the backend's default names, and
    the tests' Redis as the secret ``progressRedisUrl``."""
    declaration = run_program({**MINIMAL_CONFIG, "progressRedisUrl": redis_url}, secrets=["progressRedisUrl"])
    assert declaration.function_environment["S3_BUCKET_NAME"] == backend.DEFAULT_BUCKET
    assert declaration.function_environment["DYNAMODB_TABLE_NAME"] == backend.DEFAULT_TABLE
    return declaration


@pytest.fixture
def progress_parameter(aws, declared):
    """The progress Redis parameter as `pulumi up` creates it (moto is reset for every test)."""
    inputs = declared.named("progress-redis-url").inputs
    boto3.client("ssm").put_parameter(Name=inputs["name"], Type=inputs["type"], Value=inputs["value"])
    return inputs["name"]


@pytest.fixture(scope="session")
def shipped_zips(tmp_path_factory):
    return layer_build.build(), function_package.build(dist=tmp_path_factory.mktemp("function"))


@pytest.fixture(scope="module")
def local_lambda(moto, declared, shipped_zips, tmp_path_factory):
    layer_zip, code_zip = shipped_zips
    spec = FunctionSpec.declared(declared.named(FUNCTION).inputs, declared.function_environment, code_zip, layer_zip,
                                 retry_delays=(0.5, 0.5))
    try:
        with LocalLambda(spec, moto.environment(), tmp_path_factory.mktemp("lambda")) as running:
            yield running
    except InvokerUnavailable as error:
        pytest.fail(f"cannot run the function as Lambda does: {error}")


@pytest.fixture
def lambda_client(local_lambda):
    return boto3.client("lambda", endpoint_url=local_lambda.endpoint,
                        config=Config(retries={"mode": "standard", "max_attempts": 1}))


@pytest.fixture(scope="module")
def celery_queue(moto, redis_url, tmp_path_factory):
    """A real worker on its own queue; yields the queue's name."""
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **moto.environment(), "CELERY_BROKER_URL": redis_url, "REDIS_URL": redis_url,
           "S3_BUCKET_NAME": backend.DEFAULT_BUCKET, "DYNAMODB_TABLE_NAME": backend.DEFAULT_TABLE}
    try:
        with celery_worker(env, tmp_path_factory.mktemp("worker") / "worker.log", queue=queue):
            yield queue
    except ServerUnavailable as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("e2e-media") / "clip.mp4", duration=6.0)
