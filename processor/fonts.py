"""Which shipped face draws each part of a caption, how wide it is, and what no face can draw.

Pure, over the table the layer build wrote next to the fonts (``caption-fonts.json``, see
layers/ffmpeg/caption_fonts.py). The processor chooses the face itself and names it to libass
(``\\fn``) instead of leaving it to libass's fallback, for three reasons: a caption that no
shipped face can draw must fail before ffmpeg runs, naming its characters, never as boxes; the
line wrapping needs each part's width; and each face must get the ASS size that gives it the
same em as the others (libass sizes a face by its ascent plus descent, so at one size Arabic
would be a third smaller than Latin).

Characters are grouped into clusters that must share a face (a letter and its combining marks,
a Devanagari conjunct, an emoji with its modifiers and joiners, a flag's two indicators): an
approximation of Unicode's grapheme clusters that is enough to never split what shaping joins.
"""

from __future__ import annotations

import bisect
import json
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from processor.errors import InvalidJobError

ZWJ = "\u200d"
_VS16 = "\ufe0f"
_KEYCAP = "\u20e3"
_VIRAMA = 9  # canonical combining class of viramas: the next consonant forms a conjunct
_PRIVATE_USE = "Co"
# Emoji that are emoji by default (no VS16 needed) almost all live from U+1F000 on.
_EMOJI_PLANE = 0x1F000
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
_TAGS = range(0xE0020, 0xE0080)
_NEUTRAL = ("Z", "P")  # spaces and punctuation: drawn by the face around them


def _is_ignorable(char: str) -> bool:
    """Drawn as nothing by HarfBuzz whether or not the face has a glyph (format characters:
    joiners, bidi marks, word joiner; variation selectors; the combining grapheme joiner)."""
    code = ord(char)
    return (unicodedata.category(char) == "Cf" or 0xFE00 <= code <= 0xFE0F
            or 0xE0100 <= code <= 0xE01EF or code == 0x034F)


def _extends(previous: str, char: str) -> bool:
    """Whether ``char`` belongs to the cluster that ends with ``previous``."""
    code = ord(char)
    if unicodedata.category(char).startswith("M") or _is_ignorable(char):
        return True
    if code in _SKIN_TONES or code in _TAGS:
        return True
    if previous == ZWJ or unicodedata.combining(previous) == _VIRAMA:
        return unicodedata.category(char).startswith("L") or ord(char) >= _EMOJI_PLANE
    return False


def clusters(text: str) -> list[str]:
    """``text`` cut into the pieces that line wrapping may separate and that share one face."""
    pieces: list[str] = []
    for char in text:
        if pieces and _extends(pieces[-1][-1], char):
            pieces[-1] += char
        elif (pieces and ord(char) in _REGIONAL_INDICATORS and len(pieces[-1]) == 1
              and ord(pieces[-1]) in _REGIONAL_INDICATORS):
            pieces[-1] += char  # the second indicator of a flag
        else:
            pieces.append(char)
    return pieces


def _is_emoji(cluster: str) -> bool:
    """Asked for as an emoji: by VS16, a keycap, a skin tone, a joiner, or by living where
    the emoji do. (A heart or a digit alone stays text.)"""
    return (_VS16 in cluster or _KEYCAP in cluster or ZWJ in cluster
            or any(ord(char) in _SKIN_TONES for char in cluster) or ord(cluster[0]) >= _EMOJI_PLANE)


def _needed(cluster: str) -> str:
    return "".join(char for char in cluster if not _is_ignorable(char))


@dataclass(frozen=True, eq=False)
class Face:
    family: str
    file: str
    index: int
    ascent: float
    descent: float
    """Both in ems, as libass uses them (the Windows metrics)."""
    slack: float
    mark: float
    """Shaping allowance: a run is at most ``slack`` times its advances plus ``mark`` ems per
    combining mark wide (see layers/ffmpeg/caption_fonts.py)."""
    emoji: bool
    starts: tuple[int, ...] = field(repr=False)
    ends: tuple[int, ...] = field(repr=False)
    advances: tuple[int, ...] = field(repr=False)
    """Thousandths of an em, for the code points starts[i]..ends[i]. (Faces compare by
    identity: one table holds each face once.)"""

    @property
    def height(self) -> float:
        """What libass takes an ASS font size of 1 to mean, in ems of this face."""
        return self.ascent + self.descent

    def _range(self, char: str) -> int | None:
        code = ord(char)
        i = bisect.bisect_right(self.starts, code) - 1
        return i if i >= 0 and code <= self.ends[i] else None

    def covers(self, text: str) -> bool:
        return all(self._range(char) is not None for char in text)

    def width(self, text: str) -> float:
        """Upper bound of the width in ems once shaped (ignorable characters draw nothing)."""
        total, marks = 0, 0
        for char in _needed(text):
            i = self._range(char)
            total += self.advances[i] if i is not None else 1000
            marks += unicodedata.category(char).startswith("M")
        return total / 1000 * self.slack + marks * self.mark


@dataclass(frozen=True)
class Run:
    """Consecutive clusters one face draws."""

    face: Face
    text: str


class UnsupportedCharactersError(InvalidJobError):
    """A caption holds characters that no shipped font can draw: refused before any work, so
    that the video is never published with boxes in place of its text."""

    def __init__(self, text: str, characters: list[str]) -> None:
        names = ", ".join(_describe(char) for char in characters)
        shown = text if len(text) <= 40 else text[:39] + "\u2026"
        super().__init__("text_input", f"the caption {shown!r} has characters that no shipped font can draw: "
                                       f"{names}; remove or replace them")
        self.characters = characters


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if unicodedata.category(char) == _PRIVATE_USE:
        return f"{code} (a private-use code point: its look depends on the sender's device)"
    name = unicodedata.name(char, "")
    return f"{code} {char!r}" + (f" ({name})" if name else " (not in Unicode yet)")


class FontTable:
    """The shipped faces in the order they are asked for a character."""

    def __init__(self, faces: list[Face]) -> None:
        if not faces:
            raise ValueError("a font table needs at least one face")
        self.faces = tuple(faces)
        self.primary = faces[0]
        self._emoji_first = tuple(sorted(faces, key=lambda face: not face.emoji))

    @classmethod
    def from_json(cls, data: dict) -> FontTable:
        faces = []
        for entry in data["faces"]:
            ranges = entry["advances"]
            faces.append(Face(
                family=entry["family"], file=entry["file"], index=entry["index"],
                ascent=entry["ascent"], descent=entry["descent"], slack=entry["slack"],
                mark=entry["mark"], emoji=entry["emoji"], starts=tuple(r[0] for r in ranges), ends=tuple(r[1] for r in ranges),
                advances=tuple(r[2] for r in ranges)))
        return cls(faces)

    def _face_for(self, cluster: str, previous: Face | None) -> Face | None:
        needed = _needed(cluster)
        if not needed:
            return previous or self.primary
        if any(unicodedata.category(char) == _PRIVATE_USE for char in needed):
            return None
        if (previous is not None and not previous.emoji and previous.covers(needed)
                and unicodedata.category(needed[0])[0] in _NEUTRAL):
            return previous
        order = self._emoji_first if _is_emoji(cluster) else self.faces
        return (next((face for face in order if face.covers(needed)), None)
                or next((face for face in order if face.covers(needed[0])), None))

    def runs(self, text: str) -> list[Run]:
        """``text`` (one line, no control characters) split by the face that draws it."""
        runs: list[Run] = []
        missing: list[str] = []
        for cluster in clusters(text):
            face = self._face_for(cluster, runs[-1].face if runs else None)
            if face is None:
                missing += [char for char in _needed(cluster) if char not in missing and (
                    unicodedata.category(char) == _PRIVATE_USE or not any(f.covers(char) for f in self.faces))]
                continue
            if runs and runs[-1].face == face:
                runs[-1] = Run(face, runs[-1].text + cluster)
            else:
                runs.append(Run(face, cluster))
        if missing:
            raise UnsupportedCharactersError(text, missing)
        return runs

    def check(self, text: str) -> None:
        """Raise UnsupportedCharactersError if some character of ``text`` cannot be drawn."""
        for line in text.splitlines():
            self.runs(line)

    def can_draw(self, text: str) -> bool:
        try:
            self.check(text)
        except UnsupportedCharactersError:
            return False
        return True


def load(path: Path) -> FontTable:
    """The table the layer build wrote (``fonts/caption-fonts.json``)."""
    return _load(Path(path).resolve())


@cache
def _load(path: Path) -> FontTable:
    return FontTable.from_json(json.loads(path.read_text(encoding="utf-8")))
