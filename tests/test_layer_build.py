"""The FFmpeg layer: what it holds, the pins that guard it, and the binaries the code finds."""

from __future__ import annotations

import dataclasses
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from layers.ffmpeg import build as layer_build
from processor import binaries
from processor.errors import ToolNotFoundError


@pytest.fixture(scope="module")
def layer_zip() -> Path:
    return layer_build.build()


def test_the_layer_holds_the_binaries_the_font_and_their_licences(layer_zip):
    with zipfile.ZipFile(layer_zip) as archive:
        entries = {info.filename: info for info in archive.infolist()}
    assert set(entries) == {"bin/ffmpeg", "bin/ffprobe", "fonts/Roboto-Regular.ttf", "fonts/LICENSE",
                            "licenses/ffmpeg/GPLv3.txt", "licenses/ffmpeg/readme.txt", "licenses/SOURCES.json"}
    for name, info in entries.items():
        mode = stat.S_IMODE(info.external_attr >> 16)
        assert mode == (0o755 if name.startswith("bin/") else 0o644), name
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
    # Uploaded through S3 (over 50 MB zipped is refused for a direct upload) and within 250 MB unzipped.
    assert sum(info.file_size for info in entries.values()) < 200 * 1024 * 1024


def test_the_shipped_ffmpeg_can_draw_text():
    filters = subprocess.run([binaries.tool("ffmpeg"), "-hide_banner", "-filters"], capture_output=True, text=True)
    assert " drawtext " in filters.stdout
    version = subprocess.run([binaries.tool("ffprobe"), "-version"], capture_output=True, text=True).stdout
    assert version.startswith("ffprobe version 6.0")


def test_a_source_that_does_not_match_its_pin_stops_the_build(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    tampered = cache / layer_build.FFMPEG.filename
    tampered.write_bytes(b"not the pinned wheel")
    with pytest.raises(layer_build.BuildError, match="does not match the pinned"):
        layer_build.build(dist=tmp_path / "dist", cache=cache, force=True)
    assert not tampered.exists(), "a file that failed its hash must not stay in the cache"
    assert not (tmp_path / "dist" / "ffmpeg-layer.zip").exists()


def test_an_unknown_pin_fails_with_the_registry_answer(tmp_path):
    missing = dataclasses.replace(layer_build.FONT, requirement="font-roboto==0.0.0-nonexistent",
                                  filename="font-roboto-0.0.0.tar.gz")
    with pytest.raises(layer_build.BuildError, match="could not download font-roboto==0.0.0"):
        layer_build.fetch(missing, cache=tmp_path)


@pytest.fixture
def fresh_lookup():
    binaries.tool.cache_clear()
    yield
    binaries.tool.cache_clear()


def test_lookup_order_variable_first_then_the_layer(fresh_lookup, monkeypatch, tmp_path):
    fake = tmp_path / "my-ffmpeg"
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("FFMPEG_BINARY", str(fake))
    assert binaries.tool("ffmpeg") == str(fake)
    binaries.tool.cache_clear()
    monkeypatch.setenv("FFMPEG_BINARY", str(tmp_path / "missing"))
    with pytest.raises(ToolNotFoundError, match="FFMPEG_BINARY"):
        binaries.tool("ffmpeg")
    binaries.tool.cache_clear()
    monkeypatch.delenv("FFMPEG_BINARY")
    expected = Path("/opt/bin/ffmpeg") if Path("/opt/bin/ffmpeg").is_file() else binaries.LOCAL_LAYER / "bin" / "ffmpeg"
    assert binaries.tool("ffmpeg") == str(expected)
