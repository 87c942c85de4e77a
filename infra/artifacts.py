"""What the program needs to know about a built zip, and a lock for building one.

Lambda identifies code by the base64 SHA-256 of the zip (``CodeSha256``); ``source_code_hash``
takes that form, and the layer's S3 key carries the hex form, so a zip that did not change
yields the same key and is not uploaded or published again.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256: str
    source_code_hash: str

    @classmethod
    def of(cls, path: Path) -> "Artifact":
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return cls(path, digest.hexdigest(), base64.b64encode(digest.digest()).decode("ascii"))


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold ``lock_file`` exclusively: test workers and a `pulumi preview` may build the same zip at
    once, and two writers of one output file would interleave their bytes."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
