"""`python -m processor run`, as a user runs it: a real process, real files, real exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from sandbox.media import make_not_a_video, make_video


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "processor", *args], capture_output=True, text=True, timeout=120)


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
])
def test_bad_options_exit_2_with_one_line(clip, tmp_path, args, message):
    result = run("run", str(clip), "--output-dir", str(tmp_path), *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


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
