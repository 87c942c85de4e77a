"""Run the Pulumi program under mocks with a stack configuration; get back what it declared.

Other tests use it too, for example to get the environment the program gives the function:

    from infra.mocked import MINIMAL_CONFIG, run_program

    declared = run_program(MINIMAL_CONFIG)
    declared.function_environment            # {"S3_BUCKET_NAME": ..., "DYNAMODB_TABLE_NAME": ...}
    declared.named("video-processor").inputs["memorySize"]
    declared.outputs["backendEnvironment"]

    run_program({**MINIMAL_CONFIG, "progressRedisUrl": "rediss://..."}, secrets=["progressRedisUrl"])

Each run is a fresh Python process (``python -m infra.mocked``). ``set_mocks`` must come
before the program's modules are imported: a resource built before it has unknown outputs, and
assertions on it silently never run. The program also declares its resources when imported,
once per process. A fresh process gives every configuration a fresh runtime and freshly
imported modules, with nothing carried over from another run.

What is recorded is what the engine would receive: the resolved inputs (wire names, such as
``memorySize``), which of them were secrets (``secret_inputs``: what the state stores
encrypted), and the resource options as sent in the registration request (``protect``,
``retainOnDelete``, ``ignoreChanges``, ``importId``), read by a mock monitor, since the mocks'
``new_resource`` is not given the options.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

REPO = Path(__file__).resolve().parents[1]
PROGRAM = REPO / "infra"
NAMESPACE = "lambda-video-processor"
ACCOUNT = "123456789012"
# The smallest configuration the program accepts; a test adds what it is about.
MINIMAL_CONFIG: Mapping[str, Any] = {"aws:region": "us-east-1", "existing": {"bucketName": "easy-video-share-videos"}}
# What the mocked AWS returns when the program reads the role's inline policy.
LIVE_INLINE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::easy-video-share-videos/*"}]})
_SECRET_SIG = "4dabf18193072939515e22adb298388d"
TIMEOUT_SECONDS = 300


class HarnessError(Exception):
    """The mocked run itself went wrong (crashed, or the program declared nothing)."""


class ProgramError(Exception):
    """The program stopped with an error (for example a ConfigError naming a key)."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


@dataclass(frozen=True)
class DeclaredResource:
    type: str
    name: str
    id: str
    read: bool
    inputs: dict[str, Any]
    options: dict[str, Any]
    dependencies: tuple[str, ...]
    secret_inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Declaration:
    resources: tuple[DeclaredResource, ...]
    outputs: dict[str, Any]

    def of_type(self, type_: str) -> list[DeclaredResource]:
        return [resource for resource in self.resources if resource.type == type_]

    def named(self, name: str) -> DeclaredResource:
        matches = [resource for resource in self.resources if resource.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}; declared: {sorted(r.name for r in self.resources)}")
        return matches[0]

    @property
    def function_environment(self) -> dict[str, str]:
        """The environment the program declares on the video-processor function."""
        return self.named("video-processor").inputs["environment"]["variables"]


def _config_value(value: Any) -> str:
    # As the Pulumi CLI hands stack configuration to a program: objects as JSON, the rest as text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _full_key(key: str) -> str:
    return key if ":" in key else f"{NAMESPACE}:{key}"


def run_program(config: Mapping[str, Any], stack: str = "dev", program: Path = PROGRAM,
                secrets: tuple[str, ...] | list[str] = ()) -> Declaration:
    """Run ``program`` under mocks with ``config`` (keys without a namespace are the project's);
    ``secrets`` are the keys set with ``pulumi config set --secret``.

    Raises ProgramError when the program stops with an error, HarnessError when the run breaks
    or declares no resource at all.
    """
    request = {"config": {_full_key(key): _config_value(value) for key, value in config.items()},
               "secret_keys": [_full_key(key) for key in secrets], "stack": stack, "program": str(program)}
    with tempfile.TemporaryDirectory(prefix="pulumi-mocks-") as scratch:
        request_file, result_file = Path(scratch) / "request.json", Path(scratch) / "result.json"
        request_file.write_text(json.dumps(request))
        completed = subprocess.run([sys.executable, "-m", "infra.mocked", str(request_file), str(result_file)],
                                   cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        if completed.returncode != 0 or not result_file.exists():
            raise HarnessError(f"the mocked run failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")
        result = json.loads(result_file.read_text())
    if result["error"] is not None:
        raise ProgramError(result["error"]["type"], result["error"]["message"])
    resources = tuple(DeclaredResource(dependencies=tuple(record.pop("dependencies")),
                                       secret_inputs=tuple(record.pop("secret_inputs")), **record)
                      for record in result["resources"])
    if not resources:
        raise HarnessError("the program declared no resource: were its modules imported before set_mocks?")
    return Declaration(resources=resources, outputs=result["outputs"])


def stack_file_config(path: Path) -> dict[str, Any]:
    """The ``config:`` of a Pulumi.<stack>.yaml, keyed as the CLI keys it."""
    import yaml

    return dict(yaml.safe_load(path.read_text())["config"])


# ---------------------------------------------------------------------------------------------
# The child process: runs the program under mocks and writes what it declared.


def _plain(value: Any) -> Any:
    """Resolved mock inputs as JSON: secrets unwrapped, assets and archives as their paths."""
    from pulumi import Resource
    from pulumi.asset import Archive, Asset

    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return _plain(value["value"])
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (Asset, Archive)):
        return {"path": getattr(value, "path", None), "kind": type(value).__name__}
    if isinstance(value, Resource):
        return {"resource": type(value).__name__}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _secret_paths(value: Any, path: str = "") -> list[str]:
    """The dotted paths of the secret values inside resolved inputs."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return [path]
        return [found for key, item in value.items() for found in _secret_paths(item, f"{path}.{key}".lstrip("."))]
    if isinstance(value, (list, tuple)):
        return [found for index, item in enumerate(value) for found in _secret_paths(item, f"{path}[{index}]")]
    return []


def _name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _child(request_file: Path, result_file: Path) -> None:
    import pulumi
    from pulumi.runtime import mocks, rpc
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    request = json.loads(request_file.read_text())
    region = request["config"].get("aws:region", "us-east-1")

    def arn(service: str, resource: str) -> str:
        return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"

    def state(type_: str, name: str, inputs: dict[str, Any], resource_id: str | None) -> tuple[str, dict[str, Any]]:
        physical = inputs.get("name") or resource_id or name
        if type_ == "aws:s3/bucket:Bucket":
            physical = inputs.get("bucket") or resource_id or f"{name}-a1b2c3d"
            return physical, {"bucket": physical, "arn": f"arn:aws:s3:::{physical}"}
        if type_ == "aws:iam/rolePolicy:RolePolicy":
            role, policy_name = (resource_id or f"{inputs['role']}:{inputs['name']}").split(":", 1)
            return f"{role}:{policy_name}", {"role": role, "name": policy_name,
                                              "policy": inputs.get("policy", LIVE_INLINE_POLICY)}
        if type_ == "aws:lambda/layerVersion:LayerVersion":
            layer = inputs["layerName"]
            return arn("lambda", f"layer:{layer}:1"), {"arn": arn("lambda", f"layer:{layer}:1"),
                                                       "layerArn": arn("lambda", f"layer:{layer}"), "version": "1"}
        computed = {
            "aws:dynamodb/table:Table": lambda: {"arn": arn("dynamodb", f"table/{physical}")},
            "aws:iam/role:Role": lambda: {"arn": f"arn:aws:iam::{ACCOUNT}:role/{physical}"},
            "aws:iam/policy:Policy": lambda: {"arn": f"arn:aws:iam::{ACCOUNT}:policy/{physical}"},
            "aws:lambda/function:Function": lambda: {"arn": arn("lambda", f"function:{physical}")},
            "aws:sqs/queue:Queue": lambda: {"arn": arn("sqs", physical),
                                            "url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{physical}"},
            "aws:cloudwatch/logGroup:LogGroup": lambda: {"arn": arn("logs", f"log-group:{physical}")},
            "aws:ssm/parameter:Parameter": lambda: {"arn": arn("ssm", f"parameter{physical}")},
            "aws:sfn/stateMachine:StateMachine": lambda: {"arn": arn("states", f"stateMachine:{physical}")},
            "aws:cloudwatch/metricAlarm:MetricAlarm": lambda: {"arn": arn("cloudwatch", f"alarm:{physical}")},
        }.get(type_, dict)()
        return physical, {"name": physical, **computed}

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            physical_id, computed = state(args.typ, args.name, dict(args.inputs), args.resource_id)
            return physical_id, {**args.inputs, **computed}

        def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], None]:
            raise NotImplementedError(f"the mocks do not answer the invoke {args.token}")

    records: list[dict[str, Any]] = []

    class RecordingMonitor(mocks.MockMonitor):
        def _record(self, request: Any, resource_id: str, read: bool, options: dict[str, Any]) -> None:
            if request.type.startswith("pulumi:providers:"):
                return
            inputs = rpc.deserialize_properties(request.properties if read else request.object)
            records.append({"type": request.type, "name": request.name, "id": resource_id, "read": read,
                            "inputs": _plain(inputs), "secret_inputs": _secret_paths(inputs), "options": options,
                            "dependencies": sorted({_name_of(urn) for urn in request.dependencies})})

        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.custom:
                self._record(request, response.id, False, {
                    "protect": request.protect if request.HasField("protect") else None,
                    "retainOnDelete": request.retainOnDelete if request.HasField("retainOnDelete") else None,
                    "ignoreChanges": sorted(request.ignoreChanges),
                    "importId": request.importId or None,
                })
            return response

        def ReadResource(self, request: Any) -> Any:
            response = super().ReadResource(request)
            self._record(request, request.id, True, {})
            return response

    pulumi.runtime.set_all_config(request["config"], request["secret_keys"])
    monitor = RecordingMonitor(Mocks())
    pulumi.runtime.set_mocks(monitor.mocks, project=NAMESPACE, stack=request["stack"], preview=False, monitor=monitor)

    outputs: dict[str, Any] = {}

    def program() -> None:
        runpy.run_path(request["program"], run_name="__main__")
        stack = pulumi.runtime.get_root_resource()
        outputs.update(_sync_await(pulumi.Output.from_input(stack.outputs).future()) or {})

    error = None
    try:
        _sync_await(run_pulumi_func(program))
    except Exception as exception:  # noqa: BLE001 - reported to the parent, which raises it
        error = {"type": type(exception).__name__, "message": str(exception)}
    result_file.write_text(json.dumps({"resources": records, "outputs": _plain(outputs), "error": error}))


if __name__ == "__main__":
    _child(Path(sys.argv[1]), Path(sys.argv[2]))
