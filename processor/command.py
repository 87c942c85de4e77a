"""The ffmpeg argv for one cut: an ffmpeg-python graph, compiled. Pure, so every option is
checked without running ffmpeg.

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
time range (its overlay's ``enable``).

The graph is built from small parts meant to be combined: ``source`` (the input, with the
caller's input options), ``conform`` (the picture every output shares), ``draw_captions`` (the
captions' pictures laid over their frames), ``segment_output`` and ``compile_command``;
``caption_pictures_command`` draws those pictures first (see processor.subtitles).

Escaping, as ffmpeg-python 0.2.0 does it (checked in tests/test_command.py against a port of
FFmpeg's parser, and on the real ffmpeg in tests/test_engine.py): in each filter it escapes
``\\ ' = :`` in every option key and value, then ``\\ ' [ ] , ;`` over the whole filter, which
is what FFmpeg's two parsing levels (the option list, then the graph) need. It escapes no
whitespace, and both levels strip unescaped whitespace at either end of a value. So only
numbers, expressions built here and absolute paths ending in a name chosen here go into the
graph (``graph_path``). Everything else is a plain argv element, which needs no escaping,
except the segment muxer's file name template (``_template``).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import ffmpeg
from ffmpeg.nodes import FilterableStream, OutputStream

from processor.plan import MIN_TAIL_SECONDS, Segment
from processor.probe import INPUT_OPTIONS, MediaInfo

if TYPE_CHECKING:  # processor.subtitles builds on this module's frame arithmetic
    from processor.subtitles import Caption, Captions

SEGMENT_TEMPLATE = "segment_%03d.mp4"
HTTP_PROTOCOLS = "http,tcp"
CAPTION_NAME = "caption_{:03d}.png"
# 120/240 fps phone slow-motion costs Lambda two to four times the encoding for frames a
# feed does not show; very low rates are raised so every planned segment gets frames.
MAX_OUTPUT_FPS = Fraction(60)
MIN_OUTPUT_FPS = Fraction(15)
AUDIO_BITRATE = "128k"
# The short-form platforms this backend feeds show at most 1080x1920; a larger output costs
# Lambda memory and time for pixels nobody sees (an 8K input peaked at 3.6 GB unscaled, 0.6 GB
# at 1920; bench/README.md). ``VIDEO_MAX_LONG_SIDE`` changes it (processor.engine).
MAX_LONG_SIDE = 1920
# What the cap may be set to: below 240 a caption would be a few pixels high; 7680 is 8K.
LONG_SIDE_RANGE = (240, 7680)
# Progress on stdout as key=value lines, every quarter second; errors only on stderr, so its
# tail is the reason when ffmpeg fails. ffmpeg-python puts global arguments after the outputs,
# where ffmpeg still reads them as global options.
GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-loglevel", "error", "-nostats",
               "-progress", "pipe:1", "-stats_period", "0.25")
# Drop the uploader's metadata (GPS position, device) and chapters.
_STRIP = {"map_metadata": -1, "map_chapters": -1}
# av_get_token's whitespace: what FFmpeg strips at both ends of an unescaped value.
_GRAPH_WHITESPACE = " \n\t\r"

Span = tuple[int, int | None]
"""Frames [first, end) of the output on which something shows; ``None``: to the end."""


def segment_name(index: int) -> str:
    """The file the segment muxer writes for ``index`` (one pattern for both)."""
    return SEGMENT_TEMPLATE % index


def graph_path(path: Path | str) -> str:
    """A file path as it may go into the filter graph: absolute, so it cannot start with
    whitespace, and refused if it ends with some, which FFmpeg would strip (see above)."""
    text = str(Path(path).absolute())
    if text != text.rstrip(_GRAPH_WHITESPACE):
        raise ValueError(f"{text!r} ends with whitespace, which the filter graph would drop")
    return text


def _seconds(value: Fraction | float) -> str:
    return f"{float(value):.6f}"


def output_rate(media: MediaInfo) -> Fraction:
    return min(MAX_OUTPUT_FPS, max(MIN_OUTPUT_FPS, media.fps))


def output_size(media: MediaInfo, max_long_side: int = MAX_LONG_SIDE) -> tuple[int, int]:
    """Upright size with even sides (yuv420p stores chroma for 2x2 blocks of pixels), scaled
    down to ``max_long_side`` with the input's aspect ratio when it is larger."""
    width, height = media.display_width, media.display_height
    if max(width, height) > max_long_side:
        # An odd cap would round the long side up past it: the long side is even, at most the cap.
        scale = Fraction(max_long_side - max_long_side % 2, max(width, height))
        # Each side to the nearest even number: the ratio stays within a pixel of the input's.
        width, height = (max(2, 2 * round(side * scale / 2)) for side in (width, height))
    return width - width % 2, height - height % 2


def scaled(media: MediaInfo, max_long_side: int = MAX_LONG_SIDE) -> bool:
    """Whether the output is scaled down, not only cropped to even sides."""
    return max(media.display_width, media.display_height) > max_long_side


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


def text_ranges(segments: Sequence[Segment], frames: Sequence[int]) -> dict[str, list[Span]]:
    """Frame ranges on which each distinct text shows.

    Segments sharing a text share one caption, and neighbouring ranges merge, so one text
    on every segment is a single caption from the first frame to the last.
    """
    bounds = [0, *frames]
    ranges: dict[str, list[Span]] = {}
    for i, segment in enumerate(segments):
        if segment.text is None:
            continue
        start, end = bounds[i], bounds[i + 1] if i + 1 < len(bounds) else None
        spans = ranges.setdefault(segment.text, [])
        if spans and spans[-1][1] == start:
            start = spans.pop()[0]
        spans.append((start, end))
    return ranges


@dataclass(frozen=True)
class HttpInput:
    """The upload read over HTTP from loopback (processor.ranged_input): only ``http`` and
    ``tcp``, and the demuxer the local probe found, so no playlist demuxer can open other URLs."""

    url: str
    container: str


Input = Path | HttpInput


def source(input_path: Input, **input_options: object) -> FilterableStream:
    """The upload as an ffmpeg input, local files only (``INPUT_OPTIONS``) or ``HttpInput``, with
    the caller's input options (for example ``ss`` to seek before decoding)."""
    if isinstance(input_path, HttpInput):
        return ffmpeg.input(input_path.url, protocol_whitelist=HTTP_PROTOCOLS, f=input_path.container,
                            **input_options)
    return ffmpeg.input(str(Path(input_path).absolute()), **INPUT_OPTIONS, **input_options)


def conform(video: FilterableStream, media: MediaInfo, max_long_side: int = MAX_LONG_SIDE) -> FilterableStream:
    """The picture every output shares: fps first (fewer frames for the rest), then the
    output size (scaled down past ``max_long_side``, else cropped to even sides) and yuv420p.

    ffmpeg has already turned the picture upright (autorotate) before the graph.
    """
    width, height = output_size(media, max_long_side)
    video = video.filter("fps", fps=str(output_rate(media)))
    if scaled(media, max_long_side):
        video = video.filter("scale", w=width, h=height)
    elif (width, height) != (media.display_width, media.display_height):
        video = video.filter("crop", w=width, h=height)
    return video.filter("format", pix_fmts="yuv420p")


def enable_expression(spans: Sequence[Span], rate: Fraction) -> str | None:
    """A filter's ``enable`` for frame ranges, with bounds half a frame before each range's
    first frame and end frame, so float noise in ``t`` cannot move a frame across a bound."""
    terms = []
    for start, end in spans:
        factors = []
        if start > 0:
            factors.append(f"gte(t,{_seconds((start - Fraction(1, 2)) / rate)})")
        if end is not None:
            factors.append(f"lt(t,{_seconds((end - Fraction(1, 2)) / rate)})")
        if not factors:
            return None
        terms.append("*".join(factors))
    return "+".join(terms)


def caption_pictures_command(ffmpeg_path: str, captions: Captions, colours: Path, alpha: Path,
                             out_dir: Path) -> list[str]:
    """Draw caption i as picture ``caption_{i:03d}.png`` in ``out_dir``: RGBA, cut to the
    caption's rectangle, so that each picture holds only what is laid over the frames.

    libass draws the captions' ASS files (``colours`` and ``alpha``, see processor.subtitles) on
    black canvases, one caption a second; the all-white drawing becomes the alpha of the
    coloured one, which is premultiplied and so is divided back by it.
    """
    count = len(captions.captions)
    canvas = f"color=c=black:s={captions.width}x{captions.height}:r=1:d={count}"
    # rgb24: libass blends in the canvas's own values, so white on black is exactly the alpha.
    black = ffmpeg.input(canvas, f="lavfi").filter("format", pix_fmts="rgb24").split()
    coloured = black[0].filter("ass", filename=graph_path(colours), shaping="complex")
    opacity = black[1].filter("ass", filename=graph_path(alpha), shaping="complex").filter("extractplanes", "r")
    merged = ffmpeg.filter([coloured, opacity], "alphamerge").filter("unpremultiply", inplace=1).split()
    outputs = [merged[i].filter("select", f"eq(n,{i})")
               .filter("crop", w=caption.width, h=caption.height, x=caption.x, y=caption.y)
               .output(str(caption_picture(out_dir, i).absolute()), update=1, **{"frames:v": 1})
               for i, caption in enumerate(captions.captions)]
    return compile_command(ffmpeg_path, ffmpeg.merge_outputs(*outputs))


def caption_picture(out_dir: Path, index: int) -> Path:
    return out_dir / CAPTION_NAME.format(index)


def draw_captions(video: FilterableStream, pictures: Sequence[tuple[Path, Caption]], rate: Fraction) -> FilterableStream:
    """Each caption's rectangle of its picture laid over the frames it shows on.

    Only paths of pictures are in the graph: the user's text is in the ASS files they were
    drawn from, where libass reads it as text, with no %{...} expansion.
    """
    for picture, caption in pictures:
        enable = enable_expression(caption.spans, rate)
        # One still picture: overlay keeps it for every frame after its end (eof_action=repeat).
        video = ffmpeg.filter([video, source(picture)], "overlay", x=caption.x, y=caption.y, format="yuv420",
                              eof_action="repeat", **({"enable": enable} if enable else {}))
    return video


def video_chain(video: FilterableStream, media: MediaInfo, pictures: Sequence[tuple[Path, Caption]] = (),
                max_long_side: int = MAX_LONG_SIDE) -> FilterableStream:
    """The whole video filter chain: conformed, then the captions on their frame ranges
    (drawn for the same ``max_long_side``)."""
    return draw_captions(conform(video, media, max_long_side), pictures, output_rate(media))


def _template(out_dir: Path) -> str:
    # The segment muxer expands printf patterns in the whole path, not only in the name.
    return str(out_dir.absolute()).replace("%", "%%") + "/" + SEGMENT_TEMPLATE


def segment_output(streams: Sequence[FilterableStream], out_dir: Path, times: Sequence[Fraction | float],
                   **options: object) -> OutputStream:
    """``segment_000.mp4``, ``segment_001.mp4``, ... in ``out_dir``, cut at ``times`` (the
    first keyframe at or after each); every file starts at time zero, its moov box first."""
    if not times:
        return ffmpeg.output(*streams, str(out_dir.absolute() / segment_name(0)), format="mp4",
                             movflags="+faststart", **options)
    return ffmpeg.output(*streams, _template(out_dir), format="segment",
                         segment_times=",".join(_seconds(t) for t in times), reset_timestamps=1,
                         segment_format="mp4", segment_format_options="movflags=+faststart", **options)


def compile_command(ffmpeg_path: str, output: OutputStream) -> list[str]:
    """The argv, with the global arguments the runner (processor.transcode) relies on."""
    return output.global_args(*GLOBAL_ARGS).compile(cmd=ffmpeg_path, overwrite_output=True)


def _mapped(upload: FilterableStream, video: FilterableStream, media: MediaInfo) -> list[FilterableStream]:
    # The first video and audio streams only: phones add timecode and metadata tracks.
    return [video, upload["a:0"]] if media.has_audio else [video]


def encode_command(ffmpeg_path: str, input_path: Input, media: MediaInfo, segments: Sequence[Segment],
                   out_dir: Path, *, preset: str, crf: int,
                   pictures: Sequence[tuple[Path, Caption]] = (), max_long_side: int = MAX_LONG_SIDE,
                   first_frame: int = 0, frames: int | None = None) -> list[str]:
    """Re-encode to H.264/AAC, one segment file per planned segment, with the captions'
    pictures (``caption_pictures_command`` for processor.subtitles.captions of the same
    segments and ``max_long_side``) laid over their frames.

    A fan-out item (processor.fanout) encodes a run of the whole plan's segments on its own:
    ``first_frame`` is the output frame it starts at and ``frames`` how many it writes (None:
    to the end); ``segments`` are then the item's, with times counted from that frame.
    """
    rate = output_rate(media)
    times = cut_times(segments, rate)
    if first_frame:
        # Input seeking (-ss before -i): decoding starts at the keyframe before the seek point,
        # and frames before it are dropped, so the item costs its own length, not the input's.
        # Half a frame early, so the item's first frame is kept whatever the rounding; its
        # timestamps then restart at zero, where the fps filter expects the first frame.
        upload = source(input_path, ss=_seconds((first_frame - Fraction(1, 2)) / rate))
        video = video_chain(upload["v:0"].filter("setpts", "PTS-STARTPTS"), media, pictures, max_long_side)
    else:
        upload = source(input_path)
        video = video_chain(upload["v:0"], media, pictures, max_long_side)
    # The graph's fps filter made the stream constant-rate; keep its timestamps.
    options: dict[str, object] = {"c:v": "libx264", "preset": preset, "crf": crf, "fps_mode": "passthrough", **_STRIP}
    if frames is not None:
        # The exact frame count, and the audio cut at the same time.
        options.update({"frames:v": frames, "t": _seconds(Fraction(frames) / rate)})
    if times:
        options["force_key_frames"] = ",".join(_seconds(t) for t in times)
    if media.has_audio:
        options.update({"c:a": "aac", "b:a": AUDIO_BITRATE})
    return compile_command(ffmpeg_path, segment_output(_mapped(upload, video, media), out_dir, times, **options))


def stream_copy_possible(media: MediaInfo, segments: Sequence[Segment], max_long_side: int = MAX_LONG_SIDE) -> bool:
    """Copying keeps the input's bitstream, so only an input that already is what a
    re-encode would produce (H.264, yuv420p, even size within ``max_long_side``) and carries
    no text qualifies."""
    width, height = output_size(media, max_long_side)
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


# A stream-copied piece may be this much longer than its planned segment before the cut is
# re-encoded instead: keyframes a second or two apart are normal, one per file is not.
COPY_STRETCH = 1.5


def copy_shortfall(segments: Sequence[Segment], keyframes: Sequence[float], duration: float) -> str | None:
    """Why cutting at ``keyframes`` (``copy_keyframes``) cannot honour the plan, or None.

    Sparse keyframes merge planned cuts (fewer files than planned) or stretch a piece far past
    its segment; a re-encode puts the cuts where they were planned.
    """
    if len(keyframes) + 1 != len(segments):
        return (f"the input's keyframes allow {len(keyframes) + 1} of the {len(segments)} planned "
                "segments")
    edges = [0.0, *keyframes, duration]
    for segment, start, end in zip(segments, edges, edges[1:]):
        if end - start > COPY_STRETCH * segment.duration:
            return (f"at the input's keyframes segment {segment.index} would last {end - start:.2f} s "
                    f"instead of {segment.duration:.2f} s")
    return None


def copy_command(ffmpeg_path: str, input_path: Path, media: MediaInfo, keyframes: Sequence[float],
                 out_dir: Path) -> list[str]:
    """Cut just before the given keyframes without re-encoding the video; audio that is not
    AAC is encoded to AAC, which costs little next to video."""
    upload = source(input_path)
    options: dict[str, object] = {"c:v": "copy", **_STRIP}
    if media.has_audio:
        options.update({"c:a": "copy"} if media.audio_codec == "aac" else {"c:a": "aac", "b:a": AUDIO_BITRATE})
    half_frame = 1 / (2 * media.fps)
    output = segment_output(_mapped(upload, upload["v:0"], media), out_dir,
                            [key - half_frame for key in keyframes], **options)
    return compile_command(ffmpeg_path, output)
