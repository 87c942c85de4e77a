"""Job progress for the backend's server-sent events endpoint: the Redis channel and the job row.

The backend's ``GET /api/job-progress/{job_id}/stream`` relays the channel
``job_progress_{job_id}``. Jobs on Lambda may not reach that Redis (no ``progressRedisUrl``, or
Railway's proxy down), and a browser that connects late has missed what was published. Both
backends keep the same state on the job row, so `progress_events` reads both: each message on
the channel as it comes, and the row every ``poll_seconds``. It yields today's messages only
(`processor.progress_update`), each state once and never an older one after a newer (so the
percentage never falls), and ends after ``completed`` or ``failed``.

A Redis that fails while streaming is logged once and the stream goes on from the row alone;
a row read that fails is logged and tried again at the next poll. Runs on the backend's own
pins (Python 3.11, ``redis==5.0.1``: ``redis.asyncio``; boto3 in a thread).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator

from processor.contract import PROGRESS_CHANNEL, validate_job_id
from processor.progress_update import ProgressUpdate, from_row, is_newer
from router.log import log_event
from router.record import JobTable
from router.settings import Settings

POLL_SECONDS = 1.0


def progress_events(job_id: str, *, redis: Any = None, table: Any = None,
                    poll_seconds: float = POLL_SECONDS) -> AsyncIterator[dict[str, Any]]:
    """Today's progress messages of ``job_id`` (dicts of the backend's ``ProgressUpdate``), to the end.

    ``redis`` is a ``redis.asyncio.Redis`` client (the backend's pool), or None for the row
    alone; ``table`` a boto3 DynamoDB ``Table`` (the backend's ``dynamodb_service.table``) or a
    table name, by default ``DYNAMODB_TABLE_NAME`` or else the backend's default table, as its
    ``config.py`` has it. A job id that is not one (it names a Redis
    channel and a row key) raises ``ValueError`` here, before anything is read.
    """
    validate_job_id(job_id)
    if table is None or isinstance(table, str):
        table = JobTable(name=table or Settings.from_environment().table_name)
    elif not isinstance(table, JobTable):
        table = JobTable(table)
    return _events(job_id, redis, table, poll_seconds)


async def _subscribe(redis: Any, channel: str, job_id: str) -> Any:
    if redis is None:
        return None
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(channel)
    except Exception as error:  # noqa: BLE001 - any Redis failure: stream from the row
        log_event(logging.WARNING, "router.progress_redis_failed", job_id=job_id, error=str(error))
        await _close(pubsub, channel)
        return None
    return pubsub


async def _close(pubsub: Any, channel: str) -> None:
    try:
        await pubsub.unsubscribe(channel)
    except Exception:  # noqa: BLE001 - the connection may be the thing that broke
        pass
    close = getattr(pubsub, "aclose", None) or pubsub.close  # aclose from redis 5.0.1 on
    try:
        await close()
    except Exception:  # noqa: BLE001
        pass


def _from_redis(data: Any, job_id: str) -> ProgressUpdate | None:
    try:
        update = ProgressUpdate.from_json(data)
    except ValueError as error:
        log_event(logging.WARNING, "router.progress_message_ignored", job_id=job_id, error=str(error))
        return None
    return update if update.job_id == job_id else None


async def _events(job_id: str, redis: Any, table: JobTable, poll_seconds: float) -> AsyncIterator[dict[str, Any]]:
    channel = PROGRESS_CHANNEL.format(job_id=job_id)
    loop = asyncio.get_running_loop()
    # Subscribed before the first row read, so nothing published in between is missed.
    pubsub = await _subscribe(redis, channel, job_id)
    last: ProgressUpdate | None = None
    next_poll = loop.time()
    try:
        while True:
            candidates: list[ProgressUpdate | None] = []
            if loop.time() >= next_poll:
                next_poll = loop.time() + poll_seconds
                try:
                    row = await asyncio.to_thread(table.read, job_id)
                except Exception as error:  # noqa: BLE001 - a throttled read must not end the stream
                    log_event(logging.WARNING, "router.progress_row_failed", job_id=job_id, error=str(error))
                else:
                    candidates.append(from_row(job_id, row))
            wait = max(0.0, next_poll - loop.time())
            if pubsub is None:
                await asyncio.sleep(wait)
            else:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                except Exception as error:  # noqa: BLE001 - Redis went away: the row carries on
                    log_event(logging.WARNING, "router.progress_redis_failed", job_id=job_id, error=str(error))
                    await _close(pubsub, channel)
                    pubsub = None
                else:
                    if message is not None and message.get("type") == "message":
                        candidates.append(_from_redis(message["data"], job_id))
            for update in candidates:
                if update is not None and is_newer(update, last):
                    last = update
                    yield update.to_dict()
                    if update.terminal:
                        return
    finally:
        if pubsub is not None:
            await _close(pubsub, channel)
