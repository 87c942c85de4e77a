"""The job contract with the running backend (DESIGN section 3), parsed and validated.

Pure: no I/O, standard library only, so the router (on the backend's side) and the processor
(in Lambda and in the Celery worker) share one definition of a valid job. The backend's own
models check no bounds; everything a user controls is bounded here, and every violation is an
`InvalidJobError` naming the field.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from processor.errors import InvalidJobError

CELERY_TASK_NAME = "tasks.process_video_task"
PROGRESS_CHANNEL = "job_progress_{job_id}"
OUTPUT_KEY = "processed/{job_id}/segment_{index:03d}.mp4"

TEXT_STRATEGIES = ("one_for_all", "base_vary", "unique_for_all")
DEFAULT_SEGMENT_SECONDS = 30
MIN_SEGMENT_SECONDS = 1
MAX_SEGMENT_SECONDS = 3600
MAX_TEXTS = 1000
MAX_TEXT_CHARS = 500
MAX_CONTEXT_CHARS = 5000
MAX_KEY_BYTES = 1024
MAX_USER_ID_CHARS = 256
LEGACY_PROCESSING_TYPE = "full_video_processing"

# Job ids become S3 key segments and Redis channel names: keep them to UUID-like characters.
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# S3 bucket naming rules (lower case, digits, dots, hyphens; 3 to 63 characters).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class FixedCut:
    """Consecutive segments of ``duration`` seconds; the last one may be shorter."""

    duration: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": "fixed", "duration_seconds": _plain_number(self.duration)}


@dataclass(frozen=True)
class RandomCut:
    """Each segment's length drawn uniformly in [min_duration, max_duration]."""

    min_duration: float
    max_duration: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": "random", "min_duration": _plain_number(self.min_duration),
                "max_duration": _plain_number(self.max_duration)}


Cut = FixedCut | RandomCut


@dataclass(frozen=True)
class TextInput:
    strategy: str | None = None
    base_text: str | None = None
    context: str | None = None
    unique_texts: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "base_text": self.base_text, "context": self.context,
                "unique_texts": list(self.unique_texts)}


@dataclass(frozen=True)
class Job:
    """A validated job: what every backend needs to process one upload."""

    job_id: str
    s3_key: str
    cut: Cut = field(default_factory=lambda: FixedCut(DEFAULT_SEGMENT_SECONDS))
    text_strategy: str | None = None
    text_input: TextInput | None = None
    user_id: str | None = None
    file_size: int | None = None
    bucket: str | None = None
    source: str | None = None

    def output_key(self, index: int) -> str:
        return OUTPUT_KEY.format(job_id=self.job_id, index=index)

    def to_event(self) -> dict[str, Any]:
        """The Lambda async event (DESIGN section 3), JSON-serialisable."""
        return {
            "s3_bucket": self.bucket,
            "s3_key": self.s3_key,
            "job_id": self.job_id,
            "user_id": self.user_id,
            "cutting_options": self.cut.to_dict(),
            "text_strategy": self.text_strategy,
            "text_input": self.text_input.to_dict() if self.text_input else None,
            "file_size": self.file_size,
            "source": self.source,
        }

    def celery_args(self) -> list[Any]:
        """Today's positional arguments of `tasks.process_video_task`."""
        return [self.s3_key, self.job_id, self.cut.to_dict(), self.text_strategy,
                self.text_input.to_dict() if self.text_input else None, self.user_id]


def utc_timestamp() -> str:
    """Now, as the job row's timestamps are written: ISO-8601 UTC ending in ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc_timestamp(text: Any) -> datetime | None:
    """A row's timestamp, or None: the processor writes ``...:05.123456Z``, the backend may ``...:05Z``."""
    if isinstance(text, str):
        for layout in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
            try:
                return datetime.strptime(text, layout).replace(tzinfo=timezone.utc)
            except ValueError:
                continue
    return None


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidJobError(name, f"must be a number of seconds, got {value!r}")
    if not math.isfinite(value):
        raise InvalidJobError(name, f"must be finite, got {value!r}")
    if not MIN_SEGMENT_SECONDS <= value <= MAX_SEGMENT_SECONDS:
        raise InvalidJobError(name, f"must be between {MIN_SEGMENT_SECONDS} and {MAX_SEGMENT_SECONDS} "
                                    f"seconds, got {value!r}")
    return float(value)


def _optional_str(value: Any, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidJobError(name, f"must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidJobError(name, f"must be at most {limit} characters, got {len(value)}")
    return value


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidJobError(name, f"must be an object, got {type(value).__name__}")
    return value


def parse_cut(raw: Any, name: str = "cutting_options") -> Cut:
    """`cutting_options` as the backend sends it; absent means fixed 30-second segments."""
    if raw is None:
        return FixedCut(DEFAULT_SEGMENT_SECONDS)
    raw = _mapping(raw, name)
    kind = raw.get("type")
    if kind == "fixed":
        return FixedCut(_number(raw.get("duration_seconds"), f"{name}.duration_seconds"))
    if kind == "random":
        low = _number(raw.get("min_duration"), f"{name}.min_duration")
        high = _number(raw.get("max_duration"), f"{name}.max_duration")
        if low > high:
            raise InvalidJobError(f"{name}.min_duration",
                                  f"must not exceed max_duration ({_plain_number(low)} > {_plain_number(high)})")
        return RandomCut(low, high)
    raise InvalidJobError(f"{name}.type", f"must be 'fixed' or 'random', got {kind!r}")


def parse_text(strategy: Any, raw: Any) -> tuple[str | None, TextInput | None]:
    """`text_strategy` and `text_input`; the top-level strategy wins over the nested one."""
    if raw is not None:
        raw = _mapping(raw, "text_input")
    nested = raw.get("strategy") if raw is not None else None
    chosen = strategy if strategy is not None else nested
    for name, value in (("text_strategy", chosen), ("text_input.strategy", nested)):
        if value is not None and value not in TEXT_STRATEGIES:
            raise InvalidJobError(name, f"must be one of {', '.join(TEXT_STRATEGIES)}, got {value!r}")
    if raw is None:
        return chosen, None
    texts = raw.get("unique_texts") or []
    if not isinstance(texts, (list, tuple)):
        raise InvalidJobError("text_input.unique_texts", f"must be a list of strings, got {type(texts).__name__}")
    if len(texts) > MAX_TEXTS:
        raise InvalidJobError("text_input.unique_texts", f"must hold at most {MAX_TEXTS} texts, got {len(texts)}")
    unique = tuple(_optional_str(text, f"text_input.unique_texts[{i}]", MAX_TEXT_CHARS) or ""
                   for i, text in enumerate(texts))
    return chosen, TextInput(
        strategy=nested,
        base_text=_optional_str(raw.get("base_text"), "text_input.base_text", MAX_TEXT_CHARS),
        context=_optional_str(raw.get("context"), "text_input.context", MAX_CONTEXT_CHARS),
        unique_texts=unique,
    )


def validate_s3_key(key: Any, name: str = "s3_key") -> str:
    """An object key the processor may read: no traversal, no absolute path, S3's length limit."""
    if not isinstance(key, str) or not key:
        raise InvalidJobError(name, "must be a non-empty string")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidJobError(name, f"must be at most {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise InvalidJobError(name, "must not start with '/'")
    if ".." in key.split("/"):
        raise InvalidJobError(name, "must not contain a '..' segment")
    if any(ord(char) < 32 or ord(char) == 127 for char in key):
        raise InvalidJobError(name, "must not contain control characters")
    return key


def validate_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise InvalidJobError("job_id", "must be 1 to 128 letters, digits, '-' or '_' "
                                        f"(a UUID), got {job_id!r}")
    return job_id


def _file_size(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidJobError("file_size", f"must be a non-negative whole number of bytes, got {value!r}")
    return value


def _user_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return _optional_str(value, "user_id", MAX_USER_ID_CHARS)


def is_bucket_name(value: Any) -> bool:
    return isinstance(value, str) and _BUCKET.fullmatch(value) is not None


def _bucket(value: Any, expected: str | None) -> str | None:
    if value is None:
        return expected
    if not is_bucket_name(value):
        raise InvalidJobError("s3_bucket", f"is not a valid bucket name: {value!r}")
    if expected is not None and value != expected:
        raise InvalidJobError("s3_bucket", f"must be the configured bucket {expected!r}, got {value!r}")
    return value


def make_job(*, job_id: Any, s3_key: Any, cutting_options: Any = None, text_strategy: Any = None,
             text_input: Any = None, user_id: Any = None, file_size: Any = None,
             bucket: Any = None, expected_bucket: str | None = None, source: Any = None) -> Job:
    """Validate the fields of a job wherever they come from (event, task arguments, request)."""
    strategy, text = parse_text(text_strategy, text_input)
    return Job(
        job_id=validate_job_id(job_id),
        s3_key=validate_s3_key(s3_key),
        cut=parse_cut(cutting_options),
        text_strategy=strategy,
        text_input=text,
        user_id=_user_id(user_id),
        file_size=_file_size(file_size),
        bucket=_bucket(bucket, expected_bucket),
        source=_optional_str(source, "source", 64),
    )


# Today's task signature; the worker binds each delivery to it itself, so that a delivery that does
# not match is a job failed with the reason instead of a TypeError Celery logs and acknowledges.
CELERY_TASK_PARAMETERS = ("s3_input_key", "job_id", "cutting_options", "text_strategy", "text_input", "user_id")
_CELERY_SIGNATURE = inspect.Signature([
    inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                      default=inspect.Parameter.empty if index < 2 else None)
    for index, name in enumerate(CELERY_TASK_PARAMETERS)])


def celery_job_id(args: tuple[Any, ...], kwargs: Mapping[str, Any], task_id: Any) -> Any:
    """The job a delivery is about, even when its arguments do not bind: the ``job_id`` keyword,
    the second positional argument, else the task id (the router sends the job id as task id)."""
    for candidate in (kwargs.get("job_id"), args[1] if len(args) > 1 else None, task_id):
        try:
            return validate_job_id(candidate)
        except InvalidJobError:
            continue
    return kwargs.get("job_id", args[1] if len(args) > 1 else None)


def parse_celery_call(args: tuple[Any, ...], kwargs: Mapping[str, Any], *, bucket: str | None = None) -> Job:
    """A delivery of `tasks.process_video_task`, checked against today's signature."""
    try:
        bound = _CELERY_SIGNATURE.bind(*args, **kwargs)
    except TypeError as error:
        raise InvalidJobError("task arguments", f"{error}; expected ({', '.join(CELERY_TASK_PARAMETERS)}), "
                                                f"got {len(args)} positional and "
                                                f"{sorted(kwargs) or 'no'} keyword arguments") from None
    bound.apply_defaults()
    fields = bound.arguments
    return make_job(job_id=fields["job_id"], s3_key=fields["s3_input_key"], cutting_options=fields["cutting_options"],
                    text_strategy=fields["text_strategy"], text_input=fields["text_input"],
                    user_id=fields["user_id"], bucket=bucket, source="celery")


def parse_event(event: Any, *, expected_bucket: str | None = None) -> Job:
    """A Lambda event: today's shape, or the older one of the backend's first Lambda attempt.

    The older payload carried ``segment_duration`` and ``processing_type:
    full_video_processing`` instead of ``cutting_options``; it becomes a fixed cut.
    """
    event = _mapping(event, "event")
    cutting_options = event.get("cutting_options")
    if cutting_options is None and "segment_duration" in event:
        processing_type = event.get("processing_type", LEGACY_PROCESSING_TYPE)
        if processing_type != LEGACY_PROCESSING_TYPE:
            raise InvalidJobError("processing_type", f"must be {LEGACY_PROCESSING_TYPE!r}, got {processing_type!r}")
        cutting_options = {"type": "fixed", "duration_seconds": event["segment_duration"]}
    return make_job(
        job_id=event.get("job_id"),
        s3_key=event.get("s3_key"),
        cutting_options=cutting_options,
        text_strategy=event.get("text_strategy"),
        text_input=event.get("text_input"),
        user_id=event.get("user_id"),
        file_size=event.get("file_size"),
        bucket=event.get("s3_bucket"),
        expected_bucket=expected_bucket,
        source=event.get("source"),
    )
