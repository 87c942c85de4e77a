"""The functions' code: ``python -m infra.function_package`` builds ``infra/dist/video-processor.zip``
and the rollout guard's ``infra/dist/router-guard.zip``.

The zip holds the ``processor`` package's modules (no tests) and the third-party packages
pinned in ``infra/function-requirements.txt``, installed for Lambda's platform whatever the host:
pip picks wheels by the running interpreter unless told otherwise, and a wheel built for macOS
or for another Python version imports fine on the developer's machine and fails in Lambda.
boto3 is left out on purpose: the python3.12 runtime provides it.

The guard's zip (`build_guard`) holds the ``router`` and ``processor`` modules and nothing else:
it runs `router.scheduled` with the runtime's boto3, and importing the router needs none of
the processor's third-party packages (Celery is imported only to send a task).

Byte-for-byte reproducible (see ``layers.archive``): an unchanged program must show no code
change in `pulumi preview`. Installed trees are cached per lock file, so a preview does not
need the package index once the dependencies were installed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path, PurePosixPath

from infra.artifacts import exclusive
from layers.archive import tree_entries, write_reproducible_zip

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "processor"
ROUTER_SOURCE = HERE.parent / "router"
REQUIREMENTS = HERE / "function-requirements.txt"
DIST = HERE / "dist"
PACKAGE_NAME = "video-processor.zip"
GUARD_PACKAGE_NAME = "router-guard.zip"

# Lambda's platform: python3.12 on Amazon Linux 2023, x86-64 (the only architecture the layer's
# ffmpeg serves). Binary wheels only: an sdist would be built for the host, not for Lambda.
LAMBDA_PLATFORM = ("--platform", "manylinux2014_x86_64", "--implementation", "cp",
                   "--python-version", "3.12", "--only-binary=:all:")
_TEST_DIRS = {"tests", "test"}
# The Celery worker's modules: they import celery (which neither the function nor its zip carries)
# or configure only the worker.
WORKER_ONLY = {"celery_app.py", "redelivery.py", "tasks.py"}


class PackageError(Exception):
    """The dependencies could not be installed as locked (index unreachable, hash mismatch...)."""


def _is_test(path: PurePosixPath) -> bool:
    return (bool(_TEST_DIRS & set(path.parts[:-1])) or path.name == "conftest.py"
            or path.name.startswith("test_") or path.name.endswith("_test.py"))


def _is_host_specific(name: str) -> bool:
    # Bytecode embeds source mtimes, and console scripts in bin/ embed the host interpreter's path:
    # both would make the zip differ from one machine (or one run) to the next.
    parts = PurePosixPath(name).parts
    return parts[0] == "bin" or "__pycache__" in parts or name.endswith((".pyc", ".pyo"))


def source_entries(source: Path = SOURCE, package: str = "processor") -> dict[str, Path]:
    """A package's modules (the processor's by default), keyed by their path in the zip."""
    entries = {}
    for path in source.rglob("*.py"):
        relative = PurePosixPath(path.relative_to(source).as_posix())
        if not _is_test(relative) and relative.name not in WORKER_ONLY:
            entries[f"{package}/{relative}"] = path
    return entries


def _lock_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def _install(target: Path) -> None:
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--no-input",
               "--no-compile", "--require-hashes", *LAMBDA_PLATFORM, "--target", str(target),
               "--requirement", str(REQUIREMENTS)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise PackageError(f"could not install {REQUIREMENTS.name} for Lambda's platform: "
                           f"{result.stderr.strip()[-1500:]}")


def dependencies(dist: Path = DIST) -> Path:
    """The locked dependencies installed for Lambda, from the cache when the lock file is unchanged."""
    installed = dist / f"dependencies-{_lock_digest()}"
    if installed.is_dir():
        return installed
    for stale in dist.glob("dependencies-*"):
        shutil.rmtree(stale)
    staging = Path(tempfile.mkdtemp(prefix=".dependencies-", dir=dist))
    try:
        _install(staging)
        staging.rename(installed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return installed


def build(dist: Path = DIST) -> Path:
    """Build the function's zip into ``dist`` and return its path; the same inputs give the same bytes."""
    dist.mkdir(parents=True, exist_ok=True)
    with exclusive(dist / ".build.lock"):
        installed = dependencies(dist)
        entries = {name: path for name, path in tree_entries(installed).items() if not _is_host_specific(name)}
        entries.update(source_entries())
        return write_reproducible_zip(entries, dist / PACKAGE_NAME)


def build_guard(dist: Path = DIST) -> Path:
    """Build the guard's zip into ``dist``: the router and the processor's modules, no dependencies."""
    dist.mkdir(parents=True, exist_ok=True)
    with exclusive(dist / ".build.lock"):
        return write_reproducible_zip({**source_entries(), **source_entries(ROUTER_SOURCE, "router")}, dist / GUARD_PACKAGE_NAME)


if __name__ == "__main__":
    try:
        print(build())
        print(build_guard())
    except PackageError as error:
        sys.exit(f"function package build failed: {error}")
