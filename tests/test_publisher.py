"""A Redis that is slow, silent or unreachable never slows or fails a job.

The silent Redis is a real listening socket that accepts connections and never answers (what
a blackholed TLS proxy looks like from Lambda); it counts the connections made to it, so the
tests assert how many attempts a job made, not how long anything took. It can also forward to
the real Redis, to show publishing come back after an outage.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid

import boto3
import pytest

from processor.handler import lambda_handler
from processor.publisher import PAUSE_SECONDS, ProgressPublisher
from sandbox.media import make_video
from sandbox.servers import free_port
from tests.jobworld import LambdaContext, queue_job
from tests.progress_checks import ChannelRecorder, check_job_messages


class SilentRedis:
    """Accepts TCP connections and never answers; or, once ``forward_to`` is set, relays to a real Redis."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.connections = 0
        self.forward_to: tuple[str, int] | None = None
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, scheme: str = "redis", credentials: str = "") -> str:
        return f"{scheme}://{credentials}127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            if self.forward_to is None:
                self._held.append(client)  # open, silent
                continue
            upstream = socket.create_connection(self.forward_to)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            target.close()

    def close(self) -> None:
        self._server.close()
        for held in self._held:
            held.close()


@pytest.fixture
def silent_redis():
    server = SilentRedis()
    yield server
    server.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("media") / "clip.mp4", duration=5.0)


def log_events(captured: str, event: str) -> list[dict]:
    lines = [json.loads(line) for line in captured.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def test_a_redis_that_never_answers_costs_the_job_one_bounded_attempt(backend_world, clip, job_id, silent_redis,
                                                                     monkeypatch, capfd):
    monkeypatch.setenv("REDIS_URL", silent_redis.url())
    queued = queue_job(backend_world, clip, job_id)
    result = lambda_handler(queued.event(), LambdaContext())
    assert result["status"] == "completed"
    row = queued.row()
    assert row["status"] == "COMPLETED" and row["progress_percentage"] == 100
    # The first message waited for its bounded timeout; every later one was skipped, not tried.
    assert silent_redis.connections == 1
    paused = log_events(capfd.readouterr().err, "progress_publish_paused")
    assert len(paused) == 1 and paused[0]["job_id"] == job_id and paused[0]["pause_seconds"] == PAUSE_SECONDS


def test_an_unreachable_redis_fails_nothing(backend_world, clip, job_id, monkeypatch, capfd):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nobody listens
    queued = queue_job(backend_world, clip, job_id)
    assert lambda_handler(queued.event(), LambdaContext())["status"] == "completed"
    assert len(log_events(capfd.readouterr().err, "progress_publish_paused")) == 1


def test_the_url_never_reaches_the_logs(silent_redis, capfd):
    publisher = ProgressPublisher(lambda: silent_redis.url("rediss", ":s3cret-password@"))
    assert publisher.publish("job_progress_x", "{}", job_id="x") is False
    assert silent_redis.connections == 1
    captured = capfd.readouterr().err
    assert len(log_events(captured, "progress_publish_paused")) == 1
    assert "s3cret" not in captured


def test_a_url_that_is_not_redis_is_refused_without_echoing_it(capfd):
    publisher = ProgressPublisher(lambda: "https://user:s3cret@example.invalid/")
    assert publisher.publish("job_progress_x", "{}") is False
    captured = capfd.readouterr().err
    assert "redis:// or rediss://" in log_events(captured, "progress_publish_paused")[0]["error"]
    assert "s3cret" not in captured


def test_publishing_pauses_after_a_failure_then_resumes_and_logs_once_each_way(silent_redis, redis_url, capfd):
    now = [1000.0]
    publisher = ProgressPublisher(silent_redis.url, clock=lambda: now[0])
    channel = f"job_progress_{uuid.uuid4()}"
    assert publisher.publish(channel, "one") is False
    assert silent_redis.connections == 1
    for _ in range(5):  # while paused: not even tried
        assert publisher.publish(channel, "skipped") is False
    assert silent_redis.connections == 1
    now[0] += PAUSE_SECONDS
    assert publisher.publish(channel, "two") is False  # tried again once the pause is over
    assert silent_redis.connections == 2
    captured = capfd.readouterr().err
    assert len(log_events(captured, "progress_publish_paused")) == 1  # one line for the whole outage

    host, port = redis_url.removeprefix("redis://").split(":")
    silent_redis.forward_to = (host, int(port))
    import redis

    subscriber = redis.Redis.from_url(redis_url).pubsub()
    subscriber.subscribe(channel)
    assert subscriber.get_message(timeout=5)["type"] == "subscribe"
    now[0] += PAUSE_SECONDS
    assert publisher.publish(channel, "three") is True
    assert publisher.publish(channel, "four") is True
    received = []
    while (message := subscriber.get_message(timeout=2)) is not None:
        received.append(message["data"])
    assert received == [b"three", b"four"]
    assert silent_redis.connections == 3  # one connection for both
    assert len(log_events(capfd.readouterr().err, "progress_publish_resumed")) == 1


def test_lambda_reads_the_url_once_from_its_secure_parameter(backend_world, clip, job_id, redis_url, monkeypatch):
    """The deployed wiring: the function knows only the parameter's name (docs/deploying.md)."""
    name = f"/easy-video-share/test/progress-redis-url-{uuid.uuid4().hex[:8]}"
    boto3.client("ssm").put_parameter(Name=name, Type="SecureString", Value=redis_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("PROGRESS_REDIS_PARAMETER", name)
    queued = queue_job(backend_world, clip, job_id)
    channel = ChannelRecorder(redis_url, job_id)
    assert lambda_handler(queued.event(), LambdaContext())["status"] == "completed"
    check_job_messages(channel.until_terminal(), queued.row(), job_id=job_id)


def test_a_missing_parameter_fails_nothing(backend_world, clip, job_id, monkeypatch, capfd):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("PROGRESS_REDIS_PARAMETER", f"/nothing/here-{uuid.uuid4().hex[:8]}")
    queued = queue_job(backend_world, clip, job_id)
    assert lambda_handler(queued.event(), LambdaContext())["status"] == "completed"
    paused = log_events(capfd.readouterr().err, "progress_publish_paused")
    assert len(paused) == 1 and "ParameterNotFound" in paused[0]["error"]
