"""Benchmark the router's own cost per job, beside trivial baselines measured in the same run.

    python -m bench.router_bench [--calls N]

`decide()` is timed on each of its paths. `dispatch()` is timed with flags cached and with
in-process stand-ins for the Lambda client, the Celery app and the job table that answer at
once, so the figure is the router's overhead beyond the network calls (request conversion,
validation against the job contract, the event and its size check, the record's arguments,
the JSON log line, the counters). A last measurement reads the flags from the cache, and with
the cache always due, where every read waits for a refresh on the refresher thread (what the
first request after the cache time pays, beyond the source's own answer). Prints a Markdown
section for bench/README.md.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import platform
import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any

from router import Router, RouterFlags, decide
from router.backends import CeleryBackend, LambdaBackend
from router.flags import MB
from router.live_flags import LiveFlags
from router.record import JobTable
from router.sources import StaticSource
from tests.router.backend_models import CompleteUploadRequest, FixedCuttingParams, TextInput, TextStrategy

REQUEST = {
    "job_id": "5b0e8c1e-4d8f-4a51-9d36-3f1f3c1c9a10", "s3_key": "uploads/user-1/video.mp4", "user_id": "user-1",
    "file_size": 80 * MB, "cutting_options": {"type": "fixed", "duration_seconds": 30},
    "text_strategy": "one_for_all",
    "text_input": {"strategy": "one_for_all", "base_text": "Hello", "context": None, "unique_texts": []},
}
MODEL = CompleteUploadRequest(
    job_id=REQUEST["job_id"], s3_key=REQUEST["s3_key"], user_id="user-1", file_size=80 * MB,
    cutting_options=FixedCuttingParams(duration_seconds=30), text_strategy=TextStrategy.ONE_FOR_ALL,
    text_input=TextInput(strategy=TextStrategy.ONE_FOR_ALL, base_text="Hello", unique_texts=[]))
CANARY = RouterFlags(phase="canary", lambda_percent=25, lambda_users=[f"user-{i}" for i in range(2, 200)],
                     celery_users=[f"vip-{i}" for i in range(100)], version="ssm:7")


class _InstantLambda:
    def invoke(self, **_: Any) -> dict[str, Any]:
        return {"StatusCode": 202, "Payload": io.BytesIO()}


class _InstantCelery:
    def send_task(self, *_: Any, **__: Any) -> None:
        return None


class _InstantTable:
    name = "jobs"

    def update_item(self, **_: Any) -> dict[str, Any]:
        return {}



def _per_call_us(action: Callable[[], Any], calls: int) -> float:
    """Median over 5 runs of the mean time per call, in microseconds."""
    runs = timeit.repeat(action, number=calls, repeat=5)
    return statistics.median(runs) / calls * 1e6


def _router(backend: str) -> Router:
    flags = LiveFlags([StaticSource({"phase": backend})], ttl=3600)
    flags.current()  # the first load; every call after it reads the cache
    return Router(flags=flags, lambda_backend=LambdaBackend("video-processor", _InstantLambda()),
                  celery_backend=CeleryBackend(app=_InstantCelery()), table=JobTable(_InstantTable()),
                  bucket="easy-video-share-videos")


def _read_latencies(live: LiveFlags, seconds: float = 0.5) -> list[float]:
    live.current()
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        live.current()
        latencies.append((time.perf_counter() - start) * 1e6)
    return sorted(latencies)


def _refresh_rows() -> list[tuple[str, list[float]]]:
    """Flag reads with a fresh cache, and with a cache that is due on every read."""
    fresh = LiveFlags([StaticSource({"phase": "canary"})], ttl=3600)
    due = LiveFlags([StaticSource({"phase": "canary"})], ttl=0.0)
    return [("flags cached, no refresh", _read_latencies(fresh)),
            ("flags due on every read, a source answering at once", _read_latencies(due))]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def measure(calls: int) -> list[tuple[str, float]]:
    lambda_router, celery_router = _router("lambda"), _router("celery")
    kill = RouterFlags(kill_switch=True)
    big = dict(REQUEST, file_size=900 * MB)
    allowed = dict(REQUEST, user_id="user-7")
    return [
        ("baseline: empty function call", _per_call_us(lambda: None, calls)),
        ("baseline: copy of the request dict", _per_call_us(lambda: dict(REQUEST), calls)),
        ("decide(): kill switch (first rule)", _per_call_us(lambda: decide(REQUEST, kill), calls)),
        ("decide(): user list (lambda_users)", _per_call_us(lambda: decide(allowed, CANARY), calls)),
        ("decide(): size limit", _per_call_us(lambda: decide(big, CANARY), calls)),
        ("decide(): canary rollout (salted hash, last rule)", _per_call_us(lambda: decide(REQUEST, CANARY), calls)),
        ("decide(): canary rollout, pydantic request", _per_call_us(lambda: decide(MODEL, CANARY), calls)),
        ("dispatch() overhead: to Lambda, dict request", _per_call_us(lambda: lambda_router.dispatch(REQUEST),
                                                                      calls // 10)),
        ("dispatch() overhead: to Celery, dict request", _per_call_us(lambda: celery_router.dispatch(REQUEST),
                                                                      calls // 10)),
        ("dispatch() overhead: to Lambda, pydantic request", _per_call_us(lambda: lambda_router.dispatch(MODEL),
                                                                          calls // 10)),
    ]


def report(rows: list[tuple[str, float]], refresh: list[tuple[str, list[float]]], calls: int) -> str:
    lines = ["## Router", "",
             f"`python -m bench.router_bench` on {_machine()}. Median of 5 runs of {calls:,} calls "
             f"({calls // 10:,} for dispatch), microseconds per call. dispatch() runs with flags cached and "
             "in-process stand-ins for Lambda, Celery and DynamoDB that answer at once, with the decision's "
             "JSON log line written (INFO) to /dev/null.", "",
             "| operation | µs per call |", "|---|---:|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in rows]
    lines += ["", "Reading the flags for 0.5 s in a loop (`LiveFlags.current()`, µs per read; the maximum is "
                  "whatever the OS and the GIL's 5 ms switch interval do to one read):", "",
              "| while | reads | median | p99 | max |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {len(values):,} | {statistics.median(values):.2f} | "
              f"{values[int(len(values) * 0.99)]:.2f} | {values[-1]:.0f} |" for name, values in refresh]
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.router_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls per timing run (default 100000)")
    args = parser.parse_args()
    logger = logging.getLogger("router")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    with open(os.devnull, "w") as devnull:
        logger.addHandler(logging.StreamHandler(devnull))
        rows = measure(args.calls)
        refresh = _refresh_rows()
    print(report(rows, refresh, args.calls))


if __name__ == "__main__":
    main()
