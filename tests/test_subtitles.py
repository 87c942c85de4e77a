"""processor.subtitles: the ASS file libass reads, checked against libass's own rules."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor import binaries
from processor.command import cut_frames, enable_expression
from processor.plan import Segment
from processor.probe import MediaInfo
from processor.subtitles import WORD_JOINER, captions, escape, fontconfig, timestamp

HOSTILE_TEXTS = [
    "it's \"quoted\"",
    "a:b:c",
    "back\\slash \\n \\\\",
    "%{pts} %{localtime} %{eif:1:d}",
    "x;y",
    "[in][out]",
    "one, two",
    "movie=/etc/passwd",
    "drawtext=text=owned",
    "'; movie=/etc/passwd [a]; [a] overlay",
    "line one\nline two",
    "\\'\\:\\,",
    "{\\pos(0,0)}moved? {\\fs200}big? {\\c&H0000FF&}red?",
    "\\N not a break, \\h not a space, \\{ \\} not escapes",
    "{unclosed and } closed {} {{}}",
]
MEDIA = MediaInfo(duration=10.0, width=1920, height=1080, rotation=0, has_audio=True,
                  fps=Fraction(30), video_codec="h264", pix_fmt="yuv420p", audio_codec="aac")
# Output rates from the lowest the processor keeps to the highest it encodes, NTSC ones included.
RATES = [Fraction(15), Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
         Fraction(50), Fraction(60000, 1001), Fraction(60)]


def libass_text(text: str) -> tuple[str, list[str]]:
    """What libass draws for an event's text, and the override blocks it would execute
    (libass's ass_render.c: a '{' with a later '}' opens a block; \\N, \\n (WrapStyle 2), \\h,
    \\{ and \\} are escapes; any other backslash is a character)."""
    drawn, overrides, p = [], [], 0
    while p < len(text):
        if text[p] == "{" and "}" in text[p + 1:]:
            end = text.index("}", p + 1)
            overrides.append(text[p + 1:end])
            p = end + 1
        elif text[p] == "\\" and text[p + 1:p + 2] in ("N", "n", "h", "{", "}"):
            drawn.append({"N": "\n", "n": "\n", "h": "\u00a0"}.get(text[p + 1], text[p + 1]))
            p += 2
        else:
            drawn.append(text[p])
            p += 1
    return "".join(drawn), overrides


@pytest.mark.parametrize("text", [t for t in HOSTILE_TEXTS if "\n" not in t])
def test_hostile_text_is_drawn_as_written(text):
    drawn, overrides = libass_text(escape(text))
    assert (drawn.replace(WORD_JOINER, ""), overrides) == (text, [])


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from("\\{}Nnh a%(),:;'[]=\u2060"), max_size=40))
def test_no_text_can_open_an_override_block_or_an_escape(text):
    drawn, overrides = libass_text(escape(text))
    assert overrides == []
    assert drawn.replace(WORD_JOINER, "") == text.replace(WORD_JOINER, "")


def test_timestamps_are_ass_centiseconds():
    assert [timestamp(cs) for cs in (0, 7, 199, 6000, 360_005)] == [
        "0:00:00.00", "0:00:00.07", "0:00:01.99", "0:01:00.00", "1:00:00.05"]


def events_of(document: str) -> list[tuple[int, int, str]]:
    found = []
    for line in document.splitlines():
        if line.startswith("Dialogue: "):
            fields = line.removeprefix("Dialogue: ").split(",", 9)
            start, end = ((int(h) * 3600 + int(m) * 60) * 100 + round(float(s) * 100)
                          for h, m, s in (t.split(":") for t in fields[1:3]))
            found.append((start, end, fields[9]))
    return found


def segments_of(bounds: list[float], texts: list[str | None]) -> list[Segment]:
    return [Segment(i, a, b, texts[i]) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def _enabled(expression: str | None, t: float) -> bool:
    """FFmpeg's evaluation of an ``enable`` made of gte/lt terms, in doubles."""
    if expression is None:
        return True
    total = 0
    for term in expression.split("+"):
        assert re.fullmatch(r"((gte|lt)\(t,[0-9.]+\)\*?)+", term), term
        value = 1
        for function, bound in re.findall(r"(gte|lt)\(t,([0-9.]+)\)", term):
            value *= (t >= float(bound)) if function == "gte" else (t < float(bound))
        total += value
    return total > 0


@pytest.mark.parametrize("texts", [
    ["a", "b", "c", "d"],                 # unique_for_all
    ["same", "same", "same", "same"],     # one_for_all: one caption on every frame, no condition
    ["a", None, "a", "b"],
    ["x", "x", None, "x"],
])
@pytest.mark.parametrize("rate", RATES, ids=str)
def test_each_frame_shows_exactly_its_segments_text(texts, rate):
    """Fifteen minutes of frames would be slow here; ten seconds at every output rate, with
    bounds off the frame grid, on the clock the filters see (t = frame / rate, in doubles)."""
    media = MediaInfo(**{**MEDIA.__dict__, "fps": rate})
    segments = segments_of([0, 1.51, 3.0, 7.333, 10.0], texts)
    drawn = captions(media, segments, binaries.font_table()).captions
    assert len(drawn) == len({t for t in texts if t})
    frames = [0, *cut_frames(segments, rate), int(10 * rate)]
    for i, segment in enumerate(segments):
        for frame in range(frames[i], frames[i + 1]):
            t = frame * (rate.denominator / rate.numerator)
            shown = [caption.text for caption in drawn if _enabled(enable_expression(caption.spans, rate), t)]
            assert shown == ([segment.text] if segment.text else []), (i, frame)
    if texts == ["same"] * 4:
        assert enable_expression(drawn[0].spans, rate) is None


def test_no_text_means_no_subtitle_file():
    assert captions(MEDIA, segments_of([0, 5, 10], [None, None]), binaries.font_table()) is None


def test_the_document_is_in_frame_pixels_with_one_style():
    drawn = captions(MEDIA, segments_of([0, 5, 10], ["Hello 你好", "שלום עולם"]), binaries.font_table())
    document = drawn.colours
    assert "PlayResX: 1920\nPlayResY: 1080\nWrapStyle: 2\nScaledBorderAndShadow: yes" in document
    style = re.search(r"^Style: (.*)$", document, re.M).group(1).split(",")
    # Caption, Noto Sans at 72 px per em (ASS size = em x (ascent + descent)), white, black
    # outline, half-black box behind the event (BorderStyle 4, padded by Shadow), top left,
    # margins = safe margin + padding + outline, base direction automatic.
    assert style == ["Caption", "Noto Sans", "98.06", "&H00FFFFFF", "&H00FFFFFF", "&H00000000", "&H80000000",
                     "0", "0", "0", "0", "100", "100", "0", "0", "4", "6", "18", "7", "78", "78", "78", "-1"]
    # Caption i shows at second i of the canvas it is drawn on.
    (start, end, latin_and_han), (start_2, end_2, hebrew) = events_of(document)
    assert (start, end, start_2, end_2) == (0, 100, 100, 200)
    assert latin_and_han == r"{\an7}Hello {\fnNoto Sans CJK SC\fs104.26}你好{\fnNoto Sans\fs98.06}"
    assert hebrew == r"{\an9}{\fnNoto Sans Hebrew\fs97.92}שלום עולם{\fnNoto Sans\fs98.06}"
    # The alpha drawing: the same text and geometry, every colour white with its transparency.
    assert drawn.alpha == document.replace(",&H00000000,&H80000000,", ",&H00FFFFFF,&H80FFFFFF,")
    assert drawn.alpha != document
    # The Hebrew caption's rectangle hugs the right edge of the safe area, the other the left.
    first, second = drawn.captions
    assert (first.x, first.y) == (52, 52) and second.x + second.width == 1920 - 54
    assert all(value % 2 == 0 for c in drawn.captions for value in (c.x, c.y, c.width, c.height))


def test_wrapped_lines_are_joined_with_hard_breaks():
    document = captions(MEDIA, segments_of([0, 10], ["word " * 60]), binaries.font_table()).colours
    (_, _, text), = events_of(document)
    assert text.count(r"\N") >= 2 and "\n" not in text


def test_fontconfig_names_only_the_fonts_folder(tmp_path: Path):
    folder = tmp_path / "a & b <c> 'd'"
    root = ElementTree.fromstring(fontconfig(folder))
    assert root.tag == "fontconfig"
    assert [(child.tag, child.text) for child in root] == [("dir", str(folder))]
