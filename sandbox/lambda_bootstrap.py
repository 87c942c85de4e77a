"""Runs one invocation inside the Lambda-shaped process (see `sandbox.lambda_invoker`).

Started as ``python -S /var/runtime/bootstrap.py`` so that nothing of the host's site-packages
is importable: only the standard library, the function code in /var/task, the layer's
/opt/python, and /var/runtime (boto3, as Lambda's Python runtime ships it). Standard library
only, because this file is copied to /var/runtime.
"""

import importlib
import json
import os
import sys
import time
import traceback

for path in ("/var/runtime", "/opt/python", os.environ.get("LAMBDA_TASK_ROOT", "/var/task")):
    sys.path.insert(0, path)




class Context:
    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        # As Lambda forms it; the invoker's account is moto's default one.
        self.invoked_function_arn = (f"arn:aws:lambda:{os.environ.get('AWS_REGION', 'us-east-1')}:123456789012:"
                                     f"function:{self.function_name}")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def main() -> int:
    # The invoker's private variables are gone before the function's code runs.
    context = Context(os.environ.pop("_REQUEST_ID"), int(os.environ.pop("_DEADLINE_MS")))
    # The outcome goes to the invoker on its own pipe: stdout and stderr are the function's logs.
    result_fd = int(os.environ.pop("_RESULT_FD"))
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    event = json.loads(sys.stdin.read())
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        result = handler(event, context)
    except Exception as error:  # noqa: BLE001 - reported the way Lambda reports a function error
        report = {"errorType": type(error).__name__, "errorMessage": str(error),
                  "stackTrace": traceback.format_exc().splitlines()}
        print(json.dumps(report), file=sys.stderr)
        os.write(result_fd, json.dumps({"error": report}).encode())
        return 1
    os.write(result_fd, json.dumps({"result": result}, default=str).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
