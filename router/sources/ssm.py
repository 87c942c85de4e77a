"""The live flags: one SSM Parameter Store parameter holding a JSON object.

Only the flags an operator set are stored (not the defaults), so a later release can change a
default without a migration. SSM has no compare-and-set on a parameter's value, so writes are
guarded by its version: check the version the operator read, write, then confirm the write
produced exactly the next version (anything else means another writer got in between).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from router.errors import FlagSourceError, OverlappingWriteError, UnreadableFlagsError, VersionConflictError
from router.sources.base import FlagSource

# Requests wait on these reads (the first load, a due refresh): keep them short.
SSM_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 2})
# An operator's command can wait for a slow answer rather than report a timeout.
OPERATOR_SSM_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3})
# The value limit of a standard-tier parameter.
MAX_PARAMETER_BYTES = 4096


class SSMParameterSource(FlagSource):
    def __init__(self, name: str, client: BaseClient | None = None, region: str | None = None,
                 config: Config = SSM_CONFIG) -> None:
        self.name = name
        self.label = f"ssm:{name}"
        self.region = region
        self.config = config
        self._client = client

    def _ssm(self) -> BaseClient:
        if self._client is None:
            self._client = boto3.session.Session().client("ssm", region_name=self.region, config=self.config)
        return self._client

    def _parameter(self) -> dict[str, Any] | None:
        """GetParameter's ``Parameter`` (value, version, LastModifiedDate), or None when it does not exist."""
        try:
            return self._ssm().get_parameter(Name=self.name)["Parameter"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise FlagSourceError(f"{self.label}: {error}") from error
        except BotoCoreError as error:
            raise FlagSourceError(f"{self.label}: {error}") from error

    def read_text(self) -> tuple[str, int] | None:
        """The stored text and its version, or None when the parameter does not exist."""
        parameter = self._parameter()
        return None if parameter is None else (parameter["Value"], parameter["Version"])

    def read_document(self) -> tuple[dict[str, Any], int] | None:
        """The stored object and its version, or None when the parameter does not exist."""
        read = self.read_dated_document()
        return None if read is None else (read[0], read[1])

    def read_dated_document(self) -> tuple[dict[str, Any], int, datetime | None] | None:
        """The stored object, its version and when that version was written (SSM's
        LastModifiedDate: the guard's auto_advance waits a window after any change), or None
        when the parameter does not exist."""
        parameter = self._parameter()
        if parameter is None:
            return None
        text, version = parameter["Value"], parameter["Version"]
        try:
            document = json.loads(text)
        except ValueError as error:
            raise UnreadableFlagsError(f"{self.label} version {version} is not valid JSON: {error}") from None
        if not isinstance(document, dict):
            raise UnreadableFlagsError(f"{self.label} version {version} must hold a JSON object, "
                                       f"got {type(document).__name__}")
        modified = parameter.get("LastModifiedDate")
        return document, version, modified if isinstance(modified, datetime) else None

    def _read(self) -> tuple[Mapping[str, Any], str]:
        read = self.read_document()
        if read is None:
            raise FlagSourceError(f"{self.label} does not exist (create it with `python -m router flags set`)")
        document, version = read
        return document, f"ssm:{version}"

    def write(self, document: Mapping[str, Any], expected_version: int | None) -> int:
        """Store ``document`` if the parameter is still at ``expected_version`` (None: absent).

        Returns the new version. Raises `VersionConflictError` when another writer changed the
        parameter since it was read, before writing when that is visible in time, and after
        writing (`OverlappingWriteError`, with the version this write made) when the write itself
        did not produce the next version.
        """
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        if len(text.encode()) > MAX_PARAMETER_BYTES:
            raise FlagSourceError(f"the flags take {len(text.encode())} bytes; an SSM parameter holds at most "
                                  f"{MAX_PARAMETER_BYTES} (shorten the user lists)")
        current = self.read_text()
        current_version = None if current is None else current[1]
        if current_version != expected_version:
            raise VersionConflictError(f"{self.label} is at version {current_version}, not {expected_version}: "
                                       "someone else changed it; nothing was written, re-read with `flags show`")
        try:
            version = self._ssm().put_parameter(Name=self.name, Value=text, Type="String",
                                                Overwrite=expected_version is not None)["Version"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ParameterAlreadyExists":
                raise VersionConflictError(f"{self.label} was created by someone else meanwhile; nothing was "
                                           "written, re-read with `flags show`") from None
            raise FlagSourceError(f"{self.label}: {error}") from error
        except BotoCoreError as error:
            raise FlagSourceError(f"{self.label}: {error}") from error
        expected_next = (expected_version or 0) + 1
        if version != expected_next:
            raise OverlappingWriteError(
                f"{self.label}: another writer changed the flags while this change was written: it became "
                f"version {version}, not {expected_next}, so version(s) {expected_next}..{version - 1} came from "
                "someone else and this change may have overwritten them; check `flags show`", version)
        return version
