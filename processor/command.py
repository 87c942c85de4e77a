"""The ffmpeg argv for one cut: pure, so every option is checked without running ffmpeg.

One decode and one encode for all segments: the segment muxer splits the single encoded
stream at keyframes forced at the cut points, and each text is drawn only on its segments'
time range.

Cut points lie halfway between two frames, never on one. Two comparisons decide where a
segment starts, and both carry errors that flip a test made exactly at a frame's timestamp:

- The segment muxer cuts at the first keyframe whose pts reaches the cut time, on a clock
  with a sub-microsecond error. With B-frames the first dts is negative, libavformat shifts
  every timestamp to make it zero, and the cut test sees the pts as if that shift were taken
  off again rounded to a whole microsecond. At 30 fps the shift is two frames (66666.67 us,
  rounded to 66667), so a keyframe forced at exactly 2.0 s is compared as 1.9999997 s and its
  cut is skipped; every later cut then slides to the next cut point, the first segment
  doubles and the last one disappears. Measured with the pinned 6.0: -segment_time_delta of
  1 us restores the cut; without B-frames (``ultrafast``, or ``-bf 0``) there is no shift,
  and at 24 or 25 fps the rounding happens to fall on the safe side, so all of those work;
  ``-avoid_negative_ts disabled`` (no shift) works too.
- ``-force_key_frames`` keeps its times in microseconds and forces the first frame at or
  after them, so 2.566667 s (frame 77 at 30 fps, rounded up) forces frame 78 instead.

Half a frame of room on each side absorbs both, and the same midpoints bound each text's
time range (see processor.subtitles for the captions' clock).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from processor.plan import MIN_TAIL_SECONDS, Segment
from processor.probe import INPUT_OPTIONS, MediaInfo

SEGMENT_TEMPLATE = "segment_%03d.mp4"
# 120/240 fps phone slow-motion costs Lambda two to four times the encoding for frames a
# feed does not show; very low rates are raised so every planned segment gets frames.
MAX_OUTPUT_FPS = Fraction(60)
MIN_OUTPUT_FPS = Fraction(15)
AUDIO_BITRATE = "128k"
# Progress on stdout as key=value lines, every quarter second; errors only on stderr, so its
# tail is the reason when ffmpeg fails.
GLOBAL_OPTIONS = ("-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
                  "-progress", "pipe:1", "-stats_period", "0.25", "-y")
# Drop the uploader's metadata (GPS position, device) and chapters.
_STRIP = ("-map_metadata", "-1", "-map_chapters", "-1")
# Special characters of the two parsers a filter option value goes through: the option list
# (key=value pairs split on ':') and then the filter graph (filters split on ',' and ';',
# labels in brackets). Both unescape backslashes and strip unescaped outer whitespace.
_OPTION_SPECIAL = frozenset("\\':")
_GRAPH_SPECIAL = frozenset("\\'[],;")


def segment_name(index: int) -> str:
    """The file the segment muxer writes for ``index`` (one pattern for both)."""
    return SEGMENT_TEMPLATE % index


def escape_filter_value(value: str) -> str:
    """Escape an option value (a path, an expression) for a filter graph string."""
    def escape(text: str, special: frozenset[str]) -> str:
        return "".join(f"\\{char}" if char in special or char.isspace() else char for char in text)
    return escape(escape(value, _OPTION_SPECIAL), _GRAPH_SPECIAL)


def _seconds(value: Fraction | float) -> str:
    return f"{float(value):.6f}"


def output_rate(media: MediaInfo) -> Fraction:
    return min(MAX_OUTPUT_FPS, max(MIN_OUTPUT_FPS, media.fps))


def output_size(media: MediaInfo) -> tuple[int, int]:
    """Upright size with even sides: yuv420p stores chroma for 2x2 blocks of pixels."""
    return media.display_width - media.display_width % 2, media.display_height - media.display_height % 2


def cut_frames(segments: Sequence[Segment], rate: Fraction) -> list[int]:
    """First frame of every segment after the first: the frame nearest its planned start.

    Strictly increasing, so no segment is left without a frame.
    """
    frames: list[int] = []
    for segment in segments[1:]:
        frame = max(round(Fraction(segment.start) * rate), frames[-1] + 1 if frames else 1)
        frames.append(frame)
    return frames


def cut_times(segments: Sequence[Segment], rate: Fraction) -> list[Fraction]:
    """Where each cut is placed on ffmpeg's clock: halfway between the segment's first frame
    and the frame before it."""
    return [(frame - Fraction(1, 2)) / rate for frame in cut_frames(segments, rate)]


def text_ranges(segments: Sequence[Segment], frames: Sequence[int]) -> dict[str, list[tuple[int, int | None]]]:
    """Frame ranges [first, end) on which each distinct text shows; None: to the end.

    Segments sharing a text share one caption, and neighbouring ranges merge, so one text
    on every segment is a single caption from the first frame to the last.
    """
    bounds = [0, *frames]
    ranges: dict[str, list[tuple[int, int | None]]] = {}
    for i, segment in enumerate(segments):
        if segment.text is None:
            continue
        start, end = bounds[i], bounds[i + 1] if i + 1 < len(bounds) else None
        spans = ranges.setdefault(segment.text, [])
        if spans and spans[-1][1] == start:
            start = spans.pop()[0]
        spans.append((start, end))
    return ranges


def video_filters(media: MediaInfo, subtitles: Path | None) -> str:
    """fps first (fewer frames for the rest), then even size and yuv420p, then the captions.

    ffmpeg has already turned the picture upright (autorotate) before this graph. The captions
    are an ASS file (processor.subtitles) that libass draws: only its path is in the graph.
    """
    rate = output_rate(media)
    width, height = output_size(media)
    filters = [f"fps={rate}"]
    if (width, height) != (media.display_width, media.display_height):
        filters.append(f"crop={width}:{height}")
    filters.append("format=yuv420p")
    if subtitles is not None:
        # complex: HarfBuzz shaping, which Arabic joining and Indic conjuncts need.
        filters.append(f"ass=filename={escape_filter_value(str(subtitles.absolute()))}:shaping=complex")
    return ",".join(filters)


def _output(times: Sequence[Fraction | float], out_dir: Path) -> list[str]:
    if not times:
        return ["-f", "mp4", "-movflags", "+faststart", str(out_dir.absolute() / segment_name(0))]
    # The segment muxer expands printf patterns in the whole path, not only in the name.
    template = str(out_dir.absolute()).replace("%", "%%") + "/" + SEGMENT_TEMPLATE
    return ["-f", "segment",
            "-segment_times", ",".join(_seconds(t) for t in times),
            "-reset_timestamps", "1",
            "-segment_format", "mp4",
            "-segment_format_options", "movflags=+faststart",
            template]


def _inputs(tool_path: str, input_path: Path, media: MediaInfo) -> list[str]:
    # The first video and audio streams only: phones add timecode and metadata tracks.
    maps = ["-map", "0:v:0"] + (["-map", "0:a:0"] if media.has_audio else [])
    return [tool_path, *GLOBAL_OPTIONS, *INPUT_OPTIONS, "-i", str(input_path.absolute()), *maps, *_STRIP]


def encode_command(ffmpeg: str, input_path: Path, media: MediaInfo, segments: Sequence[Segment],
                   out_dir: Path, *, preset: str, crf: int, subtitles: Path | None = None) -> list[str]:
    """Re-encode to H.264/AAC, one segment file per planned segment, with the captions of
    ``subtitles`` (processor.subtitles.captions for the same segments) drawn in."""
    times = cut_times(segments, output_rate(media))
    command = _inputs(ffmpeg, input_path, media)
    command += ["-vf", video_filters(media, subtitles),
                # The graph's fps filter made the stream constant-rate; keep its timestamps.
                "-fps_mode", "passthrough",
                "-c:v", "libx264", "-preset", preset, "-crf", str(crf)]
    if times:
        command += ["-force_key_frames", ",".join(_seconds(t) for t in times)]
    if media.has_audio:
        command += ["-c:a", "aac", "-b:a", AUDIO_BITRATE]
    return command + _output(times, out_dir)


def stream_copy_possible(media: MediaInfo, segments: Sequence[Segment]) -> bool:
    """Copying keeps the input's bitstream, so only an input that already is what a
    re-encode would produce (H.264, yuv420p, even size) and carries no text qualifies."""
    width, height = output_size(media)
    return (all(segment.text is None for segment in segments) and media.video_codec == "h264"
            and media.pix_fmt == "yuv420p"
            and (width, height) == (media.display_width, media.display_height))


def copy_keyframes(segments: Sequence[Segment], keyframes: Sequence[float], duration: float) -> list[float]:
    """The keyframe nearest each planned cut; cuts that land on the same keyframe merge, and
    no cut leaves a piece shorter than the plan's shortest tail."""
    usable = sorted(k for k in keyframes if MIN_TAIL_SECONDS <= k <= duration - MIN_TAIL_SECONDS)
    chosen: list[float] = []
    for segment in segments[1:]:
        i = bisect.bisect_left(usable, segment.start)
        nearest = min(usable[max(0, i - 1):i + 1], key=lambda k: abs(k - segment.start), default=None)
        if nearest is not None and nearest - (chosen[-1] if chosen else 0.0) >= MIN_TAIL_SECONDS:
            chosen.append(nearest)
    return chosen


def copy_command(ffmpeg: str, input_path: Path, media: MediaInfo, keyframes: Sequence[float],
                 out_dir: Path) -> list[str]:
    """Cut just before the given keyframes without re-encoding the video; audio that is not
    AAC is encoded to AAC, which costs little next to video."""
    command = _inputs(ffmpeg, input_path, media) + ["-c:v", "copy"]
    if media.has_audio:
        command += ["-c:a", "copy"] if media.audio_codec == "aac" else ["-c:a", "aac", "-b:a", AUDIO_BITRATE]
    half_frame = 1 / (2 * media.fps)
    return command + _output([key - half_frame for key in keyframes], out_dir)
