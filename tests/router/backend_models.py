"""The backend's models, as its FastAPI app declares them (pydantic 2, nested, Enums).

Field names and types as in the backend's ``models.py`` (branch fabric-ui-changes): the request
models `router.dispatch` accepts (tests hand the router the same objects the routes do), the
response the documented routes answer, and `ProgressUpdate`, the message the backend relays to
the browser.
"""

from __future__ import annotations

import enum
from typing import List, Literal, Optional

import pydantic


class TextStrategy(str, enum.Enum):
    ONE_FOR_ALL = "one_for_all"
    BASE_VARY = "base_vary"
    UNIQUE_FOR_ALL = "unique_for_all"


class FixedCuttingParams(pydantic.BaseModel):
    type: Literal["fixed"] = "fixed"
    duration_seconds: int


class RandomCuttingParams(pydantic.BaseModel):
    type: Literal["random"] = "random"
    min_duration: int
    max_duration: int


class TextInput(pydantic.BaseModel):
    strategy: TextStrategy
    base_text: str | None = None
    context: str | None = None
    unique_texts: list[str] | None = None


class CompleteUploadRequest(pydantic.BaseModel):
    job_id: str
    s3_key: str
    user_id: str | None = None
    file_size: int | None = None
    cutting_options: FixedCuttingParams | RandomCuttingParams | None = None
    text_strategy: TextStrategy | None = None
    text_input: TextInput | None = None
    filename: str | None = None
    title: str | None = None
    user_email: str | None = None
    content_type: str | None = None


class CompleteMultipartUploadRequest(CompleteUploadRequest):
    """The frontend's request above 200 MB: the same fields, plus the multipart upload to complete."""

    upload_id: str
    parts: list[dict]


class JobCreatedResponse(pydantic.BaseModel):
    job_id: str
    status: str
    message: str


class ProgressUpdate(pydantic.BaseModel):
    """Model for streaming job progress updates via SSE"""
    job_id: str
    stage: str
    message: str
    current_segment: Optional[int] = None
    total_segments: Optional[int] = None
    progress_percentage: float
    timestamp: str
    output_urls: Optional[List[str]] = None
    error_message: Optional[str] = None
