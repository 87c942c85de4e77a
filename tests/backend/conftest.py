"""The backend's side, tested where the backend runs: Python 3.11 with its pins (.venv-backend).

`make test` runs this folder (and tests/router, tests/test_celery_worker.py) with
``.venv-backend/bin/python``; anywhere else every test here fails, saying so. The router's
fixtures (moto's Lambda, the fault proxies, a private Celery queue) are shared from
tests/router.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from tests.router.conftest import celery_queue, lambda_function, lambda_proxy, s3_proxy  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[2]
BACKEND_PINS = REPO / "constraints" / "backend.txt"
BACKEND_PYTHON = (3, 11)
# What the router and the worker import: each must be installed, at the backend's version.
ROUTER_SIDE = ("boto3", "botocore", "celery", "kombu", "redis", "pydantic", "fastapi")
# In the backend's requirements without a version (so not in constraints/backend.txt).
BACKEND_UNPINNED = frozenset({"anyio"})


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def backend_pins() -> dict[str, str]:
    """The backend's pins, as adopting the worker leaves them (constraints/backend.txt)."""
    return {name: version for name, (version, _) in _pin_lines().items()}


def adopted_changes() -> dict[str, str | None]:
    """The lines adoption changes: the version each had before, or None for a package it adds."""
    return {name: note.removeprefix("was ").split(" ", 1)[0] if note.startswith("was ") else None
            for name, (_, note) in _pin_lines().items() if note is not None}


def _pin_lines() -> dict[str, tuple[str, str | None]]:
    pins = {}
    for line in BACKEND_PINS.read_text().splitlines():
        requirement, _, comment = line.partition("#")
        if requirement.strip():
            name, version = requirement.strip().split("==")
            note = comment.strip()
            pins[normalized(name)] = (version, note.removeprefix("adopted: ") if note.startswith("adopted: ") else None)
    return pins


def environment_problems() -> list[str]:
    problems = []
    if sys.version_info[:2] != BACKEND_PYTHON:
        problems.append(f"Python {sys.version_info[0]}.{sys.version_info[1]} runs, not 3.11 (python:3.11-slim)")
    pins = backend_pins()
    for distribution in importlib.metadata.distributions():
        name = normalized(distribution.metadata["Name"])
        if name in pins and distribution.version != pins[name]:
            problems.append(f"{name} {distribution.version} is installed, the backend pins {pins[name]}")
    for name in ROUTER_SIDE:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed")
    return problems


@pytest.fixture(scope="session", autouse=True)
def backend_environment() -> None:
    problems = environment_problems()
    if problems:
        pytest.fail("tests/backend runs in the backend's environment, .venv-backend (`make test` runs it there: "
                    "`.venv-backend/bin/python -m pytest tests/backend`): " + "; ".join(problems), pytrace=False)
