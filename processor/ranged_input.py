"""An S3 object as an HTTP URL on loopback, so ffmpeg reads only the bytes it seeks to.

A fan-out item encodes a minute of an hour-long upload: downloading all of it first would cost
every item the whole input's transfer time and /tmp space. ffmpeg's HTTP input seeks with Range
requests (the index first, wherever it is in the file, then the item's first keyframe), and
this server turns each into one ranged S3 GetObject, streamed. It listens on 127.0.0.1 by IP:
the static ffmpeg cannot resolve host names, and nothing else can reach it.

The input's protocols stay limited (processor.command.HTTP_PROTOCOLS): http and tcp only, and the
demuxer is forced to the one the local probe found, so a crafted playlist inside the upload can
never make ffmpeg open another URL.

An S3 failure while ffmpeg reads (a throttle, a 5xx, a read timeout) reaches ffmpeg only as a
connection that ends early, which it reports as a truncated input. The server keeps that
failure, and leaving the ``with`` block with an error re-raises it as what it is: transient
(TransientError, so the step's retry runs the item again) or not (AwsError).
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from processor.aws_errors import AwsError, is_transient
from processor.errors import TransientError

CHUNK_BYTES = 1024 * 1024
# The most one response carries. ffmpeg asks for everything from an offset ("bytes=N-") and
# drops the connection when it seeks; whatever was sent by then (the socket buffers hold
# megabytes) was fetched from S3 for nothing. A response that ends early is allowed: ffmpeg asks
# again from where it ended. 8 MB: one more ranged GET (tens of milliseconds) every 8 MB read.
RESPONSE_LIMIT_BYTES = 8 * 1024 * 1024
# What ffmpeg's http protocol sends: one range, open-ended or closed.
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
PATH = "/input"


class RangedInput:
    """Serves ``s3://bucket/key`` (``size`` bytes, processor.storage.VideoStorage.size) at
    ``url`` while open; ``bytes_served`` counts what ffmpeg read."""

    def __init__(self, s3: Any, bucket: str, key: str, size: int, response_limit: int = RESPONSE_LIMIT_BYTES) -> None:
        self.s3, self.bucket, self.key, self.size = s3, bucket, key, size
        self.response_limit = response_limit
        self.bytes_served = 0
        self.failure: ClientError | BotoCoreError | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "RangedInput":
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close()
        if kind is not None and self.failure is not None:
            what = f"S3 GetObject s3://{self.bucket}/{self.key} while ffmpeg read it: {self.failure}"
            if is_transient(self.failure):
                raise TransientError(what) from self.failure
            raise AwsError(what) from self.failure

    def _failed(self, error: ClientError | BotoCoreError) -> None:
        with self._lock:
            self.failure = error

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _head(self, status: int, start: int, end: int) -> None:
                self.send_response(status)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(end - start + 1))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{source.size}")
                self.end_headers()

            def _bounds(self) -> tuple[int, int, int] | None:
                if self.path.split("?")[0] != PATH:
                    self.send_error(404)
                    return None
                wanted = _RANGE.fullmatch(self.headers.get("Range", "").strip())
                if not wanted:
                    return 200, 0, source.size - 1  # the whole object, as asked (only ever from a test)
                start = int(wanted.group(1))
                end = min(int(wanted.group(2)) if wanted.group(2) else source.size - 1, source.size - 1,
                          start + source.response_limit - 1)
                if start >= source.size or start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{source.size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                return 206, start, end

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                bounds = self._bounds()
                if bounds:
                    self._head(*bounds)

            def do_GET(self) -> None:  # noqa: N802
                bounds = self._bounds()
                if not bounds:
                    return
                status, start, end = bounds
                try:
                    body = source.s3.get_object(Bucket=source.bucket, Key=source.key,
                                                Range=f"bytes={start}-{end}")["Body"]
                except (ClientError, BotoCoreError) as error:
                    source._failed(error)
                    self.send_error(502)
                    return
                self._head(status, start, end)
                try:
                    while True:
                        try:
                            chunk = body.read(CHUNK_BYTES)
                        except BotoCoreError as error:
                            source._failed(error)
                            self.close_connection = True  # ffmpeg sees the response end early
                            return
                        if not chunk:
                            return
                        self.wfile.write(chunk)
                        with source._lock:
                            source.bytes_served += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # ffmpeg seeks by dropping the connection and asking for another range
                finally:
                    body.close()

        return Handler
