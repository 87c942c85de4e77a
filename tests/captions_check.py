"""Reading captions back from drawn frames: the text's pixels, OCR, and a tofu comparison.

A caption is checked on the frame ffmpeg drew, never on the command: its white fill is cut
out of the frame (by difference with the same frame drawn without captions, then brightness),
read back with tesseract, and compared with the same caption drawn outside ffmpeg by Pillow
(FreeType, HarfBuzz and FriBidi through raqm) with the same faces, and with that caption drawn
as tofu (every character replaced by one the face lacks, which draws its .notdef box). A frame
that looks more like the tofu than like the caption has boxes where its text should be.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from functools import cache
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, features

from processor import binaries
from processor.fonts import Face
from processor.overlay import Line, Wrapper, is_right_to_left, style_for
from processor.subtitles import WORD_JOINER
from sandbox.media import streams

FILL = 200  # the captions' white fill; under the half-black box nothing else is this bright
_BOX_DIFFERENCE = 24
_TOFU = ("\ue000", "\U0010fffd")
_COMPARE_HEIGHT = 48


def frames(path: Path) -> list[Image.Image]:
    """Every frame of a video, as 8-bit gray images."""
    info = next(s for s in streams(path)["streams"] if s["codec_type"] == "video")
    width, height = info["width"], info["height"]
    raw = subprocess.run([binaries.tool("ffmpeg"), "-v", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    size = width * height
    return [Image.frombytes("L", (width, height), raw[i:i + size]) for i in range(0, len(raw), size)]


def caption_area(drawn: Image.Image, clean: Image.Image) -> tuple[int, int, int, int] | None:
    """Where ``drawn`` differs from the same frame without captions: the box and its text."""
    difference = ImageChops.difference(drawn, clean).point(lambda v: 255 if v > _BOX_DIFFERENCE else 0)
    return difference.getbbox()


def text_mask(drawn: Image.Image, clean: Image.Image) -> Image.Image | None:
    """The caption's white fill, cropped to it (white on black), or None when nothing is drawn."""
    area = caption_area(drawn, clean)
    if area is None:
        return None
    fill = drawn.crop(area).point(lambda v: 255 if v > FILL else 0)
    ink = fill.getbbox()
    return fill.crop(ink) if ink else None


@cache
def _font(face: Face, em: int) -> ImageFont.FreeTypeFont:
    path = binaries.fonts_dir() / face.file
    return ImageFont.truetype(str(path), em, index=face.index, layout_engine=ImageFont.Layout.RAQM)


def _draw_line(line: Line, em: int, tofu: bool) -> Image.Image:
    """One line drawn run by run on one baseline, in visual order: a right-to-left line lays
    its runs out from the right (each run has one direction, which raqm orders inside).

    As tofu, the runs of every face but the main one become .notdef boxes: the caption as a
    layer with the main font alone (Roboto alone, before) draws it; a caption in the main face
    alone becomes boxes entirely."""
    runs = list(reversed(line.runs)) if is_right_to_left(line.text) else list(line.runs)
    primary = binaries.font_table().primary
    only_primary = all(run.face is primary for run in line.runs)
    baseline = 2 * em
    canvas = Image.new("L", (sum(round(_font(run.face, em).getlength(run.text)) for run in runs) + 4 * em, 4 * em), 0)
    x = em
    for run in runs:
        text = run.text.replace(WORD_JOINER, "")
        if tofu and (only_primary or run.face is not primary):
            box = next(char for char in _TOFU if not run.face.covers(char))
            text = "".join(char if char.isspace() else box for char in text)
        font = _font(run.face, em)
        layer = Image.new("L", canvas.size, 0)
        ImageDraw.Draw(layer).text((x, baseline), text, font=font, fill=255, anchor="ls")
        canvas = ImageChops.lighter(canvas, layer)
        x += round(font.getlength(text))
    return canvas


def reference_mask(text: str, width: int, height: int, *, tofu: bool = False) -> Image.Image:
    """``text`` wrapped and drawn as the processor does for a width x height frame, by Pillow:
    lines stacked by the height libass gives them."""
    if not features.check("raqm"):
        raise AssertionError("Pillow was built without raqm: it cannot shape the reference captions")
    style = style_for(width, height)
    wrapper = Wrapper(binaries.font_table(), style)
    lines = wrapper.lines(text)
    images = [_draw_line(line, style.em, tofu) for line in lines]
    canvas = Image.new("L", (max(image.width for image in images), round(sum(map(wrapper.height, lines))) + 4 * style.em), 0)
    top = 0.0
    for line, image in zip(lines, images):
        ascent = style.em * max(run.face.ascent for run in line.runs) if line.runs else 0
        canvas.paste(ImageChops.lighter(canvas.crop((0, round(top), image.width, round(top) + image.height)), image.crop(
            (0, round(2 * style.em - ascent), image.width, round(2 * style.em - ascent) + image.height))), (0, round(top)))
        top += wrapper.height(line)
    return canvas.crop(canvas.getbbox())


def similarity(drawn: Image.Image, reference: Image.Image) -> float:
    """Pearson correlation of the two masks, both scaled to one height and blurred a little,
    so that two rasterisers of the same glyphs agree and boxes do not look like letters."""
    def normalise(mask: Image.Image, size: tuple[int, int]) -> list[int]:
        return list(mask.resize(size, Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(1)).get_flattened_data())
    height = _COMPARE_HEIGHT * max(1, round(reference.height / reference.width * 8)) if reference.width else 1
    size = (max(1, round(reference.width * height / reference.height)), height)
    a, b = normalise(drawn, size), normalise(reference, size)
    n = len(a)
    mean_a, mean_b = sum(a) / n, sum(b) / n
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b))
    var_a = sum((x - mean_a) ** 2 for x in a)
    var_b = sum((y - mean_b) ** 2 for y in b)
    return cov / (var_a * var_b) ** 0.5 if var_a and var_b else 0.0


def ocr(mask: Image.Image, language: str) -> str:
    """tesseract's reading of a caption mask (dark text on white, padded, doubled)."""
    if not shutil.which("tesseract"):
        raise AssertionError("tesseract is not installed (scripts/bootstrap.sh installs it from Debian)")
    page = Image.new("L", (mask.width + 40, mask.height + 40), 255)
    page.paste(ImageChops.invert(mask), (20, 20))
    page = page.resize((page.width * 2, page.height * 2), Image.Resampling.LANCZOS)
    result = subprocess.run(["tesseract", "stdin", "stdout", "-l", language, "--psm", "6"],
                            input=_png(page), capture_output=True)
    if result.returncode != 0:
        raise AssertionError(f"tesseract -l {language} failed (is tesseract-ocr-{language.replace('_', '-')} "
                             f"installed?): {result.stderr.decode(errors='replace')[-300:]}")
    return " ".join(result.stdout.decode().split())


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
