"""The caption font table the layer ships as ``fonts/caption-fonts.json``, read from the fonts at build time.

The processor decides, before ffmpeg runs, which face draws every character of a caption (so a
caption no face can draw fails with a message naming its characters, never as boxes), how wide
a line is (to wrap it) and at which ASS size each face matches the others (libass sizes a face
by its Windows ascent plus descent, which differs per face: at one ASS size Arabic would come out
a third smaller than Latin). Reading fonts needs fontTools, which the Lambda function does not
carry, so the build writes down those facts once and the processor only reads JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTCollection, TTFont

# Bump when the table's shape or meaning changes: the layer build then counts as stale.
FORMAT = 2


@dataclass(frozen=True)
class Face:
    file: str
    family: str
    """The family name libass matches (``\\fn``); for a collection, which face of it."""
    slack: float = 1.0
    """How much wider than the sum of its characters' advances shaping may make a run (Arabic
    contextual forms are not the nominal glyphs)..."""
    mark: float = 0.0
    """...plus this many ems per combining mark (a Devanagari vowel sign with ra is a wider
    ligature, an accent on a letter without a precomposed form takes room). Both measured with
    HarfBuzz on the shipped fonts; tests/test_fonts.py checks the estimate never falls short."""
    emoji: bool = False


# The order in which faces are asked for a character: Noto Sans first, so Latin, Greek,
# Cyrillic, digits and punctuation look the same in every caption; then the scripts Noto Sans
# lacks; Simplified Chinese glyph forms for Han characters (the collection's other faces
# differ only in regional forms); the emoji last, except for characters asked as emoji.
FACES = (
    Face("NotoSans-Regular.ttf", "Noto Sans", mark=0.05),
    Face("NotoSansHebrew-Regular.ttf", "Noto Sans Hebrew", mark=0.02),
    Face("NotoSansArabic-Regular.ttf", "Noto Sans Arabic", slack=1.4),
    Face("NotoSansDevanagari-Regular.ttf", "Noto Sans Devanagari", mark=0.4),
    Face("NotoSansThai-Regular.ttf", "Noto Sans Thai"),
    Face("NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    Face("NotoEmoji-Regular.ttf", "Noto Emoji", emoji=True),
)


def _open(path: Path, family: str) -> tuple[TTFont, int]:
    fonts = TTCollection(str(path)).fonts if path.suffix == ".ttc" else [TTFont(str(path))]
    for index, font in enumerate(fonts):
        if font["name"].getDebugName(1) == family:
            return font, index
    raise ValueError(f"{path.name} has no face named {family!r}")


def _advance_ranges(font: TTFont) -> list[list[int]]:
    """[first, last, advance] for runs of consecutive code points with one advance, in
    thousandths of an em rounded up (an upper bound, whatever the face's units per em)."""
    units = font["head"].unitsPerEm
    metrics = font["hmtx"].metrics
    ranges: list[list[int]] = []
    for code, glyph in sorted(font.getBestCmap().items()):
        advance = math.ceil(metrics[glyph][0] * 1000 / units)
        if ranges and ranges[-1][1] == code - 1 and ranges[-1][2] == advance:
            ranges[-1][1] = code
        else:
            ranges.append([code, code, advance])
    return ranges


def describe(fonts_dir: Path) -> dict[str, Any]:
    """The table for the faces of ``FACES`` found in ``fonts_dir``, in their order."""
    faces = []
    for face in FACES:
        font, index = _open(fonts_dir / face.file, face.family)
        os2, units = font["OS/2"], font["head"].unitsPerEm
        faces.append({
            "file": face.file,
            "index": index,
            "family": face.family,
            # In ems. libass sizes a face so that these two add up to the ASS font size, and
            # stacks lines by them.
            "ascent": round(os2.usWinAscent / units, 6),
            "descent": round(os2.usWinDescent / units, 6),
            "slack": face.slack,
            "mark": face.mark,
            "emoji": face.emoji,
            "advances": _advance_ranges(font),
        })
    return {"format": FORMAT, "faces": faces}
