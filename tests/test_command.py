"""processor.command: the argv, checked option by option and against FFmpeg's own parsing rules."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import ffmpeg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor import binaries, subtitles
from processor.command import (GLOBAL_ARGS, HttpInput, caption_picture, caption_pictures_command, copy_command,
                               copy_keyframes, copy_shortfall,
                               cut_frames, encode_command, graph_path, output_rate, output_size, source,
                               stream_copy_possible, text_ranges, video_chain)
from processor.plan import Segment
from processor.probe import MediaInfo
from processor.subtitles import Caption
from tests.test_subtitles import HOSTILE_TEXTS

MEDIA = MediaInfo(duration=10.0, width=1920, height=1080, rotation=0, has_audio=True,
                  fps=Fraction(30), video_codec="h264", pix_fmt="yuv420p", audio_codec="aac")
CAPTION = Caption("hello", ((0, None),), x=52, y=52, width=400, height=120)
PICTURE = Path("/work/.texts-x/caption_000.png")
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


def parse_labels(text: str) -> tuple[list[str], str]:
    """The ``[label]`` run before or after a filter (libavfilter's parse_link_name)."""
    labels = []
    text = text.lstrip(_WHITESPACE)
    while text.startswith("["):
        label, text = av_get_token(text[1:], "]")
        assert label and text.startswith("]"), f"bad label before {text!r}"
        labels.append(label)
        text = text[1:].lstrip(_WHITESPACE)
    return labels, text


def parse_graph(graph: str) -> list[tuple[list[str], str, dict[str, str], list[str]]]:
    """A whole graph as avfilter_graph_parse2 reads it: (input labels, name, options, output labels)."""
    filters = []
    while True:
        inputs, graph = parse_labels(graph)
        name, options, graph = parse_filter(graph)
        outputs, graph = parse_labels(graph)
        filters.append((inputs, name, options, outputs))
        if not graph:
            return filters
        assert graph[0] in ",;", f"unexpected graph syntax at {graph!r}"
        graph = graph[1:]


def video_filters(argv: list[str]) -> list[tuple[str, dict[str, str]]]:
    """The filters from the upload's first video stream to the mapped output, in order,
    checked to form one unbroken chain that uses every filter of the graph. An overlay's
    second input is a picture, an input file: it shows in the overlay's options as ``picture``."""
    graph = parse_graph(option(argv, "-filter_complex"))
    files = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-i"]
    by_input, produced = {}, set()
    for inputs, name, options, outputs in graph:
        assert len(outputs) == 1 and len(inputs) == (2 if name == "overlay" else 1), (inputs, name, outputs)
        assert inputs[0] not in by_input, f"{inputs[0]} feeds two filters"
        by_input[inputs[0]] = (name, options, inputs[1:], outputs[0])
        produced.add(outputs[0])
    chain, label, used = [], "0:v:0", 0
    while label in by_input:
        name, options, others, label = by_input[label]
        used += 1
        if others:
            assert others[0] not in produced, "a picture goes to overlay as it is"
            options = {**options, "picture": files[int(others[0].split(":")[0])]}
        chain.append((name, options))
    assert used == len(graph), "filters outside the chain"
    assert ["-map", f"[{label}]"] == argv[argv.index("-map"):argv.index("-map") + 2], "chain end not mapped first"
    return chain


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def output_file(argv: list[str]) -> str:
    """The output's file name: the last argument before the global ones."""
    assert argv[-len(GLOBAL_ARGS) - 1:] == [*GLOBAL_ARGS, "-y"]
    return argv[-len(GLOBAL_ARGS) - 2]


def segments_of(bounds: list[float], texts: list[str | None] | None = None) -> list[Segment]:
    texts = texts or [None] * (len(bounds) - 1)
    return [Segment(i, start, end, texts[i]) for i, (start, end) in enumerate(zip(bounds, bounds[1:]))]


def ass_graph(**options: str) -> str:
    argv = ffmpeg.input("color", f="lavfi").filter("ass", **options).output("/out.png").compile()
    return option(argv, "-filter_complex")


@pytest.mark.parametrize(("char", "in_graph"), [
    # Option level (\ ' = :), then graph level (\ ' [ ] , ;) over the option-escaped text.
    ("\\", "\\\\\\\\"), ("'", "\\\\\\'"), ("=", "\\\\="), (":", "\\\\:"),
    ("[", "\\["), ("]", "\\]"), (",", "\\,"), (";", "\\;"),
    # Not escaped at all: whitespace, braces, percent signs (no text expansion reads a path).
    (" ", " "), ("\t", "\t"), ("\n", "\n"), ("%", "%"), ("{", "{"), ("}", "}"), ("/", "/"),
])
def test_what_ffmpeg_python_escapes(char: str, in_graph: str):
    assert ass_graph(filename=f"a{char}b") == f"[0]ass=filename=a{in_graph}b[s0]"


# Surrogates (undecodable bytes of a file name) cannot go through ffmpeg-python at all: it hashes
# every option as UTF-8. Only the local command takes paths from outside (see test_cli).
GRAPH_CHARACTERS = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))


@settings(max_examples=300)
@given(st.text(alphabet=GRAPH_CHARACTERS, max_size=60))
def test_ffmpeg_python_values_survive_both_parsing_levels_except_outer_whitespace(value):
    graph = parse_graph(ass_graph(filename=value, shaping="complex"))
    assert graph == [(["0"], "ass", {"filename": value.strip(_WHITESPACE), "shaping": "complex"}, ["s0"])]


@settings(max_examples=200)
@given(st.text(alphabet=GRAPH_CHARACTERS.filter(lambda char: char != "/"), min_size=1, max_size=40))
def test_any_directory_name_reaches_the_ass_filter_unchanged(directory):
    """The engine's graph paths: any folder, then the names it chose for the captions' files."""
    work = Path("/", directory, ".texts-x")
    captions = subtitles.captions(MEDIA, segments_of([0, 5, 10], ["a", "b"]), binaries.font_table())
    argv = caption_pictures_command("ffmpeg", captions, work / "captions.ass", work / "captions-alpha.ass", work)
    graph = parse_graph(option(argv, "-filter_complex"))
    assert [options["filename"] for _, name, options, _ in graph if name == "ass"] == [
        str(work / "captions.ass"), str(work / "captions-alpha.ass")]
    # One picture per caption, cut to its rectangle; the files are plain arguments.
    assert [options for _, name, options, _ in graph if name == "crop"] == [
        {"w": str(c.width), "h": str(c.height), "x": str(c.x), "y": str(c.y)} for c in captions.captions]
    assert [argv[i - 1] for i, arg in enumerate(argv) if arg.endswith(".png")] == ["1", "1"]
    assert [arg for arg in argv if arg.endswith(".png")] == [str(work / "caption_000.png"), str(work / "caption_001.png")]


@pytest.mark.parametrize("path", ["/tmp/x/font ", "/tmp/x/font\n", "/tmp/x/font\t"])
def test_graph_paths_never_end_with_whitespace(path):
    with pytest.raises(ValueError, match="whitespace"):
        graph_path(path)


def test_graph_paths_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert graph_path(Path(" lead/font")) == f"{tmp_path}/ lead/font"


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


def test_one_segment_per_run_is_a_small_composition():
    """The shape of a run that encodes a single segment after seeking to it: the same chain,
    its caption on every frame, the seek among the input options."""
    upload = source(Path("/v.mp4"), ss="12.016667")
    video = video_chain(upload["v:0"], MEDIA, [(PICTURE, CAPTION)])
    argv = ffmpeg.output(video, upload["a:0"], "/o.mp4", **{"frames:v": 150}).compile()
    assert argv[:argv.index("-i")] == ["ffmpeg", "-protocol_whitelist", "file", "-ss", "12.016667"]
    chain = video_filters(argv)
    assert [name for name, _ in chain] == ["fps", "format", "overlay"]
    assert chain[2][1] == {"x": "52", "y": "52", "format": "yuv420", "eof_action": "repeat", "picture": str(PICTURE)}
    assert option(argv, "-frames:v") == "150"


def test_an_upload_over_http_may_use_http_and_tcp_only_and_the_probed_demuxer():
    """A fan-out item's input (processor.ranged_input): no file, no playlist demuxer chosen by
    the bytes, so nothing in the upload can make ffmpeg open another URL."""
    upload = source(HttpInput("http://127.0.0.1:8000/input", "mov"), ss="12.016667")
    argv = ffmpeg.output(upload["v:0"], "/o.mp4").compile()
    assert argv[:argv.index("-i") + 2] == ["ffmpeg", "-f", "mov", "-protocol_whitelist", "http,tcp",
                                           "-ss", "12.016667", "-i", "http://127.0.0.1:8000/input"]


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
    assert option(argv, "-map_metadata") == option(argv, "-map_chapters") == "-1"
    assert option(argv, "-fps_mode") == "passthrough"
    assert output_file(argv) == f"{tmp_path}/segment_%03d.mp4"
    assert video_filters(argv) == [("fps", {"fps": "30"}), ("format", {"pix_fmts": "yuv420p"})]


def test_one_segment_is_a_plain_faststart_mp4(tmp_path: Path):
    argv = encode_command("ffmpeg", Path("/in/v.mp4"), MEDIA, segments_of([0, 10.0]), tmp_path,
                          preset="veryfast", crf=23)
    assert option(argv, "-f") == "mp4" and option(argv, "-movflags") == "+faststart"
    assert "-force_key_frames" not in argv and output_file(argv) == str(tmp_path / "segment_000.mp4")


def test_no_audio_stream_means_no_audio_options(tmp_path: Path):
    media = MediaInfo(**{**MEDIA.__dict__, "has_audio": False, "audio_codec": None})
    argv = encode_command("ffmpeg", Path("/in/v.mp4"), media, segments_of([0, 5, 10]), tmp_path,
                          preset="fast", crf=30)
    assert "0:a:0" not in argv and "-c:a" not in argv


def test_odd_rotated_input_is_cropped_even_after_autorotation(tmp_path: Path):
    media = MediaInfo(**{**MEDIA.__dict__, "width": 1281, "height": 719, "rotation": 90})
    argv = encode_command("ffmpeg", Path("/v.mp4"), media, segments_of([0, 10]), tmp_path,
                          preset="fast", crf=23)
    assert video_filters(argv) == [("fps", {"fps": "30"}), ("crop", {"w": "718", "h": "1280"}),
                                   ("format", {"pix_fmts": "yuv420p"})]


@pytest.mark.parametrize(("size", "rotation", "max_long_side", "expected"), [
    ((3840, 2160), 0, 1920, (1920, 1080)), ((7680, 4320), 0, 1920, (1920, 1080)),
    ((3840, 2160), 90, 1920, (1080, 1920)), ((4000, 3000), 0, 1920, (1920, 1440)),
    ((1920, 1080), 0, 1280, (1280, 720)), ((1921, 1079), 0, 1920, (1920, 1078)),
    # 2400 x 1080 (a 20:9 phone) at 1000: 450 exactly; 1001 x 3 rounds to an even side, never 0.
    ((2400, 1080), 0, 1000, (1000, 450)), ((3001, 3), 0, 1000, (1000, 2)),
    ((1925, 1083), 0, 1923, (1922, 1082)),  # an odd cap: the long side stays at most the cap
])
def test_output_size_is_capped_on_the_long_side_keeping_the_aspect_ratio(size, rotation, max_long_side, expected):
    media = MediaInfo(**{**MEDIA.__dict__, "width": size[0], "height": size[1], "rotation": rotation})
    assert output_size(media, max_long_side) == expected
    width, height = expected
    assert width % 2 == 0 and height % 2 == 0 and max(width, height) == max_long_side - max_long_side % 2


def test_a_large_input_is_scaled_down_before_the_captions(tmp_path: Path):
    media = MediaInfo(**{**MEDIA.__dict__, "width": 3840, "height": 2160, "rotation": 270})
    argv = encode_command("ffmpeg", Path("/v.mp4"), media, segments_of([0, 10]), tmp_path,
                          preset="fast", crf=23, max_long_side=1280)
    assert video_filters(argv) == [("fps", {"fps": "30"}), ("scale", {"w": "720", "h": "1280"}),
                                   ("format", {"pix_fmts": "yuv420p"})]


def test_percent_signs_in_the_output_directory_are_not_patterns():
    argv = encode_command("ffmpeg", Path("/v.mp4"), MEDIA, segments_of([0, 5, 10]), Path("/tmp/100%d"),
                          preset="fast", crf=23)
    assert output_file(argv) == "/tmp/100%%d/segment_%03d.mp4"


def test_captions_reach_the_graph_only_as_their_pictures(tmp_path: Path):
    texts = HOSTILE_TEXTS
    segments = segments_of([float(i) for i in range(len(texts) + 1)], texts)
    media = MediaInfo(**{**MEDIA.__dict__, "duration": float(len(texts))})
    work = tmp_path / "we'ird [dir], a:b; %{pts}"
    captions = subtitles.captions(media, segments, binaries.font_table())
    pictures = [(caption_picture(work, i), caption) for i, caption in enumerate(captions.captions)]
    argv = encode_command("ffmpeg", Path("/v.mp4"), media, segments, tmp_path, preset="fast", crf=23,
                          pictures=pictures)
    drawing = caption_pictures_command("ffmpeg", captions, work / "captions.ass", work / "captions-alpha.ass", work)
    for text in texts:
        assert not any(text in arg for arg in argv + drawing), text
    chain = video_filters(argv)
    assert [name for name, _ in chain] == ["fps", "format"] + ["overlay"] * len(texts)
    # Each caption on its own segment's frames: bounds halfway between frames.
    assert [options["picture"] for _, options in chain[2:]] == [str(picture) for picture, _ in pictures]
    assert chain[3][1]["enable"] == "gte(t,0.983333)*lt(t,1.983333)"


@pytest.mark.parametrize(("changes", "possible"), [
    ({}, True),
    ({"video_codec": "hevc"}, False),
    ({"pix_fmt": "yuv444p"}, False),
    ({"width": 1921}, False),
    ({"width": 2560, "height": 1440}, False),  # larger than the output's long side: scaled
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


@pytest.mark.parametrize(("bounds", "keyframes", "reason"), [
    ([0, 2, 4, 6], [2, 4], None),
    ([0, 2.4, 5.2, 6], [2, 5], None),                 # 2.0, 3.0, 1.0 for 2.4, 2.8, 0.8: within 1.5x
    ([0, 2.4, 5.2, 6], [2, 4], "at the input's keyframes segment 2 would last 2.00 s instead of 0.80 s"),
    ([0, 2, 4, 6], [2], "the input's keyframes allow 2 of the 3 planned segments"),
    ([0, 2, 4, 6], [], "the input's keyframes allow 1 of the 3 planned segments"),
    ([0, 2, 4, 6], [1, 4.5], "at the input's keyframes segment 1 would last 3.50 s instead of 2.00 s"),
    ([0, 2, 4], [3.1], "at the input's keyframes segment 0 would last 3.10 s instead of 2.00 s"),
    ([0, 2, 4], [3.0], None),                         # exactly 1.5x is still honoured
])
def test_copy_is_declined_when_keyframes_cannot_honour_the_plan(bounds, keyframes, reason):
    assert copy_shortfall(segments_of(bounds), keyframes, bounds[-1]) == reason


@pytest.mark.parametrize(("audio_codec", "audio_options"), [("aac", {"-c:a": "copy"}),
                                                           ("mp3", {"-c:a": "aac", "-b:a": "128k"})])
def test_copy_command_copies_video_and_keeps_audio_aac(tmp_path: Path, audio_codec, audio_options):
    media = MediaInfo(**{**MEDIA.__dict__, "audio_codec": audio_codec})
    argv = copy_command("ffmpeg", Path("/v.mp4"), media, [2.0, 4.0], tmp_path)
    assert option(argv, "-c:v") == "copy"
    assert {name: option(argv, name) for name in ("-c:a", "-b:a") if name in argv} == audio_options
    assert argv[argv.index("-map"):argv.index("-map") + 4] == ["-map", "0:v:0", "-map", "0:a:0"]
    assert option(argv, "-segment_times") == "1.983333,3.983333"  # just before each keyframe
    assert option(argv, "-map_metadata") == option(argv, "-map_chapters") == "-1"
    assert "-filter_complex" not in argv and "-force_key_frames" not in argv
    assert output_file(argv) == f"{tmp_path}/segment_%03d.mp4"
