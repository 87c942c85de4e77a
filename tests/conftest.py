"""Shared fixtures: real servers on loopback (moto for AWS, Redis), the backend's resources.

Each pytest-xdist worker starts its own moto server; the machine's Redis is shared, so tests
that use it pick unique keys, channels and queue names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Iterator

import boto3
import pytest
from botocore.config import Config

from sandbox import backend
from sandbox.servers import MotoServer, ServerUnavailable, moto_server, redis_server


def _warm_ssm(server: MotoServer) -> None:
    """moto loads its SSM default parameters on the server's first SSM call: seconds on a busy
    machine, more than the router's 2-second SSM read timeout. Paid once here, not in a test."""
    environment = server.environment()
    ssm = boto3.client("ssm", endpoint_url=server.endpoint, region_name=environment["AWS_REGION"],
                       aws_access_key_id="testing", aws_secret_access_key="testing",
                       config=Config(read_timeout=60, retries={"total_max_attempts": 1}))
    ssm.describe_parameters(MaxResults=1)


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    try:
        with moto_server() as server:
            _warm_ssm(server)
            yield server
    except ServerUnavailable as error:
        pytest.fail(f"moto server could not start: {error}")


@pytest.fixture
def aws(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """boto3 pointed at a freshly reset moto server through the standard variables."""
    for name, value in moto.environment().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    moto.reset()
    return moto


@dataclass(frozen=True)
class BackendWorld:
    bucket: str
    table: str


@pytest.fixture
def backend_world(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> BackendWorld:
    """The backend's bucket and job table, and the processor's configuration pointing at them."""
    world = BackendWorld(backend.create_bucket(), backend.create_table())
    monkeypatch.setenv("S3_BUCKET_NAME", world.bucket)
    monkeypatch.setenv("DYNAMODB_TABLE_NAME", world.table)
    return world


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        with redis_server() as url:
            yield url
    except ServerUnavailable as error:
        pytest.fail(f"Redis is needed: {error}")


@pytest.fixture
def job_id() -> str:
    return str(uuid.uuid4())
