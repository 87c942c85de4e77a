"""Progress messages onto Redis, never at the cost of the job.

The Redis that the backend's browsers listen on may be far away (Railway's, reached from Lambda
over the internet), slow, or down. So every attempt is bounded (connect and publish timeouts,
no client-side retries), and after a failure publishing pauses for ``PAUSE_SECONDS``: a dead
Redis costs a job at most one bounded attempt per pause, never a failure. One log line says
when publishing pauses and one when it works again, not one per message.

The URL comes from ``REDIS_URL`` (the worker: its broker) or, in Lambda, from the SecureString
parameter named by ``PROGRESS_REDIS_PARAMETER``, read once per process: the URL carries a
password, so it is neither in the function's configuration nor in the stack's state as plain
text (docs/deploying.md).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from processor.logs import log
from processor.parameters import read_parameter

CONNECT_TIMEOUT_SECONDS = 1.0
PUBLISH_TIMEOUT_SECONDS = 1.0
PAUSE_SECONDS = 60.0
URL_SCHEMES = ("redis://", "rediss://")


class ProgressPublisher:
    """Publishes to one Redis; one per process and URL, so a pause outlasts a single job."""

    def __init__(self, resolve_url: Callable[[], str], *, pause_seconds: float = PAUSE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._resolve_url = resolve_url
        self._pause_seconds = pause_seconds
        self._clock = clock
        self._client: Any = None
        self._paused_until = float("-inf")
        self._failing = False
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        import redis  # Only where progress is published: the local command never needs it.
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        url = self._resolve_url()
        if not url.startswith(URL_SCHEMES):
            # Never echo the URL: it holds the password.
            raise ValueError("the progress Redis URL must start with redis:// or rediss://")
        # No retries: redis-py 6+ retries 3 times with backoff by default, which turns one
        # bounded attempt into many seconds against a Redis that does not answer.
        return redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                    socket_timeout=PUBLISH_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))

    def publish(self, channel: str, message: str, *, job_id: str | None = None) -> bool:
        """Publish ``message``; False if it was not sent (paused, or this attempt failed)."""
        with self._lock:
            if self._clock() < self._paused_until:
                return False
            try:
                if self._client is None:
                    self._client = self._connect()
                self._client.publish(channel, message)
            except Exception as error:  # noqa: BLE001 - whatever Redis or SSM did, the job goes on
                self._paused_until = self._clock() + self._pause_seconds
                self._drop()
                if not self._failing:
                    self._failing = True
                    log("progress_publish_paused", job_id=job_id, level=logging.WARNING,
                        error=f"{type(error).__name__}: {error}", pause_seconds=self._pause_seconds)
                return False
            if self._failing:
                self._failing = False
                log("progress_publish_resumed", job_id=job_id)
            return True

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.connection_pool.disconnect()
            except Exception:  # noqa: BLE001 - a broken socket may fail to close; it is dropped anyway
                pass

    def disconnect(self) -> None:
        """Close the connection at the end of a job: Lambda freezes the process between invocations,
        and a connection that sat frozen is often dead when the next job would use it."""
        with self._lock:
            if self._client is not None:
                try:
                    self._client.connection_pool.disconnect()
                except Exception:  # noqa: BLE001
                    self._client = None


_PUBLISHERS: dict[tuple[str, str], ProgressPublisher] = {}
_PUBLISHERS_LOCK = threading.Lock()


def progress_publisher(redis_url: str | None, parameter: str | None) -> ProgressPublisher | None:
    """This process's publisher for the configured Redis, or None when progress goes to the row only."""
    if redis_url:
        key, resolve = ("url", redis_url), (lambda: redis_url)
    elif parameter:
        key, resolve = ("ssm", parameter), (lambda: read_parameter(parameter))
    else:
        return None
    with _PUBLISHERS_LOCK:
        if key not in _PUBLISHERS:
            _PUBLISHERS[key] = ProgressPublisher(resolve)
        return _PUBLISHERS[key]
