"""Where ffmpeg, ffprobe and the drawtext font are.

One lookup order everywhere, so the tests and the local command run the binaries Lambda runs:
an explicit variable, then ``/opt`` (the layer, in Lambda), then the local layer build, then
PATH.
"""

from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path

from processor.errors import ToolNotFoundError

LAYER_ROOT = Path("/opt")
LOCAL_LAYER = Path(__file__).resolve().parent.parent / "layers" / "ffmpeg" / "dist" / "layer"
FONT_NAME = "Roboto-Regular.ttf"
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
def font() -> str:
    """The drawtext font file (the Lambda runtime has no fonts, so the layer ships one)."""
    override = os.environ.get("VIDEO_FONT_FILE")
    if override:
        if not Path(override).is_file():
            raise ToolNotFoundError(f"VIDEO_FONT_FILE={override} does not exist")
        return override
    found = _first_file([LAYER_ROOT / "fonts" / FONT_NAME, LOCAL_LAYER / "fonts" / FONT_NAME])
    if not found:
        raise ToolNotFoundError(f"font {FONT_NAME} not found in /opt/fonts or the local layer build; {_HINT}")
    return str(found)
