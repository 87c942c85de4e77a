"""ffmpeg-python 0.2.0 and future 1.0.0 where the processor runs: Python 3.11 to 3.13, and the
future advisory (CVE-2025-50817).

The backend's worker runs Python 3.11, Lambda python3.12 (this suite's own interpreter), and
3.13 is Lambda's other current runtime. ffmpeg-python was last released in 2019 and future
carries Python 2 shims, so each other interpreter runs the built function zip (the processor
and the locked wheels, as the worker installs them too) on a real clip with the pinned ffmpeg.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra import function_package
from infra.mocked import REPO
from processor.binaries import fonts_dir, tool
from sandbox.media import make_video

# A two-segment cut with a caption: ffmpeg.probe, the compiled graph, the runner, the checks.
_CUT = """
import json, sys
from pathlib import Path
sys.path.insert(0, {site!r})
import ffmpeg, future
from processor import engine
from processor.engine import EncodeSettings, cut
from processor.plan import Segment
files = cut(Path({clip!r}), [Segment(0, 0.0, 1.0, "it's: a, [caption]; 100% 你好 مرحبا 🎉"), Segment(1, 1.0, 2.0)],
            Path({out!r}), EncodeSettings(preset="ultrafast"))
print(json.dumps({{"python": sys.version_info[:2], "ffmpeg": ffmpeg.__file__, "engine": engine.__file__, "future": future.__version__,
                  "segments": [[f.path.name, round(f.duration, 3)] for f in files]}}))
"""


def interpreter(version: str) -> str:
    """pythonX.Y from PATH or pyenv; missing, the test fails saying what to install."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{version}"),
                  *sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True).stdout.strip() == version:
            return candidate
    pytest.fail(f"no Python {version} on PATH or in pyenv ({pyenv_root}/versions): install it "
                f"(`pyenv install {version}`) to check the processor on it")


@pytest.fixture(scope="module")
def function_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The function zip, unpacked."""
    target = tmp_path_factory.mktemp("function")
    with zipfile.ZipFile(function_package.build()) as archive:
        archive.extractall(target)
    return target


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("runtimes") / "clip.mp4", duration=2.0)


@pytest.mark.parametrize("version", ["3.11", "3.13"])
def test_the_function_code_cuts_a_video_on(version: str, function_code: Path, clip: Path, tmp_path: Path):
    script = _CUT.format(site=str(function_code), clip=str(clip), out=str(tmp_path / "out"))
    # -I -S: no PYTHON* variables and no installed package, only the zip's contents; warnings
    # are errors (an invalid escape in old code is a SyntaxWarning from 3.12 on).
    binaries = {"FFMPEG_BINARY": tool("ffmpeg"), "FFPROBE_BINARY": tool("ffprobe"), "VIDEO_FONTS_DIR": str(fonts_dir())}
    result = subprocess.run([interpreter(version), "-I", "-S", "-W", "error", "-c", script],
                            capture_output=True, text=True, cwd=tmp_path, env={**os.environ, **binaries})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["python"] == [int(part) for part in version.split(".")]
    assert report["ffmpeg"] == str(function_code / "ffmpeg" / "__init__.py")
    assert report["engine"] == str(function_code / "processor" / "engine.py")
    assert report["future"] == "1.0.0"
    assert [name for name, _ in report["segments"]] == ["segment_000.mp4", "segment_001.mp4"]
    assert [duration for _, duration in report["segments"]] == pytest.approx([1.0, 1.0], abs=0.04)


def test_a_test_module_on_the_path_is_never_imported(tmp_path: Path):
    """CVE-2025-50817: future's install_aliases() runs ``import test``, which would run a
    test.py found first on sys.path. On Python 3 it returns before that line, and neither
    ffmpeg-python nor the processor imports it; here a planted test.py sits in the working
    directory, first on sys.path, while both are used."""
    marker = tmp_path / "imported"
    (tmp_path / "test.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    used = ("import sys; sys.path.insert(0, {repo!r}); import ffmpeg; from processor import command, probe; "
            "from future import standard_library; standard_library.install_aliases(); "
            "print(probe.probe({clip!r}).duration)")
    clip = make_video(tmp_path / "clip.mp4", duration=1.0, audio=False)
    result = subprocess.run([sys.executable, "-c", used.format(repo=str(REPO), clip=str(clip))],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not marker.exists(), "a test.py on sys.path was imported"
    # The same setting does import it when something asks: the check above could have failed.
    subprocess.run([sys.executable, "-c", "import test"], check=True, cwd=tmp_path)
    assert marker.exists()
