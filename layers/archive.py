"""Byte-for-byte reproducible zip archives for what Lambda unpacks (layers, function code).

Pulumi hashes an archive to decide whether code changed: a zip that embeds build-time
timestamps, file-system order or umask-dependent modes shows a spurious change on every
`pulumi up`. Entries are therefore sorted, stamped with one fixed date and given fixed modes.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Mapping

# The earliest date a zip header can hold; any constant would do.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 6


def _mode(path: Path) -> int:
    # Only the executable bit of the source survives; Lambda needs it on bin/ffmpeg.
    return 0o755 if os.access(path, os.X_OK) else 0o644


def write_reproducible_zip(entries: Mapping[str, Path], destination: Path) -> Path:
    """Write ``entries`` (archive name -> file on disk) to ``destination``, deterministically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    # A private partial file, renamed into place: concurrent builders never write one file.
    handle, name = tempfile.mkstemp(dir=destination.parent, prefix=destination.name + ".", suffix=".partial")
    os.close(handle)
    partial = Path(name)
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as archive:
        for name in sorted(entries):
            source = entries[name]
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode bits below are honoured on extraction.
            info.external_attr = (0o100000 | _mode(source)) << 16
            with source.open("rb") as src, archive.open(info, "w") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    partial.replace(destination)
    return destination


def tree_entries(root: Path, prefix: str = "") -> dict[str, Path]:
    """Every file below ``root`` keyed by its archive name (POSIX separators, ``prefix`` first)."""
    return {
        prefix + path.relative_to(root).as_posix(): path
        for path in root.rglob("*")
        if path.is_file()
    }
