"""The backend's ``main.py`` with the change docs/router.md documents, assembled from the docs.

The code blocks marked ``<!-- backend main.py: NAME -->`` in docs/router.md are taken as they
are and put where a backend engineer puts them: the imports at the top, then the app and its
``router = APIRouter(prefix="/api")`` (the name that shadowed ``import router``), the startup
handler, the helper and both routes, and ``app.include_router(router)`` last, as in the
backend. What surrounds them has the backend's shape: its models, ``dynamodb_service``,
``settings``, the multipart completion and the duration probe (`tests.backend.stand_ins`).
"""

from __future__ import annotations

import re
import types
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "router.md"
BLOCKS = ("imports", "startup", "start_video_job", "/api/upload/complete", "/api/upload/complete-multipart")
_BLOCK = re.compile(r"<!-- backend main\.py: (?P<name>\S+) -->\n```python\n(?P<code>.*?)```", re.DOTALL)

# main.py's own imports that the documented blocks use, from the stand-ins of its modules.
_BACKEND_IMPORTS = """\
import traceback

import redis.asyncio as redis
from fastapi import APIRouter, FastAPI, HTTPException

from tests.backend import dynamodb_service
from tests.backend.dynamodb_service import iso_utc_now
from tests.backend.stand_ins import complete_multipart_upload as s3_complete_multipart_upload
from tests.backend.stand_ins import get_video_duration_from_s3, settings
from tests.router.backend_models import CompleteMultipartUploadRequest, CompleteUploadRequest, JobCreatedResponse
"""
_APP = """\
app = FastAPI(title="Easy Video Share API")
router = APIRouter(prefix="/api")
_redis_connection_pool = None
"""


def documented_blocks(text: str | None = None) -> dict[str, str]:
    """The marked blocks of docs/router.md by name; fails naming any that is missing or repeated."""
    found = [(match["name"], match["code"]) for match in _BLOCK.finditer(DOCS.read_text() if text is None else text)]
    names = [name for name, _ in found]
    if sorted(names) != sorted(BLOCKS):
        raise AssertionError(f"docs/router.md marks the blocks {names}, expected each of {list(BLOCKS)} once")
    return dict(found)


def main_source() -> str:
    blocks = documented_blocks()
    return "\n\n".join([_BACKEND_IMPORTS + blocks["imports"], _APP, blocks["startup"], blocks["start_video_job"],
                        blocks["/api/upload/complete"], blocks["/api/upload/complete-multipart"],
                        "app.include_router(router)\n"])


def build() -> types.ModuleType:
    """A fresh ``main`` module (its own FastAPI app) from the documented change."""
    module = types.ModuleType("main")
    exec(compile(main_source(), "main.py (assembled from docs/router.md)", "exec"), module.__dict__)  # noqa: S102
    return module
