"""A request without ``file_size``: one bounded S3 HeadObject, and ``unknown_size`` only if it fails."""

from __future__ import annotations

import dataclasses
import json
import logging

import boto3
import pytest

from router.flags import RouterFlags
from router.uploads import UploadSizes
from sandbox import backend
from tests.router.conftest import S3_KEY, invocations, make_router, upload

TO_LAMBDA = RouterFlags(phase="lambda", version="test:lambda")


@pytest.fixture
def row(backend_world, job_id):
    return backend.put_job_row(job_id, S3_KEY)  # the backend writes no file_size when it has none


@pytest.fixture
def route(backend_world, lambda_function, lambda_proxy, celery_queue, s3_proxy):
    """Dispatch with a router that reads unknown sizes from S3 (through the fault proxy)."""
    def dispatch(flags: RouterFlags, request: dict):
        router = make_router(flags, backend_world.table, broker_url=celery_queue.broker_url, queue=celery_queue.name)
        return dataclasses.replace(router, uploads=UploadSizes(backend_world.bucket)).dispatch(request)
    return dispatch


def uploaded(size: int) -> int:
    boto3.client("s3").put_object(Bucket=backend.DEFAULT_BUCKET, Key=S3_KEY, Body=b"\0" * size)
    return size


def head_requests(s3_proxy) -> list:
    return s3_proxy.sent(lambda exchange: exchange.method == "HEAD")


def size_unknown_lines(caplog) -> list[dict]:
    lines = [json.loads(record.getMessage()) for record in caplog.records if record.name == "router"]
    return [line for line in lines if line["event"] == "router.size_unknown"]


def test_phase_lambda_sends_a_size_less_job_to_lambda_with_the_size_from_s3(route, row, job_id, lambda_proxy,
                                                                           s3_proxy):
    size = uploaded(3 * 1024 * 1024)
    decision = route(TO_LAMBDA, upload(job_id, file_size=None))
    assert (decision.backend, decision.reason) == ("lambda", "phase")
    [invoke] = invocations(lambda_proxy)
    assert invoke.json()["file_size"] == size
    assert len(head_requests(s3_proxy)) == 1


def test_the_size_from_s3_applies_the_size_limit(route, row, job_id, lambda_proxy, celery_queue):
    uploaded(2 * 1024 * 1024)
    flags = RouterFlags(phase="lambda", max_lambda_file_size_mb=1)
    decision = route(flags, upload(job_id, file_size=None))
    assert (decision.backend, decision.reason) == ("celery", "size_limit")
    assert invocations(lambda_proxy) == [] and celery_queue.messages()[0]["id"] == job_id


@pytest.mark.parametrize("fault", ["missing", "hang", "server_error"])
def test_when_s3_cannot_tell_unknown_size_decides_and_it_is_logged(fault, route, row, job_id, s3_proxy, caplog,
                                                                   lambda_proxy, celery_queue):
    if fault != "missing":
        uploaded(1024)
        {"hang": s3_proxy.hang, "server_error": lambda: s3_proxy.fail(503)}[fault]()
    caplog.set_level(logging.WARNING, logger="router")
    decision = route(TO_LAMBDA, upload(job_id, file_size=None))
    assert (decision.backend, decision.reason) == ("celery", "unknown_size")
    [line] = size_unknown_lines(caplog)
    assert line["job_id"] == job_id and f"HeadObject s3://{backend.DEFAULT_BUCKET}/{S3_KEY} failed" in line["error"]
    assert celery_queue.messages()[0]["id"] == job_id
    # unknown_size=rollout treats it as small instead
    second = "second-" + job_id
    backend.put_job_row(second, S3_KEY)
    decision = route(RouterFlags(phase="lambda", unknown_size="rollout"), upload(second, file_size=None))
    assert (decision.backend, decision.reason) == ("lambda", "phase")
    assert [invoke.json()["file_size"] for invoke in invocations(lambda_proxy)] == [None]


@pytest.mark.parametrize("flags", [RouterFlags(phase="celery"), RouterFlags(phase="lambda_only"),
                                   RouterFlags(phase="lambda", kill_switch=True)])
def test_no_lookup_when_the_size_cannot_change_the_backend(flags, route, row, job_id, s3_proxy):
    uploaded(1024)
    route(flags, upload(job_id, file_size=None))
    assert head_requests(s3_proxy) == []


def test_a_known_size_is_not_looked_up(route, row, job_id, s3_proxy):
    uploaded(1024)
    assert route(TO_LAMBDA, upload(job_id, file_size=1024)).backend == "lambda"
    assert head_requests(s3_proxy) == []
