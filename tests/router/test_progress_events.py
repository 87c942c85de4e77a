"""`router.progress_events` and the backend's stream endpoint, on a real Redis and a moto table.

Real jobs run through the Lambda handler (in a thread) while the helper streams. The endpoint
is the snippet of docs/router.md itself, executed inside a FastAPI app shaped like the
backend's main.py (an APIRouter bound to `router`, the async Redis pool helper, the
`dynamodb_service.table`), served by a real uvicorn server and read as a browser reads it.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis as sync_redis
import redis.asyncio as aioredis

from processor.handler import lambda_handler
from router import progress_events
from sandbox import backend
from sandbox.media import make_video
from sandbox.servers import free_port
from tests.jobworld import LambdaContext, queue_job
from tests.progress_checks import assert_no_repeats, check_job_messages, collect, validate

DOCS = Path(__file__).resolve().parents[2] / "docs" / "router.md"
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("media") / "clip.mp4", duration=5.0)


def run_job_in_background(queued, **event) -> threading.Thread:
    thread = threading.Thread(target=lambda_handler, args=(queued.event(**event), LambdaContext()), daemon=True)
    thread.start()
    return thread


def test_a_job_streams_from_redis_and_the_row_without_repeats(backend_world, clip, job_id, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    queued = queue_job(backend_world, clip, job_id)
    job = run_job_in_background(queued, text_strategy="one_for_all", text_input={"base_text": "streamed"})
    updates = collect(job_id, redis_url=redis_url, table=backend_world.table, poll_seconds=0.2)
    job.join(TIMEOUT)
    row = queued.row()
    checked = check_job_messages(updates, row, job_id=job_id)
    assert_no_repeats(updates)
    assert {"processing_segment", "segment_uploaded", "completed"} <= {u.stage for u in checked}
    assert checked[-1].output_urls == [f"processed/{job_id}/segment_{i:03d}.mp4" for i in range(3)]


def test_without_redis_the_row_alone_tells_the_job_to_its_end(backend_world, clip, job_id, monkeypatch):
    """A Lambda job whose function cannot reach Redis: the browser still follows it."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    queued = queue_job(backend_world, clip, job_id)
    job = run_job_in_background(queued)
    updates = collect(job_id, redis_url=None, table=boto3.resource("dynamodb").Table(backend_world.table),
                      poll_seconds=0.05)
    job.join(TIMEOUT)
    checked = check_job_messages(updates, queued.row(), job_id=job_id)
    assert_no_repeats(updates)
    assert checked[0].stage == "queued"  # the row the backend wrote, before any worker


def test_a_redis_that_cannot_be_reached_falls_back_to_the_row(backend_world, clip, job_id, monkeypatch, caplog):
    monkeypatch.delenv("REDIS_URL", raising=False)
    queued = queue_job(backend_world, clip, job_id)
    job = run_job_in_background(queued)
    with caplog.at_level("WARNING", logger="router"):
        updates = collect(job_id, redis_url=f"redis://127.0.0.1:{free_port()}/0", table=backend_world.table,
                          poll_seconds=0.1)
    job.join(TIMEOUT)
    check_job_messages(updates, queued.row(), job_id=job_id)
    failures = [json.loads(r.message) for r in caplog.records if "router.progress_redis_failed" in r.message]
    assert len(failures) == 1


def test_a_finished_job_gives_its_outcome_at_once(backend_world, clip, job_id, redis_url):
    queued = queue_job(backend_world, clip, job_id)
    assert lambda_handler(queued.event(), LambdaContext())["status"] == "completed"
    updates = collect(job_id, redis_url=redis_url, table=backend_world.table)
    assert [u["stage"] for u in updates] == ["completed"]
    assert updates[0]["output_urls"] == queued.row()["output_s3_urls"]
    validate(updates[0])


def test_a_failed_job_gives_the_reason(backend_world, clip, job_id, redis_url):
    queued = queue_job(backend_world, clip, job_id)
    boto3.client("s3").delete_object(Bucket=queued.bucket, Key=queued.s3_key)
    lambda_handler(queued.event(), LambdaContext())
    updates = collect(job_id, redis_url=redis_url, table=backend_world.table)
    row = queued.row()
    check_job_messages(updates, row, job_id=job_id)
    assert updates[-1]["error_message"] == row["error_message"] and "does not exist" in row["error_message"]


def test_messages_not_in_todays_shape_or_of_another_job_are_dropped(backend_world, clip, job_id, redis_url):
    """What is on the channel is checked, not trusted: it reaches every browser on the job."""
    queue_job(backend_world, clip, job_id)  # the row says QUEUED; no worker runs it
    publisher = sync_redis.Redis.from_url(redis_url)
    channel = f"job_progress_{job_id}"
    base = {"job_id": job_id, "message": "m", "current_segment": None, "total_segments": None,
            "timestamp": "2026-01-01T00:00:00Z", "output_urls": None, "error_message": None}

    def feed() -> None:
        while publisher.pubsub_numsub(channel)[0][1] == 0:  # until the helper has subscribed
            time.sleep(0.01)
        for junk in (b"not json", json.dumps({**base, "stage": "downloading"}),
                     json.dumps({**base, "job_id": "another-job", "stage": "downloading_video",
                                 "progress_percentage": 2})):
            publisher.publish(channel, junk)
        publisher.publish(channel, json.dumps({**base, "stage": "downloading_video", "progress_percentage": 3}))
        publisher.publish(channel, json.dumps({**base, "stage": "downloading_video", "progress_percentage": 3}))
        publisher.publish(channel, json.dumps({**base, "stage": "failed", "progress_percentage": 3,
                                               "error_message": "stopped by the test"}))

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    updates = collect(job_id, redis_url=redis_url, table=backend_world.table, poll_seconds=30)
    feeder.join(10)
    assert [(u["stage"], u["progress_percentage"]) for u in updates] == [
        ("queued", 0.0), ("downloading_video", 3.0), ("failed", 3.0)]
    assert updates[-1]["error_message"] == "stopped by the test"
    # Nothing left subscribed once the stream ended.
    assert publisher.pubsub_numsub(channel)[0][1] == 0


@pytest.mark.parametrize("job_id", ["", "../etc", "a" * 129, "job id", None])
def test_something_that_is_not_a_job_id_is_refused_before_any_read(job_id):
    with pytest.raises(ValueError):
        progress_events(job_id, table="any-table")


def test_without_a_table_the_helper_reads_the_backends_default_table(backend_world, job_id, monkeypatch):
    """As the backend's config.py: DYNAMODB_TABLE_NAME, else easy-video-share-video-metadata."""
    monkeypatch.delenv("DYNAMODB_TABLE_NAME", raising=False)
    backend.put_job_row(job_id, f"uploads/user-1/{job_id}.mp4", table=backend_world.table)
    keys = [f"processed/{job_id}/segment_000.mp4"]
    boto3.resource("dynamodb").Table(backend_world.table).update_item(
        Key={"video_id": job_id}, UpdateExpression="SET #status = :done, output_s3_urls = :keys, "
        "processing_stage = :done_stage, progress_percentage = :hundred",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":done": "COMPLETED", ":keys": keys, ":done_stage": "completed", ":hundred": 100})
    [update] = collect(job_id, redis_url=None, table=None)
    assert (update["stage"], update["output_urls"]) == ("completed", keys)


# --- the endpoint, as docs/router.md writes it ------------------------------------------------------


def documented_endpoint() -> str:
    section = DOCS.read_text().split("## Progress streaming", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "docs/router.md has no python block under 'Progress streaming'"
    return blocks[0]


class BackendServer:
    """The backend's app shape around the documented endpoint, on a real uvicorn server."""

    def __init__(self, redis_url: str, table: Any) -> None:
        import uvicorn
        from fastapi import APIRouter, FastAPI

        app = FastAPI()
        router = APIRouter(prefix="/api")  # main.py binds the name `router` to its APIRouter
        pools: dict[str, Any] = {}

        async def get_async_redis_client_from_pool():
            if "pool" not in pools:  # created in the server's loop, like main.py's startup hook
                pools["pool"] = aioredis.ConnectionPool.from_url(redis_url, decode_responses=True)
            return aioredis.Redis(connection_pool=pools["pool"])

        namespace = {"router": router, "get_async_redis_client_from_pool": get_async_redis_client_from_pool,
                     "table": table, "__name__": "backend_main"}
        exec(compile(documented_endpoint(), str(DOCS), "exec"), namespace)
        app.include_router(router)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)

    def stream(self, job_id: str) -> tuple[int, list[tuple[str, str]]]:
        """GET the stream as an EventSource does; every (event, data) until the server closes it."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        connection.request("GET", f"/api/job-progress/{job_id}/stream", headers={"Accept": "text/event-stream"})
        response = connection.getresponse()
        if response.status != 200:
            return response.status, []
        assert response.getheader("content-type").startswith("text/event-stream")
        events, event, data = [], "message", []
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if not line:
                if data:
                    events.append((event, "\n".join(data)))
                event, data = "message", []
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        connection.close()
        return response.status, events

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def backend_server(moto, redis_url):
    from sandbox import backend

    table = boto3.resource("dynamodb", endpoint_url=moto.endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing").Table(backend.DEFAULT_TABLE)
    server = BackendServer(redis_url, table)
    yield server
    server.close()


@pytest.mark.parametrize("publishes", [True, False], ids=["redis-and-row", "row-only"])
def test_the_documented_endpoint_streams_a_job_to_its_end(backend_server, backend_world, clip, job_id, redis_url,
                                                          monkeypatch, publishes):
    if publishes:
        monkeypatch.setenv("REDIS_URL", redis_url)
    else:
        monkeypatch.delenv("REDIS_URL", raising=False)
    queued = queue_job(backend_world, clip, job_id)
    job = run_job_in_background(queued)
    status, events = backend_server.stream(job_id)
    job.join(TIMEOUT)
    assert status == 200
    assert events[0] == ("connected", json.dumps({"message": f"Connected to progress stream for job {job_id}"}))
    assert {name for name, _ in events[1:]} == {"progress"}
    updates = [json.loads(data) for _, data in events[1:]]
    check_job_messages(updates, queued.row(), job_id=job_id)
    assert_no_repeats(updates)


def test_the_documented_endpoint_answers_404_for_what_is_not_a_job_id(backend_server):
    status, _ = backend_server.stream("not%20a%20job")
    assert status == 404


def test_a_browser_leaving_ends_the_subscription(backend_server, backend_world, clip, job_id, redis_url):
    queue_job(backend_world, clip, job_id)  # QUEUED, and nobody will run it
    connection = socket.create_connection(("127.0.0.1", backend_server.port))
    connection.sendall(f"GET /api/job-progress/{job_id}/stream HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    received = b""
    while b"Job received" not in received:  # the row's queued state arrived
        received += connection.recv(4096)
    counter = sync_redis.Redis.from_url(redis_url)
    assert counter.pubsub_numsub(f"job_progress_{job_id}")[0][1] == 1
    connection.close()
    deadline = time.monotonic() + 20
    while counter.pubsub_numsub(f"job_progress_{job_id}")[0][1] != 0:
        assert time.monotonic() < deadline, "the subscription outlived the browser"
        time.sleep(0.05)
