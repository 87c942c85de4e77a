"""A local stand-in for AWS Lambda that runs the built artifacts the way Lambda runs them.

It serves Lambda's Invoke API on loopback, so the router's unmodified boto3 client reaches it
through ``AWS_ENDPOINT_URL_LAMBDA``. Async invocations (``InvocationType=Event``) answer 202 at
once and queue the event; a function error is retried (twice by default, after short delays
instead of Lambda's minutes) and then handed to an on-failure list, as an on-failure
destination would receive it.

Each attempt runs in a fresh process shaped like the Lambda runtime, in a private mount
namespace: the function zip unpacked read-only at /var/task, the layer zips at /opt (so
/opt/bin/ffmpeg is the shipped binary), boto3 alone at /var/runtime, a private /tmp, no fonts
and no fontconfig setup (the host's are hidden), the standard library of the runtime's Python
and no site-packages, and only Lambda's own variables plus the function's declared
environment. What passes here is what `pulumi up` ships.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import unquote

ASYNC_PAYLOAD_LIMIT = 1024 * 1024  # bytes, since October 2025
# What Lambda's Python runtime provides besides the standard library.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
LAMBDA_PATH = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"
_MOUNT_SCRIPT = """set -e
mkdir -p /var/task /var/runtime
mount --bind "$1" /opt
mount --bind "$2" /var/task
mount -o remount,ro,bind /var/task
mount --bind "$3" /var/runtime
mount --bind "$4" /tmp
# Lambda's runtime has no fonts and no fontconfig setup: hide the host's.
for fonts in /etc/fonts /usr/share/fonts /usr/local/share/fonts; do
    if [ -d "$fonts" ]; then mount -t tmpfs -o ro none "$fonts"; fi
done
shift 4
exec "$@"
"""


class InvokerUnavailable(RuntimeError):
    """The machine cannot run the Lambda-shaped process (e.g. no mount namespaces)."""


def runtime_python() -> str:
    """The interpreter itself, not a virtualenv's link to it: the process gets no site-packages,
    and a checkout under /tmp would vanish behind the private /tmp."""
    python = os.path.realpath(sys.executable)
    if python.startswith("/tmp/"):
        raise InvokerUnavailable(f"the Python interpreter {python} lives under /tmp, which Lambda's /tmp hides")
    return python


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    code_zip: Path
    layer_zips: tuple[Path, ...]
    handler: str
    environment: dict[str, str]
    timeout_seconds: float = 900
    memory_mb: int = 3008
    max_retry_attempts: int = 2
    retry_delays: tuple[float, ...] = (1.0, 2.0)

    @classmethod
    def declared(cls, inputs: Mapping[str, Any], environment: Mapping[str, str], code_zip: Path, layer_zip: Path,
                 **overrides: Any) -> "FunctionSpec":
        """The function as the Pulumi program declares it: its ``aws:lambda/function`` inputs and environment."""
        settings = {"timeout_seconds": inputs["timeout"], "memory_mb": inputs["memorySize"], **overrides}
        return cls(name=inputs["name"], code_zip=code_zip, layer_zips=(layer_zip,), handler=inputs["handler"],
                   environment=dict(environment), **settings)


@dataclass
class Invocation:
    request_id: str
    event: Any
    attempts: int = 0
    status: str = "queued"  # queued | running | succeeded | failed
    result: Any = None
    error: dict | None = None
    logs: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _unzip(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            path = zipped.extract(info, target)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(path, mode)


def _copy_runtime_packages(target: Path) -> None:
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise InvokerUnavailable(f"{name} is not installed; it stands for Lambda's runtime copy")
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, target / origin.parent.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, target / origin.name)


class LocalLambda:
    def __init__(self, spec: FunctionSpec, aws_environment: dict[str, str], workdir: Path,
                 concurrency: int = 2, on_failure: Callable[[Invocation], None] | None = None) -> None:
        if not shutil.which("unshare"):
            raise InvokerUnavailable("`unshare` (util-linux) is needed to mount the layer at /opt")
        self.spec = spec
        self.python = runtime_python()
        self.aws_environment = aws_environment
        self.workdir = workdir
        self.on_failure = on_failure
        self.invocations: dict[str, Invocation] = {}
        self.failures: list[Invocation] = []
        self._queue: queue.Queue[Invocation | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Condition()
        self._prepare()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._http_handler())
        self._threads = [threading.Thread(target=self._server.serve_forever, daemon=True)]
        self._threads += [threading.Thread(target=self._work, daemon=True) for _ in range(concurrency)]
        for thread in self._threads:
            thread.start()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.aws_environment.get('AWS_REGION', 'us-east-1')}:123456789012:function:{self.spec.name}"

    def _prepare(self) -> None:
        for name in ("task", "opt", "runtime", "logs"):
            shutil.rmtree(self.workdir / name, ignore_errors=True)
            (self.workdir / name).mkdir(parents=True)
        _unzip(self.spec.code_zip, self.workdir / "task")
        for layer in self.spec.layer_zips:  # later layers overwrite earlier ones, as in Lambda
            _unzip(layer, self.workdir / "opt")
        _copy_runtime_packages(self.workdir / "runtime")
        shutil.copy2(Path(__file__).with_name("lambda_bootstrap.py"), self.workdir / "runtime" / "bootstrap.py")

    # --- the Invoke API -------------------------------------------------------------------
    def invoke_async(self, event: Any, request_id: str | None = None) -> str:
        invocation = Invocation(request_id or str(uuid.uuid4()), event)
        self.invocations[invocation.request_id] = invocation
        self._enqueue(invocation)
        return invocation.request_id

    def redeliver(self, request_id: str) -> Invocation:
        """Deliver an event again, as Lambda's at-least-once async delivery sometimes does."""
        duplicate = Invocation(request_id, self.invocations[request_id].event)
        self._enqueue(duplicate)
        return duplicate

    def invoke_sync(self, event: Any) -> Invocation:
        invocation = Invocation(str(uuid.uuid4()), event)
        self.invocations[invocation.request_id] = invocation
        self._run(invocation)
        return invocation

    def wait_idle(self, timeout: float = 600) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self._pending == 0, timeout):
                raise TimeoutError(f"{self._pending} invocations still pending after {timeout} s")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for _ in self._threads[1:]:
            self._queue.put(None)

    def __enter__(self) -> "LocalLambda":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _enqueue(self, invocation: Invocation, delay: float = 0.0) -> None:
        with self._lock:
            self._pending += 1
        if delay:
            threading.Timer(delay, self._queue.put, (invocation,)).start()
        else:
            self._queue.put(invocation)

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1
            self._lock.notify_all()

    def _work(self) -> None:
        while (invocation := self._queue.get()) is not None:
            try:
                self._run(invocation)
                if invocation.status == "failed":
                    if invocation.attempts <= self.spec.max_retry_attempts:
                        delays = self.spec.retry_delays or (0.0,)
                        self._enqueue(invocation, delays[min(invocation.attempts - 1, len(delays) - 1)])
                    else:
                        self.failures.append(invocation)
                        if self.on_failure:
                            self.on_failure(invocation)
            finally:
                self._done()

    # --- one attempt in a Lambda-shaped process --------------------------------------------
    def _environment(self, request_id: str, deadline_ms: int, result_fd: int) -> dict[str, str]:
        region = self.aws_environment.get("AWS_REGION", "us-east-1")
        return {
            **self.aws_environment,
            "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime",
            "_HANDLER": self.spec.handler, "PATH": LAMBDA_PATH, "LANG": "en_US.UTF-8", "TZ": ":UTC",
            **self.spec.environment,
            # A function that calls Lambda (the scheduled sweep re-invokes itself) reaches this invoker.
            "AWS_ENDPOINT_URL_LAMBDA": self.endpoint,
            "_REQUEST_ID": request_id, "_DEADLINE_MS": str(deadline_ms), "_RESULT_FD": str(result_fd),
        }

    def _run(self, invocation: Invocation) -> None:
        invocation.attempts += 1
        invocation.status = "running"
        log_path = self.workdir / "logs" / f"{invocation.request_id}-{invocation.attempts}.log"
        invocation.logs.append(log_path)
        tmp = self.workdir / f"tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        started = time.monotonic()
        deadline_ms = int((time.time() + self.spec.timeout_seconds) * 1000)
        read_end, write_end = os.pipe()
        received: list[bytes] = []
        timed_out = False
        command = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _MOUNT_SCRIPT, "sh",
                   str(self.workdir / "opt"), str(self.workdir / "task"), str(self.workdir / "runtime"), str(tmp),
                   self.python, "-S", "/var/runtime/bootstrap.py"]
        try:
            with log_path.open("wb") as log:
                process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                           env=self._environment(invocation.request_id, deadline_ms, write_end),
                                           pass_fds=(write_end,), cwd="/")
                os.close(write_end)
                process.stdin.write(json.dumps(invocation.event).encode())
                process.stdin.close()
                with os.fdopen(read_end, "rb") as results:
                    reader = threading.Thread(target=lambda: received.append(results.read()))
                    reader.start()
                    try:
                        process.wait(timeout=self.spec.timeout_seconds + 1)
                    except subprocess.TimeoutExpired:
                        timed_out = True
                        process.kill()
                        process.wait()
                    reader.join()
            raw = b"".join(received)
            outcome = json.loads(raw) if raw else None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        invocation.seconds = round(time.monotonic() - started, 2)
        if outcome and "result" in outcome:
            invocation.status, invocation.result, invocation.error = "succeeded", outcome["result"], None
        else:
            invocation.status = "failed"
            invocation.error = (outcome or {}).get("error") or {
                "errorType": "Sandbox.Timedout" if timed_out else "Runtime.ExitError",
                "errorMessage": (f"Task timed out after {self.spec.timeout_seconds} seconds" if timed_out else
                                 f"process exited with {process.returncode}; see {log_path}"),
            }

    def _http_handler(self) -> type[BaseHTTPRequestHandler]:
        invoker = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # the invocations list is the record
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, error_type: str, message: str) -> None:
                self._reply(status, json.dumps({"Type": "User", "message": message}).encode(),
                            {"x-amzn-ErrorType": error_type, "Content-Type": "application/json"})

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                # An ARN as the function's name arrives percent-encoded (arn%3Aaws%3Alambda...).
                parts = [unquote(part) for part in self.path.split("?")[0].strip("/").split("/")]
                if len(parts) != 4 or parts[:2] != ["2015-03-31", "functions"] or parts[3] != "invocations":
                    return self._error(404, "UnknownOperationException", f"unknown path {self.path}")
                name = parts[2].split(":")[-1] if parts[2].startswith("arn:") else parts[2]
                if name != invoker.spec.name:
                    return self._error(404, "ResourceNotFoundException", f"Function not found: {parts[2]}")
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
                if kind == "Event":
                    if len(body) > ASYNC_PAYLOAD_LIMIT:
                        return self._error(413, "RequestEntityTooLargeException",
                                           f"payload of {len(body)} bytes exceeds {ASYNC_PAYLOAD_LIMIT}")
                    request_id = invoker.invoke_async(json.loads(body or b"null"))
                    return self._reply(202, headers={"x-amzn-RequestId": request_id})
                if kind == "DryRun":
                    return self._reply(204)
                invocation = invoker.invoke_sync(json.loads(body or b"null"))
                headers = {"x-amzn-RequestId": invocation.request_id, "X-Amz-Executed-Version": "$LATEST"}
                if invocation.status == "failed":
                    headers["X-Amz-Function-Error"] = "Unhandled"
                    return self._reply(200, json.dumps(invocation.error).encode(), headers)
                return self._reply(200, json.dumps(invocation.result).encode(), headers)

        return Handler
