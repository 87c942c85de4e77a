"""Cut one input into its planned segments: probe, build the command, run ffmpeg, check the files.

Both backends (the Lambda handler and the Celery task) call ``cut``, so they produce the same
segments. The result is verified, not assumed: a segment muxer that cuts fewer times than
asked (see processor.command) would otherwise shift every text and every segment id by one
without any error.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from processor import command as commands
from processor import subtitles
from processor.binaries import font_table, fonts_dir, tool
from processor.errors import DeadlineExceededError, FFmpegError, InvalidInputError, InvalidJobError
from processor.fanout import Item, ItemCut, item_cut, plan_items
from processor.logs import log
from processor.overlay import clean
from processor.plan import Segment
from processor.probe import MediaInfo, keyframe_times, probe
from processor.transcode import run_ffmpeg

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow")
_PROBE_WORKERS = 4
# How far short of the probed duration the output may end before the input counts as
# truncated: a valid file's streams may end a little apart.
TRUNCATION_SLACK_SECONDS = 1.0
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _preset(value: str, name: str) -> str:
    if value not in X264_PRESETS:
        raise InvalidJobError(name, f"must be one of {', '.join(X264_PRESETS)}, got {value!r}")
    return value


def _crf(value: object, name: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidJobError(name, f"must be a whole number from 0 to 51, got {value!r}") from None
    if not 0 <= number <= 51:
        raise InvalidJobError(name, f"must be from 0 to 51 (x264's CRF scale), got {number}")
    return number


def _long_side(value: object, name: str) -> int:
    low, high = commands.LONG_SIDE_RANGE
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidJobError(name, f"must be a whole number of pixels, got {value!r}") from None
    if not low <= number <= high:
        raise InvalidJobError(name, f"must be from {low} to {high} pixels, got {number}")
    return number


@dataclass(frozen=True)
class EncodeSettings:
    preset: str = "veryfast"
    crf: int = 23
    stream_copy: bool = False
    max_long_side: int = commands.MAX_LONG_SIDE
    """Outputs larger than this on their long side are scaled down, keeping their aspect ratio."""

    def __post_init__(self) -> None:
        _preset(self.preset, "preset")
        object.__setattr__(self, "crf", _crf(self.crf, "crf"))  # "23" from a CLI flag becomes 23
        object.__setattr__(self, "max_long_side", _long_side(self.max_long_side, "max_long_side"))

    @classmethod
    def from_env(cls) -> EncodeSettings:
        """VIDEO_PRESET, VIDEO_CRF, VIDEO_STREAM_COPY and VIDEO_MAX_LONG_SIDE; unset or empty
        means the default."""
        default = cls()
        preset = os.environ.get("VIDEO_PRESET", "").strip() or default.preset
        crf = os.environ.get("VIDEO_CRF", "").strip() or default.crf
        long_side = os.environ.get("VIDEO_MAX_LONG_SIDE", "").strip() or default.max_long_side
        copy = os.environ.get("VIDEO_STREAM_COPY", "").strip().lower()
        if copy and copy not in _TRUE + _FALSE:
            raise InvalidJobError("VIDEO_STREAM_COPY", f"must be true or false, got {copy!r}")
        return cls(preset=_preset(preset, "VIDEO_PRESET"), crf=_crf(crf, "VIDEO_CRF"),
                   stream_copy=copy in _TRUE if copy else default.stream_copy,
                   max_long_side=_long_side(long_side, "VIDEO_MAX_LONG_SIDE"))


@dataclass(frozen=True)
class SegmentFile:
    index: int
    path: Path
    start: float
    end: float
    duration: float
    """Measured on the written file with ffprobe (video stream)."""
    text: str | None


def _check_plan(segments: Sequence[Segment]) -> None:
    if not segments:
        raise ValueError("nothing to cut: the plan has no segment")
    for i, segment in enumerate(segments):
        if segment.index != i or segment.end <= segment.start:
            raise ValueError(f"segment {i} of the plan is malformed: {segment}")


def _clear_outputs(out_dir: Path) -> None:
    """A retry must not find the previous attempt's extra segments next to its own."""
    for stale in out_dir.glob("segment_*.mp4"):
        stale.unlink()


def caption_pictures(media: MediaInfo, segments: Sequence[Segment], work: Path, deadline: float | None = None,
                     max_long_side: int = commands.MAX_LONG_SIDE) -> list[tuple[Path, subtitles.Caption]]:
    """Each distinct caption drawn once into a picture in ``work`` (see processor.subtitles),
    for the output size, with the fonts of the layer alone; nothing when no segment has text."""
    captions = subtitles.captions(media, segments, font_table(), max_long_side)
    if captions is None:
        return []
    colours, alpha, config = work / "captions.ass", work / "captions-alpha.ass", work / "fonts.conf"
    colours.write_text(captions.colours, encoding="utf-8")
    alpha.write_text(captions.alpha, encoding="utf-8")
    config.write_text(subtitles.fontconfig(fonts_dir()), encoding="utf-8")
    run_ffmpeg(commands.caption_pictures_command(tool("ffmpeg"), captions, colours, alpha, work),
               duration=len(captions.captions), deadline=deadline,
               environment={"FONTCONFIG_FILE": str(config.absolute())})
    return [(commands.caption_picture(work, i), caption) for i, caption in enumerate(captions.captions)]


def check_texts(texts: Iterable[str | None]) -> None:
    """Fail before any work when a caption has characters no shipped font can draw
    (processor.fonts.UnsupportedCharactersError, an InvalidJobError naming them)."""
    table = None
    for text in dict.fromkeys(text for text in texts if text is not None):
        table = table or font_table()
        table.check(clean(text))


def _collect(out_dir: Path, bounds: Sequence[tuple[float, float]], segments: Sequence[Segment] | None,
             deadline: float | None) -> list[SegmentFile]:
    written = set(out_dir.glob("segment_*.mp4"))
    expected = [out_dir / commands.segment_name(i) for i in range(len(bounds))]
    if written != set(expected):
        raise FFmpegError(f"ffmpeg wrote {len(written)} segment files, {len(bounds)} were planned")
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceededError("the deadline passed before the segments were checked")
    # Each ffprobe is mostly start-up time: in parallel, twenty segments cost a fraction of a second.
    with ThreadPoolExecutor(max_workers=_PROBE_WORKERS) as pool:
        durations = list(pool.map(lambda path: probe(path).duration, expected))
    return [SegmentFile(index=i, path=path, start=start, end=end, duration=duration,
                        text=segments[i].text if segments else None)
            for i, (path, (start, end), duration) in enumerate(zip(expected, bounds, durations))]


def check_complete(reached: float, duration: float, media: MediaInfo) -> None:
    """A truncated upload (the start of a file whose header promises more) probes with its
    full duration and decodes without error until its data ends; ffmpeg then writes fewer
    segments. Said as what it is, an input problem, before counting files. ``duration``: the
    output ffmpeg was to write (a fan-out item's own length)."""
    if duration - reached > max(TRUNCATION_SLACK_SECONDS, 2 / float(media.fps)):
        raise InvalidInputError(f"input is truncated or corrupt: decoded {reached:.1f} s of "
                                f"{duration:.1f} s; upload the whole file again")


def cut(input_path: Path, segments: list[Segment], out_dir: Path, settings: EncodeSettings, *,
        media: MediaInfo | None = None, on_progress: Callable[[float], None] | None = None,
        deadline: float | None = None, on_notice: Callable[[str], None] | None = None,
        before_encode: Callable[[], None] | None = None) -> list[SegmentFile]:
    """Write ``segment_000.mp4``, ``segment_001.mp4``, ... into ``out_dir``.

    Re-encoding gives one file per planned segment, each within a frame of its plan. Stream
    copy (settings.stream_copy, no text, an H.264 yuv420p input within the size limit) cuts
    at the input's keyframes instead, with their real bounds; when those cannot honour the
    plan (processor.command.copy_shortfall) the cut is re-encoded, and ``on_notice`` and the
    log say why. ``before_encode`` runs just before any encode (the pipeline's fit check) and
    may raise to stop it.
    """
    input_path, out_dir = Path(input_path), Path(out_dir)
    media = _start(input_path, segments, out_dir, media, deadline)
    try:
        if settings.stream_copy and commands.stream_copy_possible(media, segments, settings.max_long_side):
            times = commands.copy_keyframes(segments, keyframe_times(input_path), media.duration)
            shortfall = commands.copy_shortfall(segments, times, media.duration)
            if shortfall is None:
                return _copy(input_path, media, times, out_dir, on_progress, deadline)
            notice = f"re-encoding instead of stream copy: {shortfall}"
            log("stream_copy_declined", job_id=None, level=logging.WARNING, input=input_path.name, reason=shortfall)
            if on_notice:
                on_notice(notice)
        if before_encode:
            before_encode()
        return _encode(input_path, media, segments, out_dir, settings, on_progress, deadline)
    except BaseException:
        # Half-written segments must not look like a result to whoever reads out_dir.
        _clear_outputs(out_dir)
        raise


def cut_item(input_path: commands.Input, part: ItemCut, out_dir: Path, settings: EncodeSettings, *,
             media: MediaInfo | None = None, on_progress: Callable[[float], None] | None = None,
             deadline: float | None = None) -> list[SegmentFile]:
    """One fan-out item (processor.fanout.item_cut): its segments as ``segment_000.mp4``... in
    ``out_dir``, frame for frame those of the single pass. Always re-encoded: a stream copy
    cuts at keyframes, which items encoded apart could not agree on. An ``HttpInput`` needs
    ``media``: what the probe of the local file found."""
    out_dir = Path(out_dir)
    if media is None and isinstance(input_path, commands.HttpInput):
        raise ValueError("an item read over HTTP needs the media info of the probe")
    media = _start(input_path, part.segments, out_dir, media, deadline)
    try:
        return _encode(input_path, media, part.segments, out_dir, settings, on_progress, deadline,
                       first_frame=part.first_frame, frames=part.frames)
    except BaseException:
        _clear_outputs(out_dir)
        raise


def cut_in_items(input_path: Path, segments: list[Segment], out_dir: Path, settings: EncodeSettings, *, jobs: int,
                 media: MediaInfo | None = None,
                 on_progress: Callable[[float], None] | None = None) -> list[SegmentFile]:
    """The fan-out's path on this machine: every item (processor.fanout.plan_items) encoded on
    its own by ``cut_item``, ``jobs`` at a time as the state machine's Map runs them, into the
    files ``cut`` writes."""
    input_path, out_dir = Path(input_path), Path(out_dir)
    media = _start(input_path, segments, out_dir, media, None)
    rate = commands.output_rate(media)
    items = plan_items(segments)
    finished: list[int] = []
    lock = threading.Lock()

    def encode(item: Item) -> list[SegmentFile]:
        work = out_dir / f".item-{item.first:03d}"
        try:
            files = cut_item(input_path, item_cut(segments, item, rate), work, settings, media=media)
            placed = []
            for file in files:
                index = item.first + file.index
                target = out_dir / commands.segment_name(index)
                file.path.replace(target)
                placed.append(replace(file, index=index, path=target, start=segments[index].start,
                                      end=segments[index].end))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        with lock:
            finished.append(item.count)
            if on_progress:
                on_progress(sum(finished) / len(segments))
        return placed

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return [file for files in pool.map(encode, items) for file in files]
    except BaseException:
        _clear_outputs(out_dir)
        raise


def _start(input_path: commands.Input, segments: Sequence[Segment], out_dir: Path, media: MediaInfo | None,
           deadline: float | None) -> MediaInfo:
    """The checks before any ffmpeg runs, and an empty ``out_dir``; the input's media info."""
    _check_plan(segments)
    check_texts(segment.text for segment in segments)
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceededError("the deadline passed before cutting started")
    media = media or probe(input_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_outputs(out_dir)
    return media


def _copy(input_path: Path, media: MediaInfo, times: Sequence[float], out_dir: Path,
          on_progress: Callable[[float], None] | None, deadline: float | None) -> list[SegmentFile]:
    argv = commands.copy_command(tool("ffmpeg"), input_path, media, times, out_dir)
    check_complete(run_ffmpeg(argv, duration=media.duration, on_progress=on_progress, deadline=deadline),
                   media.duration, media)
    edges = [0.0, *times, media.duration]
    return _collect(out_dir, list(zip(edges, edges[1:])), None, deadline)


def _encode(input_path: commands.Input, media: MediaInfo, segments: Sequence[Segment], out_dir: Path,
            settings: EncodeSettings, on_progress: Callable[[float], None] | None,
            deadline: float | None, first_frame: int = 0, frames: int | None = None) -> list[SegmentFile]:
    with tempfile.TemporaryDirectory(prefix=".texts-", dir=out_dir) as work:
        pictures = caption_pictures(media, segments, Path(work), deadline, settings.max_long_side)
        argv = commands.encode_command(tool("ffmpeg"), input_path, media, segments, out_dir,
                                       preset=settings.preset, crf=settings.crf, pictures=pictures,
                                       max_long_side=settings.max_long_side, first_frame=first_frame, frames=frames)
        reached = run_ffmpeg(argv, duration=segments[-1].end, on_progress=on_progress, deadline=deadline)
    check_complete(reached, segments[-1].end, media)
    return _collect(out_dir, [(s.start, s.end) for s in segments], segments, deadline)
