"""The video processor next to the backend's existing resources: `pulumi up` in the repository root.

Read top to bottom, this is everything the stack declares (docs/deploying.md is the runbook).
"""

from infra import (alarms, config, dashboard, existing, flags, function, function_package, guard, iam, layer, outputs,
                   secret_parameters, state_machine, sweep)
from infra.artifacts import Artifact

settings = config.from_stack()

# The backend's bucket, job table, role and inline policy: imported, or only read.
backend_resources = existing.declare(settings)

# What the function runs: the FFmpeg layer (through S3) and its own code package.
ffmpeg = layer.declare(settings)
code = Artifact.of(function_package.build())

# The function's secrets (optional): the progress Redis URL, the Gemini API key.
secrets = secret_parameters.declare(settings)

# The function, its log group and failure queue, and its own least-privilege policy.
sinks = function.sinks(settings)
processor_access = iam.processor_access(settings, backend_resources, sinks.log_group, sinks.failure_queue,
                                        secrets)
processor = function.declare(settings, backend_resources, ffmpeg, code, sinks, processor_access)
processor_alarms = alarms.declare(settings, processor.function, sinks.failure_queue)

# Long jobs fanned out over many invocations by a Step Functions workflow (unless fanout.enabled is false).
fanout = state_machine.declare(settings, backend_resources, processor.function)

# The stuck-job sweep on a schedule (unless sweep.enabled is false).
sweep.declare(settings, backend_resources, processor.function)

# The backend's side: the router's live flags and the backend's permissions.
router_flags = flags.declare(settings)
backend_policy = iam.backend_access(settings, backend_resources, processor.function, router_flags)

# The rollout guard on a schedule (unless guard.enabled is false): a function of its own, the
# only thing of this stack that may write the flags.
rollout_guard = guard.declare(settings, backend_resources, router_flags, Artifact.of(function_package.build_guard()))

# Both backends side by side, with the alarms.
dashboard.declare(settings, processor.function,
                  processor_alarms + ([rollout_guard.alarm] if rollout_guard else []))

outputs.export(settings, ffmpeg, processor, sinks, processor_access, router_flags, backend_policy, fanout)
