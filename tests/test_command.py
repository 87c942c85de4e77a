"""processor.command: the argv, checked option by option and against FFmpeg's own parsing rules."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.command import (copy_command, copy_keyframes, cut_frames, encode_command,
                               escape_filter_value, output_rate, output_size, stream_copy_possible,
                               text_ranges)
from processor.plan import Segment
from processor.probe import MediaInfo
from tests.test_subtitles import HOSTILE_TEXTS

MEDIA = MediaInfo(duration=10.0, width=1920, height=1080, rotation=0, has_audio=True,
                  fps=Fraction(30), video_codec="h264", pix_fmt="yuv420p", audio_codec="aac")
_WHITESPACE = " \n\t\r"


def av_get_token(text: str, terms: str) -> tuple[str, str]:
    """libavutil's av_get_token, the tokenizer of both filter graph parsing levels."""
    p = 0
    while p < len(text) and text[p] in _WHITESPACE:
        p += 1
    out: list[str] = []
    protected = 0
    while p < len(text) and text[p] not in terms:
        char = text[p]
        p += 1
        if char == "\\" and p < len(text):
            out.append(text[p])
            p += 1
            protected = len(out)
        elif char == "'":
            while p < len(text) and text[p] != "'":
                out.append(text[p])
                p += 1
            if p < len(text):
                p += 1
                protected = len(out)
        else:
            out.append(char)
    while len(out) > protected and out[-1] in _WHITESPACE:
        out.pop()
    return "".join(out), text[p:]


def parse_filter(description: str) -> tuple[str, dict[str, str], str]:
    """One filter of a graph as FFmpeg reads it: name, options, and the rest of the graph."""
    name, rest = av_get_token(description, "=,;[")
    options: dict[str, str] = {}
    if rest.startswith("="):
        arguments, rest = av_get_token(rest[1:], "[],;")
        while arguments:
            named = re.match(r"([A-Za-z0-9_-]+)=", arguments)
            key = named.group(1) if named else f"#{len(options)}"  # positional option
            options[key], arguments = av_get_token(arguments[named.end():] if named else arguments, ":")
            arguments = arguments[1:]
    return name, options, rest


def parse_graph(graph: str) -> list[tuple[str, dict[str, str]]]:
    filters = []
    while graph:
        name, options, graph = parse_filter(graph)
        filters.append((name, options))
        assert graph == "" or graph[0] == ",", f"unexpected graph syntax at {graph!r}"
        graph = graph[1:]
    return filters


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def segments_of(bounds: list[float], texts: list[str | None] | None = None) -> list[Segment]:
    texts = texts or [None] * (len(bounds) - 1)
    return [Segment(i, start, end, texts[i]) for i, (start, end) in enumerate(zip(bounds, bounds[1:]))]


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(exclude_characters="\x00"), max_size=60))
def test_escaped_values_survive_both_parsing_levels_unchanged(value):
    graph = f"ass=filename={escape_filter_value(value)}:shaping=complex,null"
    assert parse_graph(graph) == [("ass", {"filename": value, "shaping": "complex"}), ("null", {})]


@pytest.mark.parametrize("path", [
    "/tmp/we'ird: d,i[r];\\x %{n} y/t x.txt", " lead and trail ", "a=b", "'", "\\", ":", "",
])
def test_escaping_of_awkward_paths(path):
    assert parse_graph(f"ass=filename={escape_filter_value(path)}") == [("ass", {"filename": path})]


@pytest.mark.parametrize(("fps", "expected"), [
    (Fraction(30), Fraction(30)), (Fraction(30000, 1001), Fraction(30000, 1001)),
    (Fraction(120), Fraction(60)), (Fraction(240), Fraction(60)), (Fraction(8), Fraction(15)),
])
def test_output_rate_is_clamped(fps, expected):
    assert output_rate(MediaInfo(**{**MEDIA.__dict__, "fps": fps})) == expected


@pytest.mark.parametrize(("size", "rotation", "expected"), [
    ((1920, 1080), 0, (1920, 1080)), ((1920, 1080), 90, (1080, 1920)),
    ((321, 241), 0, (320, 240)), ((321, 241), 270, (240, 320)),
])
def test_output_size_is_upright_and_even(size, rotation, expected):
    media = MediaInfo(**{**MEDIA.__dict__, "width": size[0], "height": size[1], "rotation": rotation})
    assert output_size(media) == expected


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=30),
       st.sampled_from([Fraction(15), Fraction(24), Fraction(30000, 1001), Fraction(60)]))
def test_cut_frames_are_the_nearest_frames_and_strictly_increasing(lengths_ms, rate):
    bounds = [0.0]
    for length in lengths_ms:
        bounds.append(round(bounds[-1] + length / 1000, 3))
    frames = cut_frames(segments_of(bounds), rate)
    assert len(frames) == len(bounds) - 2
    assert all(b > a for a, b in zip([0, *frames], frames))
    for frame, start in zip(frames, bounds[1:]):
        if frame == round(Fraction(start) * rate):
            assert abs(frame / rate - Fraction(start)) <= 1 / (2 * rate)


def test_neighbouring_ranges_of_one_text_merge():
    segments = segments_of([0, 1, 2, 3, 4], ["a", "a", "b", "a"])
    assert text_ranges(segments, [30, 60, 90]) == {"a": [(0, 60), (90, None)], "b": [(60, 90)]}
    assert text_ranges(segments_of([0, 1, 2], ["a", "a"]), [30]) == {"a": [(0, None)]}


def test_encode_command_re_encodes_h264_aac_with_matching_cut_points(tmp_path: Path):
    segments = segments_of([0, 2.0, 4.123, 10.0])
    argv = encode_command("ffmpeg", Path("/in/v.mp4"), MEDIA, segments, tmp_path,
                          preset="veryfast", crf=23)
    assert argv[0] == "ffmpeg" and option(argv, "-i") == "/in/v.mp4"
    assert option(argv, "-protocol_whitelist") == "file"
    assert [option(argv, o) for o in ("-c:v", "-preset", "-crf")] == ["libx264", "veryfast", "23"]
    assert [option(argv, o) for o in ("-c:a", "-b:a")] == ["aac", "128k"]
    assert argv.count("-map") == 2 and "0:a:0" in argv
    # Halfway between frames 59|60 and 123|124: no rounding can move a cut onto a neighbour.
    assert option(argv, "-force_key_frames") == option(argv, "-segment_times") == "1.983333,4.116667"
    assert "-segment_time_delta" not in argv
    assert option(argv, "-reset_timestamps") == "1"
    assert option(argv, "-segment_format_options") == "movflags=+faststart"
    assert argv[-1] == f"{tmp_path}/segment_%03d.mp4"
    assert parse_graph(option(argv, "-vf")) == [("fps", {"#0": "30"}), ("format", {"#0": "yuv420p"})]


def test_one_segment_is_a_plain_faststart_mp4(tmp_path: Path):
    argv = encode_command("ffmpeg", Path("/in/v.mp4"), MEDIA, segments_of([0, 10.0]), tmp_path,
                          preset="veryfast", crf=23)
    assert option(argv, "-f") == "mp4" and option(argv, "-movflags") == "+faststart"
    assert "-force_key_frames" not in argv and argv[-1] == str(tmp_path / "segment_000.mp4")


def test_no_audio_stream_means_no_audio_options(tmp_path: Path):
    media = MediaInfo(**{**MEDIA.__dict__, "has_audio": False, "audio_codec": None})
    argv = encode_command("ffmpeg", Path("/in/v.mp4"), media, segments_of([0, 5, 10]), tmp_path,
                          preset="fast", crf=30)
    assert "0:a:0" not in argv and "-c:a" not in argv


def test_odd_rotated_input_is_cropped_even_after_autorotation(tmp_path: Path):
    media = MediaInfo(**{**MEDIA.__dict__, "width": 1921, "height": 1079, "rotation": 90})
    argv = encode_command("ffmpeg", Path("/v.mp4"), media, segments_of([0, 10]), tmp_path,
                          preset="fast", crf=23)
    assert parse_graph(option(argv, "-vf")) == [("fps", {"#0": "30"}), ("crop", {"#0": "1078", "#1": "1920"}),
                                                ("format", {"#0": "yuv420p"})]


def test_percent_signs_in_the_output_directory_are_not_patterns():
    argv = encode_command("ffmpeg", Path("/v.mp4"), MEDIA, segments_of([0, 5, 10]), Path("/tmp/100%d"),
                          preset="fast", crf=23)
    assert argv[-1] == "/tmp/100%%d/segment_%03d.mp4"


def test_captions_reach_the_graph_only_as_the_path_of_their_file(tmp_path: Path):
    texts = HOSTILE_TEXTS
    segments = segments_of([float(i) for i in range(len(texts) + 1)], texts)
    media = MediaInfo(**{**MEDIA.__dict__, "duration": float(len(texts))})
    captions = tmp_path / "we'ird [dir], a:b; %{pts}" / "captions.ass"
    argv = encode_command("ffmpeg", Path("/v.mp4"), media, segments, tmp_path, preset="fast", crf=23,
                          subtitles=captions)
    for text in texts:
        assert not any(text in arg for arg in argv), text
    graph = parse_graph(option(argv, "-vf"))
    assert graph[-1] == ("ass", {"filename": str(captions), "shaping": "complex"})
    assert [name for name, _ in graph] == ["fps", "format", "ass"]


@pytest.mark.parametrize(("changes", "possible"), [
    ({}, True),
    ({"video_codec": "hevc"}, False),
    ({"pix_fmt": "yuv444p"}, False),
    ({"width": 1921}, False),
])
def test_stream_copy_only_when_the_input_already_is_the_output_format(changes, possible):
    media = MediaInfo(**{**MEDIA.__dict__, **changes})
    assert stream_copy_possible(media, segments_of([0, 5, 10])) is possible
    assert stream_copy_possible(media, segments_of([0, 5, 10], ["text", None])) is False


@pytest.mark.parametrize(("bounds", "keyframes", "expected"), [
    ([0, 2, 4, 6], [0, 1, 2, 3, 4, 5], [2, 4]),
    ([0, 2.4, 5.2, 6], [0, 2, 4, 6], [2, 4]),         # nearest, not next
    ([0, 0.4, 0.8, 1.2, 6], [0, 1, 5], [1]),          # cuts on one keyframe merge
    ([0, 3, 6], [0, 5.9], []),                        # too close to the end
    ([0, 3, 6], [0.1], []),                           # too close to the start
    ([0, 3, 6], [0], []),                             # only the first keyframe
])
def test_copy_cuts_snap_to_keyframes(bounds, keyframes, expected):
    assert copy_keyframes(segments_of(bounds), keyframes, bounds[-1]) == expected


@pytest.mark.parametrize(("audio_codec", "audio_args"), [("aac", ["-c:a", "copy"]),
                                                        ("mp3", ["-c:a", "aac", "-b:a", "128k"])])
def test_copy_command_copies_video_and_keeps_audio_aac(tmp_path: Path, audio_codec, audio_args):
    media = MediaInfo(**{**MEDIA.__dict__, "audio_codec": audio_codec})
    argv = copy_command("ffmpeg", Path("/v.mp4"), media, [2.0, 4.0], tmp_path)
    assert option(argv, "-c:v") == "copy"
    index = argv.index("-c:a")
    assert argv[index:index + len(audio_args)] == audio_args
    assert option(argv, "-segment_times") == "1.983333,3.983333"  # just before each keyframe
    assert "-vf" not in argv and "-force_key_frames" not in argv
