"""processor.ranged_input on a real moto server: ranges as ffmpeg asks for them, and ffmpeg
seeking into an upload it reads only in part."""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest

from processor.binaries import tool
from processor.command import HTTP_PROTOCOLS, HttpInput, output_rate
from processor.engine import EncodeSettings, cut, cut_item
from processor.fanout import RANGED_CONTAINERS, item_cut, plan_items
from processor.errors import NotAVideoError
from processor.fanout_steps import probe_upload
from processor.probe import probe
from processor.ranged_input import RangedInput
from processor.storage import VideoStorage
from sandbox import backend
from sandbox.media import gray_frame, make_video, mean_abs_diff
from tests.test_fanout import segments_of

KEY = "uploads/user-1/clip.mp4"


@pytest.fixture
def served(backend_world, tmp_path):
    """A 1.4 MB upload, served in responses of at most 64 KB (8 MB in Lambda, for gigabytes)."""
    clip = make_video(tmp_path / "clip.mp4", duration=12.0)
    backend.upload_video(str(clip), KEY, backend_world.bucket)
    s3 = boto3.client("s3")
    with RangedInput(s3, backend_world.bucket, KEY, VideoStorage(backend_world.bucket, s3).size(KEY),
                     response_limit=64 * 1024) as upload:
        yield upload, clip


def fetch(url: str, method: str = "GET", **headers: str):
    return urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers), timeout=10)


def test_ranges_are_served_as_http_defines_them(served):
    upload, clip = served
    data = clip.read_bytes()
    assert upload.size == len(data)
    with fetch(upload.url, "HEAD") as head:
        assert (head.status, head.headers["Accept-Ranges"], int(head.headers["Content-Length"])) == (
            200, "bytes", len(data))
    with fetch(upload.url) as whole:
        assert whole.status == 200 and whole.read() == data
    with fetch(upload.url, Range="bytes=100-199") as part:
        assert part.status == 206 and part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
        assert part.read() == data[100:200]
    with fetch(upload.url, Range=f"bytes={len(data) - 10}-") as tail:
        assert tail.read() == data[-10:]
    # An open range ends at the response limit; the client asks again from there.
    with fetch(upload.url, Range="bytes=0-") as first:
        assert first.headers["Content-Range"] == f"bytes 0-{64 * 1024 - 1}/{len(data)}"
        assert first.read() == data[:64 * 1024]
    for bad, status in ((f"bytes={len(data)}-", 416), ("bytes=5-2", 416)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            fetch(upload.url, Range=bad)
        assert refused.value.code == status
    with pytest.raises(urllib.error.HTTPError) as missing:
        fetch(upload.url.replace("/input", "/other"))
    assert missing.value.code == 404


def test_ffmpeg_seeking_near_the_end_reads_only_part_of_the_upload(served, tmp_path: Path):
    upload, clip = served
    out = tmp_path / "tail.mp4"
    subprocess.run([tool("ffmpeg"), "-v", "error", "-protocol_whitelist", HTTP_PROTOCOLS, "-f", "mov",
                    "-ss", "10", "-i", upload.url, "-frames:v", "15", "-y", str(out)], check=True, timeout=60)
    assert probe(out).duration == pytest.approx(0.5, abs=0.04)
    # The index at the end, the last two seconds, and what the socket held when ffmpeg seeked.
    assert 0 < upload.bytes_served < upload.size * 0.6


def test_a_playlist_protocol_stays_refused(served, tmp_path: Path):
    """Only http and tcp: a file: URL (what a crafted playlist would point at) is not opened."""
    upload, _ = served
    result = subprocess.run([tool("ffmpeg"), "-v", "error", "-protocol_whitelist", HTTP_PROTOCOLS,
                             "-i", "file:/etc/hostname", "-f", "null", "-"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "not on whitelist" in result.stderr


def test_a_playlist_renamed_as_a_video_is_refused_by_the_probe_without_opening_its_urls(backend_world):
    """probe_upload passes the containers an item may read as ffprobe's format whitelist: the
    hls demuxer, which the bytes would select, is refused, and the URL the playlist names is
    never opened (here a listening socket that counts no connection)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        playlist = (f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nhttp://127.0.0.1:{port}/seg.ts\n"
                    "#EXT-X-ENDLIST\n")
        boto3.client("s3").put_object(Bucket=backend_world.bucket, Key=KEY, Body=playlist.encode())
        with pytest.raises(NotAVideoError):
            probe_upload(VideoStorage(backend_world.bucket), KEY)
        with pytest.raises(TimeoutError):
            listener.accept()


# A file of each container an item may read over HTTP, remuxed from the same encode.
EXTENSIONS = {"mov": "mp4", "avi": "avi"}


def test_every_container_an_item_reads_has_a_file_type_here():
    assert set(EXTENSIONS) == RANGED_CONTAINERS


@pytest.mark.parametrize("container", sorted(EXTENSIONS))
def test_items_read_over_http_equal_the_single_pass_in_each_container(backend_world, tmp_path, container):
    """Each container seeks differently (an index, cues, none): over the ranged input, items
    encoded apart give the single pass's segments, a frame's duration apart at most."""
    clip = make_video(tmp_path / "source.mp4", duration=6.0, fps=25)
    upload = tmp_path / f"clip.{EXTENSIONS[container]}"
    subprocess.run([tool("ffmpeg"), "-v", "error", "-i", str(clip), "-c", "copy", str(upload)], check=True, timeout=60)
    key = f"uploads/user-1/clip.{EXTENSIONS[container]}"
    backend.upload_video(str(upload), key, backend_world.bucket)
    storage = VideoStorage(backend_world.bucket)
    media = probe_upload(storage, key)
    assert media.container == container
    segments = segments_of([0.0, 1.5, 3.0, 4.5, media.duration], ["one", "two", None, "four"])
    single = cut(upload, segments, tmp_path / "single", EncodeSettings(), media=media)
    items = plan_items(segments, 2.5)
    assert len(items) == 2
    parts = []
    with RangedInput(storage.s3, storage.bucket, key, storage.size(key)) as served:
        for item in items:
            parts += cut_item(HttpInput(served.url, media.container), item_cut(segments, item, output_rate(media)),
                              tmp_path / f"item-{item.first}", EncodeSettings(), media=media)
    assert len(parts) == len(single) == 4
    for ours, theirs in zip(parts, single):
        assert abs(ours.duration - theirs.duration) <= 1 / 25 + 1e-6, (container, ours, theirs)
        width, _, pixels = gray_frame(ours.path, index=5)
        band = width * 60  # the captions' band at the top
        assert mean_abs_diff(pixels[:band], gray_frame(theirs.path, index=5)[2][:band]) < 3, container
