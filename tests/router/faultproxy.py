"""A small HTTP proxy in front of the moto server that records traffic and injects faults.

Faults are injected on the wire, where real ones happen: the router's boto3 clients reach the
proxy through ``AWS_ENDPOINT_URL_<SERVICE>`` and see a real 429, a real 503, a connection that
never answers or one that closes without a response. Nothing in the router is patched.
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlsplit

# The longest a hung request is held; teardown releases it sooner.
MAX_HANG_SECONDS = 30.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


@dataclass
class Exchange:
    """One request as the proxy received it, and what was answered (status None: no answer)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    response_body: bytes = b""

    @property
    def target(self) -> str:
        """The operation of a JSON-protocol call (SSM, DynamoDB), e.g. ``AmazonSSM.GetParameter``."""
        return self.headers.get("x-amz-target", "")

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class _Rule:
    kind: str  # "status", "hang", "drop" or "call"
    times: int | None
    match: Callable[[Exchange], bool] | None
    status: int = 0
    call: Callable[[], None] | None = None

    def applies(self, exchange: Exchange) -> bool:
        return (self.times is None or self.times > 0) and (self.match is None or self.match(exchange))


# Both JSON protocols read the error code: REST-JSON (Lambda) from the header, JSON 1.1 (SSM,
# DynamoDB) from ``__type``.
_ERRORS = {429: "TooManyRequestsException", 500: "ServiceException", 502: "ServiceException",
           503: "ServiceUnavailableException"}


@dataclass
class FaultProxy:
    upstream: str
    exchanges: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.held = threading.Semaphore(0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    # Faults -------------------------------------------------------------------------------

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def fail(self, status: int, *, times: int | None = None, match: Callable[[Exchange], bool] | None = None) -> None:
        """Answer ``status`` with an AWS error body (``times`` requests, or all)."""
        self._add(_Rule("status", times, match, status=status))

    def hang(self, *, times: int | None = None, match: Callable[[Exchange], bool] | None = None) -> None:
        """Accept the request and never answer until `release` (or `MAX_HANG_SECONDS`)."""
        self._add(_Rule("hang", times, match))

    def drop(self, *, times: int | None = None, match: Callable[[Exchange], bool] | None = None) -> None:
        """Close the connection without an answer."""
        self._add(_Rule("drop", times, match))

    def before(self, match: Callable[[Exchange], bool], call: Callable[[], None]) -> None:
        """Run ``call`` once, just before forwarding the first matching request."""
        self._add(_Rule("call", 1, match, call=call))

    def heal(self) -> None:
        with self._lock:
            self._rules.clear()
        self.release()

    def release(self) -> None:
        self._release.set()
        self._release = threading.Event()

    def close(self) -> None:
        self.heal()
        self._server.shutdown()
        self._server.server_close()

    def sent(self, match: Callable[[Exchange], bool] | None = None) -> list[Exchange]:
        with self._lock:
            return [exchange for exchange in self.exchanges if match is None or match(exchange)]

    # Serving ------------------------------------------------------------------------------

    def _rule_for(self, exchange: Exchange) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.applies(exchange):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        exchange = Exchange(handler.command, handler.path, {k.lower(): v for k, v in handler.headers.items()},
                            handler.rfile.read(length) if length else b"")
        with self._lock:
            self.exchanges.append(exchange)
        rule = self._rule_for(exchange)
        if rule is not None and rule.kind == "hang":
            release = self._release
            self.held.release()
            release.wait(MAX_HANG_SECONDS)
            handler.close_connection = True
            return
        if rule is not None and rule.kind == "drop":
            handler.close_connection = True
            return
        if rule is not None and rule.kind == "status":
            code = _ERRORS.get(rule.status, "ServiceException")
            body = json.dumps({"__type": code, "message": f"injected {rule.status}", "Type": "Service"}).encode()
            self._answer(handler, exchange, rule.status, {"x-amzn-ErrorType": code,
                                                          "Content-Type": "application/x-amz-json-1.1"}, body)
            return
        if rule is not None and rule.kind == "call":
            rule.call()
        self._forward(handler, exchange)

    def _forward(self, handler: BaseHTTPRequestHandler, exchange: Exchange) -> None:
        upstream = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=MAX_HANG_SECONDS)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(exchange.method, exchange.path, body=exchange.body, headers=headers)
            response = connection.getresponse()
            body = response.read()
            # A HEAD answer has no body but the object's Content-Length (S3's HeadObject reads it).
            answer_headers = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
                              and (k.lower() != "content-length" or exchange.method == "HEAD")}
            self._answer(handler, exchange, response.status, answer_headers, body)
        finally:
            connection.close()

    def _answer(self, handler: BaseHTTPRequestHandler, exchange: Exchange, status: int,
                headers: dict[str, str], body: bytes) -> None:
        exchange.status = status
        exchange.response_body = body
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        if not any(name.lower() == "content-length" for name in headers):
            handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
