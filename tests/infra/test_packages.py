"""The zips Lambda runs: the same bytes on every build, and the function zip's exact contents."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

from infra import function_package
from infra.layer import layer_zip
from layers.ffmpeg import build as ffmpeg_build
from infra.mocked import REPO

# What a wheel may be tagged with to run on Lambda's python3.12 x86-64: pure, or manylinux x86-64 for CPython 3.12.
LAMBDA_TAG = re.compile(r"(py3|py2\.py3|cp312)-none-any|(cp312-cp312|cp3\d+-abi3)-manylinux\w*_x86_64")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def function_zips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two builds from scratch (each installs the locked wheels anew) in separate folders."""
    return (function_package.build(tmp_path_factory.mktemp("first")),
            function_package.build(tmp_path_factory.mktemp("second")))


def locked() -> dict[str, str]:
    """name -> version of every requirement in the lock file, each proven to carry a sha256 hash."""
    text = function_package.REQUIREMENTS.read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = re.match(r"\s*([A-Za-z0-9_.-]+)==(\S+)\s", line)
            assert requirement and re.search(r"--hash=sha256:[0-9a-f]{64}", line), line
            pins[requirement.group(1).lower()] = requirement.group(2)
    return pins


def test_function_zip_is_byte_for_byte_reproducible(function_zips: tuple[Path, Path]):
    first, second = function_zips
    assert first.read_bytes() == second.read_bytes()
    # The zip the program deploys (infra/dist, dependencies from its cache) is the same zip.
    assert sha256(function_package.build()) == sha256(first)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_lock_file_pins_the_versions_of_constraints_txt():
    lines = (REPO / "constraints.txt").read_text().split()
    constraints = {_normal(name): version for name, version in (line.split("==") for line in lines if "==" in line)}
    pins = {_normal(name): version for name, version in locked().items()}
    assert pins == {name: constraints[name] for name in pins}
    # redis for progress, ffmpeg-python and future for the commands, google-genai with what it installs for base_vary; boto3 is the runtime's.
    assert {"redis", "ffmpeg-python", "future", "google-genai", "google-auth", "httpx", "pydantic", "pydantic-core"} <= set(pins)
    assert not {"boto3", "botocore", "celery", "cryptography"} & set(pins)


def test_function_zip_holds_the_processor_and_exactly_the_locked_wheels(function_zips: tuple[Path, Path]):
    with zipfile.ZipFile(function_zips[0]) as archive:
        names = set(archive.namelist())
        on_disk = {f"processor/{path.relative_to(REPO / 'processor').as_posix()}"
                   for path in (REPO / "processor").rglob("*.py") if "__pycache__" not in path.parts}
        worker_only = {"processor/celery_app.py", "processor/redelivery.py", "processor/tasks.py"}
        assert {name for name in names if name.startswith("processor/")} == on_disk - worker_only
        assert "processor/handler.py" in names

        dist_infos = {name.split("/", 1)[0] for name in names if ".dist-info/" in name}
        assert {(_normal(name), version) for name, version in (info.removesuffix(".dist-info").rsplit("-", 1)
                                                               for info in dist_infos)} == {
            (_normal(name), version) for name, version in locked().items()}
        installed = set()
        for dist_info in dist_infos:
            # A wheel lists each of its tags (py2.py3 as py2 and py3): one must be Lambda's.
            tags = [line.removeprefix("Tag: ") for line in archive.read(f"{dist_info}/WHEEL").decode().splitlines()
                    if line.startswith("Tag: ")]
            assert any(LAMBDA_TAG.fullmatch(tag) for tag in tags), (dist_info, tags)
            # Every file the wheel installs is in the zip with the wheel's own hash.
            for path, digest, _ in csv.reader(io.StringIO(archive.read(f"{dist_info}/RECORD").decode())):
                if path.startswith(("../", "bin/")):
                    continue  # console scripts (charset-normalizer's, future's futurize): host-specific, left out on purpose
                installed.add(path)
                if digest:
                    algorithm, expected = digest.split("=", 1)
                    actual = base64.urlsafe_b64encode(hashlib.new(algorithm, archive.read(path)).digest())
                    assert actual.decode().rstrip("=") == expected, path
    # Nothing but the processor and what the locked wheels install.
    assert names - on_disk == installed
    # The processor's tests stay out; a wheel's own modules are part of what it installs (certifi
    # ships two test files; future/tests/ holds base classes of the future package itself).
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")
                or (name.startswith("processor/") and "/tests/" in name)
                or name.startswith(("bin/", "boto3/", "botocore/"))]
    assert sorted(name for name in names if name.startswith("future/tests/")) == [
        "future/tests/__init__.py", "future/tests/base.py"]
    # /var/task is first on Lambda's sys.path: a top-level test module there is what
    # CVE-2025-50817 (future) would import (see docs/deploying.md).
    assert not [name for name in names if name == "test.py" or name.startswith("test/")]


def test_function_and_layer_fit_lambdas_size_limits(function_zips: tuple[Path, Path]):
    """50 MB zipped for the function's direct upload; 250 MB unzipped for the function and its layers."""
    with zipfile.ZipFile(function_zips[0]) as function, zipfile.ZipFile(layer_zip().path) as layer:
        unzipped = sum(info.file_size for archive in (function, layer) for info in archive.infolist())
    assert function_zips[0].stat().st_size < 50 * 1024 * 1024
    assert unzipped < 250 * 1024 * 1024


def test_tests_never_enter_the_function_zip(tmp_path: Path):
    for name in ("__init__.py", "handler.py", "sub/module.py", "tests/test_handler.py", "test/helpers.py",
                 "test_engine.py", "engine_test.py", "conftest.py", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert set(function_package.source_entries(tmp_path)) == {
        "processor/__init__.py", "processor/handler.py", "processor/sub/module.py"}


def test_vendored_packages_import_from_the_zip_alone(function_zips: tuple[Path, Path], tmp_path: Path):
    with zipfile.ZipFile(function_zips[0]) as archive:
        archive.extractall(tmp_path)
    # -I -S: no site-packages and no environment, so only the standard library and the zip.
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import redis, ffmpeg, future, processor.command; "
            "from google import genai; from google.auth import aws; import processor.text_model; "
            "print(redis.__file__, redis.__version__, ffmpeg.__file__, future.__file__, future.__version__, "
            "genai.__file__, genai.__version__)")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "redis" / "__init__.py"), locked()["redis"],
                                     str(tmp_path / "ffmpeg" / "__init__.py"),
                                     str(tmp_path / "future" / "__init__.py"), locked()["future"],
                                     str(tmp_path / "google" / "genai" / "__init__.py"), locked()["google-genai"]]


# Lambda's python3.12 runtime provides these; nothing else outside the zip may be imported.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")


def test_guard_zip_holds_only_the_router_and_the_processor_and_is_reproducible(tmp_path: Path):
    first, second = function_package.build_guard(tmp_path / "a"), function_package.build_guard(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
    assert {name.split("/")[0] for name in names} == {"router", "processor"}
    assert "router/scheduled.py" in names and "processor/contract.py" in names
    assert not any("tasks.py" in name or "__pycache__" in name for name in names)


def test_guard_zip_runs_the_guard_with_the_runtimes_packages_alone(tmp_path: Path, aws):
    flags_parameter = "/video-processor/router-flags"
    with zipfile.ZipFile(function_package.build_guard(tmp_path / "dist")) as archive:
        archive.extractall(tmp_path / "code")
    boto3.client("dynamodb").create_table(
        TableName="jobs", KeySchema=[{"AttributeName": "video_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "video_id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    boto3.client("ssm").put_parameter(Name=flags_parameter, Type="String", Value='{"phase": "canary"}')
    blocker = (f"import sys\nclass Only:\n    def find_spec(self, name, path, target=None):\n"
               f"        if path is None and name not in sys.stdlib_module_names and name not in {RUNTIME_PACKAGES!r} "
               f"and name not in ('router', 'processor'):\n"
               f"            raise ImportError('not in Lambda: ' + name)\n"
               f"sys.meta_path.insert(0, Only())\nsys.path.insert(0, {str(tmp_path / 'code')!r})\n"
               "import json, router.scheduled\n"
               "print(router.scheduled.__file__)\n"
               "print(json.dumps(router.scheduled.lambda_handler({'window_minutes': 30}, None)))\n")
    result = subprocess.run([sys.executable, "-I", "-c", blocker], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "DYNAMODB_TABLE_NAME": "jobs", "ROUTER_FLAGS_PARAMETER": flags_parameter}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    where, answer = result.stdout.splitlines()[-2:]
    assert where == str(tmp_path / "code" / "router" / "scheduled.py")
    assert json.loads(answer) == {"verdict": "insufficient", "changes": {}, "applied": False,
                                  "note": "no change to make",
                                  "reason": "too few jobs to compare (lambda finished 0, celery finished 0; the guard "
                                            "needs 20 on each)"}
    verdict = boto3.client("ssm").get_parameter(Name=flags_parameter + "-guard")["Parameter"]["Value"]
    assert json.loads(verdict)["verdict"] == "insufficient"


def test_layer_zip_is_byte_for_byte_reproducible(tmp_path: Path):
    deployed = layer_zip()
    assert deployed.path == ffmpeg_build.LAYER_ZIP
    rebuilt = ffmpeg_build.build(dist=tmp_path, force=True)
    assert rebuilt != deployed.path
    assert sha256(rebuilt) == deployed.sha256
