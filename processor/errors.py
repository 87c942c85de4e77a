"""The processor's exceptions, split by what a retry would achieve.

Lambda retries an async event that raised; a permanent error (bad event, not a video) would
fail the same way on every retry, so it marks the job FAILED and returns instead. Only
`TransientError` is raised for a retry. Each error carries the ``error_type`` written to the
job row.
"""

from __future__ import annotations


class ProcessorError(Exception):
    """Base of every error the processor reports on a job row."""

    error_type = "processing_error"


class InvalidJobError(ProcessorError, ValueError):
    """The event or request breaks the contract; ``field`` names the offending field."""

    error_type = "invalid_job"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotAVideoError(ProcessorError):
    """The input has no decodable video stream."""

    error_type = "not_a_video"


class InvalidInputError(ProcessorError):
    """The input probed as a video but cannot be processed as uploaded: it ends early
    (truncated or corrupt), or it is too large for the function's memory or time."""

    error_type = "invalid_input"


class InsufficientSpaceError(ProcessorError):
    """The input (plus its segments) will not fit in the scratch directory (Lambda's /tmp)."""

    error_type = "insufficient_space"


class InputNotFoundError(ProcessorError):
    """The upload key does not exist in the bucket."""

    error_type = "input_not_found"


class DeadlineExceededError(ProcessorError):
    """Work stopped before the invocation's deadline so the job can be failed cleanly."""

    error_type = "timeout"


class ConfigurationError(ProcessorError):
    """The processor itself is misconfigured (a missing variable, a missing binary)."""

    error_type = "configuration_error"


class ToolNotFoundError(ConfigurationError):
    """ffmpeg, ffprobe or the caption fonts cannot be found."""


class FFmpegError(ProcessorError):
    """ffmpeg exited with an error on an input that probed as a video."""

    error_type = "ffmpeg_error"


class SegmentMissingError(ProcessorError):
    """A planned segment is not in S3 when a fan-out finishes: an item did not write it."""

    error_type = "segment_missing"


class TransientError(ProcessorError):
    """A dependency failed in a way a retry can fix (throttling, 5xx, connection reset)."""

    error_type = "transient_error"


class FFmpegKilledError(TransientError):
    """ffmpeg died of a signal it did not ask for. SIGKILL is what the system's out-of-memory
    killer sends, which a fresh invocation (or a smaller output) escapes; the retry is cheap
    for any other signal too, and the last attempt's message says what to change."""

    error_type = "ffmpeg_killed"

    def __init__(self, signal_name: str, memory_mb: int | None) -> None:
        if signal_name != "SIGKILL":
            super().__init__(f"ffmpeg was killed ({signal_name})")
            return
        limit = f" at {memory_mb} MB" if memory_mb else ""
        change = ("raise function.memoryMb or lower function.maxOutputLongSide (the output size)" if memory_mb else
                  "give the worker more memory or lower VIDEO_MAX_LONG_SIDE (the output size)")
        super().__init__(f"ffmpeg was killed (SIGKILL), most likely out of memory{limit}; {change}")
