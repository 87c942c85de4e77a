"""How a caption looks on a frame: size, safe area, box, and its lines.

Pure. The style matches the running backend's (white text, black outline, translucent black
box, top left) and scales with the picture: the em is a fifteenth of the frame's shorter side,
so a 4K frame gets the proportions of a 1080p one. Portrait short-form video (TikTok, Reels,
Shorts) is covered by the apps' own interface at the top, the bottom and the right: there the
caption stays inside the area they leave free.

Lines are wrapped here, not by libass: libass breaks lines only at spaces, so Chinese or
Japanese (no spaces) would run off the frame. Breaks go at spaces, between Chinese and Japanese
characters (not before closing punctuation nor after opening punctuation), and inside a word
only when the word alone is wider than the line. Widths come from the shipped faces' advances
(see processor.fonts), an upper bound, so a line never overflows.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from processor.fonts import FontTable, Run, clusters

MIN_FONT_SIZE = 20
FONT_DIVISOR = 15  # the em is about 1/15 of the frame's shorter side
SAFE_MARGIN = 0.05  # of the shorter side, on every edge: the broadcast "title safe" area
ELLIPSIS = "\u2026"
# Portrait frames at least this tall for their width are short-form video, shown full screen
# under the app's interface (9:16 is 1.78).
SHORT_FORM_RATIO = 1.6
# What TikTok, Reels and Shorts cover with their interface on a 9:16 frame, the largest of the
# three on each edge: the tabs and status bar at the top, the action column on the right, the
# account name, description and music at the bottom. Fractions of the width (left, right) and
# of the height (top, bottom).
SHORT_FORM_LEFT, SHORT_FORM_RIGHT = 0.06, 0.16
SHORT_FORM_TOP, SHORT_FORM_BOTTOM = 0.14, 0.30

# Chinese and Japanese lines may break between any two of these.
_BREAK_ANYWHERE = ((0x2E80, 0x2FDF), (0x3040, 0x30FF), (0x3100, 0x312F), (0x31A0, 0x31FF),
                   (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF),
                   (0x3000, 0x303F), (0x20000, 0x3FFFF))
# Kinsoku: never at the start of a line, never at the end of one.
_NO_LINE_START = set("、。，．,.!?！？：；:;）)」』】〕〉》］｝〙〗”’・ーぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々…‥")
_NO_LINE_END = set("（(「『【〔〈《［｛〘〖“‘")


@dataclass(frozen=True)
class CaptionStyle:
    """Pixel geometry of the caption for one frame size (the displayed, upright size)."""

    width: int
    height: int
    em: int
    """Font size in pixels per em, the same for every face."""
    left: int
    top: int
    right: int
    bottom: int
    """The safe area: how far from each edge the caption box must stay."""
    padding: int
    """Box around the text."""
    border: int
    """Black outline of each glyph."""

    @property
    def max_line_width(self) -> float:
        return self.width - self.left - self.right - 2 * (self.padding + self.border)

    @property
    def max_text_height(self) -> float:
        return self.height - self.top - self.bottom - 2 * (self.padding + self.border)


def font_size(width: int, height: int) -> int:
    return max(MIN_FONT_SIZE, round(min(width, height) / FONT_DIVISOR))


def is_short_form(width: int, height: int) -> bool:
    return height >= SHORT_FORM_RATIO * width


def style_for(width: int, height: int) -> CaptionStyle:
    em = font_size(width, height)
    if is_short_form(width, height):
        left, right = round(width * SHORT_FORM_LEFT), round(width * SHORT_FORM_RIGHT)
        top, bottom = round(height * SHORT_FORM_TOP), round(height * SHORT_FORM_BOTTOM)
    else:
        left = right = top = bottom = round(min(width, height) * SAFE_MARGIN)
    return CaptionStyle(width=width, height=height, em=em, left=left, top=top, right=right, bottom=bottom,
                        padding=max(2, em // 4), border=max(1, em // 12))


def clean(text: str) -> str:
    """One kind of line break; other control characters (tabs, NUL, escapes) become spaces;
    blank lines at either end (drawn as empty rows inside the box) go."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    return "".join(char if char == "\n" or unicodedata.category(char) not in ("Cc", "Cs")
                   else " " for char in text).strip()


def is_right_to_left(text: str) -> bool:
    """The caption's base direction, as libass's automatic one decides it: the first strong
    character (Unicode bidi rules P2 and P3)."""
    for char in text:
        direction = unicodedata.bidirectional(char)
        if direction in ("R", "AL"):
            return True
        if direction == "L":
            return False
    return False


def _breaks_anywhere(cluster: str) -> bool:
    code = ord(cluster[0])
    return any(low <= code <= high for low, high in _BREAK_ANYWHERE)


def _can_break_between(before: str, after: str) -> bool:
    """A line break between two clusters, neither of them a space."""
    if after[0] in _NO_LINE_START or before[-1] in _NO_LINE_END:
        return False
    return _breaks_anywhere(before) or _breaks_anywhere(after)


@dataclass(frozen=True)
class Line:
    runs: tuple[Run, ...]

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)


class Wrapper:
    """Wraps captions for one frame size with one font table."""

    def __init__(self, table: FontTable, style: CaptionStyle) -> None:
        self.table = table
        self.style = style

    def width(self, text: str) -> float:
        """Upper bound of ``text``'s drawn width in pixels (outline excluded)."""
        return sum(run.face.width(run.text) for run in self.table.runs(text)) * self.style.em

    def height(self, line: Line) -> float:
        """Pixels libass gives a line: the tallest ascent plus the deepest descent among its
        faces (an empty line gets the main face's)."""
        faces = [run.face for run in line.runs] or [self.table.primary]
        return self.style.em * (max(face.ascent for face in faces) + max(face.descent for face in faces))

    def _cut(self, text: str) -> tuple[str, str]:
        """The longest head of ``text``, whole clusters, that fits the line (at least one)."""
        pieces = clusters(text)
        count = 1
        while count < len(pieces) and self.width("".join(pieces[:count + 1])) <= self.style.max_line_width:
            count += 1
        return "".join(pieces[:count]), "".join(pieces[count:])

    def _paragraph(self, paragraph: str) -> list[str]:
        """Greedy: each line takes as many pieces as fit. A piece is a word with the spaces
        after it, or a Chinese or Japanese character; a piece wider than a line is cut."""
        limit = self.style.max_line_width
        pieces: list[str] = []
        previous = ""
        for cluster in clusters(paragraph):
            if pieces and (cluster.isspace() or not previous.isspace() and not _can_break_between(previous, cluster)):
                pieces[-1] += cluster
            else:
                pieces.append(cluster)
            previous = cluster
        lines: list[str] = []
        current = ""
        for piece in pieces:
            if current and self.width((current + piece).rstrip()) > limit:
                lines.append(current.rstrip())
                current = ""
            current += piece
            while self.width(current.rstrip()) > limit:
                head, current = self._cut(current.rstrip())
                lines.append(head)
        return lines + [current.rstrip()]

    def lines(self, text: str) -> list[Line]:
        """The caption's lines, within the safe area's width and height; the user's own line
        breaks are kept, and text beyond the last line that fits ends in an ellipsis."""
        texts = [line for paragraph in clean(text).split("\n") for line in self._paragraph(paragraph.strip())]
        lines = [Line(tuple(self.table.runs(line))) for line in texts]
        kept: list[Line] = []
        used = 0.0
        for line in lines:
            if kept and used + self.height(line) > self.style.max_text_height:
                break
            kept.append(line)
            used += self.height(line)
        if len(kept) < len(lines):
            last = kept[-1].text.rstrip()
            while last and self.width(last + ELLIPSIS) > self.style.max_line_width:
                last = "".join(clusters(last)[:-1]).rstrip()
            kept[-1] = Line(tuple(self.table.runs(last + ELLIPSIS)))
        return kept
