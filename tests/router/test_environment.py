"""The backend's own variables wire the router, and `check_environment` names every bad one."""

from __future__ import annotations

import pytest

from router import ConfigurationError, check_environment, dispatch
from sandbox import backend
from tests.router.conftest import FUNCTION_NAME, S3_KEY, upload

# What the backend's Railway service has today (config.py reads these), plus the function name.
BACKEND = {"AWS_BUCKET_NAME": "easy-video-share-videos", "REDIS_URL": "redis://default:secret@redis.railway.internal:6379",
           "VIDEO_PROCESSOR_FUNCTION_NAME": "easy-video-share-video-processor"}


def test_the_backends_variables_are_enough():
    settings = check_environment(BACKEND)
    assert settings.bucket == "easy-video-share-videos"
    assert settings.broker_url == BACKEND["REDIS_URL"]
    assert settings.table_name == "easy-video-share-video-metadata"  # config.py's default
    assert settings.celery_queue == "video-processor"  # the processor's worker's own queue
    assert settings.region == "us-east-1"  # config.py's default AWS_REGION


def test_this_projects_names_come_first():
    settings = check_environment({**BACKEND, "S3_BUCKET_NAME": "clips-videos", "CELERY_BROKER_URL": "redis://broker:6379/2",
                                  "DYNAMODB_TABLE_NAME": "clips-jobs", "AWS_REGION": "eu-west-1",
                                  "AWS_DEFAULT_REGION": "eu-central-1"})
    assert (settings.bucket, settings.broker_url, settings.table_name, settings.region) == (
        "clips-videos", "redis://broker:6379/2", "clips-jobs", "eu-central-1")


def test_the_broker_is_built_from_railways_redis_parts_as_config_py_builds_it():
    environ = {"AWS_BUCKET_NAME": "easy-video-share-videos", "VIDEO_PROCESSOR_FUNCTION_NAME": "f",
               "REDISHOST": "redis.railway.internal", "REDISPORT": "6380", "REDIS_PASSWORD": "p@ss/word"}
    assert check_environment(environ).broker_url == "redis://:p%40ss%2Fword@redis.railway.internal:6380/0"
    assert check_environment({**environ, "REDIS_PASSWORD": ""}).broker_url == "redis://redis.railway.internal:6380/0"


def test_every_missing_variable_is_named_at_once():
    with pytest.raises(ConfigurationError) as raised:
        check_environment({})
    problems = raised.value.problems
    assert [problem.split(" is not set")[0] for problem in problems] == [
        "VIDEO_PROCESSOR_FUNCTION_NAME", "S3_BUCKET_NAME or AWS_BUCKET_NAME",
        "CELERY_BROKER_URL or REDIS_URL (or REDISHOST, REDISPORT, REDIS_PASSWORD)"]
    assert all(f"  - {problem}" in str(raised.value) for problem in problems)


@pytest.mark.parametrize(("variables", "problem"), [
    ({"AWS_BUCKET_NAME": "Videos_2024"}, "AWS_BUCKET_NAME='Videos_2024' is not a bucket name"),
    ({"VIDEO_PROCESSOR_FUNCTION_NAME": "my function"}, "VIDEO_PROCESSOR_FUNCTION_NAME='my function' is not a Lambda"),
    ({"DYNAMODB_TABLE_NAME": "t"}, "DYNAMODB_TABLE_NAME='t' is not a DynamoDB table name"),
    ({"REDIS_URL": "https://redis.example"}, "REDIS_URL is not a broker URL (scheme 'https'"),
    ({"REDISHOST": "other.internal"}, "REDIS_URL and REDISHOST/REDISPORT name different Redis servers "
                                      "(redis.railway.internal:6379 and other.internal:6379)"),
    ({"REDISHOST": "h", "REDISPORT": "six"}, "REDISPORT='six' is not a port number"),
    ({"ROUTER_FLAGS_PARAMETER": "router flags"}, "ROUTER_FLAGS_PARAMETER='router flags' is not an SSM parameter"),
    ({"ROUTER_PHASE": "lamda"}, "ROUTER_PHASE='lamda': must be one of celery, canary, lambda, lambda_only"),
    ({"ROUTER_KILSWITCH": "true"}, "ROUTER_KILSWITCH is not a flag variable"),
    ({"VIDEO_PROCESSOR_CELERY_QUEUE": "celery"}, "VIDEO_PROCESSOR_CELERY_QUEUE='celery' is the backend's own worker's"),
])
def test_an_invalid_variable_is_named(variables, problem):
    with pytest.raises(ConfigurationError) as raised:
        check_environment({**BACKEND, **variables})
    [reported] = raised.value.problems
    assert reported.startswith(problem)


def test_several_bad_flag_variables_are_all_named():
    with pytest.raises(ConfigurationError) as raised:
        check_environment({**BACKEND, "ROUTER_PHASE": "lamda", "ROUTER_LAMBDA_PERCENT": "300"})
    assert [problem.split(":")[0] for problem in raised.value.problems] == [
        "ROUTER_PHASE='lamda'", "ROUTER_LAMBDA_PERCENT='300'"]


def test_a_job_dispatches_on_the_backends_variables_alone(backend_world, lambda_function, celery_queue, job_id,
                                                          monkeypatch):
    """No CELERY_BROKER_URL, S3_BUCKET_NAME, DYNAMODB_TABLE_NAME or AWS_DEFAULT_REGION, as on Railway."""
    backend.put_job_row(job_id, S3_KEY)  # the backend's own client names its region
    for name in ("CELERY_BROKER_URL", "S3_BUCKET_NAME", "DYNAMODB_TABLE_NAME", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", celery_queue.broker_url)
    monkeypatch.setenv("AWS_BUCKET_NAME", backend_world.bucket)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("ROUTER_PHASE", "celery")
    assert backend_world.table == "easy-video-share-video-metadata"
    settings = check_environment()
    assert (settings.function_name, settings.broker_url) == (FUNCTION_NAME, celery_queue.broker_url)

    assert dispatch(upload(job_id)).backend == "celery"
    assert celery_queue.messages()[0]["id"] == job_id
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # for this test's own read
    assert backend.get_job_row(job_id)["processing_backend"] == "celery"
