"""processor.engine.cut with the real pinned ffmpeg on generated phone-shaped videos."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from processor import binaries, command
from processor.binaries import tool
from processor.contract import FixedCut, RandomCut
from processor.engine import EncodeSettings, SegmentFile, cut
from processor.errors import (DeadlineExceededError, FFmpegError, FFmpegKilledError, InvalidInputError,
                              InvalidJobError, NotAVideoError, TransientError)
from processor.plan import Segment, plan_boundaries
from processor.probe import probe
from processor.transcode import progress_fraction
from tests.processes import kill_first_ffmpeg
from sandbox.media import (gray_frame, make_audio_only, make_not_a_video, make_truncated, make_video,
                           mean_abs_diff,
                           streams)

FRAME = 1 / 30


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    """Never skip without the layer: ToolNotFoundError fails every test, saying how to build it."""
    tool("ffmpeg"), tool("ffprobe"), binaries.font_table()


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def clip(media_dir: Path) -> Path:
    """4 s, 320x240, 30 fps, AAC, a keyframe every second."""
    return make_video(media_dir / "clip.mp4")


@pytest.fixture(scope="module")
def long_clip(media_dir: Path) -> Path:
    """Long enough for ffmpeg to run about a second: progress and deadline need a running ffmpeg."""
    return make_video(media_dir / "long.mp4", duration=12.0, width=640, height=360)


def segments_of(bounds: list[float], texts: list[str | None] | None = None) -> list[Segment]:
    texts = texts or [None] * (len(bounds) - 1)
    return [Segment(i, a, b, texts[i]) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def video(path: Path) -> dict:
    return next(s for s in streams(path)["streams"] if s["codec_type"] == "video")


def has_audio(path: Path) -> bool:
    return any(s["codec_type"] == "audio" for s in streams(path)["streams"])


def top_level_boxes(path: Path) -> list[str]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset:offset + 4], "big")
        boxes.append(data[offset + 4:offset + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[offset + 8:offset + 16], "big")
        offset += size if size else len(data)
    return boxes


def children_named(name: str) -> list[int]:
    """Processes called ``name`` whose parent is this test process, zombies included."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if command == name and int(fields[1]) == os.getpid():
            found.append(int(entry.name))
    return found


def assert_matches_plan(files: list[SegmentFile], segments: list[Segment], out_dir: Path) -> None:
    assert [f.index for f in files] == list(range(len(segments)))
    assert [f.path for f in files] == [out_dir / f"segment_{i:03d}.mp4" for i in range(len(segments))]
    assert sorted(out_dir.glob("segment_*.mp4")) == [f.path for f in files]
    for file, segment in zip(files, segments):
        assert (file.start, file.end, file.text) == (segment.start, segment.end, segment.text)
        stream = video(file.path)
        assert float(stream["duration"]) == pytest.approx(segment.duration, abs=FRAME + 1e-3), file
        assert file.duration == pytest.approx(float(stream["duration"]), abs=1e-6)
        assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
        assert stream["width"] % 2 == 0 and stream["height"] % 2 == 0
        assert "side_data_list" not in stream, "a rotation matrix would turn the upright picture again"
        boxes = top_level_boxes(file.path)
        assert boxes.index("moov") < boxes.index("mdat"), "no faststart"


@pytest.mark.parametrize("fps", [30, 24])
def test_veryfast_b_frames_cut_exactly_at_every_planned_point(tmp_path: Path, fps: int):
    """The team's trap: with B-frames, a cut at exactly 1.0 s was skipped and segment 0 doubled."""
    source = make_video(tmp_path / "in.mp4", duration=4.0, fps=fps)
    segments = segments_of([0.0, 1.0, 2.0, 3.0, 4.0])
    files = cut(source, segments, tmp_path / "out", EncodeSettings(preset="veryfast"))
    assert_matches_plan(files, segments, tmp_path / "out")
    assert all(video(f.path)["has_b_frames"] > 0 for f in files), "the trap needs B-frames"
    assert all(has_audio(f.path) for f in files)


def test_fixed_plan_from_the_contract(tmp_path: Path, clip: Path):
    info = probe(clip)
    segments = [Segment(i, a, b) for i, (a, b) in enumerate(plan_boundaries(info.duration, FixedCut(1.5), "job"))]
    files = cut(clip, segments, tmp_path, EncodeSettings(), media=info)
    assert len(files) == 3
    assert_matches_plan(files, segments, tmp_path)
    assert [video(f.path)["profile"] for f in files] == ["High"] * 3


@pytest.mark.parametrize("job_id", ["job-a", "job-b", "job-c"])
def test_random_plan_off_the_frame_grid(tmp_path: Path, media_dir: Path, job_id: str):
    source = media_dir / "six.mp4"
    if not source.exists():
        make_video(source, duration=6.0, audio=False)
    segments = [Segment(i, a, b) for i, (a, b) in enumerate(plan_boundaries(6.0, RandomCut(1, 2), job_id))]
    assert any(round(s.start * 30, 6) % 1 for s in segments), "the plan should cut between frames"
    assert_matches_plan(cut(source, segments, tmp_path, EncodeSettings()), segments, tmp_path)


@pytest.mark.parametrize(("shape", "expected_size"), [
    ({"audio": False}, (320, 240)),
    ({"width": 240, "height": 320}, (240, 320)),
    ({"width": 321, "height": 241}, (320, 240)),
    ({"width": 241, "height": 321, "vfr": True}, (240, 320)),
])
def test_phone_shaped_inputs(tmp_path: Path, shape: dict, expected_size: tuple[int, int]):
    source = make_video(tmp_path / "in.mp4", duration=3.0, **shape)
    segments = segments_of([0.0, 1.2, 3.0], ["caption", None])
    files = cut(source, segments, tmp_path / "out", EncodeSettings())
    assert_matches_plan(files, segments, tmp_path / "out")
    for file in files:
        stream = video(file.path)
        assert (stream["width"], stream["height"]) == expected_size
        assert has_audio(file.path) == shape.get("audio", True)
        assert stream["avg_frame_rate"] == "30/1"  # variable input, constant output


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied_to_the_pixels(tmp_path: Path, rotation: int):
    source = make_video(tmp_path / "in.mp4", duration=2.0, rotation=rotation)
    files = cut(source, segments_of([0.0, 1.0, 2.0]), tmp_path / "out", EncodeSettings())
    upright = (240, 320) if rotation in (90, -90) else (320, 240)
    stream = video(files[0].path)
    assert (stream["width"], stream["height"]) == upright
    assert "side_data_list" not in stream
    _, _, produced = gray_frame(files[0].path)
    _, _, reference = gray_frame(source)  # ffmpeg's decoder applies the display matrix
    assert mean_abs_diff(produced, reference) < 4
    assert mean_abs_diff(produced, reference[::-1]) > 20  # the other direction, or no turn at all


def test_stream_copy_keeps_the_bitstream_and_reports_real_bounds(tmp_path: Path, clip: Path):
    segments = segments_of([0.0, 1.2, 2.8, 4.0])  # keyframes every second: cuts at 1 and 3
    files = cut(clip, segments, tmp_path, EncodeSettings(stream_copy=True))
    assert [(f.index, f.start, f.end) for f in files] == [(0, 0.0, 1.0), (1, 1.0, 3.0), (2, 3.0, 4.0)]
    for file in files:
        assert file.duration == pytest.approx(file.end - file.start, abs=FRAME + 1e-3)
        assert file.text is None and has_audio(file.path)
        boxes = top_level_boxes(file.path)
        assert boxes.index("moov") < boxes.index("mdat")

    def packet_sizes(path: Path) -> list[str]:
        result = subprocess.run([tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries",
                                 "packet=size", "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                                check=True)
        return result.stdout.split()
    assert packet_sizes(files[0].path) + packet_sizes(files[1].path) + packet_sizes(files[2].path) \
        == packet_sizes(clip)


def test_stream_copy_on_sparse_keyframes_re_encodes_the_plan_and_says_so(tmp_path: Path, clip: Path):
    notices: list[str] = []
    segments = segments_of([0.0, 0.4, 0.8, 1.2, 4.0])  # three cuts would share the keyframe at 1 s
    files = cut(clip, segments, tmp_path, EncodeSettings(stream_copy=True), on_notice=notices.append)
    assert [(f.index, f.start, f.end) for f in files] == [(s.index, s.start, s.end) for s in segments]
    for file, segment in zip(files, segments):
        assert file.duration == pytest.approx(segment.duration, abs=FRAME + 1e-3)
    assert notices == ["re-encoding instead of stream copy: the input's keyframes allow 2 of the 4 planned segments"]
    assert sorted(tmp_path.glob("segment_*.mp4")) == [f.path for f in files]


def test_stream_copy_keeps_the_rotation_matrix(tmp_path: Path):
    source = make_video(tmp_path / "in.mp4", duration=2.0, rotation=90)
    files = cut(source, segments_of([0.0, 1.0, 2.0]), tmp_path / "out", EncodeSettings(stream_copy=True))
    assert len(files) == 2
    assert video(files[0].path)["side_data_list"][0]["rotation"] == 90


@pytest.mark.parametrize(("source_shape", "texts"), [({}, ["text", None]), ({"width": 321}, [None, None])])
def test_stream_copy_falls_back_to_encoding_when_it_cannot_honour_the_job(tmp_path: Path, source_shape, texts):
    source = make_video(tmp_path / "in.mp4", duration=2.0, **source_shape)
    segments = segments_of([0.0, 1.3, 2.0], texts)
    files = cut(source, segments, tmp_path / "out", EncodeSettings(stream_copy=True))
    assert_matches_plan(files, segments, tmp_path / "out")


def test_progress_is_monotonic_throttled_and_reaches_one(tmp_path: Path, long_clip: Path):
    calls: list[tuple[float, float]] = []
    started = time.monotonic()
    cut(long_clip, segments_of([0.0, 4.0, 8.0, 12.0], ["a", "b", "c"]), tmp_path, EncodeSettings(),
        on_progress=lambda fraction: calls.append((time.monotonic() - started, fraction)))
    fractions = [fraction for _, fraction in calls]
    assert len(calls) >= 3, calls
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] == 1.0
    assert len(set(fractions)) == len(fractions)
    gaps = [b - a for (a, _), (b, _) in zip(calls, calls[1:-1])]
    assert all(gap >= 0.2 for gap in gaps), gaps


def test_a_past_deadline_starts_nothing(tmp_path: Path, clip: Path):
    with pytest.raises(DeadlineExceededError):
        cut(clip, segments_of([0.0, 2.0, 4.0]), tmp_path, EncodeSettings(), deadline=time.monotonic() - 1)
    assert not list(tmp_path.glob("segment_*.mp4"))


def test_a_near_deadline_kills_ffmpeg(tmp_path: Path, long_clip: Path):
    info = probe(long_clip)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError, match="deadline"):
        cut(long_clip, segments_of([0.0, 6.0, 12.0], ["a", "b"]), tmp_path, EncodeSettings(preset="slow"),
            media=info, deadline=started + 0.4)
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 1.0, elapsed  # the whole encode takes seconds
    assert children_named("ffmpeg") == []
    assert not list(tmp_path.glob("segment_*.mp4"))


def test_ffmpeg_failure_carries_its_error_output(tmp_path: Path):
    silent = make_video(tmp_path / "silent.mp4", duration=1.0, audio=False)
    wrong = dataclasses.replace(probe(silent), has_audio=True, audio_codec="aac")
    with pytest.raises(FFmpegError, match="matches no streams"):
        cut(silent, segments_of([0.0, 1.0]), tmp_path / "out", EncodeSettings(), media=wrong)
    assert not list((tmp_path / "out").glob("segment_*.mp4"))


@pytest.mark.parametrize(("memory", "expected"), [
    ("3008", "ffmpeg was killed (SIGKILL), most likely out of memory at 3008 MB; raise function.memoryMb "
             "or lower function.maxOutputLongSide (the output size)"),
    (None, "ffmpeg was killed (SIGKILL), most likely out of memory; give the worker more memory "
           "or lower VIDEO_MAX_LONG_SIDE (the output size)"),
])
def test_ffmpeg_killed_by_the_system_is_transient_and_says_what_to_change(
        tmp_path: Path, long_clip: Path, monkeypatch: pytest.MonkeyPatch, memory: str | None, expected: str):
    if memory:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory)
    else:
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", raising=False)
    killer = kill_first_ffmpeg(os.getpid())
    with pytest.raises(FFmpegKilledError) as raised:
        cut(long_clip, segments_of([0.0, 6.0, 12.0]), tmp_path, EncodeSettings(preset="slow"))
    killer.join()
    assert isinstance(raised.value, TransientError) and raised.value.error_type == "ffmpeg_killed"
    assert str(raised.value) == expected
    assert not list(tmp_path.glob("segment_*.mp4"))


def test_a_truncated_upload_is_reported_as_an_input_problem(tmp_path: Path):
    truncated = make_truncated(tmp_path / "upload.mp4", make_video(tmp_path / "whole.mp4", duration=5.0), 0.3)
    media = probe(truncated)
    assert media.duration == pytest.approx(5.0, abs=0.1)
    with pytest.raises(InvalidInputError) as raised:
        cut(truncated, segments_of([0.0, 2.0, 4.0, 5.0]), tmp_path / "out", EncodeSettings(), media=media)
    message = str(raised.value)
    assert message.startswith("input is truncated or corrupt: decoded ") and message.endswith(
        " s of 5.0 s; upload the whole file again"), message
    decoded = float(message.split("decoded ")[1].split(" s")[0])
    assert 0.5 < decoded < 3.0, message
    assert not list((tmp_path / "out").glob("segment_*.mp4"))


def test_a_large_input_is_scaled_to_the_long_side_with_its_caption(tmp_path: Path):
    source = make_video(tmp_path / "in.mp4", duration=1.0, width=1280, height=720)
    segments = segments_of([0.0, 1.0], ["caption"])
    files = cut(source, segments, tmp_path / "out", EncodeSettings(max_long_side=640))
    stream = video(files[0].path)
    assert (stream["width"], stream["height"]) == (640, 360)
    assert files[0].duration == pytest.approx(1.0, abs=FRAME + 1e-3)


@pytest.mark.parametrize("make", [make_not_a_video, make_audio_only])
def test_a_file_that_is_not_a_video(tmp_path: Path, make):
    upload = make(tmp_path / "upload.mp4")
    with pytest.raises(NotAVideoError):
        cut(upload, segments_of([0.0, 1.0]), tmp_path / "out", EncodeSettings())
    assert not list(tmp_path.glob("out/segment_*"))


def test_a_retry_removes_the_previous_attempts_extra_segments(tmp_path: Path, clip: Path):
    (tmp_path / "segment_007.mp4").write_bytes(b"stale")
    files = cut(clip, segments_of([0.0, 2.0, 4.0]), tmp_path, EncodeSettings())
    assert sorted(tmp_path.glob("segment_*.mp4")) == [f.path for f in files]


ODD_NAME = " lead, [a]; b='c': d\\e %f %%03d trail "
"""Every character the filter graph, the option list or the segment muxer's template treats
specially, and whitespace at both ends."""


@pytest.fixture
def awkward_fonts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fonts in a folder full of filter-graph and XML syntax (fonts_dir() caches: reset it)."""
    folder = tmp_path / f"fonts & <g>{ODD_NAME}"
    folder.mkdir()
    for font in binaries.fonts_dir().iterdir():
        (folder / font.name).symlink_to(font)
    monkeypatch.setenv("VIDEO_FONTS_DIR", str(folder))
    binaries.fonts_dir.cache_clear()
    yield folder
    binaries.fonts_dir.cache_clear()


def test_paths_with_filter_graph_syntax_are_escaped(tmp_path: Path, clip: Path, awkward_fonts: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    odd = tmp_path / ODD_NAME
    odd.mkdir()
    source = Path(shutil.copy(clip, odd / f"{ODD_NAME}in.mp4"))
    out_dir = odd / f"out 100%d, [x]; it's: a\\b{ODD_NAME}"
    segments = segments_of([0.0, 2.0, 4.0], ["left", "你好"])
    lossless = EncodeSettings(crf=0)
    files = cut(source, segments, out_dir, lossless)
    assert_matches_plan(files, segments, out_dir)
    assert binaries.fonts_dir() == awkward_fonts
    # The captions were drawn with the fonts found there: the same pixels as from the layer.
    monkeypatch.delenv("VIDEO_FONTS_DIR")
    binaries.fonts_dir.cache_clear()
    plain = cut(clip, segments, tmp_path / "plain", lossless)
    bare = cut(clip, segments_of([0.0, 2.0, 4.0]), tmp_path / "bare", lossless)
    for file, other, without in zip(files, plain, bare):
        assert gray_frame(file.path) == gray_frame(other.path)
        assert gray_frame(file.path) != gray_frame(without.path), "no text drawn"
    stream_copied = cut(source, segments_of([0.0, 2.0, 4.0]), out_dir / ODD_NAME, EncodeSettings(stream_copy=True))
    assert [f.path.name for f in stream_copied] == ["segment_000.mp4", "segment_001.mp4"]


def test_wrapped_text_stays_inside_the_safe_margin(tmp_path: Path, clip: Path):
    lossless = EncodeSettings(crf=0)
    caption = "WIDE CAPITALS " * 30
    with_text = cut(clip, segments_of([0.0, 4.0], [caption]), tmp_path / "text", lossless)[0]
    without = cut(clip, segments_of([0.0, 4.0]), tmp_path / "none", lossless)[0]
    width, height, drawn = gray_frame(with_text.path)
    _, _, clean = gray_frame(without.path)
    margin = round(min(width, height) * 0.05)
    changed = [(i % width, i // width) for i, (a, b) in enumerate(zip(drawn, clean)) if a != b]
    assert changed, "no text drawn"
    assert max(x for x, _ in changed) < width - margin
    assert max(y for _, y in changed) < height - margin
    assert min(x for x, _ in changed) >= margin and min(y for _, y in changed) >= margin


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch):
    for name in ("VIDEO_PRESET", "VIDEO_CRF", "VIDEO_STREAM_COPY", "VIDEO_MAX_LONG_SIDE"):
        monkeypatch.delenv(name, raising=False)
    assert EncodeSettings.from_env() == EncodeSettings("veryfast", 23, False, 1920)
    monkeypatch.setenv("VIDEO_PRESET", "ultrafast")
    monkeypatch.setenv("VIDEO_CRF", " 28 ")
    monkeypatch.setenv("VIDEO_STREAM_COPY", "Yes")
    monkeypatch.setenv("VIDEO_MAX_LONG_SIDE", "1280")
    assert EncodeSettings.from_env() == EncodeSettings("ultrafast", 28, True, 1280)


@pytest.mark.parametrize(("name", "value"), [
    ("VIDEO_PRESET", "turbo"), ("VIDEO_PRESET", "veryfast; rm -rf /"), ("VIDEO_CRF", "23.5"),
    ("VIDEO_CRF", "52"), ("VIDEO_CRF", "-1"), ("VIDEO_STREAM_COPY", "maybe"),
    ("VIDEO_MAX_LONG_SIDE", "1080p"), ("VIDEO_MAX_LONG_SIDE", "100"), ("VIDEO_MAX_LONG_SIDE", "10000"),
])
def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str):
    for other in ("VIDEO_PRESET", "VIDEO_CRF", "VIDEO_STREAM_COPY", "VIDEO_MAX_LONG_SIDE"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidJobError) as error:
        EncodeSettings.from_env()
    assert error.value.field == name


def test_settings_are_validated_when_built_directly():
    with pytest.raises(InvalidJobError, match="crf"):
        EncodeSettings(crf=99)
    with pytest.raises(InvalidJobError, match="preset"):
        EncodeSettings(preset="fastest")


def test_output_rate_fraction_for_ntsc(tmp_path: Path):
    assert command.output_rate(dataclasses.replace(probe(make_video(tmp_path / "v.mp4", duration=1.0)),
                                                   fps=Fraction(30000, 1001))) == Fraction(30000, 1001)


@pytest.mark.parametrize(("line", "fraction"), [
    ("out_time_us=2500000\n", 0.25), ("out_time_us=N/A", None), ("out_time_us=-5000", 0.0),
    ("out_time_us=99000000", 1.0), ("progress=continue", None), ("progress=end", 1.0),
    ("frame=12", None), ("out_time=00:00:02.500000", None),
])
def test_progress_lines(line: str, fraction: float | None):
    assert progress_fraction(line, 10.0) == fraction


def test_crf_from_a_command_line_flag_is_stored_as_a_number():
    assert EncodeSettings(crf="28").crf == 28  # type: ignore[arg-type]
