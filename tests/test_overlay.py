"""processor.overlay: caption geometry and wrapping, checked against the real faces' metrics."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ImageFont

from processor import binaries
from processor.fonts import FontTable
from processor.overlay import (ELLIPSIS, MIN_FONT_SIZE, Line, Wrapper, clean, font_size,
                               is_right_to_left, is_short_form, style_for)


@pytest.fixture(scope="module")
def table() -> FontTable:
    return binaries.font_table()


@cache
def _pillow(file: str, index: int, em: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(binaries.fonts_dir() / file), em, index=index, layout_engine=ImageFont.Layout.RAQM)


def drawn_width(line: Line, em: int) -> float:
    """The line's width as HarfBuzz shapes it, run by run, at ``em`` pixels."""
    return sum(_pillow(run.face.file, run.face.index, em).getlength(run.text) for run in line.runs)


@pytest.mark.parametrize(("size", "expected"), [
    ((320, 240), MIN_FONT_SIZE), ((240, 320), MIN_FONT_SIZE), ((600, 600), 40),
    ((1280, 720), 48), ((720, 1280), 48), ((1920, 1080), 72), ((3840, 2160), 144), ((1080, 1920), 72),
])
def test_font_size_is_a_fifteenth_of_the_short_side(size, expected):
    assert font_size(*size) == expected


def test_4k_gets_the_proportions_of_1080p():
    hd, uhd = style_for(1920, 1080), style_for(3840, 2160)
    for name in ("em", "left", "top", "right", "bottom", "padding", "border"):
        assert getattr(uhd, name) == pytest.approx(2 * getattr(hd, name), abs=1), name
    assert uhd.max_line_width == pytest.approx(2 * hd.max_line_width, abs=4)


@pytest.mark.parametrize(("size", "short_form"), [
    ((1080, 1920), True), ((720, 1280), True), ((1170, 2532), True),
    ((1080, 1350), False), ((1920, 1080), False), ((1080, 1080), False),
])
def test_only_tall_portrait_frames_are_short_form(size, short_form):
    assert is_short_form(*size) == short_form


def test_short_form_keeps_clear_of_the_apps_interface():
    style = style_for(1080, 1920)
    # TikTok/Reels/Shorts: tabs at the top, the action column on the right, the description below.
    assert (style.left, style.top, style.right, style.bottom) == (65, 269, 173, 576)
    landscape = style_for(1920, 1080)
    assert {landscape.left, landscape.top, landscape.right, landscape.bottom} == {54}


_ALPHABET = ("abcdefghij WXYZ éàç 0123 ,.!? — Привет Γειά 你好世界中文字幕测试，。「」 こんにちは 안녕하세요 "
             "مرحبا بالعالم שלום नमस्ते क्षत्रिय สวัสดี 🎉🔥😀🥺 \n")


@settings(max_examples=120, deadline=None)
@given(st.text(alphabet=st.sampled_from(sorted(set(_ALPHABET))), max_size=400),
       st.sampled_from([(320, 240), (1280, 720), (1080, 1920), (3840, 2160)]))
def test_wrapped_lines_fit_the_safe_area_and_keep_every_character(text, size):
    style = style_for(*size)
    wrapper = Wrapper(binaries.font_table(), style)
    lines = wrapper.lines(text)
    for line in lines:
        assert drawn_width(line, style.em) <= style.max_line_width + 1, line.text
    assert sum(map(wrapper.height, lines)) <= max(style.max_text_height, wrapper.height(lines[0]))
    joined = "".join(line.text for line in lines).replace(" ", "").replace("\n", "")
    expected = clean(text).replace(" ", "").replace("\n", "")
    if lines[-1].text.endswith(ELLIPSIS) and not expected.endswith(ELLIPSIS):
        assert expected.startswith(joined[:-1])
    else:
        assert joined == expected


def test_chinese_wraps_between_characters_never_before_closing_punctuation(table):
    wrapper = Wrapper(table, style_for(640, 360))
    caption = "这是一个很长的句子，需要换行才能显示完整的内容。不然就会超出画面，对吧？" * 2
    lines = [line.text for line in wrapper.lines(caption)]
    assert len(lines) > 2 and "".join(lines) == caption
    assert not [line for line in lines[1:] if line[0] in "，。？"]


def test_space_separated_scripts_break_at_spaces(table):
    wrapper = Wrapper(table, style_for(640, 360))
    for caption in ("word " * 40, "مرحبا بالعالم " * 12, "שלום עולם " * 15, "नमस्ते दुनिया " * 12):
        lines = [line.text for line in wrapper.lines(caption)]
        assert len(lines) > 1
        assert " ".join(lines) == caption.strip()


def test_a_word_wider_than_the_line_is_cut_between_clusters(table):
    wrapper = Wrapper(table, style_for(640, 480))
    lines = [line.text for line in wrapper.lines("W" * 60 + " " + "क्षत्रिय" * 12)]
    assert len(lines) > 3 and "".join(lines).replace(" ", "") == "W" * 60 + "क्षत्रिय" * 12
    assert all("्" != line[0] for line in lines)


def test_too_much_text_ends_with_an_ellipsis_inside_the_safe_area(table):
    style = style_for(320, 240)
    wrapper = Wrapper(table, style)
    lines = wrapper.lines("word " * 300)
    assert lines[-1].text.endswith(ELLIPSIS)
    assert sum(map(wrapper.height, lines)) <= style.max_text_height
    assert drawn_width(lines[-1], style.em) <= style.max_line_width


def test_user_line_breaks_are_kept_and_control_characters_blanked():
    assert clean("one\r\ntwo\rthree\nfour\u2028five") == "one\ntwo\nthree\nfour\nfive"
    assert clean("tab\there\x00nul\x1b[31m") == "tab here nul [31m"
    assert clean("lone \ud800 surrogate") == "lone   surrogate"
    assert clean("\n\n  hi there \n\n") == "hi there"


@pytest.mark.parametrize(("text", "rtl"), [
    ("שלום world", True), ("hello שלום", False), ("123 مرحبا", True), ("\u200f(!) abc", True), ("(!) abc", False),
    ("🎉 مرحبا", True), ("", False), ("123", False),
])
def test_base_direction_is_the_first_strong_character(text, rtl):
    assert is_right_to_left(text) == rtl
