"""processor.probe: the parsing rules on ffprobe-shaped data, then the real ffprobe on real files."""

from __future__ import annotations

import os
import subprocess
import threading
from fractions import Fraction
from pathlib import Path

import pytest

from processor import probe as probe_module
from processor.binaries import tool
from processor.errors import NotAVideoError
from processor.probe import keyframe_times, parse_probe, probe
from sandbox.media import make_audio_only, make_not_a_video, make_video
from tests.test_engine import children_named


def _data(**video: object) -> dict:
    stream = {"codec_type": "video", "codec_name": "h264", "pix_fmt": "yuv420p", "width": 1920,
              "height": 1080, "r_frame_rate": "30/1", "avg_frame_rate": "30/1", "duration": "10.0"}
    stream.update(video)
    return {"streams": [stream], "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "10.5"}}


@pytest.mark.parametrize(("counter_clockwise", "clockwise", "display"), [
    (90, 270, (1080, 1920)), (-90, 90, (1080, 1920)), (180, 180, (1920, 1080)),
    (-180, 180, (1920, 1080)), (0, 0, (1920, 1080)), (89.7, 270, (1080, 1920)),
])
def test_rotation_is_normalised_to_clockwise_quarter_turns(counter_clockwise, clockwise, display):
    info = parse_probe(_data(side_data_list=[{"rotation": counter_clockwise}]), "x.mp4")
    assert info.rotation == clockwise
    assert (info.display_width, info.display_height) == display
    assert (info.width, info.height) == (1920, 1080)


def test_video_stream_duration_wins_over_the_container():
    assert parse_probe(_data(), "x.mp4").duration == 10.0
    assert parse_probe(_data(duration=None), "x.mp4").duration == 10.5


@pytest.mark.parametrize(("r_rate", "avg_rate", "expected"), [
    ("30/1", "30/1", Fraction(30)),
    ("30000/1001", "30000/1001", Fraction(30000, 1001)),
    ("90000/1", "2997/100", Fraction(2997, 100)),  # a timestamp resolution, not a frame rate
    ("0/0", "25/1", Fraction(25)),
    ("0/0", "0/0", Fraction(30)),
    ("120/1", "30/1", Fraction(30)),    # variable rate on a fine timestamp grid
    ("120/1", "120/1", Fraction(120)),  # real high-speed video (the command caps it)
    ("24/1", "23/1", Fraction(24)),     # variable rate with dips: keep the nominal rate
])
def test_frame_rate_falls_back_from_implausible_values(r_rate, avg_rate, expected):
    assert parse_probe(_data(r_frame_rate=r_rate, avg_frame_rate=avg_rate), "x.mp4").fps == expected


def test_cover_art_is_not_a_video_stream():
    data = {"streams": [{"codec_type": "audio", "codec_name": "mp3"},
                        {"codec_type": "video", "codec_name": "mjpeg", "width": 500, "height": 500,
                         "disposition": {"attached_pic": 1}}],
            "format": {"format_name": "mp3", "duration": "180.0"}}
    with pytest.raises(NotAVideoError, match="no video stream"):
        parse_probe(data, "song.mp3")


@pytest.mark.parametrize("video", [{"width": 0}, {"duration": None, "width": 640}])
def test_video_without_size_or_duration_is_refused(video):
    data = _data(**video)
    data["format"].pop("duration")
    with pytest.raises(NotAVideoError, match="no decodable video"):
        parse_probe(data, "x.mp4")


def test_a_real_upload_is_described(tmp_path: Path):
    info = probe(make_video(tmp_path / "v.mp4", duration=2.0))
    assert info.duration == pytest.approx(2.0, abs=0.04)
    assert (info.width, info.height, info.rotation) == (320, 240, 0)
    assert (info.has_audio, info.audio_codec) == (True, "aac")
    assert (info.video_codec, info.pix_fmt, info.fps) == ("h264", "yuv420p", Fraction(30))


def test_rotation_metadata_swaps_the_display_size(tmp_path: Path):
    info = probe(make_video(tmp_path / "r.mp4", duration=1.0, rotation=90))
    assert (info.width, info.height) == (320, 240)
    assert info.rotation == 270
    assert (info.display_width, info.display_height) == (240, 320)


def test_no_audio_odd_size_and_variable_frame_rate(tmp_path: Path):
    info = probe(make_video(tmp_path / "o.mp4", duration=1.0, width=321, height=241, audio=False, vfr=True))
    assert (info.width, info.height) == (321, 241)
    assert (info.has_audio, info.audio_codec) == (False, None)
    assert info.fps == Fraction(30)  # r_frame_rate; the average is 24


@pytest.mark.parametrize(("make", "message"), [
    (make_not_a_video, "not a readable media file"),
    (make_audio_only, "no video stream"),
    (lambda path: path.write_bytes(b""), "not a readable media file"),
])
def test_non_videos_raise_not_a_video(tmp_path: Path, make, message):
    path = tmp_path / "upload.mp4"
    make(path)
    with pytest.raises(NotAVideoError, match=message):
        probe(path)


def test_a_still_image_is_not_a_video(tmp_path: Path):
    video = make_video(tmp_path / "v.mp4", duration=1.0, audio=False)
    image = tmp_path / "photo.png"
    subprocess.run([tool("ffmpeg"), "-v", "error", "-i", str(video), "-frames:v", "1", str(image)], check=True)
    with pytest.raises(NotAVideoError, match="still image"):
        probe(image)


def test_a_missing_file_is_not_mistaken_for_a_bad_upload(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "absent.mp4")


def test_keyframe_times_read_from_packets(tmp_path: Path):
    video = make_video(tmp_path / "k.mp4", duration=4.0)  # one keyframe a second
    assert keyframe_times(video) == pytest.approx([0.0, 1.0, 2.0, 3.0], abs=1e-6)


def test_metadata_that_is_not_utf8_still_probes(tmp_path: Path):
    """ffmpeg.probe decodes ffprobe's output as strict UTF-8; ffprobe replaces invalid bytes
    in tags (its string_validation), so a phone's odd metadata cannot break it."""
    video = make_video(tmp_path / "v.mp4", duration=1.0)
    tagged = tmp_path / "tagged.mp4"
    subprocess.run([os.fsencode(tool("ffmpeg")), b"-v", b"error", b"-i", os.fsencode(video), b"-c", b"copy",
                    b"-metadata", b"title=caf\xe9 \xff\xfe", os.fsencode(tagged)], check=True)
    assert probe(tagged).duration == pytest.approx(1.0, abs=0.04)


def test_a_stuck_ffprobe_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """ffprobe blocks opening a FIFO nobody writes to: the watchdog must kill it."""
    fifo = tmp_path / "stuck.mp4"
    os.mkfifo(fifo)
    monkeypatch.setattr(probe_module, "PROBE_TIMEOUT_SECONDS", 0.5)

    def unblock() -> None:  # without a working watchdog, fail after 30 s instead of hanging
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    safety = threading.Timer(30, unblock)
    safety.start()
    try:
        with pytest.raises(NotAVideoError, match="ffprobe was stopped after 0.5 s"):
            keyframe_times(fifo)
    finally:
        safety.cancel()
    assert children_named("ffprobe") == []
