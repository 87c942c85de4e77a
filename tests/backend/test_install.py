"""The supported install: `make wheel`'s wheel in a fresh Python 3.11 virtualenv, the backend's pins kept.

As docs/router.md has the backend do it: one pip run with the backend's pins
(constraints/backend.txt standing in for its requirements.txt) and the wheel with its extras.
Then, from outside this checkout, the installed router dispatches a job and the installed
worker (Celery 5.3.4) runs it to completion, against the moto server and a real Redis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from processor.binaries import fonts_dir, tool
from sandbox import backend
from sandbox.media import make_video
from sandbox.servers import ServerUnavailable
from sandbox.workers import celery_worker
from tests.backend.conftest import BACKEND_PINS, BACKEND_UNPINNED, REPO, ROUTER_SIDE, adopted_changes, backend_pins, normalized
from tests.jobworld import queue_job

# What a virtualenv holds before anything is installed into it.
VENV_TOOLS = {"pip", "setuptools", "wheel"}

# Run by the fresh virtualenv's Python in an empty folder: the names docs/router.md imports.
DISPATCH = """
import json, sys
from router import DispatchError, check_environment, dispatch as dispatch_video
import processor.tasks  # what the worker service imports

settings = check_environment()
decision = dispatch_video(json.loads(sys.argv[1]))
print(json.dumps({"backend": decision.backend, "reason": decision.reason, "queue": settings.celery_queue,
                  "router": __import__("router").__file__}))
"""


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = run(["bash", str(REPO / "scripts" / "build_wheel.sh"), str(out)], env={**os.environ, "PYTHON": sys.executable})
    return Path(built.stdout.strip())


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtualenv on the backend's Python with the backend's pins and the wheel: its python."""
    venv = tmp_path_factory.mktemp("backend-venv")
    run([sys._base_executable, "-m", "venv", str(venv)])  # the interpreter, not .venv-backend
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", "-c", str(BACKEND_PINS),
         f"{wheel}[router,worker]"])
    return python


def test_the_wheel_holds_the_router_and_the_processor_only(wheel):
    with zipfile.ZipFile(wheel) as archive:
        top = {name.split("/", 1)[0] for name in archive.namelist()}
        metadata = archive.read(next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA")))
    assert top == {"router", "processor", wheel.name.split("-py3")[0] + ".dist-info"}
    assert b"Requires-Python: >=3.11" in metadata


def test_installing_it_moves_none_of_the_backends_pins_and_adds_nothing(installed):
    run([str(installed), "-m", "pip", "check"])
    listed = json.loads(run([str(installed), "-m", "pip", "list", "--format=json",
                             "--disable-pip-version-check"]).stdout)
    versions = {normalized(entry["name"]): entry["version"] for entry in listed}
    assert versions.pop("lambda-video-processor") == "0.1.0"
    pins = backend_pins()
    outside = {name: version for name, version in versions.items()
               if name not in VENV_TOOLS and name not in pins and name not in BACKEND_UNPINNED}
    assert outside == {}, "the wheel pulled packages the backend does not pin"
    moved = {name: (version, pins[name]) for name, version in versions.items() if name in pins and version != pins[name]}
    assert moved == {}
    for name in ("boto3", "botocore", "celery", "kombu", "redis"):
        assert name in versions, f"{name} is not installed"


def test_adopting_the_worker_changes_one_requirement_of_the_backend_and_none_it_must_keep():
    """docs/router.md, step 1: google-genai 0.3.0 to 1.46.0 for base_vary, and what that brings."""
    assert adopted_changes() == {"google-genai": "0.3.0", "httpcore": None, "httpx": None, "tenacity": None}
    assert not set(adopted_changes()) & set(ROUTER_SIDE)


def test_the_installed_router_dispatches_and_the_installed_worker_runs_the_job(
        installed, backend_world, redis_url, celery_queue, job_id, tmp_path, monkeypatch):
    # The Railway variables (the backend's names), in a folder where this checkout is not importable.
    for name in ("S3_BUCKET_NAME", "DYNAMODB_TABLE_NAME", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    env = {**os.environ, "AWS_BUCKET_NAME": backend_world.bucket, "REDIS_URL": redis_url, "ROUTER_PHASE": "celery",
           "VIDEO_PROCESSOR_FUNCTION_NAME": "easy-video-share-video-processor",
           "VIDEO_PROCESSOR_CELERY_QUEUE": celery_queue.name, "PYTHONPATH": ""}
    clip = make_video(tmp_path / "clip.mp4", duration=3.0)
    queued = queue_job(backend_world, clip, job_id)
    request = {"job_id": job_id, "s3_key": queued.s3_key, "user_id": "user-1",
               "cutting_options": {"type": "fixed", "duration_seconds": 1}}
    work = tmp_path / "elsewhere"
    work.mkdir()

    dispatched = json.loads(run([str(installed), "-c", DISPATCH, json.dumps(request)], env=env, cwd=work).stdout)
    assert (dispatched["backend"], dispatched["queue"]) == ("celery", celery_queue.name)
    assert dispatched["router"].startswith(str(installed.parent.parent))  # the wheel's copy, not this checkout

    # The worker service's image has ffmpeg and a font of its own; here, the pinned ones.
    worker_env = {**env, "FFMPEG_BINARY": tool("ffmpeg"), "FFPROBE_BINARY": tool("ffprobe"), "VIDEO_FONTS_DIR": str(fonts_dir())}
    try:
        with celery_worker(worker_env, tmp_path / "worker.log", python=str(installed), cwd=work):
            row = queued.wait_for("COMPLETED")
    except ServerUnavailable as error:
        pytest.fail(str(error))
    assert row["output_s3_urls"] == queued.segment_keys() and len(row["output_s3_urls"]) == 3
    assert row["processed_by"] == "celery" and backend.get_job_row(job_id)["processing_backend"] == "celery"
    assert "celery@" in (tmp_path / "worker.log").read_text() and "v5.3.4" in (tmp_path / "worker.log").read_text()
