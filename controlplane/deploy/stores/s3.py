"""The deploy state in S3: `s3://bucket/prefix` holds one object per environment.

    <prefix>/<env>.cpl-state.json            the state document (as in a state directory)
    <prefix>/<env>.cpl-state.json.backup     the previous document (buckets without versioning)
    <prefix>/<env>.cpl-specs/<tenant>/<name>@<version>.json   the applied specs

Every write of the document is conditional (`If-Match` on the ETag this process last read or
wrote, `If-None-Match: *` for the first one), so a document that changed since it was read is
never overwritten, even by a writer that skipped the lock. A bucket with versioning keeps the
previous documents as object versions; without it, the previous document is copied to the
`.backup` object (a server-side copy of exactly the ETag being replaced) before each write.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controlplane.deploy.aws import aws_problem, deploy_client, error_code
from controlplane.deploy.state import State, parse_state, state_text
from controlplane.deploy.stores.base import StateBackend
from controlplane.errors import ConfigError
from controlplane.spec.environment import AwsSettings

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""A state or spec object larger than this is not one cpl wrote: refuse to read it."""

_CHANGED = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Store(StateBackend):
    def __init__(self, url: str, environment: str, aws: AwsSettings | None) -> None:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        prefix = prefix.strip("/")
        base = f"{prefix}/{environment}" if prefix else environment
        self.bucket = bucket
        self.key = f"{base}.cpl-state.json"
        self.backup_key = f"{self.key}.backup"
        self.specs_prefix = f"{base}.cpl-specs/"
        self.location = f"s3://{bucket}/{self.key}"
        self.lock_key = f"{bucket}/{self.key}"
        self._client = deploy_client(aws, "s3")
        self._etag: str | None = None  # of the document this process last read or wrote
        self._versioned: bool | None = None

    # -- the document -------------------------------------------------------------------

    def read(self) -> State | None:
        found = self._get(self.key)
        if found is None:
            self._etag = None
            return None
        text, self._etag = found
        return parse_state(text, self.location, self._corrupt)

    def load(self, environment: str) -> State:
        state = self.read()
        if state is None:
            self._refuse_vanished()
            return State.new(environment)
        if state.environment != environment:
            raise ConfigError(
                f"{self.location} holds the state of environment '{state.environment}', not "
                f"'{environment}'"
            )
        return state

    def save(self, state: State) -> State:
        written = state.model_copy(update={"serial": state.serial + 1})
        if self._etag is None:
            # First write from this process: read what is there to check lineage and serial.
            current = self.read()
            if current is not None:
                self._check(current, state)
        if self._etag is not None and not self._bucket_versioned():
            self._copy_backup(self._etag)
        try:
            self._put(written, self._etag)
        except _Changed:
            current = self.read()
            if current is not None:
                self._check(current, state)
            raise ConfigError(
                f"{self.location} changed while this command ran: was it written without "
                "holding the lock?"
            ) from None
        return written

    def put(self, state: State) -> None:
        try:
            self._put(state, None)
        except _Changed:
            raise ConfigError(f"{self.location} exists: refusing to replace it") from None

    # -- the applied specs --------------------------------------------------------------

    def read_spec(self, workflow: str, version: str) -> str | None:
        found = self._get(self._spec_key(workflow, version))
        return None if found is None else found[0]

    def write_spec(self, workflow: str, version: str, text: str) -> None:
        self._call(
            "write",
            self._client.put_object,
            Bucket=self.bucket,
            Key=self._spec_key(workflow, version),
            Body=text.encode("utf-8"),
            ContentType="application/json",
        )

    def specs(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.specs_prefix):
                for entry in page.get("Contents", []):
                    relative = str(entry["Key"]).removeprefix(self.specs_prefix)
                    if relative.endswith(".json") and "@" in relative:
                        workflow, _, version = relative.removesuffix(".json").rpartition("@")
                        found.append((workflow, version))
        except (ClientError, BotoCoreError) as error:
            raise self._failed("list", error) from None
        return sorted(found)

    def _spec_key(self, workflow: str, version: str) -> str:
        return f"{self.specs_prefix}{workflow}@{version}.json"

    # -- S3 calls -----------------------------------------------------------------------

    def _get(self, key: str) -> tuple[str, str] | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error_code(error) in _MISSING:
                return None
            raise self._failed("read", error) from None
        except BotoCoreError as error:
            raise self._failed("read", error) from None
        body = response["Body"]
        try:
            if int(response.get("ContentLength") or 0) > MAX_DOCUMENT_BYTES:
                raise ConfigError(
                    f"s3://{self.bucket}/{key} is larger than {MAX_DOCUMENT_BYTES} bytes: "
                    "not a document cpl wrote"
                )
            data = body.read(MAX_DOCUMENT_BYTES + 1)
        finally:
            body.close()
        try:
            return data.decode("utf-8"), str(response["ETag"])
        except UnicodeDecodeError as error:
            raise self._corrupt(str(error)) from None

    def _put(self, state: State, etag: str | None) -> None:
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            response = self._client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=state_text(state).encode("utf-8"),
                ContentType="application/json",
                **condition,
            )
        except ClientError as error:
            if error_code(error) in _CHANGED:
                raise _Changed from None
            raise self._failed("write", error) from None
        except BotoCoreError as error:
            raise self._failed("write", error) from None
        self._etag = str(response["ETag"])

    def _copy_backup(self, etag: str) -> None:
        try:
            self._client.copy_object(
                Bucket=self.bucket,
                Key=self.backup_key,
                CopySource={"Bucket": self.bucket, "Key": self.key},
                CopySourceIfMatch=etag,
            )
        except ClientError as error:
            if error_code(error) in _CHANGED:
                raise ConfigError(
                    f"{self.location} changed while this command ran: was it written without "
                    "holding the lock?"
                ) from None
            raise self._failed("back up", error) from None
        except BotoCoreError as error:
            raise self._failed("back up", error) from None

    def _bucket_versioned(self) -> bool:
        if self._versioned is None:
            answer = self._call(
                "read the versioning of", self._client.get_bucket_versioning, Bucket=self.bucket
            )
            self._versioned = answer.get("Status") == "Enabled"
        return self._versioned

    def _refuse_vanished(self) -> None:
        """A missing document with a trace of an earlier one was removed by hand: refuse to
        start a new lineage over it (as a state directory with only its backup does)."""
        if self._get(self.backup_key) is not None:
            raise ConfigError(
                f"{self.location} is missing but its backup s3://{self.bucket}/"
                f"{self.backup_key} exists: the state was removed by hand? Restore it (copy "
                "the backup over it) or, to start from nothing, remove the backup"
            )
        versions = self._call(
            "list the versions of",
            self._client.list_object_versions,
            Bucket=self.bucket,
            Prefix=self.key,
            MaxKeys=10,
        )
        if any(m.get("Key") == self.key for m in versions.get("DeleteMarkers", [])):
            raise ConfigError(
                f"{self.location} was deleted (the bucket keeps its earlier versions): restore "
                "the last version, or remove every version to start from nothing"
            )

    def _check(self, current: State, state: State) -> None:
        if current.lineage != state.lineage:
            raise ConfigError(
                f"{self.location} belongs to lineage {current.lineage}, not {state.lineage}: "
                "refusing to replace another state document"
            )
        if current.serial != state.serial:
            raise ConfigError(
                f"{self.location} changed while this command ran (serial {current.serial}, "
                f"expected {state.serial}): was it written without holding the lock?"
            )

    def _call(self, what: str, method: Any, **arguments: Any) -> Any:
        try:
            return method(**arguments)
        except (ClientError, BotoCoreError) as error:
            raise self._failed(what, error) from None

    def _failed(self, what: str, error: Exception) -> ConfigError:
        return ConfigError(
            f"could not {what} the deploy state {self.location}: {aws_problem(error)}"
        )

    def _corrupt(self, detail: str) -> ConfigError:
        return ConfigError(
            f"{self.location}: the state document is corrupt ({detail}); restore the previous "
            f"one: its earlier object version (versioned bucket) or s3://{self.bucket}/"
            f"{self.backup_key}"
        )


class _Changed(Exception):
    """The conditional write found another document than the one it expected."""
