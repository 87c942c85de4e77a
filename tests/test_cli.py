"""`python -m processor run`, as a user runs it: a real process, real files, real exit codes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from sandbox.gemini import API_KEY, FakeGemini
from sandbox.media import make_not_a_video, make_truncated, make_video
from tests.processes import running_ffmpeg, wait_until

COMMAND = [sys.executable, "-m", "processor"]
# Root writes anywhere: without these capabilities it obeys a folder's mode like any user.
WITHOUT_ROOT_OVERRIDES = ["setpriv", "--inh-caps=-dac_override,-dac_read_search,-fowner",
                          "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]

MODEL_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CREDENTIAL_CONFIG")


def run(*args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items() if name not in MODEL_VARIABLES}
    return subprocess.run([*prefix, *COMMAND, *args], capture_output=True, text=True, timeout=120,
                          env={**environment, **(env or {})})


def one_line_error(result: subprocess.CompletedProcess, status: int = 2) -> str:
    assert result.returncode == status, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("cli") / "clip.mp4", duration=5.0)


def test_run_writes_segments_and_reports_them_as_json(clip, tmp_path):
    result = run("run", str(clip), "--output-dir", str(tmp_path), "--cut", "fixed:2",
                 "--strategy", "unique_for_all", "--text", "first", "--text", "second", "--json")
    assert result.returncode == 0, result.stderr
    segments = json.loads(result.stdout)["segments"]
    assert [s["path"] for s in segments] == [str(tmp_path / f"segment_{i:03d}.mp4") for i in range(3)]
    assert [s["text"] for s in segments] == ["first", "second", "second"]
    assert [s["start"] for s in segments] == [0, 2, 4]
    assert [round(s["duration"]) for s in segments] == [2, 2, 1]
    assert all((tmp_path / f"segment_{i:03d}.mp4").stat().st_size > 0 for i in range(3))


def test_jobs_encodes_the_items_apart_with_the_single_passs_outputs(tmp_path):
    """--jobs 2: the fan-out's items (two here) encoded at once, into the same files as one pass."""
    long_clip = make_video(tmp_path / "long.mp4", duration=22.0)
    common = ["--cut", "fixed:4", "--strategy", "unique_for_all", "--json", *sum((["--text", f"part {i}"]
                                                                                  for i in range(6)), [])]
    single = run("run", str(long_clip), "--output-dir", str(tmp_path / "single"), *common)
    fanned = run("run", str(long_clip), "--output-dir", str(tmp_path / "items"), "--jobs", "2", *common)
    assert single.returncode == 0 and fanned.returncode == 0, (single.stderr, fanned.stderr)
    ours, theirs = json.loads(fanned.stdout)["segments"], json.loads(single.stdout)["segments"]
    assert [s["path"] for s in ours] == [str(tmp_path / "items" / f"segment_{i:03d}.mp4") for i in range(6)]
    assert sorted(p.name for p in (tmp_path / "items").iterdir()) == [f"segment_{i:03d}.mp4" for i in range(6)]
    assert [(s["start"], s["end"], s["text"]) for s in ours] == [(s["start"], s["end"], s["text"]) for s in theirs]
    assert all(abs(a["duration"] - b["duration"]) <= 1 / 30 + 1e-6 for a, b in zip(ours, theirs))


def test_base_vary_shows_the_texts_the_model_wrote(clip, tmp_path):
    with FakeGemini() as gemini:
        result = run("run", str(clip), "--output-dir", str(tmp_path), "--cut", "fixed:2", "--strategy", "base_vary",
                     "--text", "Buy now", "--context", "sales", "--json",
                     env={"GOOGLE_API_KEY": API_KEY, "TEXT_VARIATIONS_BASE_URL": gemini.url})
        [call] = gemini.model_calls()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    texts = ["Buy now", "Buy now (take 1)", "Buy now (take 2)"]
    assert [s["text"] for s in report["segments"]] == texts
    assert report["text_variations"] == {"texts": texts, "source": "model", "reason": None}
    assert '"sales"' in call.prompt


def test_base_vary_without_a_model_uses_base_text_and_says_why(clip, tmp_path):
    result = run("run", str(clip), "--output-dir", str(tmp_path), "--cut", "fixed:2", "--strategy", "base_vary",
                 "--text", "Buy now", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [s["text"] for s in report["segments"]] == ["Buy now"] * 3
    assert report["text_variations"]["source"] == "fallback"
    assert result.stderr.startswith("python -m processor: text variations: fallback: not_configured:")


def test_random_cut_is_seeded_by_the_job_id(clip, tmp_path):
    def plan(job_id: str) -> list[float]:
        result = run("run", str(clip), "--output-dir", str(tmp_path / job_id), "--cut", "random:1:2",
                     "--job-id", job_id, "--json")
        assert result.returncode == 0, result.stderr
        return [s["end"] for s in json.loads(result.stdout)["segments"]]

    assert plan("a") == plan("a")


@pytest.mark.parametrize("args, message", [
    (["--cut", "fixed:0"], "--cut: must be between 1 and 3600"),
    (["--cut", "random:9:3"], "--cut: must not exceed max_duration"),
    (["--cut", "sideways"], "expected fixed:SECONDS or random:MIN:MAX"),
    (["--strategy", "loud"], "invalid choice"),
    (["--stream-copy", "--text", "hi"], "--stream-copy cannot burn in --text"),
    (["--text", "ok", "--text", "x" * 501], "--text #2: must be at most 500 characters, got 501"),
    (["--crf", "99"], "--crf: must be from 0 to 51 (x264's CRF scale), got 99"),
    (["--preset", "sluggish"], "--preset: must be one of ultrafast"),
    (["--max-long-side", "100"], "--max-long-side: must be from 240 to 7680 pixels, got 100"),
    (["--job-id", "not/a/job"], "--job-id: must be 1 to 128 letters"),
    (["--strategy", "one_for_all", "--text", "a", "--text", "b"],
     "--strategy one_for_all puts one text on every segment, got 2 --text"),
    (["--strategy", "base_vary"], "--strategy base_vary needs one --text"),
    (["--strategy", "base_vary", "--text", "a", "--text", "b"],
     "--strategy base_vary takes exactly one --text (the base text), got 2"),
    (["--strategy", "unique_for_all"], "--strategy unique_for_all needs --text"),
    (["--context", "sales"], "--context needs --strategy base_vary"),
    (["--jobs", "0"], "--jobs must be at least 1, got 0"),
    (["--jobs", "2", "--stream-copy"], "--jobs cannot be used with --stream-copy"),
])
def test_bad_options_exit_2_with_one_line(clip, tmp_path, args, message):
    result = run("run", str(clip), "--output-dir", str(tmp_path), *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_a_truncated_input_exits_2_saying_where_decoding_stopped(clip, tmp_path):
    truncated = make_truncated(tmp_path / "upload.mp4", clip, 0.3)
    message = one_line_error(run("run", str(truncated), "--output-dir", str(tmp_path / "out"), "--cut", "fixed:2"))
    assert "error: input is truncated or corrupt: decoded " in message and " s of 5.0 s" in message, message
    assert not list((tmp_path / "out").glob("segment_*"))


def test_stream_copy_on_a_single_keyframe_re_encodes_and_says_so(tmp_path):
    single = make_video(tmp_path / "single.mp4", duration=5.0, keyframe_every=1000)
    result = run("run", str(single), "--output-dir", str(tmp_path / "out"), "--cut", "fixed:2", "--stream-copy",
                 "--json")
    assert result.returncode == 0, result.stderr
    assert ("python -m processor: note: re-encoding instead of stream copy: the input's keyframes allow 1 of "
            "the 3 planned segments") in result.stderr
    assert '"event": "stream_copy_declined"' in result.stderr
    assert [round(s["duration"]) for s in json.loads(result.stdout)["segments"]] == [2, 2, 1]


def test_a_caption_no_font_can_draw_exits_2_naming_the_characters(clip, tmp_path):
    result = run("run", str(clip), "--output-dir", str(tmp_path), "--text", "Tibetan \u0f00 here")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "U+0F00 'ༀ' (TIBETAN SYLLABLE OM)" in result.stderr
    assert not list(tmp_path.glob("segment_*"))


def test_errors_never_name_the_job_contracts_fields(clip, tmp_path):
    for args in (["--text", "x" * 501], ["--crf", "52"], ["--job-id", "bad id"], ["--cut", "random:5:2"]):
        message = one_line_error(run("run", str(clip), "--output-dir", str(tmp_path), *args))
        for field in ("text_input", "unique_texts", "cutting_options", "job_id", ": crf"):
            assert field not in message, message


def test_a_directory_given_as_input_is_called_a_directory(tmp_path):
    message = one_line_error(run("run", str(tmp_path), "--output-dir", str(tmp_path / "out")))
    assert message == f"python -m processor: error: {tmp_path}: is a directory; give a video file"


def test_an_existing_file_as_output_dir_is_not_a_directory(clip, tmp_path):
    message = one_line_error(run("run", str(clip), "--output-dir", "/etc/passwd"))
    assert message == "python -m processor: error: --output-dir /etc/passwd: is not a directory"


def test_an_output_dir_that_cannot_be_written_exits_2_before_any_work(clip, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    prefix = tuple(WITHOUT_ROOT_OVERRIDES) if os.geteuid() == 0 else ()
    message = one_line_error(run("run", str(clip), "--output-dir", str(locked), "--text", "hi", prefix=prefix))
    assert message == f"python -m processor: error: --output-dir {locked}: cannot write there (Permission denied)"
    assert list(locked.iterdir()) == []


def test_ctrl_c_mid_encode_exits_130_with_one_line_and_leaves_the_folder_clean(tmp_path):
    video = make_video(tmp_path / "long.mp4", duration=30.0, width=1280, height=720)
    out = tmp_path / "out"
    # A terminal's Ctrl-C signals the whole foreground process group: the command and its ffmpeg.
    process = subprocess.Popen([*COMMAND, "run", str(video), "--output-dir", str(out), "--cut", "fixed:5",
                                "--text", "interrupted"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        wait_until(lambda: running_ffmpeg(process.pid) and any(out.glob("segment_*.mp4")), 90,
                   lambda: f"the encode never started (exit status {process.poll()})")
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert stderr == "python -m processor: interrupted\n"
    assert list(out.iterdir()) == []


def test_missing_input_and_non_video_input_exit_2(tmp_path):
    missing = run("run", str(tmp_path / "nope.mp4"), "--output-dir", str(tmp_path))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    junk = run("run", str(make_not_a_video(tmp_path / "junk.mp4")), "--output-dir", str(tmp_path / "out"))
    assert junk.returncode == 2
    assert len(junk.stderr.strip().splitlines()) == 1 and "Traceback" not in junk.stderr


def test_missing_arguments_exit_2_with_one_line():
    result = run("run")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_output_dir_that_cannot_be_made_exits_2(clip, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run("run", str(clip), "--output-dir", str(blocker / "out"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"python -m processor: error: --output-dir {blocker / 'out'}: Not a directory"


@pytest.mark.parametrize("odd", ["input", "output"])
def test_a_path_that_is_not_utf8_exits_2(clip, tmp_path, odd):
    """Such names exist on Linux file systems; ffmpeg-python cannot carry them (see processor.cli)."""
    latin1 = os.fsencode(tmp_path) + b"/caf\xe9"
    os.mkdir(latin1)
    source = shutil.copy(os.fsencode(clip), latin1 + b"/in.mp4") if odd == "input" else os.fsencode(clip)
    out = latin1 + b"/out" if odd == "output" else os.fsencode(tmp_path / "out")
    result = subprocess.run([sys.executable, "-m", "processor", "run", source, "--output-dir", out],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "not valid UTF-8" in result.stderr, result.stderr
