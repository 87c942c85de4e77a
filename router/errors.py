"""The router's exceptions, split by who must act on them.

`DispatchError` and its subclasses reach the backend's route: the job was not handed to any
backend and the caller must answer the upload with an error. `FlagError` and
`FlagSourceError` concern operators: a rejected flag value, an unreachable flag store.
"""

from __future__ import annotations


class DispatchError(RuntimeError):
    """The job could not be handed to any backend; the message says why.

    ``kind`` is a short stable code (the failure counter's label); ``job_id`` may be None when
    the request did not carry a usable one.
    """

    kind = "send_failed"

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class InvalidRequestError(DispatchError, ValueError):
    """The request breaks the job contract (`processor.contract`); nothing was sent."""

    kind = "invalid_request"


class RowMissingError(DispatchError):
    """The job row does not exist: the backend must write it before dispatching."""

    kind = "row_missing"


class RecordError(DispatchError):
    """The job table could not be written, so the row's existence is unknown; nothing was sent."""

    kind = "record_failed"


class SendError(Exception):
    """One backend did not positively accept the job (internal to dispatch: it may fall back)."""


class ConfigurationError(RuntimeError):
    """The environment cannot wire the router; ``problems`` names each variable at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("the video router's environment is not usable:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class FlagError(ValueError):
    """A flag value was rejected; ``flag`` names it. Nothing of the change was applied."""

    def __init__(self, flag: str, problem: str) -> None:
        super().__init__(f"{flag}: {problem}")
        self.flag = flag
        self.problem = problem


class FlagSourceError(RuntimeError):
    """A flag source could not be read (unreachable, missing, or not JSON)."""


class UnreadableFlagsError(FlagSourceError):
    """The flags parameter holds something that is not a JSON object (a hand edit gone wrong)."""


class VersionConflictError(FlagSourceError):
    """Another writer changed the flags parameter between our read and our write."""


class OverlappingWriteError(VersionConflictError):
    """The write was stored as ``version``, but another writer's version(s) came in between:
    unlike its parent, something of this change was written (and may have overwritten theirs)."""

    def __init__(self, message: str, version: int) -> None:
        super().__init__(message)
        self.version = version
