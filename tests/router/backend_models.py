"""The backend's request and response models, as its FastAPI app declares them (pydantic 2, nested, Enums).

Field names and types as in the backend's ``models.py`` (branch fabric-ui-changes): tests hand
the router the same objects the routes do, and the documented routes answer the same model.
"""

from __future__ import annotations

import enum
from typing import Literal

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
