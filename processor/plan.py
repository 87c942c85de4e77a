"""Segment planning: where each segment starts and ends, and which text it carries.

Pure and deterministic. Random cuts draw from a generator seeded by the job id, so a retried
or redelivered job plans exactly the segments its first attempt planned, whichever backend
runs it.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from processor.contract import Cut, FixedCut, Job, RandomCut, TextInput

# Boundaries are kept in whole milliseconds so that both backends and every retry agree.
_MS = 1000
# A remainder shorter than this is folded into the previous segment: a 20 ms tail (audio a
# little longer than video is common) would be an unplayable file, not a segment.
MIN_TAIL_SECONDS = 0.25


@dataclass(frozen=True)
class Segment:
    index: int
    start: float
    end: float
    text: str | None = None

    @property
    def duration(self) -> float:
        return round(self.end - self.start, 3)


def _seed(job_id: str) -> int:
    return int.from_bytes(hashlib.sha256(job_id.encode("utf-8")).digest()[:8], "big")


def _lengths_ms(total_ms: int, cut: Cut, job_id: str) -> list[int]:
    if isinstance(cut, FixedCut):
        step = round(cut.duration * _MS)
        return [min(step, total_ms - start) for start in range(0, total_ms, step)]
    assert isinstance(cut, RandomCut)
    rng = random.Random(_seed(job_id))
    low, high = round(cut.min_duration * _MS), round(cut.max_duration * _MS)
    lengths, used = [], 0
    while used < total_ms:
        length = min(rng.randint(low, high), total_ms - used)
        lengths.append(length)
        used += length
    return lengths


def plan_boundaries(duration: float, cut: Cut, job_id: str) -> list[tuple[float, float]]:
    """(start, end) of every segment; together they cover [0, duration] exactly, in order."""
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    total_ms = max(1, round(duration * _MS))
    lengths = _lengths_ms(total_ms, cut, job_id)
    if len(lengths) > 1 and lengths[-1] < MIN_TAIL_SECONDS * _MS:
        tail = lengths.pop()
        lengths[-1] += tail
    boundaries, start = [], 0
    for length in lengths:
        boundaries.append((start / _MS, (start + length) / _MS))
        start += length
    return boundaries


def segment_texts(count: int, strategy: str | None, text: TextInput | None) -> list[str | None]:
    """The text burned into each of ``count`` segments (None: no text).

    base_vary plans ``base_text`` everywhere: the model's variations replace it afterwards
    (``processor.variations``), and it is what stays when the model fails.
    """
    if text is None or strategy is None:
        return [None] * count
    base = text.base_text if text.base_text and text.base_text.strip() else None
    if strategy == "unique_for_all" and text.unique_texts:
        padded = list(text.unique_texts[:count])
        padded += [padded[-1]] * (count - len(padded))
        return [item if item.strip() else None for item in padded]
    return [base] * count


def candidate_texts(strategy: str | None, text: TextInput | None) -> list[str]:
    """Every text ``segment_texts`` may burn in, whatever the number of segments: what can
    be checked before the video is even downloaded."""
    if text is None or strategy is None:
        return []
    candidates = [text.base_text or ""]
    if strategy in ("unique_for_all", "base_vary"):
        candidates += text.unique_texts
    return [item for item in candidates if item.strip()]


def plan(job: Job, duration: float) -> list[Segment]:
    boundaries = plan_boundaries(duration, job.cut, job.job_id)
    texts = segment_texts(len(boundaries), job.text_strategy, job.text_input)
    return [Segment(i, start, end, text) for i, ((start, end), text) in enumerate(zip(boundaries, texts))]
