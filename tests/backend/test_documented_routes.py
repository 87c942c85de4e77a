"""docs/router.md's change to main.py, run as written in an app shaped like the backend's.

Both routes that start processing, on the backend's own variables (``AWS_BUCKET_NAME``,
``REDIS_URL``, no ``DYNAMODB_TABLE_NAME``) plus the documented new ones, against the moto
server, a real Redis and a real processor worker (Celery 5.3.4).
"""

from __future__ import annotations

import os

import boto3
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

import router as router_package
from router import ConfigurationError
from sandbox import backend
from sandbox.media import make_video
from sandbox.servers import ServerUnavailable, free_port
from sandbox.workers import celery_worker
from tests.backend import documented_app
from tests.jobworld import QueuedJob
from tests.router.conftest import invocations

QUEUED_MESSAGE = "Video processing job has been queued successfully"
# The backend's startup handler is an @app.on_event one, which FastAPI 0.115 deprecates; the
# documented change keeps the backend's own handler rather than rewrite its app.
pytestmark = pytest.mark.filterwarnings("ignore:\\s*on_event is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("media") / "clip.mp4", duration=5.0)


@pytest.fixture
def railway(backend_world, lambda_function, celery_queue, monkeypatch):
    """The API service's variables: the backend's own, and the documented new ones."""
    for name in ("S3_BUCKET_NAME", "DYNAMODB_TABLE_NAME", "CELERY_BROKER_URL", "ROUTER_FLAGS_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_BUCKET_NAME", backend_world.bucket)
    monkeypatch.setenv("REDIS_URL", celery_queue.broker_url)
    # VIDEO_PROCESSOR_FUNCTION_NAME (lambda_function) and VIDEO_PROCESSOR_CELERY_QUEUE (celery_queue,
    # a queue of this test's own on the shared Redis) are set by the fixtures.
    return backend_world


@pytest.fixture
def api(railway):
    with TestClient(documented_app.build().app) as client:  # runs the startup handler
        yield client


def uploaded(world, video, job_id: str) -> QueuedJob:
    key = f"uploads/{job_id}/holiday.mp4"
    backend.upload_video(str(video), key, world.bucket)
    return QueuedJob(job_id, key, world.bucket, world.table)


def complete_request(job: QueuedJob, **overrides) -> dict:
    return {"s3_key": job.s3_key, "job_id": job.job_id, "user_id": "user-1",
            "cutting_options": {"type": "fixed", "duration_seconds": 2}, "text_strategy": "one_for_all",
            "text_input": {"strategy": "one_for_all", "base_text": "from the route"}, "filename": "holiday.mp4",
            "title": "Holiday", "user_email": "user@example.com", "content_type": "video/mp4", **overrides}


def test_the_documented_imports_do_not_clash_with_the_apirouter_named_router():
    main = documented_app.build()
    assert isinstance(main.router, APIRouter)
    assert main.dispatch_video is router_package.dispatch
    assert main.DispatchError is router_package.DispatchError
    paths = {route.path for route in main.app.routes}
    assert {"/api/upload/complete", "/api/upload/complete-multipart"} <= paths


def test_complete_upload_runs_on_the_processors_worker(api, railway, video, job_id, celery_queue, monkeypatch,
                                                       tmp_path):
    monkeypatch.setenv("ROUTER_PHASE", "celery")
    job = uploaded(railway, video, job_id)
    # The worker service: the backend's variables too, and the processor's queue as its default.
    worker_env = {**os.environ, "VIDEO_PROCESSOR_CELERY_QUEUE": celery_queue.name}
    try:
        with celery_worker(worker_env, tmp_path / "worker.log"):
            answer = api.post("/api/upload/complete", json=complete_request(job, file_size=video.stat().st_size))
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"job_id": job_id, "status": "QUEUED", "message": QUEUED_MESSAGE}
            row = job.wait_for("COMPLETED")
    except ServerUnavailable as error:
        pytest.fail(str(error))
    assert row["output_s3_urls"] == job.segment_keys() and len(row["output_s3_urls"]) == 3
    assert (row["processing_backend"], row["processed_by"]) == ("celery", "celery")
    # The backend's row, as create_job_entry wrote it, kept through processing.
    assert (row["title"], row["filename"], row["bucket_location"]) == ("Holiday", "holiday.mp4", job.s3_key)
    assert float(row["video_duration"]) == pytest.approx(5.0, abs=0.1)


def test_complete_multipart_sends_a_large_upload_to_lambda(api, railway, video, job_id, lambda_proxy, celery_queue,
                                                           monkeypatch):
    monkeypatch.setenv("ROUTER_PHASE", "lambda")
    key = f"uploads/{job_id}/big.mp4"
    s3 = boto3.client("s3")
    upload_id = s3.create_multipart_upload(Bucket=railway.bucket, Key=key, ContentType="video/mp4")["UploadId"]
    etag = s3.upload_part(Bucket=railway.bucket, Key=key, UploadId=upload_id, PartNumber=1,
                          Body=video.read_bytes())["ETag"]
    request = {**complete_request(QueuedJob(job_id, key, railway.bucket, railway.table)), "upload_id": upload_id,
               "parts": [{"PartNumber": 1, "ETag": etag}]}  # and no file_size: it is optional

    answer = api.post("/api/upload/complete-multipart", json=request)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"job_id": job_id, "status": "QUEUED", "message": QUEUED_MESSAGE}
    [invoke] = invocations(lambda_proxy)
    event = invoke.json()
    assert (event["job_id"], event["s3_key"], event["s3_bucket"]) == (job_id, key, railway.bucket)
    assert event["file_size"] == video.stat().st_size  # read from S3: the size rule applies
    row = backend.get_job_row(job_id)
    assert (row["status"], row["processing_backend"], row["bucket_location"]) == ("QUEUED", "lambda", key)
    assert celery_queue.depth() == 0


def test_no_backend_taking_the_job_answers_503_and_the_row_says_why(api, railway, video, job_id, monkeypatch):
    monkeypatch.setenv("ROUTER_PHASE", "celery")
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # the broker is down
    job = uploaded(railway, video, job_id)
    answer = api.post("/api/upload/complete", json=complete_request(job))
    assert answer.status_code == 503, answer.text
    assert answer.json()["detail"].startswith("no backend took the job: Celery publish failed")
    row = job.row()
    assert row["status"] == "FAILED" and row["error_message"] == answer.json()["detail"]


def test_invalid_processing_options_answer_422_and_fail_the_row(api, railway, video, job_id):
    job = uploaded(railway, video, job_id)
    answer = api.post("/api/upload/complete",
                      json=complete_request(job, cutting_options={"type": "random", "min_duration": 9,
                                                                  "max_duration": 3}))
    assert answer.status_code == 422, answer.text
    assert "cutting_options.min_duration: must not exceed max_duration (9 > 3)" in answer.json()["detail"]
    assert job.row()["status"] == "FAILED"


def test_a_row_that_cannot_be_written_answers_500_and_sends_nothing(api, railway, video, job_id, celery_queue,
                                                                    monkeypatch):
    monkeypatch.setenv("DYNAMODB_TABLE_NAME", "no-such-table")  # for the backend's create_job_entry
    job = uploaded(railway, video, job_id)
    answer = api.post("/api/upload/complete", json=complete_request(job))
    assert answer.status_code == 500
    assert answer.json()["detail"].startswith("Failed to start processing:")
    assert "ResourceNotFoundException" in answer.json()["detail"]
    assert celery_queue.depth() == 0


def test_a_multipart_request_without_parts_keeps_its_400(api, railway, job_id):
    request = {**complete_request(QueuedJob(job_id, "uploads/x/y.mp4", railway.bucket, railway.table)),
               "upload_id": "u", "parts": []}
    answer = api.post("/api/upload/complete-multipart", json=request)
    assert (answer.status_code, answer.json()["detail"]) == (400, "No parts provided to complete multipart upload")


def test_startup_refuses_an_environment_missing_variables(railway, monkeypatch):
    monkeypatch.delenv("AWS_BUCKET_NAME")
    monkeypatch.delenv("VIDEO_PROCESSOR_FUNCTION_NAME")
    app = documented_app.build().app
    with pytest.raises(ConfigurationError) as raised:
        with TestClient(app):
            pass
    problems = " ".join(raised.value.problems)
    assert "VIDEO_PROCESSOR_FUNCTION_NAME is not set" in problems
    assert "S3_BUCKET_NAME or AWS_BUCKET_NAME is not set" in problems


def test_every_block_the_docs_mark_is_assembled_once():
    source = documented_app.main_source()
    assert all(source.count(code) == 1 for code in documented_app.documented_blocks().values())
    with pytest.raises(AssertionError, match="expected each of"):
        documented_app.documented_blocks("<!-- backend main.py: imports -->\n```python\nimport os\n```\n")
