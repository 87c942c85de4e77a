"""Today's progress message (the backend's ``ProgressUpdate``), its stages and its percentages.

The backend relays every message of the Redis channel ``job_progress_{job_id}`` to the browser
as a server-sent event, and the processing page shows ``progress_percentage``, ``stage``,
``message`` and "segment x of y", lists the outputs of the ``completed`` message and shows the
``error_message`` of the ``failed`` one. Both backends build their messages here, and the
router's stream helper reads them (and the job row) here, so the three can never disagree.

Pure and standard library only: it runs in Lambda, in the worker and in the backend (Python
3.11 with its own old pins).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping, Sequence

from processor.contract import OUTPUT_KEY, utc_timestamp

QUEUED = "queued"
DOWNLOADING = "downloading_video"
ANALYZING = "analyzing_duration"
GENERATING_TEXT = "generating_text"
PROCESSING = "processing_segment"
SEGMENT_UPLOADED = "segment_uploaded"
UPLOADING = "uploading_results"
COMPLETED = "completed"
FAILED = "failed"

# In the order a job goes through them, as today's tasks.py sends them (generating_text only
# for base_vary). A message never goes back to an earlier stage of the same attempt.
STAGES = (QUEUED, DOWNLOADING, ANALYZING, GENERATING_TEXT, PROCESSING, SEGMENT_UPLOADED, UPLOADING, COMPLETED,
          FAILED)
TERMINAL = frozenset({COMPLETED, FAILED})
_RANK = {stage: index for index, stage in enumerate(STAGES)}
_RANK[FAILED] = _RANK[COMPLETED]

# The percentage range of each stage, on today's scale: tasks.py sends queued 0, downloading 2,
# analyzing 5, generating_text 10, processing 10 -> 90 (segment / total * 80 + 10), uploading
# 95 and completed 100. Its segment_uploaded starts again at 10; here it runs from 90 to 95
# instead, so percentages only ever rise. `failed` keeps the percentage reached (today: 0).
SCALE: Mapping[str, tuple[float, float]] = {
    QUEUED: (0.0, 0.0),
    DOWNLOADING: (2.0, 5.0),
    ANALYZING: (5.0, 5.0),
    GENERATING_TEXT: (10.0, 10.0),
    PROCESSING: (10.0, 90.0),
    SEGMENT_UPLOADED: (90.0, 95.0),
    UPLOADING: (95.0, 95.0),
    COMPLETED: (100.0, 100.0),
}

# Today's texts, so the page reads the same whichever backend ran the job.
MESSAGES: Mapping[str, str] = {
    QUEUED: "Job received, initializing...",
    DOWNLOADING: "Downloading video from S3...",
    ANALYZING: "Analyzing video duration...",
    GENERATING_TEXT: "AI generating text variations...",
    PROCESSING: "Processing segments...",
    SEGMENT_UPLOADED: "Segment uploaded to S3.",
    UPLOADING: "Finalizing upload to S3...",
    COMPLETED: "Video processing completed successfully!",
    FAILED: "Processing failed",
}

# The fields in the order of the backend's model.
FIELDS = ("job_id", "stage", "message", "current_segment", "total_segments", "progress_percentage", "timestamp",
          "output_urls", "error_message")


def percentage(stage: str, fraction: float = 0.0) -> float:
    """Where ``fraction`` (0..1) of ``stage`` lies on today's 0..100 scale."""
    low, high = SCALE[stage]
    fraction = min(max(fraction, 0.0), 1.0) if math.isfinite(fraction) else 0.0
    return round(low + (high - low) * fraction, 2)


def segment_at(fraction: float, segment_ends: Sequence[float]) -> int:
    """The 1-based number of the segment the encoder is in when it has done ``fraction`` of the input."""
    if not segment_ends:
        return 0
    position = min(max(fraction, 0.0), 1.0) * segment_ends[-1]
    return min(bisect_right(segment_ends, position) + 1, len(segment_ends))


def message_for(stage: str, current_segment: int | None = None, total_segments: int | None = None) -> str:
    if stage == PROCESSING and current_segment and total_segments:
        return f"Processing segment {current_segment} of {total_segments}..."
    if stage == SEGMENT_UPLOADED and current_segment:
        return f"Segment {current_segment} uploaded to S3."
    return MESSAGES[stage]


def _optional_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)) or value != int(value) or value < 0:
        raise ValueError(f"{name} must be a whole number or null, got {value!r}")
    return int(value)


def _text(data: Mapping[str, Any], name: str, optional: bool = False) -> str | None:
    value = data.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


@dataclass(frozen=True)
class ProgressUpdate:
    """One message, exactly the fields of the backend's ``ProgressUpdate`` model."""

    job_id: str
    stage: str
    message: str
    progress_percentage: float
    timestamp: str
    current_segment: int | None = None
    total_segments: int | None = None
    output_urls: tuple[str, ...] | None = None
    error_message: str | None = None

    @property
    def terminal(self) -> bool:
        return self.stage in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in FIELDS}
        if self.output_urls is not None:
            values["output_urls"] = list(self.output_urls)
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> "ProgressUpdate":
        """Read a message (from Redis); ValueError if it is not today's shape with a known stage."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a progress message is a JSON object, got {type(data).__name__}")
        stage = _text(data, "stage")
        if stage not in _RANK:
            raise ValueError(f"unknown stage {stage!r}")
        pct = data.get("progress_percentage")
        if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not math.isfinite(pct):
            raise ValueError(f"progress_percentage must be a number, got {pct!r}")
        urls = data.get("output_urls")
        if urls is not None and (not isinstance(urls, list) or not all(isinstance(url, str) for url in urls)):
            raise ValueError(f"output_urls must be a list of strings or null, got {urls!r}")
        return cls(job_id=_text(data, "job_id"), stage=stage, message=_text(data, "message"),
                   progress_percentage=float(pct), timestamp=_text(data, "timestamp"),
                   current_segment=_optional_int(data, "current_segment"),
                   total_segments=_optional_int(data, "total_segments"),
                   output_urls=None if urls is None else tuple(urls),
                   error_message=_text(data, "error_message", optional=True))

    @classmethod
    def from_json(cls, text: str | bytes) -> "ProgressUpdate":
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ValueError(f"a progress message must be JSON: {error}") from None
        return cls.from_dict(data)


def _order(update: ProgressUpdate) -> tuple[float, int, int, int]:
    return (update.progress_percentage, _RANK[update.stage], update.current_segment or 0,
            len(update.output_urls or ()))


def is_newer(update: ProgressUpdate, than: ProgressUpdate | None) -> bool:
    """Whether ``update`` tells more than ``than`` did: a higher percentage, or at the same one a
    later stage, a later segment or more keys.

    The same state told twice (by Redis and by the row) is not newer, nor an older one (a
    throttled row write, a retry starting over): percentages seen through this never fall.
    Nothing is newer than a terminal message, and a terminal message is newer than the rest.
    """
    if than is None:
        return True
    if than.terminal:
        return False
    return update.terminal or _order(update) > _order(than)


def make(job_id: str, stage: str, *, fraction: float = 0.0, floor: float = 0.0, message: str | None = None,
         current_segment: int | None = None, total_segments: int | None = None,
         output_urls: Sequence[str] | None = None, timestamp: str | None = None) -> ProgressUpdate:
    """A message of ``stage`` at ``fraction`` of it, never below ``floor`` (the percentage reached)."""
    return ProgressUpdate(
        job_id=job_id, stage=stage,
        message=message or message_for(stage, current_segment, total_segments),
        progress_percentage=max(floor, percentage(stage, fraction)),
        timestamp=timestamp or utc_timestamp(),
        current_segment=current_segment, total_segments=total_segments,
        output_urls=None if output_urls is None else tuple(output_urls),
    )


def failed(job_id: str, error_message: str, reached: float = 0.0, timestamp: str | None = None) -> ProgressUpdate:
    """The ``failed`` message: the reason in ``error_message``, the percentage reached kept."""
    return ProgressUpdate(job_id=job_id, stage=FAILED, message=f"Processing failed: {error_message}",
                          progress_percentage=float(reached), timestamp=timestamp or utc_timestamp(),
                          error_message=error_message)


def from_row(job_id: str, row: Mapping[str, Any] | None) -> ProgressUpdate | None:
    """What the job row says, as a message: the same one the processor published for that state.

    Both backends keep ``processing_stage``, ``progress_percentage``, ``current_segment`` and
    ``total_segments`` on the row; the keys uploaded so far follow from the contract's key
    scheme. None when the row says nothing a message could (no row, or a stage of today's
    worker, which writes none).
    """
    if not row:
        return None
    status, timestamp = row.get("status"), row.get("updated_at") or None
    reached = float(row.get("progress_percentage") or 0)
    if status == "COMPLETED":
        return make(job_id, COMPLETED, output_urls=list(row.get("output_s3_urls") or []), timestamp=timestamp)
    if status == "FAILED":
        return failed(job_id, str(row.get("error_message") or "unknown error"), reached, timestamp)
    if status == "QUEUED":
        return make(job_id, QUEUED, timestamp=timestamp)
    stage = row.get("processing_stage")
    if status != "PROCESSING" or stage not in _RANK or stage in TERMINAL:
        return None
    current, total = _optional_int(row, "current_segment"), _optional_int(row, "total_segments")
    urls = None
    if stage == SEGMENT_UPLOADED:
        urls = [OUTPUT_KEY.format(job_id=job_id, index=index) for index in range(current or 0)]
    elif stage == UPLOADING:
        urls = [OUTPUT_KEY.format(job_id=job_id, index=index) for index in range(total or 0)]
    counted = stage in (PROCESSING, SEGMENT_UPLOADED)
    return ProgressUpdate(job_id=job_id, stage=stage, message=message_for(stage, current, total),
                          progress_percentage=reached, timestamp=timestamp or utc_timestamp(),
                          current_segment=current if counted else None, total_segments=total if counted else None,
                          output_urls=None if urls is None else tuple(urls))
