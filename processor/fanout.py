"""Fan-out: one job's segments encoded by many invocations at once (the pure part).

A single pass encodes every segment one after the other, so a job waits the sum of its
segments' encode times, and a long 1080p input cannot finish inside Lambda's 15 minutes.
Each segment already is its own output file, so nothing needs joining: a Step Functions
execution (infra/state_machine.py) maps the function over *items*, runs of consecutive
segments, each encoded by seeking to its first frame (processor.command.encode_command with
``first_frame`` and ``frames``).

Everything an item needs is derived again from the job, as every retry does: the plan from the
job and the probed duration (processor.plan is deterministic; the probe travels in the
execution's input), the texts from the row (base_vary stores them before any encode). So an
item is two numbers, and a list of a thousand items is a few kilobytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping, Sequence

from processor.command import cut_frames
from processor.errors import ProcessorError, TransientError
from processor.plan import Segment

# When a job fans out, unless the stack says otherwise (infra/config.py, processor/config.py):
# below four segments or two minutes of video the single pass is already within the fan-out's
# fixed cost (bench/README.md, "Fan-out").
DEFAULT_MIN_SEGMENTS = 4
DEFAULT_MIN_DURATION_SECONDS = 120
# An item pays a cold start, reading the upload's index and uploading its segments: a few
# seconds, worth it only for at least this much video. Longer segments are one item each.
MIN_ITEM_SECONDS = 10.0
# Step Functions: an execution name has at most 80 characters: letters, digits, '-' and '_'.
EXECUTION_NAME_LIMIT = 80
# The modes the state machine invokes the function in (the "fanout" field of its payloads).
PREPARE, ITEM, FINISH, FAIL = "prepare", "item", "finish", "fail"
MODES = (PREPARE, ITEM, FINISH, FAIL)
# An inline Map runs at most 40 iterations at once, and a state's input is at most 256 KB:
# above either, the items go to S3 and a distributed Map reads them (measured: 2 + 26 bytes an
# item, so the size never binds before 9,000 items; the concurrency does).
INLINE_MAX_ITEMS = 40
INLINE_MAX_BYTES = 200 * 1024
# The demuxers an item may read over HTTP (processor.ranged_input): those whose items are
# tested equal to the single pass there (tests/test_ranged_input.py). MP4/MOV is what phones
# and cameras write. Left out: Matroska (the single pass itself writes fewer segments than
# planned from a remuxed .mkv) and MPEG-TS (the pinned ffprobe 6.0 crashes probing one). An
# upload in any other container takes the single pass.
RANGED_CONTAINERS = frozenset({"mov", "avi"})
# Where prepare puts the item list of a distributed Map; the state machine may read only these.
ITEMS_KEY = "fanout-items/{job_id}/{execution}.json"
# A permanent failure of a step reaches the fail step as its Lambda error: type StepFailed and
# "<error_type>: <message>" (an errorType that is a class name cannot carry the row's type).
STEP_FAILED = "StepFailed"
_STEP_MESSAGE = re.compile(r"([a-z_]+): (.*)", re.DOTALL)


class StepRetry(TransientError):
    """A fan-out step hit a transient failure: the state machine's Retry runs it again."""


class StepFailed(ProcessorError):
    """A fan-out step failed for good; its message is ``"<error_type>: <reason>"`` (``failure_of``)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


@dataclass(frozen=True)
class FanoutSettings:
    """When a job fans out (stack config ``fanout.*``, processor.config reads it)."""

    state_machine: str
    """The state machine's name; its ARN follows from the function's own (``state_machine_arn``)."""
    min_segments: int
    min_duration_seconds: float

    def qualifies(self, segment_count: int, duration: float, container: str | None) -> bool:
        return (segment_count >= self.min_segments and duration >= self.min_duration_seconds
                and container in RANGED_CONTAINERS)


@dataclass(frozen=True)
class Item:
    """Segments ``first`` .. ``first + count - 1`` of the plan."""

    first: int
    count: int

    def to_dict(self) -> dict[str, int]:
        return {"first": self.first, "count": self.count}

    @classmethod
    def from_dict(cls, value: Any) -> "Item":
        if not (isinstance(value, Mapping) and all(isinstance(value.get(k), int) and not isinstance(value.get(k), bool)
                                                   for k in ("first", "count"))):
            raise ValueError(f"an item is {{'first': int, 'count': int}}, got {value!r}")
        item = cls(value["first"], value["count"])
        if item.first < 0 or item.count < 1:
            raise ValueError(f"an item covers at least one segment from 0 on, got {value!r}")
        return item


def plan_items(segments: Sequence[Segment], min_item_seconds: float = MIN_ITEM_SECONDS) -> list[Item]:
    """Consecutive segments grouped until each group holds ``min_item_seconds`` of video; a
    short remainder joins the last group."""
    items: list[Item] = []
    first, length = 0, 0.0
    for segment in segments:
        length += segment.end - segment.start
        if length >= min_item_seconds:
            items.append(Item(first, segment.index - first + 1))
            first, length = segment.index + 1, 0.0
    if first < len(segments):
        if items:
            last = items.pop()
            items.append(Item(last.first, len(segments) - last.first))
        else:
            items.append(Item(0, len(segments)))
    return items


@dataclass(frozen=True)
class ItemCut:
    """What an item encodes: the item's segments counted from its first frame, where that
    frame is in the whole output, and how many frames it writes (None: to the end)."""

    segments: tuple[Segment, ...]
    first_frame: int
    frames: int | None


def item_cut(segments: Sequence[Segment], item: Item, rate: Fraction) -> ItemCut:
    """The item's part of the single pass's cut, frame for frame.

    Each segment keeps the frames the single pass gives it (processor.command.cut_frames): its
    start becomes the time of its first frame counted from the item's first, which cut_frames
    rounds back to exactly that frame.
    """
    if item.first + item.count > len(segments):
        raise ValueError(f"item {item} is beyond the plan's {len(segments)} segments")
    bounds = [0, *cut_frames(segments, rate)]
    start = bounds[item.first]
    stop = item.first + item.count
    end = bounds[stop] if stop < len(segments) else None
    local = []
    for j, segment in enumerate(segments[item.first:stop]):
        frame = bounds[item.first + j] - start
        next_frame = bounds[item.first + j + 1] - start if item.first + j + 1 < len(segments) else None
        begin = float(Fraction(frame) / rate)
        finish = float(Fraction(next_frame) / rate) if next_frame is not None else segment.end - float(start / rate)
        local.append(Segment(j, begin, max(finish, begin + float(1 / rate)), segment.text))
    return ItemCut(tuple(local), start, None if end is None else end - start)


def inline(items: Sequence[Item]) -> bool:
    """Whether the items fit an inline Map (else they go to S3 for a distributed one)."""
    return len(items) <= INLINE_MAX_ITEMS and len(json.dumps([i.to_dict() for i in items])) <= INLINE_MAX_BYTES


def state_transitions(items: int) -> int:
    """The Step Functions transitions an execution that completes is billed for, at the least:
    Prepare, the Choice between the Maps, the Map, each item's Encode and Finish; every Retry
    of a task adds one more (not counted here)."""
    return 4 + items


def execution_name(job_id: str, attempt: int) -> str:
    """One name per claim of a job, so Step Functions refuses a second start of the same claim.

    Job ids may have 128 characters; a long one keeps its start and a hash of the whole.
    """
    name = f"{job_id}-{attempt}"
    if len(name) <= EXECUTION_NAME_LIMIT:
        return name
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:16]
    suffix = f"-{digest}-{attempt}"
    return job_id[:EXECUTION_NAME_LIMIT - len(suffix)] + suffix


def state_machine_arn(function_arn: str, name: str) -> str:
    """The state machine's ARN in the function's partition, region and account.

    The function names the machine and the machine names the function: one of the two ARNs
    has to be derived, and the function's own (the Lambda context's) says where it runs.
    """
    parts = function_arn.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "lambda":
        raise ValueError(f"not a Lambda function ARN: {function_arn!r}")
    partition, region, account = parts[1], parts[3], parts[4]
    return f"arn:{partition}:states:{region}:{account}:stateMachine:{name}"


def failure_of(error: Any, recorded: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """(error_type, message) for the row, from what a Catch put in the fail step's input:
    ``{"Error": name, "Cause": text}``, where a Lambda error's Cause is its JSON report.

    ``recorded`` is an item's own error as it kept it on the row (``fanout_item_error``, this
    execution's attempt only): a distributed Map's failure names only the Map
    (States.ExceedToleratedFailureThreshold), so a States.* error gives way to it.
    """
    name = str(error.get("Error", "")) if isinstance(error, Mapping) else ""
    if name.startswith("States.") and recorded and isinstance(recorded.get("error_type"), str):
        return recorded["error_type"], str(recorded.get("message", ""))
    if not isinstance(error, Mapping):
        return "processing_error", f"fan-out step failed: {error!r}"
    cause = error.get("Cause")
    try:
        report = json.loads(cause) if isinstance(cause, str) else {}
    except ValueError:
        report = {}
    detail = report.get("errorMessage") if isinstance(report, Mapping) else None
    if name == STEP_FAILED and isinstance(detail, str):
        matched = _STEP_MESSAGE.fullmatch(detail)
        if matched:
            return matched.group(1), matched.group(2)
    if name in ("States.Timeout", "Sandbox.Timedout"):
        return "timeout", f"a fan-out step ran out of time ({name}): {detail or cause or ''}".rstrip(": ")
    return "processing_error", f"fan-out step failed with {name}: {detail or cause or 'no detail'}"
