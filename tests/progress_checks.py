"""What the backend's processing page needs from a job's progress messages, checked message by message.

Written from the backend (models.py, tasks.py) and its frontend (Processing.vue), not from
`processor.progress_update`, so a test compares the processor with today's backend, not with itself.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest

from tests.router.backend_models import ProgressUpdate

# Today's stages, in the order tasks.py sends them.
TODAYS_STAGES = ["queued", "downloading_video", "analyzing_duration", "generating_text", "processing_segment",
                 "segment_uploaded", "uploading_results", "completed", "failed"]


def validate(message: Any) -> ProgressUpdate:
    """One message as the backend reads it: its model, exactly its fields, one of today's stages."""
    data = json.loads(message) if isinstance(message, (str, bytes)) else message
    assert set(data) == set(ProgressUpdate.model_fields), data
    update = ProgressUpdate.model_validate(data)
    assert update.stage in TODAYS_STAGES, update
    assert update.timestamp.endswith("Z"), update
    return update


def check_job_messages(messages: list[Any], row: dict[str, Any], *, job_id: str) -> list[ProgressUpdate]:
    """Every message of one job, start to finish, against today's contract and the job's final row."""
    assert messages, f"no progress message for job {job_id}"
    updates = [validate(message) for message in messages]
    assert all(update.job_id == job_id for update in updates)
    percentages = [update.progress_percentage for update in updates]
    assert percentages == sorted(percentages), f"percentages fell: {percentages}"
    assert 0 <= percentages[0] and percentages[-1] <= 100
    ranks = [TODAYS_STAGES.index(update.stage) for update in updates]
    assert ranks == sorted(ranks), f"stages went back: {[u.stage for u in updates]}"
    terminal = [update for update in updates if update.stage in ("completed", "failed")]
    assert terminal == updates[-1:], "exactly one completed or failed message, the last"
    last = updates[-1]
    if row["status"] == "COMPLETED":
        assert (last.stage, last.progress_percentage) == ("completed", 100)
        # The frontend lists the outputs from this message: the row's keys, in order.
        assert last.output_urls == row["output_s3_urls"]
    else:
        assert row["status"] == "FAILED"
        assert last.stage == "failed" and last.error_message == row["error_message"]
        assert last.error_message in last.message
    for update in updates:
        if update.stage == "processing_segment":
            assert update.total_segments and 1 <= update.current_segment <= update.total_segments, update
        if update.stage == "segment_uploaded":
            assert update.output_urls == [f"processed/{job_id}/segment_{i:03d}.mp4"
                                          for i in range(update.current_segment)], update
            assert update.current_segment <= update.total_segments
    uploaded = [update.current_segment for update in updates if update.stage == "segment_uploaded"]
    assert uploaded == sorted(set(uploaded)), f"segment_uploaded repeated or went back: {uploaded}"
    return updates


class ChannelRecorder:
    """Everything published on a job's channel, read by a real subscriber (as the backend's endpoint)."""

    def __init__(self, redis_url: str, job_id: str) -> None:
        import redis

        self.pubsub = redis.Redis.from_url(redis_url).pubsub()
        self.pubsub.subscribe(f"job_progress_{job_id}")
        confirmation = self.pubsub.get_message(timeout=5)
        assert confirmation and confirmation["type"] == "subscribe", confirmation
        self.messages: list[dict[str, Any]] = []

    def received(self) -> list[dict[str, Any]]:
        """What arrived so far, without waiting."""
        while (message := self.pubsub.get_message(timeout=0.2)) is not None:
            if message["type"] == "message":
                self.messages.append(json.loads(message["data"]))
        return self.messages

    def until_terminal(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == "message":
                self.messages.append(json.loads(message["data"]))
                if self.messages[-1].get("stage") in ("completed", "failed"):
                    return self.messages
        pytest.fail(f"no completed or failed message within {timeout} s; got {self.messages}")

    def close(self) -> None:
        self.pubsub.close()


def collect(job_id: str, *, redis_url: str | None, table: Any, timeout: float = 120.0,
            **options: Any) -> list[dict[str, Any]]:
    """Everything `router.progress_events` yields for ``job_id``, until it ends by itself."""
    import redis.asyncio as aioredis

    from router import progress_events

    async def run() -> list[dict[str, Any]]:
        client = aioredis.Redis.from_url(redis_url) if redis_url else None
        seen = []
        try:
            async for update in progress_events(job_id, redis=client, table=table, **options):
                seen.append(update)
        finally:
            if client is not None:
                await client.connection_pool.disconnect()
        return seen

    return asyncio.run(asyncio.wait_for(run(), timeout))


class HelperRecorder:
    """`collect` on a thread of its own, started before the job so it sees it from the start."""

    def __init__(self, job_id: str, *, redis_url: str | None, table: Any, **options: Any) -> None:
        self.updates: list[dict[str, Any]] | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(job_id, redis_url, table, options), daemon=True)
        self._thread.start()
        if redis_url is not None:
            import redis

            counter = redis.Redis.from_url(redis_url)
            deadline = time.monotonic() + 10
            while counter.pubsub_numsub(f"job_progress_{job_id}")[0][1] == 0:
                assert time.monotonic() < deadline, "the helper did not subscribe"
                time.sleep(0.01)

    def _run(self, job_id: str, redis_url: str | None, table: Any, options: dict[str, Any]) -> None:
        try:
            self.updates = collect(job_id, redis_url=redis_url, table=table, **options)
        except BaseException as error:  # noqa: BLE001 - reported by result()
            self.error = error

    def result(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the helper did not end after the job's last message"
        if self.error is not None:
            raise self.error
        return self.updates


def assert_no_repeats(updates: list[dict[str, Any]]) -> None:
    states = [(u["stage"], u["progress_percentage"], u["current_segment"], len(u["output_urls"] or ()))
              for u in updates]
    assert len(states) == len(set(states)), states
