"""The captions, drawn once each by libass from an ASS file, then laid over their frames.

Pure. libass shapes (Arabic joining, Devanagari conjuncts, Thai marks) with HarfBuzz, orders
right-to-left text with FriBidi, and takes each face from the fontconfig file written here,
which names the layer's fonts folder and nothing else: no host font (a Celery worker's) can
take part, so Lambda and Celery draw the same pixels.

Drawing the captions on every frame with the ``ass`` filter cost 11 % of a 1080p encode (libass
lays the event out again on every frame and blends three masks), over the 1.10x budget; drawn
once each and laid over with ``overlay`` they cost about 2 %. So a short first ffmpeg run draws
caption i at second i of a black canvas of the output size, twice: in its colours (which on
black is the caption premultiplied by its alpha) and all in white (whose brightness is that
alpha). ``alphamerge`` joins them, and the encode lays the rectangle that holds the caption over
its frames with ``overlay`` (``alpha=premultiplied``): the same result as libass blending onto
the frame itself. The rectangle comes from the wrapping's widths, an upper bound.

User text reaches libass only as the text of a Dialogue line in these files, never a filter
graph, and libass expands no ``%{...}``. Inside the text two things would be markup: an
override block ``{...}``, and the escapes ``\\N``, ``\\n``, ``\\h``, ``\\{``, ``\\}``. Braces are
written as ``\\{`` and ``\\}``, and a backslash is followed by a WORD JOINER (U+2060, drawn as
nothing), so no escape can form: mpv escapes its on-screen text the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from processor.command import MAX_LONG_SIDE, cut_frames, output_rate, output_size, text_ranges
from processor.fonts import Face, FontTable
from processor.overlay import CaptionStyle, Line, Wrapper, is_right_to_left, style_for
from processor.plan import Segment
from processor.probe import MediaInfo

STYLE_NAME = "Caption"
WORD_JOINER = "\u2060"
_WHITE, _BLACK, _HALF_BLACK = "&H00FFFFFF", "&H00000000", "&H80000000"  # &HAABBGGRR, alpha 0 = opaque
_HALF_WHITE = "&H80FFFFFF"
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


@dataclass(frozen=True)
class Caption:
    """One distinct text: where its picture is cut from the canvas and laid on the frame, and
    the output frames [first, end) it shows on (end None: to the last frame)."""

    text: str
    spans: tuple[tuple[int, int | None], ...]
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Captions:
    width: int
    height: int
    """The canvas: the output frame's size."""
    colours: str
    """ASS file: caption i from second i to i + 1, in its colours."""
    alpha: str
    """The same, all white: its brightness on black is the caption's alpha."""
    captions: tuple[Caption, ...]


def escape(text: str) -> str:
    """``text`` as literal ASS dialogue text: no override block, no escape sequence."""
    return text.replace("\\", "\\" + WORD_JOINER).replace("{", "\\{").replace("}", "\\}")


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


def document(events: Sequence[Event], style: CaptionStyle, primary: Face, *, alpha: bool = False) -> str:
    """The whole .ass file: one style, scaled to the frame, and one Dialogue line per event;
    ``alpha``: every colour white, keeping its transparency.

    PlayResX/Y equal the frame's size, so every number in the file is in frame pixels. The box
    starts at the safe area's edge: libass pads the text by Shadow on each side.
    """
    inset = style.padding + style.border
    outline, box = (_WHITE, _HALF_WHITE) if alpha else (_BLACK, _HALF_BLACK)
    style_line = ",".join(str(value) for value in (
        STYLE_NAME, primary.family, _size(primary, style), _WHITE, _WHITE, outline, box,
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


def _floor_even(value: float) -> int:
    whole = math.floor(value)
    return whole - whole % 2


def _ceil_even(value: float) -> int:
    whole = math.ceil(value)
    return whole + whole % 2


def _rectangle(lines: Sequence[Line], wrapper: Wrapper, right_to_left: bool) -> tuple[int, int, int, int]:
    """x, y, width, height of a rectangle that holds the caption's box: the lines' widths are
    upper bounds, and the box adds padding and outline on each side (a pixel of slack each)."""
    style = wrapper.style
    inset = 2 * (style.padding + style.border + 1)
    width = max(wrapper.width(line.text) for line in lines) + inset
    height = sum(wrapper.height(line) for line in lines) + inset
    left = style.width - style.right - width if right_to_left else style.left - 1
    # Even: overlay positions on 4:2:0 video stay on whole chroma samples.
    x, y = max(0, _floor_even(left)), max(0, _floor_even(style.top - 1))
    right, bottom = min(style.width, _ceil_even(left + width)), min(style.height, _ceil_even(style.top + height))
    return x, y, right - x, bottom - y


def captions(media: MediaInfo, segments: Sequence[Segment], table: FontTable,
             max_long_side: int = MAX_LONG_SIDE) -> Captions | None:
    """The captions of the segments' texts for the output frames (``output_size``), or None
    without text.

    Each distinct text is one caption, wrapped once for the output size, shown on the frame
    ranges of its segments (processor.command.text_ranges).
    """
    rate = output_rate(media)
    spans = text_ranges(segments, cut_frames(segments, rate))
    if not spans:
        return None
    width, height = output_size(media, max_long_side)
    style = style_for(width, height)
    wrapper = Wrapper(table, style)
    events, pictures = [], []
    for i, (text, ranges) in enumerate(spans.items()):
        lines = tuple(wrapper.lines(text))
        right_to_left = is_right_to_left(text)
        events.append(Event(100 * i, 100 * (i + 1), lines, right_to_left))
        pictures.append(Caption(text, tuple(ranges), *_rectangle(lines, wrapper, right_to_left)))
    return Captions(width, height, document(events, style, table.primary),
                    document(events, style, table.primary, alpha=True), tuple(pictures))


def fontconfig(fonts_dir: Path) -> str:
    """A fontconfig file that knows the layer's fonts and no other.

    The path is absolute: the static ffmpeg's fontconfig resolves ``prefix="relative"`` against
    the working directory, not the file, so a file shipped in the layer could not name its own
    folder both under /opt (Lambda) and in a local build (tests, the Celery worker).
    """
    return ("<?xml version=\"1.0\"?>\n<fontconfig>\n"
            f"  <dir>{xml_escape(str(Path(fonts_dir).absolute()))}</dir>\n</fontconfig>\n")
