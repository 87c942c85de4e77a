"""Router-only fixtures: moto's Docker-free Lambda, fault proxies, a private Celery queue.

moto's server runs Lambda functions in Docker unless told otherwise; its ``/moto-api/config``
switches it (for the whole server process) to the Docker-free backend, which accepts every
invoke and answers an async one with 202 and the event it received. The proxy in front of it
records each invocation as it crossed the wire, which is what the tests assert on.
"""

from __future__ import annotations

import io
import json
import os
import time
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any, Iterator

import boto3
import pytest
import redis
from kombu import Connection

from processor.contract import Job, make_job
from router.backends import CeleryBackend, LambdaBackend, celery_app, lambda_client
from router.dispatch import Router
from router.flags import RouterFlags
from router.live_flags import LiveFlags
from router.record import JobTable
from sandbox import backend
from sandbox.servers import MotoServer
from tests.router.faultproxy import Exchange, FaultProxy

FUNCTION_NAME = "video-processor"
S3_KEY = "uploads/user-1/video.mp4"
ASSUME_LAMBDA = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def moto_config(endpoint: str, change: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(f"{endpoint}/moto-api/config", method="POST" if change else "GET",
                                     data=json.dumps(change).encode() if change else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def lambda_function(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The processor's function in moto's Docker-free Lambda, named in the backend's variable."""
    previous = moto_config(aws.endpoint)["lambda"]
    moto_config(aws.endpoint, {"lambda": {"use_docker": False}})
    role = boto3.client("iam").create_role(RoleName="video-processor-role",
                                           AssumeRolePolicyDocument=ASSUME_LAMBDA)["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    boto3.client("lambda").create_function(FunctionName=FUNCTION_NAME, Runtime="python3.12", Role=role,
                                           Handler="handler.handler", Code={"ZipFile": package.getvalue()})
    monkeypatch.setenv("VIDEO_PROCESSOR_FUNCTION_NAME", FUNCTION_NAME)
    yield FUNCTION_NAME
    moto_config(aws.endpoint, {"lambda": previous})


def _proxy_for(service: str, aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    proxy = FaultProxy(aws.endpoint)
    monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", proxy.url)
    yield proxy
    proxy.close()


@pytest.fixture
def lambda_proxy(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """Every Lambda call of clients created from now on goes through this proxy."""
    yield from _proxy_for("LAMBDA", aws, monkeypatch)


@pytest.fixture
def ssm_proxy(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    yield from _proxy_for("SSM", aws, monkeypatch)


@pytest.fixture
def s3_proxy(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    yield from _proxy_for("S3", aws, monkeypatch)


def invocations(proxy: FaultProxy) -> list[Exchange]:
    """Async invokes moto accepted: recorded on the wire, answered 202 with the event echoed."""
    return proxy.sent(lambda exchange: exchange.path.endswith("/invocations") and exchange.status == 202)


@pytest.fixture
def flags_parameter(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"/video-processor/router-flags-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("ROUTER_FLAGS_PARAMETER", name)
    return name


@dataclass
class CeleryQueue:
    """A queue of its own on the shared Redis, read back with a real kombu consumer."""

    broker_url: str
    name: str

    def messages(self, expected: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        found = []
        with Connection(self.broker_url) as connection:
            queue = connection.SimpleQueue(self.name)
            try:
                for _ in range(expected):
                    message = queue.get(block=True, timeout=timeout)
                    args, kwargs, _ = message.decode()
                    found.append({"task": message.headers["task"], "id": message.headers["id"],
                                  "args": args, "kwargs": kwargs})
                    message.ack()
            finally:
                queue.close()
        return found

    def depth(self) -> int:
        return redis.Redis.from_url(self.broker_url).llen(self.name)


@pytest.fixture
def celery_queue(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CeleryQueue]:
    queue = CeleryQueue(redis_url, f"router-test-{uuid.uuid4().hex}")
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url)
    monkeypatch.setenv("VIDEO_PROCESSOR_CELERY_QUEUE", queue.name)
    yield queue
    redis.Redis.from_url(redis_url).delete(queue.name, f"_kombu.binding.{queue.name}")


def make_router(flags: RouterFlags | LiveFlags, table: str, *, broker_url: str, queue: str | None = None,
                bucket: str | None = backend.DEFAULT_BUCKET, **lambda_config: Any) -> Router:
    """A router on real clients; the Lambda client reaches whatever AWS_ENDPOINT_URL_LAMBDA says."""
    return Router(flags=flags,
                  lambda_backend=LambdaBackend(FUNCTION_NAME, lambda_client(**lambda_config)),
                  celery_backend=CeleryBackend(app=celery_app(broker_url), queue=queue),
                  table=JobTable(name=table), bucket=bucket)


def upload(job_id: str, **overrides: Any) -> dict[str, Any]:
    """The backend's upload-complete request for one job, as a mapping."""
    return {"job_id": job_id, "s3_key": S3_KEY, "user_id": "user-1", "file_size": 5_000_000,
            "cutting_options": {"type": "fixed", "duration_seconds": 20}, "text_strategy": "one_for_all",
            "text_input": {"strategy": "one_for_all", "base_text": "hello", "context": None, "unique_texts": []},
            **overrides}


def expected_job(job_id: str, **overrides: Any) -> Job:
    return make_job(**upload(job_id, **overrides), bucket=backend.DEFAULT_BUCKET, source="router")


def put_flags(name: str, document: Any) -> int:
    """Another writer (a console, another operator) changing the parameter directly in moto."""
    text = document if isinstance(document, str) else json.dumps(document)
    ssm = boto3.client("ssm", endpoint_url=os.environ["AWS_ENDPOINT_URL"])  # not through a proxy
    return ssm.put_parameter(Name=name, Value=text, Type="String", Overwrite=True)["Version"]


def wait_for(condition: Any, timeout: float = 10.0) -> bool:
    """Poll ``condition`` the way requests would: every 20 ms, until it holds or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
