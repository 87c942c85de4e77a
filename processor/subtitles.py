"""The captions as an ASS subtitle file, which ffmpeg's ``ass`` filter (libass) draws.

Pure. libass shapes (Arabic joining, Devanagari conjuncts, Thai marks) with HarfBuzz, orders
right-to-left text with FriBidi, and takes each face from the fontconfig file written here,
which names the layer's fonts folder and nothing else: no host font (a Celery worker's) can
take part, so Lambda and Celery draw the same pixels.

User text reaches libass only as the text of a Dialogue line in this file, never the filter
graph, and libass expands no ``%{...}``. Inside the text two things would be markup: an
override block ``{...}``, and the escapes ``\\N``, ``\\n``, ``\\h``, ``\\{``, ``\\}``. Braces are
written as ``\\{`` and ``\\}``, and a backslash is followed by a WORD JOINER (U+2060, drawn as
nothing), so no escape can form: mpv escapes its on-screen text the same way.

Times: libass shows an event on a frame when start <= t < end, with t the frame's time in
whole milliseconds (truncated), and ASS times are centiseconds. Every bound is placed halfway
between two frames and rounded to the centisecond: at 60 fps (the highest output rate) that
leaves 8.3 ms - 5 ms - 1 ms > 0 on each side, so each text shows on exactly its frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from processor.command import cut_frames, output_rate, output_size, text_ranges
from processor.fonts import Face, FontTable
from processor.overlay import CaptionStyle, Line, Wrapper, is_right_to_left, style_for
from processor.plan import Segment
from processor.probe import MediaInfo

STYLE_NAME = "Caption"
WORD_JOINER = "\u2060"
_WHITE, _BLACK, _HALF_BLACK = "&H00FFFFFF", "&H00000000", "&H80000000"  # &HAABBGGRR, alpha 0 = opaque
# Top left, or top right for a caption that reads right to left.
_TOP_LEFT, _TOP_RIGHT = 7, 9
# Encoding -1: libass picks each paragraph's base direction from its first strong character.
_AUTO_DIRECTION = -1
# BorderStyle 4 (libass): one box behind the whole event, in BackColour, padded by Shadow,
# while Outline still outlines the glyphs.
_BOX_BEHIND_EVENT = 4
_FIELDS = ("Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
           "Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
           "Alignment, MarginL, MarginR, MarginV, Encoding")


@dataclass(frozen=True)
class Event:
    start_cs: int
    end_cs: int
    lines: tuple[Line, ...]
    right_to_left: bool


def escape(text: str) -> str:
    """``text`` as literal ASS dialogue text: no override block, no escape sequence."""
    return text.replace("\\", "\\" + WORD_JOINER).replace("{", "\\{").replace("}", "\\}")


def bound_cs(frame: int, rate: Fraction) -> int:
    """The centisecond halfway between ``frame`` and the frame before it (0 for frame 0)."""
    return 0 if frame <= 0 else round((frame - Fraction(1, 2)) / rate * 100)


def timestamp(centiseconds: int) -> str:
    seconds, cs = divmod(centiseconds, 100)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{cs:02d}"


def _size(face: Face, style: CaptionStyle) -> str:
    """The ASS size that gives ``face`` an em of ``style.em`` pixels."""
    return f"{style.em * face.height:.2f}"


def _switch(face: Face, style: CaptionStyle) -> str:
    return f"{{\\fn{face.family}\\fs{_size(face, style)}}}"


def _text(event: Event, style: CaptionStyle, primary: Face) -> str:
    lines = []
    for line in event.lines:
        parts = []
        for run in line.runs:
            if run.face == primary:
                parts.append(escape(run.text))
            else:
                parts.append(_switch(run.face, style) + escape(run.text) + _switch(primary, style))
        lines.append("".join(parts))
    alignment = _TOP_RIGHT if event.right_to_left else _TOP_LEFT
    return f"{{\\an{alignment}}}" + "\\N".join(lines)


def document(events: Sequence[Event], style: CaptionStyle, primary: Face) -> str:
    """The whole .ass file: one style, scaled to the frame, and one Dialogue line per event.

    PlayResX/Y equal the frame's size, so every number in the file is in frame pixels. The box
    starts at the safe area's edge: libass pads the text by Shadow on each side.
    """
    inset = style.padding + style.border
    style_line = ",".join(str(value) for value in (
        STYLE_NAME, primary.family, _size(primary, style), _WHITE, _WHITE, _BLACK, _HALF_BLACK,
        0, 0, 0, 0, 100, 100, 0, 0, _BOX_BEHIND_EVENT, style.border, style.padding,
        _TOP_LEFT, style.left + inset, style.right + inset, style.top + inset, _AUTO_DIRECTION))
    dialogue = [f"Dialogue: 0,{timestamp(event.start_cs)},{timestamp(event.end_cs)},{STYLE_NAME},,0,0,0,,"
                f"{_text(event, style, primary)}" for event in events]
    return "\n".join([
        "[Script Info]",
        "ScriptType: v4.00+",
        f"PlayResX: {style.width}",
        f"PlayResY: {style.height}",
        # 2: no wrapping by libass; the lines are already wrapped (processor.overlay).
        "WrapStyle: 2",
        "ScaledBorderAndShadow: yes",
        "",
        "[V4+ Styles]",
        f"Format: {_FIELDS}",
        f"Style: {style_line}",
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
        *dialogue,
    ]) + "\n"


def captions(media: MediaInfo, segments: Sequence[Segment], table: FontTable) -> str | None:
    """The .ass file for the segments' texts on the output frames, or None without text.

    Each distinct text is one event per frame range it covers (processor.command.text_ranges),
    wrapped once for the output size.
    """
    rate = output_rate(media)
    spans = text_ranges(segments, cut_frames(segments, rate))
    if not spans:
        return None
    style = style_for(*output_size(media))
    wrapper = Wrapper(table, style)
    # Past the last frame: the end of the video, whatever the rounding of its duration.
    end = round(media.duration * 100) + 100
    events = []
    for text, ranges in spans.items():
        lines = tuple(wrapper.lines(text))
        for first, stop in ranges:
            events.append(Event(bound_cs(first, rate), end if stop is None else bound_cs(stop, rate),
                                lines, is_right_to_left(text)))
    return document(sorted(events, key=lambda event: event.start_cs), style, table.primary)


def fontconfig(fonts_dir: Path) -> str:
    """A fontconfig file that knows the layer's fonts and no other.

    The path is absolute: the static ffmpeg's fontconfig resolves ``prefix="relative"`` against
    the working directory, not the file, so a file shipped in the layer could not name its own
    folder both under /opt (Lambda) and in a local build (tests, the Celery worker).
    """
    return ("<?xml version=\"1.0\"?>\n<fontconfig>\n"
            f"  <dir>{xml_escape(str(Path(fonts_dir).absolute()))}</dir>\n</fontconfig>\n")
