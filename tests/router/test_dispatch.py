"""dispatch() against real parts: moto's Lambda, SSM and DynamoDB on loopback, a real Redis."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

import pytest

from processor.contract import CELERY_TASK_NAME
from router import DispatchError, InvalidRequestError, RouterFlags, RowMissingError, dispatch, metrics
from router.counters import prometheus_text
from router.live_flags import LiveFlags
from router.sources import EnvironmentSource, SSMParameterSource
from sandbox import backend
from tests.router.backend_models import CompleteUploadRequest, FixedCuttingParams, TextInput, TextStrategy
from tests.router.conftest import FUNCTION_NAME, S3_KEY, expected_job, invocations, make_router, put_flags, upload

TO_LAMBDA = RouterFlags(phase="lambda", version="test:lambda")
TO_CELERY = RouterFlags(phase="celery", version="test:celery")
LAMBDA_ONLY = RouterFlags(phase="lambda_only", version="test:lambda_only")
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.fixture
def row(backend_world, job_id):
    return backend.put_job_row(job_id, S3_KEY, file_size=5_000_000)


@pytest.fixture
def routers(backend_world, lambda_function, lambda_proxy, celery_queue):
    """Routers whose Lambda client goes through the proxy (short read timeout for hang tests)."""
    def build(flags: RouterFlags, **lambda_config):
        return make_router(flags, backend_world.table, broker_url=celery_queue.broker_url, queue=celery_queue.name,
                           **lambda_config)
    return build


def test_lambda_job_is_invoked_async_with_the_processor_event(routers, row, job_id, lambda_proxy, celery_queue):
    decision = routers(TO_LAMBDA).dispatch(upload(job_id))

    assert (decision.backend, decision.reason, decision.fell_back, decision.error) == ("lambda", "phase", False, None)
    assert decision.flags_version == "test:lambda"
    [invoke] = invocations(lambda_proxy)
    assert invoke.path == f"/2015-03-31/functions/{FUNCTION_NAME}/invocations"
    assert invoke.headers["x-amz-invocation-type"] == "Event"
    assert invoke.json() == expected_job(job_id).to_event()
    assert json.loads(invoke.response_body) == invoke.json()  # what moto's Lambda received
    assert celery_queue.depth() == 0
    stored = backend.get_job_row(job_id)
    assert stored["processing_backend"] == "lambda" and stored["routing_reason"] == "phase"
    assert stored["fell_back"] is False and ISO_Z.fullmatch(stored["dispatched_at"])
    assert stored["status"] == "QUEUED" and stored["created_at"] == row["created_at"]
    # What was sent, kept for the stuck-job sweep: the row is the only record of the request.
    assert json.loads(stored["dispatch_event"]) == invoke.json()


def test_a_request_too_large_to_keep_on_the_row_is_still_dispatched(routers, row, job_id, lambda_proxy):
    texts = [f"{i:03d} " + "x" * 400 for i in range(30)]  # about 12 KB of text
    request = upload(job_id, text_strategy="unique_for_all",
                     text_input={"strategy": "unique_for_all", "unique_texts": texts})
    decision = routers(TO_LAMBDA).dispatch(request)
    assert decision.backend == "lambda"
    [invoke] = invocations(lambda_proxy)
    assert invoke.json()["text_input"]["unique_texts"] == texts
    stored = backend.get_job_row(job_id)
    assert stored["processing_backend"] == "lambda" and "dispatch_event" not in stored


def test_celery_job_is_published_with_todays_arguments(routers, row, job_id, lambda_proxy, celery_queue):
    decision = routers(TO_CELERY).dispatch(upload(job_id))

    assert (decision.backend, decision.reason, decision.fell_back) == ("celery", "phase", False)
    [message] = celery_queue.messages()
    assert message == {"task": CELERY_TASK_NAME, "id": job_id, "args": expected_job(job_id).celery_args(),
                       "kwargs": {}}
    assert message["args"][:2] == [S3_KEY, job_id]
    assert invocations(lambda_proxy) == []
    stored = backend.get_job_row(job_id)
    assert (stored["processing_backend"], stored["routing_reason"], stored["status"]) == ("celery", "phase", "QUEUED")
    assert json.loads(stored["dispatch_event"]) == expected_job(job_id).to_event()


def test_a_job_without_a_row_is_refused_before_anything_is_sent(routers, backend_world, job_id, lambda_proxy,
                                                                  celery_queue):
    for flags in (TO_LAMBDA, TO_CELERY):
        with pytest.raises(RowMissingError, match="must write the job row"):
            routers(flags).dispatch(upload(job_id))
    assert invocations(lambda_proxy) == [] and celery_queue.depth() == 0
    assert backend.get_job_row(job_id) is None  # and no half row was created


def test_an_invalid_request_fails_its_row_and_sends_nothing(routers, row, job_id, lambda_proxy, celery_queue):
    bad = upload(job_id, cutting_options={"type": "fixed", "duration_seconds": 0})
    with pytest.raises(InvalidRequestError, match=r"cutting_options\.duration_seconds: must be between 1"):
        routers(TO_LAMBDA).dispatch(bad)
    assert invocations(lambda_proxy) == [] and celery_queue.depth() == 0
    stored = backend.get_job_row(job_id)
    assert stored["status"] == "FAILED" and "duration_seconds" in stored["error_message"]
    assert "processing_backend" not in stored


def test_an_invalid_request_without_a_row_creates_none(routers, backend_world, job_id):
    with pytest.raises(InvalidRequestError, match="s3_key: must not contain a '..' segment"):
        routers(TO_CELERY).dispatch(upload(job_id, s3_key="uploads/../secrets"))
    assert backend.get_job_row(job_id) is None


@pytest.mark.parametrize("fault", ["throttle", "server_error", "drop", "hang"])
def test_a_lambda_fault_falls_back_to_celery(fault, routers, row, job_id, lambda_proxy, celery_queue):
    {"throttle": lambda: lambda_proxy.fail(429), "server_error": lambda: lambda_proxy.fail(503),
     "drop": lambda_proxy.drop, "hang": lambda_proxy.hang}[fault]()
    decision = routers(TO_LAMBDA, read_timeout=0.5).dispatch(upload(job_id))

    assert (decision.backend, decision.reason, decision.fell_back) == ("celery", "fallback", True)
    assert decision.error.startswith("Lambda invoke failed")
    # botocore's standard retry mode: two attempts, then the fallback.
    assert len(lambda_proxy.sent()) == 2 and invocations(lambda_proxy) == []
    [message] = celery_queue.messages()
    assert message["id"] == job_id and message["task"] == CELERY_TASK_NAME
    stored = backend.get_job_row(job_id)
    assert (stored["processing_backend"], stored["routing_reason"], stored["fell_back"]) == ("celery", "fallback", True)
    assert stored["status"] == "QUEUED"


def test_one_throttle_is_retried_and_does_not_fall_back(routers, row, job_id, lambda_proxy, celery_queue):
    lambda_proxy.fail(429, times=1)
    decision = routers(TO_LAMBDA).dispatch(upload(job_id))
    assert (decision.backend, decision.fell_back) == ("lambda", False)
    assert len(invocations(lambda_proxy)) == 1 and celery_queue.depth() == 0


def test_no_fallback_when_it_is_switched_off(routers, row, job_id, lambda_proxy, celery_queue):
    lambda_proxy.fail(503)
    flags = RouterFlags(phase="lambda", fallback_to_celery=False)
    with pytest.raises(DispatchError, match="no fallback is allowed"):
        routers(flags).dispatch(upload(job_id))
    assert celery_queue.depth() == 0
    stored = backend.get_job_row(job_id)
    assert stored["status"] == "FAILED" and "ServiceUnavailableException" in stored["error_message"]


def test_lambda_only_failure_marks_the_row_failed(routers, row, job_id, lambda_proxy, celery_queue):
    lambda_proxy.fail(500)
    with pytest.raises(DispatchError, match="phase lambda_only") as raised:
        routers(LAMBDA_ONLY).dispatch(upload(job_id))
    assert raised.value.job_id == job_id
    assert celery_queue.depth() == 0
    stored = backend.get_job_row(job_id)
    assert stored["status"] == "FAILED" and "Lambda invoke failed" in stored["error_message"]
    assert ISO_Z.fullmatch(stored["updated_at"])


def test_an_event_over_the_async_limit_is_never_sent_to_lambda(routers, row, job_id, lambda_proxy, celery_queue):
    texts = ["視" * 500] * 1000  # within the contract's bounds, 1.5 MB as UTF-8
    decision = routers(TO_LAMBDA).dispatch(upload(job_id, text_strategy="unique_for_all",
                                                  text_input={"strategy": "unique_for_all", "unique_texts": texts}))
    assert (decision.backend, decision.fell_back) == ("celery", True)
    assert "async payload limit" in decision.error
    assert lambda_proxy.sent() == []
    assert celery_queue.messages()[0]["args"][4]["unique_texts"] == texts


def test_a_worker_that_claimed_the_job_is_not_overwritten_with_failed(routers, backend_world, job_id, lambda_proxy):
    backend.put_job_row(job_id, S3_KEY, status="PROCESSING")
    lambda_proxy.hang()  # the invoke times out, yet (in this story) it was delivered and claimed
    with pytest.raises(DispatchError, match="a worker has claimed the job"):
        routers(LAMBDA_ONLY, read_timeout=0.5).dispatch(upload(job_id))
    assert backend.get_job_row(job_id)["status"] == "PROCESSING"


def test_the_backends_pydantic_request_is_sent_as_plain_json(routers, row, job_id, lambda_proxy):
    request = CompleteUploadRequest(
        job_id=job_id, s3_key=S3_KEY, user_id="user-1", file_size=5_000_000,
        cutting_options=FixedCuttingParams(duration_seconds=20), text_strategy=TextStrategy.ONE_FOR_ALL,
        text_input=TextInput(strategy=TextStrategy.ONE_FOR_ALL, base_text="hello", unique_texts=[]))
    routers(TO_LAMBDA).dispatch(request)
    assert invocations(lambda_proxy)[0].json() == expected_job(job_id).to_event()


def test_each_decision_is_one_json_log_line_and_counted(routers, row, job_id, caplog):
    before = {(r["backend"], r["reason"], r["fell_back"]): r["count"] for r in metrics()["dispatches"]}
    with caplog.at_level(logging.INFO, logger="router"):
        routers(TO_CELERY).dispatch(upload(job_id))
    [line] = [json.loads(record.getMessage()) for record in caplog.records if "router.dispatch" in record.getMessage()]
    assert line == {"event": "router.dispatch", "job_id": job_id, "backend": "celery", "reason": "phase",
                    "fell_back": False, "flags_version": "test:celery", "error": None}
    after = {(r["backend"], r["reason"], r["fell_back"]): r["count"] for r in metrics()["dispatches"]}
    assert after[("celery", "phase", False)] == before.get(("celery", "phase", False), 0) + 1
    assert re.search(r'^router_dispatches_total\{backend="celery",reason="phase",fell_back="false"\} \d+$',
                     prometheus_text(), re.MULTILINE)


def test_failures_are_counted_by_kind(routers, backend_world, job_id):
    before = metrics()["failures"].get("row_missing", 0)
    with pytest.raises(RowMissingError):
        routers(TO_CELERY).dispatch(upload(job_id))
    assert metrics()["failures"]["row_missing"] == before + 1
    assert f'router_dispatch_failures_total{{kind="row_missing"}} {before + 1}' in prometheus_text()


def test_dispatch_configures_itself_from_the_environment(backend_world, lambda_function, flags_parameter,
                                                         celery_queue, job_id, monkeypatch):
    monkeypatch.setenv("ROUTER_PHASE", "lambda")
    backend.put_job_row(job_id, S3_KEY, file_size=5_000_000)
    decision = dispatch(upload(job_id))  # no SSM parameter yet: the environment and the defaults rule
    assert (decision.backend, decision.reason) == ("lambda", "phase")
    assert backend.get_job_row(job_id)["processing_backend"] == "lambda"

    monkeypatch.setenv("ROUTER_KILL_SWITCH", "true")
    monkeypatch.setenv("ROUTER_FLAGS_PARAMETER", flags_parameter + "-other")  # new wiring: a new router
    second = str(uuid.uuid4())
    backend.put_job_row(second, S3_KEY)
    decision = dispatch(upload(second))
    assert (decision.backend, decision.reason) == ("celery", "kill_switch")
    assert celery_queue.messages()[0]["id"] == second


def test_a_kill_switch_set_during_an_idle_gap_stops_the_very_next_lambda_job(
        backend_world, lambda_function, lambda_proxy, celery_queue, flags_parameter):
    """The reproduction: cache 15 s, 17 s idle, kill_switch set meanwhile; here 0.5 s and 1 s."""
    ttl = 0.5
    put_flags(flags_parameter, {"phase": "lambda"})
    live = LiveFlags([SSMParameterSource(flags_parameter), EnvironmentSource()], ttl=ttl, first_load_timeout=10,
                     refresh_timeout=10)  # a loaded machine's moto may take more than the default second
    router = make_router(live, backend_world.table, broker_url=celery_queue.broker_url, queue=celery_queue.name)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    for job in (first, second):
        backend.put_job_row(job, S3_KEY, file_size=5_000_000)
    assert router.dispatch(upload(first)).backend == "lambda"

    put_flags(flags_parameter, {"phase": "lambda", "kill_switch": True})
    time.sleep(ttl * 2)  # no request meanwhile
    decision = router.dispatch(upload(second))
    assert (decision.backend, decision.reason, decision.flags_version) == ("celery", "kill_switch", "ssm:2")
    assert [invoke.json()["job_id"] for invoke in invocations(lambda_proxy)] == [first]
    assert celery_queue.messages()[0]["id"] == second
