"""How burned-in text looks: size, safe margin, wrapping, and the exact bytes of drawtext's text file.

Pure. drawtext neither wraps nor clips to the frame, so wrapping happens here, with the
advance widths of the shipped font (Roboto) rather than a guess per character: an all-caps
caption must not run off the right edge. The style matches the running backend's: white
text, black outline, translucent black box, top-left.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

MIN_FONT_SIZE = 20
MAX_FONT_SIZE = 72
FONT_DIVISOR = 15  # font size is about 1/15 of the frame's shorter side
SAFE_MARGIN = 0.05  # of the shorter side, on every edge: the broadcast "title safe" area
ELLIPSIS = "\u2026"

# Roboto Regular advance widths in em for printable ASCII (space to tilde), rounded up to
# 1/100 em so that the estimate never falls short of what FreeType draws.
_ASCII_WIDTHS = (
    0.25, 0.26, 0.33, 0.62, 0.57, 0.74, 0.63, 0.18, 0.35, 0.35, 0.44, 0.57, 0.2, 0.28, 0.27,
    0.42, 0.57, 0.57, 0.57, 0.57, 0.57, 0.57, 0.57, 0.57, 0.57, 0.57, 0.25, 0.22, 0.51, 0.55,
    0.53, 0.48, 0.9, 0.66, 0.63, 0.66, 0.66, 0.57, 0.56, 0.69, 0.72, 0.28, 0.56, 0.63, 0.54,
    0.88, 0.72, 0.69, 0.64, 0.69, 0.62, 0.6, 0.6, 0.65, 0.64, 0.89, 0.63, 0.61, 0.6, 0.27,
    0.42, 0.27, 0.42, 0.46, 0.31, 0.55, 0.57, 0.53, 0.57, 0.54, 0.35, 0.57, 0.56, 0.25, 0.24,
    0.51, 0.25, 0.88, 0.56, 0.58, 0.57, 0.57, 0.34, 0.52, 0.33, 0.56, 0.49, 0.76, 0.5, 0.48,
    0.5, 0.34, 0.25, 0.34, 0.69,
)
# Anything else (CJK, symbols, glyphs the font lacks) counts as one full em: no Roboto glyph
# is wider, so the estimate stays an upper bound.
_WIDE = 1.0
# Hinting snaps each advance to whole pixels, which can add up to a pixel per character.
_HINTING_SLACK_PX = 1.0
# Roboto's ascent plus descent is 1.17 em; drawtext stacks lines by that plus line_spacing.
_LINE_HEIGHT_EM = 1.2


@dataclass(frozen=True)
class TextStyle:
    """Pixel geometry of the caption for one frame size (the displayed, upright size)."""

    font_size: int
    margin: int
    box_padding: int
    border: int
    line_spacing: int
    max_line_width: int
    max_lines: int

    @property
    def x(self) -> int:
        """Where drawtext puts the text, so that the box (text plus padding) starts at the margin."""
        return self.margin + self.box_padding


def font_size(width: int, height: int) -> int:
    return max(MIN_FONT_SIZE, min(MAX_FONT_SIZE, round(min(width, height) / FONT_DIVISOR)))


def style_for(width: int, height: int) -> TextStyle:
    size = font_size(width, height)
    margin = round(min(width, height) * SAFE_MARGIN)
    padding = max(2, size // 4)
    border = max(1, size // 12)
    spacing = max(2, size // 5)
    inner_width = width - 2 * margin - 2 * padding - 2 * border
    inner_height = height - 2 * margin - 2 * padding
    line_advance = size * _LINE_HEIGHT_EM + spacing
    return TextStyle(
        font_size=size,
        margin=margin,
        box_padding=padding,
        border=border,
        line_spacing=spacing,
        max_line_width=max(size, inner_width),
        max_lines=max(1, int((inner_height + spacing) // line_advance)),
    )


def _char_width(char: str, size: int) -> float:
    """Accented Latin letters take their base letter's width (é as e)."""
    if unicodedata.combining(char):
        return 0.0
    code = ord(unicodedata.normalize("NFD", char)[0])
    em = _ASCII_WIDTHS[code - 32] if 32 <= code < 127 else _WIDE
    return em * size + _HINTING_SLACK_PX


def text_width(text: str, size: int) -> float:
    """Upper bound of the rendered width in pixels (outline excluded)."""
    return sum(_char_width(char, size) for char in text)


def _clean(text: str) -> str:
    """One kind of line break; other control characters (tabs, NUL, escapes) become spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(char if char == "\n" or unicodedata.category(char) not in ("Cc", "Cs")
                   else " " for char in text)


def _break_word(word: str, limit: float, size: int) -> list[str]:
    pieces, current = [], ""
    for char in word:
        if current and text_width(current + char, size) > limit:
            pieces.append(current)
            current = ""
        current += char
    return pieces + [current]


def _wrap_paragraph(paragraph: str, limit: float, size: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in paragraph.split(" "):
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, size) <= limit:
            current = candidate
            continue
        if current:
            lines.append(current)
        pieces = _break_word(word, limit, size)
        lines.extend(pieces[:-1])
        current = pieces[-1]
    return lines + [current]


def wrap(text: str, style: TextStyle) -> list[str]:
    """Lines that fit the frame's width; the user's own line breaks are kept, blank lines at
    either end (drawn as empty rows inside the box) are not."""
    lines = [line for paragraph in _clean(text).strip().split("\n")
             for line in _wrap_paragraph(paragraph, style.max_line_width, style.font_size)]
    if len(lines) <= style.max_lines:
        return lines
    kept = lines[:style.max_lines]
    last = kept[-1].rstrip()
    while last and text_width(last + ELLIPSIS, style.font_size) > style.max_line_width:
        last = last[:-1].rstrip()
    kept[-1] = last + ELLIPSIS
    return kept


def textfile_content(text: str, width: int, height: int) -> str:
    """What drawtext reads through ``textfile=``: the caption wrapped for a width x height frame."""
    return "\n".join(wrap(text, style_for(width, height)))
