"""Synthetic job histories written to the moto table as the router and the processor write rows.

Each job is given by the figures a reader can check by hand (queue wait, processing seconds,
video seconds); the row carries them the way real rows do: ``dispatched_at`` then
``first_claimed_at`` ``wait`` seconds later, ``processing_started_at`` (the last attempt's claim,
``retried_after`` seconds after the first), then ``completed_at``/``failed_at`` and the
recorded ``processing_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable

import boto3


@dataclass(frozen=True)
class Past:
    backend: str  # lambda | celery
    status: str  # COMPLETED | FAILED | PROCESSING | QUEUED
    wait: float | None = None  # dispatch to claim; None: never claimed
    processing: float | None = None
    video: float | None = None
    memory_mb: int | None = None
    error_type: str | None = None
    fell_back: bool = False
    attempts: int = 1
    retried_after: float = 0.0  # first claim to the last attempt's claim
    transitions: int | None = None
    billed: float | None = None  # a fan-out's lambda_billed_seconds, its invocations' together
    invocations: int | None = None  # a fan-out's lambda_invocations
    recorded: bool = True  # False: a row from before processing_seconds was written (timestamps only)
    minutes_ago: float = 10.0


def _iso(moment: datetime, fraction: bool = True) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if fraction else "%Y-%m-%dT%H:%M:%SZ")


def row(job_id: str, past: Past, now: datetime) -> dict[str, Any]:
    created = now - timedelta(minutes=past.minutes_ago)
    item: dict[str, Any] = {"video_id": job_id, "status": past.status, "user_id": "user-1",
                            "created_at": _iso(created, fraction=False), "bucket_location": f"uploads/{job_id}.mp4",
                            "processing_backend": past.backend, "routing_reason": "rollout",
                            "dispatched_at": _iso(created + timedelta(seconds=1)), "fell_back": past.fell_back}
    if past.fell_back:
        item["routing_reason"] = "fallback"
    if past.wait is not None:
        first = created + timedelta(seconds=1 + past.wait)
        started = first + timedelta(seconds=past.retried_after)
        item.update(processed_by=past.backend, first_claimed_at=_iso(first), processing_started_at=_iso(started),
                    processing_attempts=past.attempts)
        if past.memory_mb:
            item["processing_memory_mb"] = past.memory_mb
        if past.status in ("COMPLETED", "FAILED") and past.processing is not None:
            end = _iso(started + timedelta(seconds=past.processing))
            item["completed_at" if past.status == "COMPLETED" else "failed_at"] = end
            if past.recorded:
                item["processing_seconds"] = Decimal(str(past.processing))
        if past.video is not None:
            item["input_duration_seconds"] = Decimal(str(past.video))
        if past.error_type:
            item["error_type"] = past.error_type
        if past.transitions is not None:
            item["state_transitions"] = past.transitions
        if past.billed is not None:
            item["lambda_billed_seconds"] = Decimal(str(past.billed))
        if past.invocations is not None:
            item["lambda_invocations"] = past.invocations
    return item


def write_history(table: str, jobs: Iterable[Past], now: datetime, prefix: str = "job") -> None:
    with boto3.resource("dynamodb").Table(table).batch_writer() as batch:
        for index, past in enumerate(jobs):
            batch.put_item(Item=row(f"{prefix}-{index:03d}", past, now))


def write_unrouted(table: str, job_id: str, now: datetime, minutes_ago: float = 5.0) -> None:
    """A row as the backend writes it before the router existed: no backend chosen."""
    boto3.resource("dynamodb").Table(table).put_item(Item={
        "video_id": job_id, "status": "COMPLETED", "created_at": _iso(now - timedelta(minutes=minutes_ago))})


def completed(backend: str, figures: Iterable[tuple[float, float, float]], memory_mb: int | None = None,
              **extra: Any) -> list[Past]:
    """Completed jobs from (wait, processing, video) triples."""
    return [Past(backend, "COMPLETED", wait=w, processing=p, video=v, memory_mb=memory_mb, **extra)
            for w, p, v in figures]
