"""The backend's request, in any of its shapes, becomes plain JSON values for the contract."""

from __future__ import annotations

import json
from types import SimpleNamespace

from processor.contract import make_job
from router.request import request_fields
from tests.router.backend_models import CompleteUploadRequest, RandomCuttingParams, TextInput, TextStrategy

PLAIN = {
    "job_id": "job-1", "s3_key": "uploads/u1/video.mp4", "user_id": "u1", "file_size": 1234,
    "cutting_options": {"type": "random", "min_duration": 5, "max_duration": 9},
    "text_strategy": "unique_for_all",
    "text_input": {"strategy": "unique_for_all", "base_text": None, "context": None, "unique_texts": ["a", "b"]},
}


class PydanticOneModel:
    """pydantic 1's interface: `.dict()`, no `model_dump`."""

    def __init__(self, **values):
        self._values = values

    def dict(self):
        return dict(self._values)


def test_a_pydantic_model_with_nested_models_and_enums():
    request = CompleteUploadRequest(
        job_id="job-1", s3_key="uploads/u1/video.mp4", user_id="u1", file_size=1234,
        cutting_options=RandomCuttingParams(min_duration=5, max_duration=9),
        text_strategy=TextStrategy.UNIQUE_FOR_ALL,
        text_input=TextInput(strategy=TextStrategy.UNIQUE_FOR_ALL, unique_texts=["a", "b"]))
    assert request_fields(request) == PLAIN


def test_objects_with_attributes_pydantic_one_models_and_mappings():
    request = SimpleNamespace(**{**PLAIN, "cutting_options": PydanticOneModel(**PLAIN["cutting_options"]),
                                 "text_input": SimpleNamespace(**PLAIN["text_input"])})
    assert request_fields(request) == PLAIN
    assert request_fields(PLAIN) == PLAIN


def test_missing_fields_are_none_and_the_result_feeds_the_contract():
    fields = request_fields({"job_id": "job-2", "s3_key": "uploads/x.mp4"})
    assert fields["user_id"] is None and fields["cutting_options"] is None
    job = make_job(**fields, bucket="easy-video-share-videos", source="router")
    assert json.loads(json.dumps(job.to_event()))["cutting_options"] == {"type": "fixed", "duration_seconds": 30}
