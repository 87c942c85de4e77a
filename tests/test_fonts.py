"""processor.fonts over the layer's real font table: clusters, the face of every run, the
characters no face draws, and width estimates checked against HarfBuzz."""

from __future__ import annotations

import random
import unicodedata
from functools import cache

import pytest
from PIL import ImageFont

from processor import binaries
from processor.errors import InvalidJobError
from processor.fonts import FontTable, UnsupportedCharactersError, clusters


@pytest.fixture(scope="module")
def table() -> FontTable:
    return binaries.font_table()  # without the layer: fails saying how to build it


def families(table: FontTable, text: str) -> list[tuple[str, str]]:
    return [(run.face.family, run.text) for run in table.runs(text)]


@pytest.mark.parametrize(("text", "expected"), [
    ("e\u0301a", ["e\u0301", "a"]),                                 # a letter and its accent
    ("क्षत्रिय", ["क्ष", "त्रि", "य"]),                                  # conjuncts stay whole
    ("👍🏽!", ["👍🏽", "!"]),                                         # skin tone
    ("👨\u200d👩\u200d👧x", ["👨\u200d👩\u200d👧", "x"]),               # a family
    ("🇫🇷🇩🇪", ["🇫🇷", "🇩🇪"]),                                       # two flags, not one
    ("❤\ufe0f ok", ["❤\ufe0f", " ", "o", "k"]),
    ("סֵפֶר", ["סֵ", "פֶ", "ר"]),
])
def test_clusters_keep_together_what_shaping_joins(text, expected):
    assert clusters(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Café déjà vu", [("Noto Sans", "Café déjà vu")]),
    ("Привет, Γειά", [("Noto Sans", "Привет, Γειά")]),
    ("你好，世界", [("Noto Sans CJK SC", "你好，世界")]),
    ("こんにちは 안녕", [("Noto Sans CJK SC", "こんにちは 안녕")]),
    ("مرحبا بالعالم 123", [("Noto Sans Arabic", "مرحبا بالعالم "), ("Noto Sans", "123")]),
    ("שלום עולם", [("Noto Sans Hebrew", "שלום עולם")]),
    ("नमस्ते दुनिया", [("Noto Sans Devanagari", "नमस्ते दुनिया")]),
    ("สวัสดีชาวโลก", [("Noto Sans Thai", "สวัสดีชาวโลก")]),
    ("Party 🎉🔥 time 👍🏽", [("Noto Sans", "Party "), ("Noto Emoji", "🎉🔥"), ("Noto Sans", " time "),
                             ("Noto Emoji", "👍🏽")]),
    # Asked as emoji with VS16, a keycap digit too; a plain digit stays text.
    ("1️⃣ 1 ❤️", [("Noto Emoji", "1\ufe0f\u20e3"), ("Noto Sans", " 1 "), ("Noto Emoji", "❤\ufe0f")]),
])
def test_each_script_gets_its_face(table, text, expected):
    assert families(table, text) == expected


def test_format_characters_need_no_glyph(table):
    # Bidi marks, joiners and the word joiner draw nothing: no face needs them.
    text = "\u200fשלום\u200e a\u2060b \u200dx\ufe0f"
    assert "".join(run.text for run in table.runs(text)) == text


@pytest.mark.parametrize(("text", "named"), [
    ("logo \uf8ff here", ["U+F8FF (a private-use code point"]),
    ("\U000f0000 and \ue000", ["U+F0000 (a private-use", "U+E000 (a private-use"]),
    ("Tibetan \u0f00 and Cherokee \u13a0", ["U+0F00 'ༀ' (TIBETAN SYLLABLE OM)", "U+13A0 'Ꭰ' (CHEROKEE LETTER A)"]),
    ("Klingon \U0001ff00", ["U+1FF00"]),
])
def test_characters_no_face_draws_are_named(table, text, named):
    with pytest.raises(UnsupportedCharactersError) as error:
        table.check(text)
    assert isinstance(error.value, InvalidJobError) and error.value.field == "text_input"
    message = str(error.value)
    for name in named:
        assert name in message
    assert message.count("U+") == len(named)


def test_every_line_of_a_caption_is_checked(table):
    table.check("one\ntwo")
    with pytest.raises(UnsupportedCharactersError, match=r"U\+E000"):
        table.check("fine\nnot \ue000 fine")


def test_the_table_knows_the_faces_in_their_order(table):
    assert [face.family for face in table.faces] == [
        "Noto Sans", "Noto Sans Hebrew", "Noto Sans Arabic", "Noto Sans Devanagari", "Noto Sans Thai",
        "Noto Sans CJK SC", "Noto Emoji"]
    assert table.primary.height == pytest.approx(1.362)
    # The reason each face gets its own ASS size: libass's "size" is ascent plus descent.
    arabic = table.faces[2]
    assert arabic.height / table.primary.height > 1.5


@cache
def _pillow(file: str, index: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(binaries.fonts_dir() / file), 100, index=index,
                              layout_engine=ImageFont.Layout.RAQM)


def _syllables(rng: random.Random, bases: str, marks: str, count: int) -> str:
    return "".join(rng.choice(bases) + (rng.choice(marks) if marks and rng.random() < 0.5 else "")
                   for _ in range(count))


_SCRIPTS = {
    "arabic": ("".join(chr(c) for c in range(0x621, 0x64B) if c != 0x640), "".join(chr(c) for c in range(0x64B, 0x653))),
    "devanagari": ("".join(chr(c) for c in range(0x915, 0x939)), "ािीुूेैोौ्ंँ"),
    "thai": ("".join(chr(c) for c in range(0xE01, 0xE2F)), "ัิีึืุู่้๊๋"),
    "hebrew": ("".join(chr(c) for c in range(0x5D0, 0x5EB)), "ְֱֲֳִֵֶַָֹּ"),
    "latin": ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"()-WMéàçñüßœÆ", "\u0301\u0308"),
    "cyrillic-greek": ("АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгджзийклмнопрстуфхцчшщъыьэюяΑΒΓΔΩαβγδεζηθλμξπσφψω", ""),
    "cjk": ("你好世界中文字幕测试这是一个很长的句子，。！？「」あいうアイウ가나다한국어", ""),
    "emoji": ("🎉🔥😀🥺🫠❤🙏🏳🇫🇷🇩🇪👨👩", ""),
}


@pytest.mark.parametrize("script", sorted(_SCRIPTS))
def test_width_estimates_never_fall_short_of_what_harfbuzz_shapes(table, script):
    """Pillow with raqm shapes with HarfBuzz as libass does: every run it measures must fit
    the estimate the wrapping relies on (contextual forms, conjuncts, marks included)."""
    bases, marks = _SCRIPTS[script]
    rng = random.Random(script)
    for _ in range(300):
        text = _syllables(rng, bases, marks, rng.randint(1, 14))
        for run in table.runs(text):
            if not run.text.strip() or unicodedata.category(run.text[0]) == "Mn":
                continue
            measured = _pillow(run.face.file, run.face.index).getlength(run.text) / 100
            rounding = len(run.text) / 64 / 100  # FreeType positions in 1/64 px
            assert measured <= run.face.width(run.text) + rounding, (run.face.family, run.text)
