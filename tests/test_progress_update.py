"""Today's progress message: the scale, the row's reading, the order that keeps percentages rising."""

from __future__ import annotations

from decimal import Decimal

import pytest

from processor import progress_update as pu
from processor.progress_update import ProgressUpdate
from tests.progress_checks import TODAYS_STAGES, validate
from tests.router.backend_models import ProgressUpdate as BackendProgressUpdate


def test_the_stages_are_todays_in_todays_order():
    assert list(pu.STAGES) == TODAYS_STAGES


@pytest.mark.parametrize(("stage", "fraction", "expected"), [
    # tasks.py: queued 0, downloading 2, analyzing 5, generating_text 10, processing 10 -> 90,
    # uploading_results 95, completed 100.
    ("queued", 0.0, 0.0), ("downloading_video", 0.0, 2.0), ("downloading_video", 1.0, 5.0),
    ("analyzing_duration", 0.0, 5.0), ("generating_text", 0.0, 10.0), ("processing_segment", 0.0, 10.0),
    ("processing_segment", 0.5, 50.0), ("processing_segment", 1.0, 90.0), ("segment_uploaded", 1 / 3, 91.67),
    ("segment_uploaded", 1.0, 95.0), ("uploading_results", 0.0, 95.0), ("completed", 0.0, 100.0),
    ("processing_segment", 7.0, 90.0), ("processing_segment", -1.0, 10.0), ("processing_segment", float("nan"), 10.0),
])
def test_percentages_are_on_todays_scale(stage: str, fraction: float, expected: float):
    assert pu.percentage(stage, fraction) == expected


def test_the_stages_in_order_never_lower_the_percentage():
    ranges = [pu.SCALE[stage] for stage in pu.STAGES if stage != "failed"]
    assert all(low <= high for low, high in ranges)
    assert all(ranges[i][1] <= ranges[i + 1][0] for i in range(len(ranges) - 1))


@pytest.mark.parametrize(("fraction", "expected"), [
    (0.0, 1), (0.19, 1), (0.2, 2), (0.5, 2), (0.6, 3), (0.99, 3), (1.0, 3), (1.5, 3), (-1, 1)])
def test_segment_at_follows_the_encoder_through_the_plan(fraction: float, expected: int):
    assert pu.segment_at(fraction, [2.0, 6.0, 10.0]) == expected


def test_segment_at_without_a_plan_is_zero():
    assert pu.segment_at(0.5, []) == 0


def test_a_message_has_exactly_the_backends_fields_and_survives_json():
    update = pu.make("job-1", "segment_uploaded", fraction=0.5, current_segment=1, total_segments=2,
                     output_urls=["processed/job-1/segment_000.mp4"])
    assert validate(update.to_json()).output_urls == ["processed/job-1/segment_000.mp4"]
    validate(update.to_dict())
    assert list(update.to_dict()) == list(BackendProgressUpdate.model_fields)
    assert ProgressUpdate.from_json(update.to_json()) == update
    assert update.message == "Segment 1 uploaded to S3."


def test_a_failed_message_carries_the_reason_and_keeps_the_percentage():
    update = pu.failed("job-1", "input is not a video", reached=5.0)
    assert (update.stage, update.error_message, update.progress_percentage) == ("failed", "input is not a video", 5.0)
    assert update.message == "Processing failed: input is not a video"
    validate(update.to_dict())


@pytest.mark.parametrize("data", [
    [], {"stage": "queued"},
    {"job_id": "j", "stage": "downloading", "message": "m", "progress_percentage": 1, "timestamp": "t"},
    {"job_id": "j", "stage": "queued", "message": "m", "progress_percentage": True, "timestamp": "t"},
    {"job_id": "j", "stage": "queued", "message": "m", "progress_percentage": "5", "timestamp": "t"},
    {"job_id": "j", "stage": "queued", "message": "m", "progress_percentage": 1, "timestamp": "t",
     "output_urls": "processed/x"},
    {"job_id": "j", "stage": "queued", "message": "m", "progress_percentage": 1, "timestamp": "t",
     "current_segment": 1.5},
    {"job_id": "j", "stage": "queued", "message": None, "progress_percentage": 1, "timestamp": "t"},
])
def test_a_message_not_in_todays_shape_is_refused(data):
    with pytest.raises(ValueError):
        ProgressUpdate.from_dict(data)


def test_a_message_that_is_not_json_is_refused():
    with pytest.raises(ValueError, match="JSON"):
        ProgressUpdate.from_json(b"\x00not json")


def test_todays_workers_messages_are_read():
    """tasks.py's own messages (floats, nulls) are read as they are."""
    today = {"job_id": "j", "stage": "processing_segment", "message": "Processing 3 segments...",
             "current_segment": 1, "total_segments": 3, "progress_percentage": 36.666666666666664,
             "timestamp": "2025-07-01T10:00:00Z", "output_urls": None, "error_message": None}
    assert ProgressUpdate.from_dict(today).to_dict() == today


NOW = "2026-01-02T03:04:05.000000Z"


@pytest.mark.parametrize(("row", "expected"), [
    ({"status": "QUEUED", "updated_at": NOW},
     {"stage": "queued", "progress_percentage": 0.0, "message": "Job received, initializing..."}),
    ({"status": "PROCESSING", "processing_stage": "queued", "progress_percentage": Decimal(0), "updated_at": NOW},
     {"stage": "queued", "progress_percentage": 0.0}),
    ({"status": "PROCESSING", "processing_stage": "downloading_video", "progress_percentage": Decimal("3.5"),
      "updated_at": NOW}, {"stage": "downloading_video", "progress_percentage": 3.5, "current_segment": None}),
    ({"status": "PROCESSING", "processing_stage": "processing_segment", "progress_percentage": Decimal("50"),
      "current_segment": Decimal(2), "total_segments": Decimal(3), "updated_at": NOW},
     {"stage": "processing_segment", "current_segment": 2, "total_segments": 3,
      "message": "Processing segment 2 of 3..."}),
    ({"status": "PROCESSING", "processing_stage": "segment_uploaded", "progress_percentage": Decimal("93.33"),
      "current_segment": Decimal(2), "total_segments": Decimal(3), "updated_at": NOW},
     {"stage": "segment_uploaded", "output_urls": ["processed/job-1/segment_000.mp4",
                                                   "processed/job-1/segment_001.mp4"]}),
    ({"status": "PROCESSING", "processing_stage": "uploading_results", "progress_percentage": Decimal(95),
      "current_segment": None, "total_segments": Decimal(2), "updated_at": NOW},
     {"stage": "uploading_results", "current_segment": None, "total_segments": None,
      "output_urls": ["processed/job-1/segment_000.mp4", "processed/job-1/segment_001.mp4"]}),
    ({"status": "COMPLETED", "processing_stage": "completed", "progress_percentage": Decimal(100),
      "output_s3_urls": ["processed/job-1/segment_001.mp4", "processed/job-1/segment_000.mp4"], "updated_at": NOW},
     {"stage": "completed", "progress_percentage": 100.0,
      "output_urls": ["processed/job-1/segment_001.mp4", "processed/job-1/segment_000.mp4"]}),
    ({"status": "FAILED", "error_message": "input is not a video", "progress_percentage": Decimal(5),
      "updated_at": NOW},
     {"stage": "failed", "error_message": "input is not a video", "progress_percentage": 5.0}),
    # Today's worker writes FAILED with no percentage, and a row the router failed has none either.
    ({"status": "FAILED", "error_message": "no backend took the job"},
     {"stage": "failed", "progress_percentage": 0.0}),
])
def test_the_row_reads_as_the_message_of_its_state(row, expected):
    update = pu.from_row("job-1", row)
    data = validate(update.to_dict()).model_dump()
    assert {key: data[key] for key in expected} == expected
    assert data["job_id"] == "job-1"
    assert data["timestamp"] == row.get("updated_at", data["timestamp"])


@pytest.mark.parametrize("row", [
    None, {},
    # Today's worker sets PROCESSING and no stage: its progress is on Redis only.
    {"status": "PROCESSING"},
    {"status": "PROCESSING", "processing_stage": "claimed"},
    {"status": "SOMETHING"},
])
def test_a_row_that_says_nothing_a_message_could_gives_none(row):
    assert pu.from_row("job-1", row) is None


def _at(stage: str, pct: float, current: int | None = None, urls: int = 0) -> ProgressUpdate:
    return ProgressUpdate("j", stage, "m", pct, NOW, current_segment=current,
                          output_urls=tuple(f"k{i}" for i in range(urls)) if urls else None)


@pytest.mark.parametrize(("update", "than", "newer"), [
    (_at("queued", 0), None, True),
    (_at("downloading_video", 2), _at("queued", 0), True),
    (_at("downloading_video", 2), _at("downloading_video", 2), False),   # the same state, from the row
    (_at("processing_segment", 40), _at("processing_segment", 50), False),  # an older row write
    (_at("downloading_video", 3), _at("processing_segment", 50), False),  # a retry starting over
    (_at("analyzing_duration", 5), _at("downloading_video", 5), True),  # same percentage, next stage
    (_at("processing_segment", 50, 3), _at("processing_segment", 50, 2), True),
    (_at("segment_uploaded", 95, 2, urls=2), _at("segment_uploaded", 95, 2, urls=1), True),
    (_at("failed", 40), _at("processing_segment", 50), True),  # the end is always news
    (_at("completed", 100), _at("completed", 100), False),
    (_at("failed", 100), _at("completed", 100), False),
])
def test_only_newer_progress_passes(update, than, newer):
    assert pu.is_newer(update, than) is newer
