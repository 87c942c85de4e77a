"""The send adapters' bounds: short Lambda timeouts, and a Celery publish that gives up on a dead broker."""

from __future__ import annotations

import socket
import threading
from typing import Iterator

import pytest

from processor.contract import make_job
from router import DispatchError, RouterFlags
from router.backends import CeleryBackend, celery_app, lambda_client
from router.errors import SendError
from sandbox import backend
from sandbox.servers import free_port
from tests.router.conftest import S3_KEY, make_router, upload

JOB = make_job(job_id="job-1", s3_key=S3_KEY, source="router")
# Far above the configured bound (about 4 s for a silent broker), far below "forever".
GIVE_UP_WITHIN = 30.0


@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: a hung Redis."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_the_lambda_client_has_short_timeouts_and_at_most_two_attempts(aws):
    config = lambda_client().meta.config
    assert (config.connect_timeout, config.read_timeout) == (2, 5)
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}


def _send_in_thread(backend_: CeleryBackend) -> list[BaseException]:
    errors: list[BaseException] = []

    def send() -> None:
        try:
            backend_.send(JOB)
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors.append(error)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    thread.join(GIVE_UP_WITHIN)
    assert not thread.is_alive(), "the publish did not give up on its own"
    return errors


def test_publishing_to_a_closed_port_fails():
    [error] = _send_in_thread(CeleryBackend(f"redis://127.0.0.1:{free_port()}/0", queue="router-test-closed"))
    assert isinstance(error, SendError) and "Connection refused" in str(error)


def test_publishing_to_a_broker_that_never_answers_gives_up(silent_broker):
    [error] = _send_in_thread(CeleryBackend(app=celery_app(silent_broker), queue="router-test-silent"))
    assert isinstance(error, SendError) and "Timeout" in str(error)


def test_a_missing_broker_setting_is_a_send_error():
    with pytest.raises(SendError, match="CELERY_BROKER_URL"):
        CeleryBackend(None).send(JOB)


def test_broker_down_fails_the_job_with_the_reason(backend_world, lambda_function, lambda_proxy, job_id):
    backend.put_job_row(job_id, S3_KEY)
    router = make_router(RouterFlags(phase="celery"), backend_world.table,
                         broker_url=f"redis://127.0.0.1:{free_port()}/0", queue="router-test-down")
    with pytest.raises(DispatchError, match="no backend took the job: Celery publish failed"):
        router.dispatch(upload(job_id))
    stored = backend.get_job_row(job_id)
    assert stored["status"] == "FAILED" and "Connection refused" in stored["error_message"]
    assert stored["processing_backend"] == "celery"


def test_lambda_and_broker_both_down_names_both(backend_world, lambda_function, lambda_proxy, job_id):
    backend.put_job_row(job_id, S3_KEY)
    lambda_proxy.fail(503)
    router = make_router(RouterFlags(phase="lambda"), backend_world.table,
                         broker_url=f"redis://127.0.0.1:{free_port()}/0", queue="router-test-down")
    with pytest.raises(DispatchError) as raised:
        router.dispatch(upload(job_id))
    message = backend.get_job_row(job_id)["error_message"]
    assert str(raised.value) == message
    assert "Lambda invoke failed" in message and "then Celery publish failed" in message
    stored = backend.get_job_row(job_id)
    assert (stored["status"], stored["processing_backend"], stored["fell_back"]) == ("FAILED", "celery", True)
