"""Step Functions locally: moto's own interpreter, its Lambda tasks run by the local Lambda.

moto runs a state machine's executions (LocalStack's ASL interpreter) once its configuration
says ``stepfunctions.execute_state_machine``, set in server mode through ``/moto-api/config``.
Its task integrations build their boto3 clients with ``endpoint_url=http://localhost:{MOTO_PORT}``
(moto's ``asl/utils/boto_client.py``), and moto's own Lambda never runs code. So the moto server
is started with ``MOTO_PORT`` naming a small front proxy instead of itself: Lambda's Invoke path
goes to the local invoker (sandbox/lambda_invoker.py, which runs the built zips), every other
request to moto.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import urlsplit

from sandbox.servers import MotoServer, free_port, moto_server

INVOKE_PATH = re.compile(r"/2015-03-31/functions/[^/]+/invocations")
# Headers http.client sets itself, or that describe the hop rather than the message.
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding", "keep-alive"})


class FrontProxy:
    """Forwards each request to moto, or Lambda's Invoke API to ``lambda_endpoint`` once set."""

    def __init__(self, port: int) -> None:
        self.moto_endpoint: str | None = None
        self.lambda_endpoint: str | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _target(self, path: str) -> str:
        if self.lambda_endpoint and INVOKE_PATH.fullmatch(path.split("?")[0]):
            return self.lambda_endpoint
        if self.moto_endpoint is None:
            raise RuntimeError("the front proxy has no moto server behind it yet")
        return self.moto_endpoint

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                target = urlsplit(proxy._target(self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_HEADERS}
                # A Lambda task waits for its whole invocation: no timeout of the proxy's own.
                connection = http.client.HTTPConnection(target.hostname, target.port)
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                    self.send_response(response.status)
                    for name, value in response.getheaders():
                        if name.lower() not in _HOP_HEADERS:
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    connection.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward  # noqa: N815

        return Handler


def enable_executions(endpoint: str) -> None:
    """moto's config: run state machines instead of only recording their executions."""
    request = urllib.request.Request(f"{endpoint}/moto-api/config", method="POST",
                                     data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


@contextlib.contextmanager
def moto_with_step_functions() -> Iterator[tuple[MotoServer, FrontProxy]]:
    """A moto server that runs state machines, and the proxy its tasks call; point the proxy's
    ``lambda_endpoint`` at a local invoker to run Lambda tasks."""
    proxy = FrontProxy(free_port())
    try:
        with moto_server(environment={"MOTO_PORT": str(proxy.port)}) as server:
            proxy.moto_endpoint = server.endpoint
            enable_executions(server.endpoint)
            yield server, proxy
    finally:
        proxy.close()
