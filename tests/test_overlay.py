"""processor.overlay: caption geometry and wrapping, checked against the real font's metrics."""

from __future__ import annotations

import string
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ImageFont

from processor.binaries import font
from processor.overlay import (ELLIPSIS, MAX_FONT_SIZE, MIN_FONT_SIZE, font_size, style_for,
                               text_width, textfile_content, wrap)

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
]


@cache
def _roboto(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font(), size)  # without the layer: fails saying how to build it


@pytest.mark.parametrize(("size", "expected"), [
    ((320, 240), MIN_FONT_SIZE), ((240, 320), MIN_FONT_SIZE), ((600, 600), 40),
    ((1280, 720), 48), ((720, 1280), 48), ((1920, 1080), MAX_FONT_SIZE), ((3840, 2160), MAX_FONT_SIZE),
    ((451, 451), 30),
])
def test_font_size_is_a_fifteenth_of_the_short_side_clamped(size, expected):
    assert font_size(*size) == expected


@pytest.mark.parametrize("size", [(320, 240), (240, 320), (1920, 1080), (1080, 1920), (100, 60)])
def test_box_stays_inside_the_safe_margin(size):
    width, height = size
    style = style_for(width, height)
    margin = round(min(width, height) * 0.05)
    assert style.margin == margin
    assert style.x == margin + style.box_padding
    if width >= 240:
        box_right = style.x + style.max_line_width + 2 * style.border + style.box_padding
        assert box_right <= width - margin
        line = style.font_size * 1.2 + style.line_spacing
        box_bottom = style.x + style.max_lines * line - style.line_spacing + style.box_padding
        assert box_bottom <= height - margin


@pytest.mark.parametrize("size", [8, 20, 33, 72])
def test_width_estimate_never_falls_short_of_the_font(size):
    for char in string.printable.strip() + " éÀçÑ":
        assert text_width(char * 10, size) >= _roboto(size).getlength(char * 10) - 0.5, char


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs")), max_size=500),
       st.sampled_from([(320, 240), (240, 320), (1280, 720), (1080, 1920)]))
def test_wrapped_lines_fit_the_frame_and_keep_every_character(text, size):
    style = style_for(*size)
    lines = wrap(text, style)
    assert len(lines) <= style.max_lines
    for line in lines:
        assert _roboto(style.font_size).getlength(line) <= style.max_line_width
    joined = "".join(lines).replace(" ", "")
    expected = text.strip().replace(" ", "")
    if lines[-1].endswith(ELLIPSIS):
        assert expected.startswith(joined[:-1])
    else:
        assert joined == expected


def test_a_long_word_is_broken_rather_than_overflowing():
    style = style_for(320, 240)
    lines = wrap("W" * 60, style)
    assert len(lines) > 1 and "".join(lines) == "W" * 60


def test_too_much_text_ends_with_an_ellipsis_inside_the_frame():
    style = style_for(320, 240)
    lines = wrap("word " * 200, style)
    assert len(lines) == style.max_lines
    assert lines[-1].endswith(ELLIPSIS)
    assert text_width(lines[-1], style.font_size) <= style.max_line_width


def test_user_line_breaks_are_kept_and_control_characters_blanked():
    assert textfile_content("one\r\ntwo\rthree\nfour", 1920, 1080) == "one\ntwo\nthree\nfour"
    assert textfile_content("tab\there\x00nul\x1b[31m", 1920, 1080) == "tab here nul [31m"
    assert textfile_content("lone \ud800 surrogate", 1920, 1080) == "lone   surrogate"


def test_no_edge_blank_lines_that_drawtext_would_draw_inside_the_box():
    assert textfile_content("hello\n", 1920, 1080) == "hello"
    assert textfile_content("\n\n  hi there \n\n", 1920, 1080) == "hi there"


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_text_is_written_exactly_as_given(text):
    assert textfile_content(text, 1920, 1080) == text
