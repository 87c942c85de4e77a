"""The backend's upload-complete request, whatever shape it arrives in.

The backend hands over a pydantic model (`CompleteUploadRequest`, with nested models for the
cutting options and the text input); tests and scripts hand over dicts. Everything is read
field by field and turned into plain JSON values before the job contract sees it, so the
contract, the Lambda event and the Celery arguments never carry a model or an Enum.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from typing import Any, Mapping

REQUEST_FIELDS = ("job_id", "s3_key", "user_id", "file_size", "cutting_options", "text_strategy", "text_input")


def field_of(request: Any, name: str) -> Any:
    if isinstance(request, Mapping):
        return request.get(name)
    return getattr(request, name, None)


def to_plain(value: Any) -> Any:
    """Models (pydantic 2 or 1), dataclasses, Enums, UUIDs and mappings as plain values."""
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_plain(item) for item in value]
    if callable(getattr(value, "model_dump", None)):
        return to_plain(value.model_dump(mode="json"))
    if callable(getattr(value, "dict", None)):
        return to_plain(value.dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    if hasattr(value, "__dict__"):
        return to_plain({key: item for key, item in vars(value).items() if not key.startswith("_")})
    return value


def request_fields(request: Any) -> dict[str, Any]:
    return {name: to_plain(field_of(request, name)) for name in REQUEST_FIELDS}
