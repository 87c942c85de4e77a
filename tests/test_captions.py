"""Captions in every script, on real video through processor.engine.cut, checked on the drawn
frames: read back with tesseract, compared with the same caption drawn outside ffmpeg by the
same fonts (and with its tofu), placed inside the safe area, on exactly their segments' frames.
"""

from __future__ import annotations

import difflib
import subprocess
import unicodedata
from pathlib import Path

import pytest
from PIL import Image

from processor import binaries, subtitles
from processor.binaries import tool
from processor.engine import EncodeSettings, cut
from processor.fonts import UnsupportedCharactersError
from processor.overlay import style_for
from processor.plan import Segment
from processor.probe import probe
from sandbox.media import make_video
from tests.captions_check import caption_area, frames, ocr, reference_mask, similarity, text_mask
from tests.test_subtitles import HOSTILE_TEXTS

# Lossless, so that a frame without captions is exactly the background of the one with them.
LOSSLESS = EncodeSettings(preset="ultrafast", crf=0)
WIDTH, HEIGHT = 960, 540
SEGMENT = 0.5  # seconds per caption
PICK = 7  # the frame of each segment that is read
# A caption's correlation with Pillow's drawing of it: 0.73 to 0.96 for the captions here;
# libass drawing boxes instead scores about 0.1.
LIKE_REFERENCE = 0.6
MARGIN_OVER_TOFU = 0.3

# (caption, tesseract languages or None, what the OCR must read: None for the caption itself)
CAPTIONS = [
    ("Café déjà vu, naïve Ñandú", "eng", None),
    ("Привет, мир! Съешь ещё", "rus", None),
    ("Γειά σου Κόσμε", "ell", None),
    ("你好，世界 中文字幕测试", "chi_sim", None),
    ("こんにちは世界", None, None),
    ("안녕하세요 세계", None, None),
    ("مرحبا بالعالم", "ara", None),
    ("שלום עולם", "heb", None),
    ("नमस्ते दुनिया", "hin", None),
    ("สวัสดีชาวโลก", "tha", None),
    ("Party 🎉🔥 time 👍🏽", "eng", "Party time"),
    ("Hello 世界 مرحبا", None, None),
    ("مرحبا بالعالم 123", "ara", None),
    ("这是一个很长的句子，需要换行才能显示完整的内容。不然就会超出画面，对吧？这是一个很长的句子，需要换行才能显示完整的内容。",
     "chi_sim", None),
]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> dict[str, tuple[Image.Image, Image.Image]]:
    """caption -> (its frame, the same frame without captions), from one cut of one video."""
    work = tmp_path_factory.mktemp("captions")
    texts = [caption for caption, _, _ in CAPTIONS]
    source = make_video(work / "in.mp4", duration=SEGMENT * len(texts), width=WIDTH, height=HEIGHT, audio=False)
    bounds = [round(i * SEGMENT, 3) for i in range(len(texts) + 1)]
    with_text = cut(source, [Segment(i, a, b, texts[i]) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))],
                    work / "text", LOSSLESS)
    without = cut(source, [Segment(i, a, b) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))],
                  work / "clean", LOSSLESS)
    return {text: (frames(a.path)[PICK], frames(b.path)[PICK]) for text, a, b in zip(texts, with_text, without)}


def _normal(text: str) -> str:
    return "".join(char for char in unicodedata.normalize("NFC", text)
                   if not char.isspace() and unicodedata.category(char) != "Cf")


def assert_like_the_caption(mask: Image.Image, text: str, width: int = WIDTH, height: int = HEIGHT) -> None:
    score = similarity(mask, reference_mask(text, width, height))
    tofu = similarity(mask, reference_mask(text, width, height, tofu=True))
    assert score >= LIKE_REFERENCE and score >= tofu + MARGIN_OVER_TOFU, (text, score, tofu)


@pytest.mark.parametrize(("caption", "language", "reads"), CAPTIONS, ids=[c[:12] for c, _, _ in CAPTIONS])
def test_every_script_is_drawn_with_real_glyphs(drawn, caption, language, reads):
    frame, clean = drawn[caption]
    mask = text_mask(frame, clean)
    assert mask is not None, f"nothing drawn for {caption!r}"
    assert_like_the_caption(mask, caption)
    if language:
        expected = _normal(reads or caption)
        read = _normal(ocr(mask, language))
        assert difflib.SequenceMatcher(None, expected, read).ratio() >= 0.75, (caption, read)


def test_arabic_letters_are_joined(drawn):
    caption = "مرحبا بالعالم"
    mask = text_mask(*drawn[caption])
    isolated = "\u200c".join(caption)  # a non-joiner between letters: their isolated forms
    assert similarity(mask, reference_mask(caption, WIDTH, HEIGHT)) > \
        similarity(mask, reference_mask(isolated, WIDTH, HEIGHT)) + 0.2


def test_right_to_left_text_reads_right_to_left_from_the_right_edge(drawn):
    caption = "שלום עולם"
    mask = text_mask(*drawn[caption])
    backwards = caption[::-1]
    assert similarity(mask, reference_mask(caption, WIDTH, HEIGHT)) > \
        similarity(mask, reference_mask(backwards, WIDTH, HEIGHT)) + 0.2
    style = style_for(WIDTH, HEIGHT)
    for rtl in ("שלום עולם", "مرحبا بالعالم 123"):
        left, _, right, _ = caption_area(*drawn[rtl])
        assert WIDTH - style.right - 4 <= right <= WIDTH - style.right, rtl
        assert left > WIDTH / 2
    left, _, _, _ = caption_area(*drawn["Café déjà vu, naïve Ñandú"])
    assert left == style.left


def test_a_long_caption_wraps_inside_the_safe_area(drawn):
    caption = CAPTIONS[-1][0]
    left, top, right, bottom = caption_area(*drawn[caption])
    style = style_for(WIDTH, HEIGHT)
    assert bottom - top > 3 * style.em, "several lines"
    assert left >= style.left and top >= style.top
    assert right <= WIDTH - style.right and bottom <= HEIGHT - style.bottom


def test_the_tofu_check_catches_boxes(tmp_path: Path):
    """The check can fail: the processor's own ASS file drawn by libass with Noto Sans alone
    (what a layer with one Latin font did) is recognised as boxes, not as the caption."""
    latin_only = tmp_path / "fonts"
    latin_only.mkdir()
    (latin_only / "NotoSans-Regular.ttf").write_bytes((binaries.fonts_dir() / "NotoSans-Regular.ttf").read_bytes())
    source = make_video(tmp_path / "in.mp4", duration=0.5, width=WIDTH, height=HEIGHT, audio=False)
    media = probe(source)
    for caption in ("你好，世界 中文字幕测试", "Party 🎉🔥 time 👍🏽", "مرحبا بالعالم"):
        (tmp_path / "c.ass").write_text(subtitles.captions(media, [Segment(0, 0, media.duration, caption)],
                                                           binaries.font_table()).colours, encoding="utf-8")
        (tmp_path / "fonts.conf").write_text(subtitles.fontconfig(latin_only))
        for name, graph in (("boxes", f"ass=filename={tmp_path / 'c.ass'}"), ("clean", "null")):
            subprocess.run([tool("ffmpeg"), "-v", "error", "-y", "-i", str(source), "-vf", graph, "-frames:v", "1",
                            "-c:v", "ffv1", str(tmp_path / f"{name}.mkv")], check=True,
                           env={"FONTCONFIG_FILE": str(tmp_path / "fonts.conf")})
        mask = text_mask(frames(tmp_path / "boxes.mkv")[0], frames(tmp_path / "clean.mkv")[0])
        with pytest.raises(AssertionError):
            assert_like_the_caption(mask, caption)


def _segments(bounds: list[float], texts: list[str | None]) -> list[Segment]:
    return [Segment(i, a, b, texts[i]) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


@pytest.mark.parametrize("fps", [24, 25, 30, 60])
def test_each_text_shows_on_exactly_its_segments_frames(tmp_path: Path, fps: int):
    """Bounds off the frame grid; every frame of every written segment is classified by the
    width of what was drawn on it: a short text, a long one, or nothing."""
    source = make_video(tmp_path / "in.mp4", duration=2.0, fps=fps, audio=False)
    bounds = [0.0, 0.55, 0.93, 1.3, 2.0]
    texts = ["I", None, "WWWWWWWWWW", "I"]
    with_text = cut(source, _segments(bounds, texts), tmp_path / "text", LOSSLESS)
    without = cut(source, _segments(bounds, [None] * 4), tmp_path / "clean", LOSSLESS)
    short_width = style_for(320, 240).em * 2
    total = 0
    for segment, written, clean in zip(_segments(bounds, texts), with_text, without):
        pictures, backgrounds = frames(written.path), frames(clean.path)
        assert len(pictures) == len(backgrounds) > 0
        for n, (picture, background) in enumerate(zip(pictures, backgrounds)):
            area = caption_area(picture, background)
            shown = None if area is None else "I" if area[2] - area[0] < short_width else "WWWWWWWWWW"
            assert shown == segment.text, (fps, segment.index, n)
        total += len(pictures)
    assert total == 2 * fps


def test_vertical_video_keeps_the_caption_clear_of_the_apps_interface(tmp_path: Path):
    width, height = 360, 640
    source = make_video(tmp_path / "in.mp4", duration=0.5, width=width, height=height, audio=False)
    caption = "A caption long enough to need a few lines on a phone screen 🎉 " * 3
    drawn = cut(source, _segments([0.0, 0.5], [caption]), tmp_path / "text", LOSSLESS)[0]
    clean = cut(source, _segments([0.0, 0.5], [None]), tmp_path / "clean", LOSSLESS)[0]
    left, top, right, bottom = caption_area(frames(drawn.path)[0], frames(clean.path)[0])
    style = style_for(width, height)
    assert style.top > 0.1 * height and style.right > 0.1 * width and style.bottom > 0.25 * height
    assert left >= style.left and top >= style.top
    assert right <= width - style.right and bottom <= height - style.bottom


def test_hostile_texts_are_drawn_literally(tmp_path: Path):
    texts = [text for text in HOSTILE_TEXTS if "\n" not in text][-6:]
    source = make_video(tmp_path / "in.mp4", duration=0.5 * len(texts), width=WIDTH, height=HEIGHT, audio=False)
    bounds = [i * 0.5 for i in range(len(texts) + 1)]
    drawn = cut(source, _segments(bounds, texts), tmp_path / "text", LOSSLESS)
    clean = cut(source, _segments(bounds, [None] * len(texts)), tmp_path / "clean", LOSSLESS)
    style = style_for(WIDTH, HEIGHT)
    one_line = style.em * binaries.font_table().primary.height + 2 * (style.padding + style.border) + 2
    for text, written, background in zip(texts, drawn, clean):
        picture, plain = frames(written.path)[PICK], frames(background.path)[PICK]
        left, top, _, bottom = caption_area(picture, plain)
        assert bottom - top <= one_line, f"{text!r} broke a line or resized the caption"
        assert (left, top) == (style.left, style.top), f"{text!r} moved the caption"
        assert_like_the_caption(text_mask(picture, plain), text)


def test_a_caption_no_font_can_draw_fails_before_ffmpeg_runs(tmp_path: Path):
    source = make_video(tmp_path / "in.mp4", duration=1.0, audio=False)
    with pytest.raises(UnsupportedCharactersError, match=r"U\+E000 \(a private-use code point"):
        cut(source, _segments([0.0, 0.5, 1.0], ["fine", "logo \ue000"]), tmp_path / "out", LOSSLESS)
    assert not (tmp_path / "out").exists()
