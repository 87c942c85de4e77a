"""A local stand-in for Gemini: ``generateContent`` over HTTP as google-genai calls it, and the
Google token endpoints its credentials use, on loopback.

Paths, as google-genai 1.x sends them (found by pointing it at this server):

- Vertex AI: ``POST /v1beta1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent``
  with ``Authorization: Bearer <token>``;
- Gemini API: ``POST /v1beta/models/{model}:generateContent`` with ``x-goog-api-key``.

The tokens come from here too: a service-account key's OAuth grant (``/token``), and for
workload identity federation the STS exchange of a signed AWS request (``/v1/token``) and the
service-account impersonation (``...:generateAccessToken``). A model call without a token this
server issued (or the expected key) gets 401, as the real service would answer.

``behaviour`` says how the model answers: ``variations`` (as many distinct captions as the prompt
asks for), ``too_few`` (one), ``garbage`` (prose instead of JSON), ``slow`` (after
``slow_seconds``), ``error500``, ``undrawable`` (the first caption in a script no caption font
draws). Every request is recorded.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

BEHAVIOURS = ("variations", "too_few", "garbage", "slow", "error500")
API_KEY = "local-gemini-key"
SERVICE_ACCOUNT_TOKEN = "token-from-service-account-key"
FEDERATED_TOKEN = "token-from-sts-exchange"
IMPERSONATED_TOKEN = "token-from-impersonation"
_VERTEX_PATH = re.compile(r"/v1beta1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
                          r"/publishers/google/models/(?P<model>[^/:]+):generateContent")
_API_KEY_PATH = re.compile(r"/v1beta/models/(?P<model>[^/:]+):generateContent")
_IMPERSONATION_PATH = re.compile(r"/v1/projects/-/serviceAccounts/(?P<account>[^/:]+):generateAccessToken")
_WANTED = re.compile(r"JSON array of exactly (\d+) strings")


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: str

    @property
    def is_model_call(self) -> bool:
        return self.path.endswith(":generateContent")

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body).items()}

    @property
    def prompt(self) -> str:
        return self.json()["contents"][0]["parts"][0]["text"]


def variations_for(prompt: str) -> list[str]:
    """What ``variations`` answers: the number of captions asked for, each built on the base caption."""
    wanted = int(_WANTED.search(prompt).group(1))
    lines = prompt.splitlines()
    base = json.loads(next(lines[i + 1] for i, line in enumerate(lines) if line.endswith("base caption:")))
    return [f"{base} (take {i + 1})" for i in range(wanted)]


class FakeGemini:
    def __init__(self, behaviour: str = "variations", slow_seconds: float = 5.0) -> None:
        self.behaviour = behaviour
        self.slow_seconds = slow_seconds
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def model_calls(self) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.is_model_call]

    def token_requests(self) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if not request.is_model_call]

    def __enter__(self) -> "FakeGemini":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        if request.path == "/token":
            return 200, {"access_token": SERVICE_ACCOUNT_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
        if request.path == "/v1/token":
            return 200, {"access_token": FEDERATED_TOKEN, "expires_in": 3600, "token_type": "Bearer",
                         "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}
        if _IMPERSONATION_PATH.fullmatch(request.path):
            if request.headers.get("authorization") != f"Bearer {FEDERATED_TOKEN}":
                return _error(401, "UNAUTHENTICATED", "impersonation needs the federated token")
            return 200, {"accessToken": IMPERSONATED_TOKEN, "expireTime": "2099-01-01T00:00:00Z"}
        vertex, api_key = _VERTEX_PATH.fullmatch(request.path), _API_KEY_PATH.fullmatch(request.path)
        if not (vertex or api_key):
            return _error(404, "NOT_FOUND", f"no such method: {request.path}")
        if vertex and request.headers.get("authorization") not in (
                f"Bearer {token}" for token in (SERVICE_ACCOUNT_TOKEN, FEDERATED_TOKEN, IMPERSONATED_TOKEN)):
            return _error(401, "UNAUTHENTICATED", "request had invalid authentication credentials")
        if api_key and request.headers.get("x-goog-api-key") != API_KEY:
            return _error(400, "INVALID_ARGUMENT", "API key not valid")
        return self._model_answer(request)

    def _model_answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        behaviour = self.behaviour
        if behaviour == "error500":
            return _error(500, "INTERNAL", "internal error encountered")
        if behaviour == "slow":
            time.sleep(self.slow_seconds)
        texts = variations_for(request.prompt)
        if behaviour == "too_few":
            texts = texts[:1]
        if behaviour == "undrawable":
            texts[0] = "ༀ " + texts[0]  # Tibetan
        text = json.dumps(texts)
        if behaviour == "garbage":
            text = "Sure! Here are some captions you could use:\n* one\n* two"
        return 200, {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                     "finishReason": "STOP", "index": 0}],
                     "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 40, "totalTokenCount": 160},
                     "modelVersion": "gemini-2.5-flash"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                request = Request(self.path.split("?", 1)[0], {k.lower(): v for k, v in self.headers.items()}, body)
                fake._record(request)
                status, payload = fake._answer(request)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the slow behaviour)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _error(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {"error": {"code": code, "message": message, "status": status}}


def external_account_config(url: str, service_account: str | None = "captions@project.iam.gserviceaccount.com") -> dict:
    """A workload identity federation configuration for AWS, as ``gcloud iam workload-identity-pools
    create-cred-config --aws`` writes it, with every endpoint pointed at ``url``: the AWS metadata
    URLs too, although with AWS credentials in the environment (as Lambda has) none is called."""
    config = {
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/"
                    "aws-pool/providers/aws-provider",
        "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
        "token_url": f"{url}/v1/token",
        "credential_source": {
            "environment_id": "aws1",
            "region_url": f"{url}/latest/meta-data/placement/availability-zone",
            "url": f"{url}/latest/meta-data/iam/security-credentials",
            "regional_cred_verification_url":
                "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
        },
    }
    if service_account:
        config["service_account_impersonation_url"] = (f"{url}/v1/projects/-/serviceAccounts/"
                                                       f"{service_account}:generateAccessToken")
    return config


def service_account_key(path: Path, token_uri: str) -> Path:
    """A service-account key file with a throwaway RSA key made here, whose token endpoint is
    ``token_uri``: application default credentials as a worker has them, without Google."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({"type": "service_account", "project_id": "key-project", "private_key_id": "k1",
                                "private_key": pem, "client_email": "captions@key-project.iam.gserviceaccount.com",
                                "client_id": "1", "token_uri": token_uri}))
    return path
