"""Where ffmpeg, ffprobe and the caption fonts are.

One lookup order everywhere, so the tests and the local command run the binaries Lambda runs:
an explicit variable, then ``/opt`` (the layer, in Lambda), then the local layer build, then
PATH.
"""

from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path

from processor import fonts
from processor.errors import ToolNotFoundError
from processor.fonts import FontTable

LAYER_ROOT = Path("/opt")
LOCAL_LAYER = Path(__file__).resolve().parent.parent / "layers" / "ffmpeg" / "dist" / "layer"
FONT_TABLE = "caption-fonts.json"
_HINT = "build the layer with `python -m layers.ffmpeg.build` (or `make layer`)"


def _first_file(candidates: list[Path]) -> Path | None:
    return next((path for path in candidates if path.is_file()), None)


@cache
def tool(name: str) -> str:
    """Absolute path of ``ffmpeg`` or ``ffprobe``."""
    override = os.environ.get(f"{name.upper()}_BINARY")
    if override:
        if not Path(override).is_file():
            raise ToolNotFoundError(f"{name.upper()}_BINARY={override} does not exist")
        return override
    found = _first_file([LAYER_ROOT / "bin" / name, LOCAL_LAYER / "bin" / name])
    path = str(found) if found else shutil.which(name)
    if not path:
        raise ToolNotFoundError(f"{name} not found in /opt/bin, the local layer build or PATH; {_HINT}")
    return path


@cache
def fonts_dir() -> Path:
    """The caption fonts' folder, with their table (the Lambda runtime has no fonts at all, so
    the layer ships them): ``VIDEO_FONTS_DIR``, ``/opt/fonts``, the local layer build."""
    override = os.environ.get("VIDEO_FONTS_DIR")
    if override:
        if not (Path(override) / FONT_TABLE).is_file():
            raise ToolNotFoundError(f"VIDEO_FONTS_DIR={override} holds no {FONT_TABLE} (copy the layer's fonts/ folder)")
        return Path(override)
    found = _first_file([LAYER_ROOT / "fonts" / FONT_TABLE, LOCAL_LAYER / "fonts" / FONT_TABLE])
    if not found:
        raise ToolNotFoundError(f"caption fonts ({FONT_TABLE}) not found in /opt/fonts or the local layer build; {_HINT}")
    return found.parent


def font_table() -> FontTable:
    """What the shipped faces draw (see processor.fonts)."""
    return fonts.load(fonts_dir() / FONT_TABLE)
