"""Real servers on loopback: a moto server (AWS) and a Redis server, started as processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from typing import Iterator

LOCAL_REGION = "us-east-1"
SYSTEM_REDIS = ("127.0.0.1", 6379)


class ServerUnavailable(RuntimeError):
    """A server the caller needs could not be started; the message says what is missing."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(check, what: str, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailable(f"{what} exited with status {process.returncode} while starting")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.05)
    raise ServerUnavailable(f"{what} did not answer within {timeout:.0f} s")


def stop_process(process: subprocess.Popen, timeout: float = 5.0) -> None:
    """Terminate, and kill if it has not exited within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class MotoServer:
    endpoint: str

    def environment(self) -> dict[str, str]:
        """Variables that point every boto3 client at this server (and never at real AWS)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_REGION": LOCAL_REGION,
        }

    def reset(self) -> None:
        """Forget every resource (moto's own reset API)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()


@contextlib.contextmanager
def moto_server(environment: dict[str, str] | None = None) -> Iterator[MotoServer]:
    """A moto server process on a free loopback port (with DynamoDB's atomic writes: `sandbox.moto_launcher`);
    ``environment``: variables added to its own (e.g. ``MOTO_PORT``, see `sandbox.step_functions`)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "sandbox.moto_launcher", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, **environment} if environment else None)
    try:
        _wait(lambda: urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).status == 200,
              "moto server", process)
        yield MotoServer(endpoint)
    finally:
        stop_process(process)


def _redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(system: tuple[str, int] | None = SYSTEM_REDIS) -> Iterator[str]:
    """The machine's Redis (``system``) when it answers, else (or with None) a private redis-server.

    A private one lets a test use fixed names, such as Celery's default queue, that other tests
    sharing the machine's Redis could also be using.
    """
    if system is not None and _redis_answers(*system):
        yield f"redis://{system[0]}:{system[1]}"
        return
    binary = shutil.which("redis-server")
    if not binary:
        raise ServerUnavailable("no Redis on 127.0.0.1:6379 and no redis-server binary "
                                "(run scripts/bootstrap.sh, which installs it from Debian)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="redis-") as workdir:
        process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                    "--appendonly", "no", "--dir", workdir],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(lambda: _redis_answers("127.0.0.1", port), "redis-server", process)
            yield f"redis://127.0.0.1:{port}"
        finally:
            stop_process(process)


def apply_environment(values: dict[str, str]) -> None:
    os.environ.update(values)
