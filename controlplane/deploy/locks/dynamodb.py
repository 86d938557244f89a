"""The lock of a state in S3: one item of a DynamoDB table, keyed by the state object.

The table has a string hash key `LockID` (as Terraform's lock table). The item of a state
`s3://bucket/prefix/env.cpl-state.json` has `LockID = bucket/prefix/env.cpl-state.json`, the
holder (`Info`: pid, host, user, command, startedAt as JSON), a random `Token` that only the
holder knows, and `Expires` (epoch seconds). It is taken with a conditional put (no item, or
an expired one) and renewed by a background thread while the command runs, so the lock of a
runner that died frees itself after `lease` seconds; it is deleted (only if the token is
still ours) when the command ends. A holder that cannot renew in time loses the lock:
`held` turns false and the state refuses its next write.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from types import TracebackType
from typing import Any, Self

from botocore.exceptions import BotoCoreError, ClientError

from controlplane.deploy.aws import aws_problem, deploy_client, error_code
from controlplane.deploy.lock import LockHolder, LockTimeout
from controlplane.errors import ConfigError
from controlplane.spec.environment import AwsSettings

DEFAULT_LEASE = 45.0
"""Seconds a lock outlives its last renewal (renewed every third of it): shorter than the
default --lock-timeout, so a waiting apply outlasts the lock of a runner that was killed."""

_TAKEN = "ConditionalCheckFailedException"


class DynamoLock:
    """An exclusive lock on one state, held in a DynamoDB item; a context manager."""

    def __init__(
        self,
        table: str,
        key: str,
        aws: AwsSettings | None,
        *,
        timeout: float,
        command: str,
        lease: float = DEFAULT_LEASE,
        poll_interval: float = 1.0,
    ) -> None:
        self.table = table
        self._key = key
        self.timeout = timeout
        self.command = command
        self.lease = lease
        self.poll_interval = poll_interval
        self.holder: LockHolder | None = None
        self._client = deploy_client(aws, "dynamodb")
        self._token: str | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def key(self) -> str:
        return self._key

    @property
    def location(self) -> str:
        return f"dynamodb://{self.table} (LockID {self._key})"

    @property
    def held(self) -> bool:
        return self._token is not None and not self._lost.is_set()

    def acquire(self) -> None:
        if self._token is not None:
            raise RuntimeError(f"the lock {self.location} is already held by this object")
        holder = LockHolder.current(self.command)
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.timeout
        while not self._try_put(holder, token):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout()
            time.sleep(min(self.poll_interval, remaining))
        self._token, self.holder = token, holder
        self._lost.clear()
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name="cpl-lock-renewal", daemon=True)
        self._renewer.start()

    def release(self) -> None:
        """Release the lock (a no-op when not held); never deletes another holder's item."""
        token, self._token = self._token, None
        if token is None:
            return
        self.holder = None
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        try:
            self._client.delete_item(
                TableName=self.table,
                Key={"LockID": {"S": self._key}},
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "Token"},
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as error:
            if error_code(error) != _TAKEN:  # taken over after expiry or a forced unlock
                raise self._failed("release", error) from None
        except BotoCoreError as error:
            raise self._failed("release", error) from None

    def current_holder(self) -> LockHolder | None:
        """The holder recorded in the item, if the lock is taken and not expired."""
        item = self._item()
        if item is None or _expires(item) <= time.time():
            return None
        return _holder(item)

    def force_unlock(self) -> LockHolder | None:
        """Delete the item whoever holds it; returns the holder it named (None: no lock)."""
        try:
            answer = self._client.delete_item(
                TableName=self.table, Key={"LockID": {"S": self._key}}, ReturnValues="ALL_OLD"
            )
        except (ClientError, BotoCoreError) as error:
            raise self._failed("remove", error) from None
        item = answer.get("Attributes")
        if not item:
            return None
        return _holder(item) or LockHolder(0, "?", "?", "unknown", dt.datetime.now(dt.UTC))

    def expires_at(self) -> dt.datetime | None:
        item = self._item()
        return None if item is None else dt.datetime.fromtimestamp(_expires(item), dt.UTC)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    # -- DynamoDB calls -----------------------------------------------------------------

    def _try_put(self, holder: LockHolder, token: str) -> bool:
        now = time.time()
        try:
            self._client.put_item(
                TableName=self.table,
                Item={
                    "LockID": {"S": self._key},
                    "Info": {"S": json.dumps(holder.to_json())},
                    "Token": {"S": token},
                    "Expires": {"N": str(int(now + self.lease))},
                },
                ConditionExpression="attribute_not_exists(LockID) OR #expires < :now",
                ExpressionAttributeNames={"#expires": "Expires"},
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except ClientError as error:
            if error_code(error) == _TAKEN:
                return False
            raise self._failed("take", error) from None
        except BotoCoreError as error:
            raise self._failed("take", error) from None
        return True

    def _renew(self) -> None:
        interval = self.lease / 3
        while not self._stop.wait(interval):
            token = self._token
            if token is None:
                return
            try:
                self._client.update_item(
                    TableName=self.table,
                    Key={"LockID": {"S": self._key}},
                    UpdateExpression="SET #expires = :expires",
                    ConditionExpression="#token = :token",
                    ExpressionAttributeNames={"#expires": "Expires", "#token": "Token"},
                    ExpressionAttributeValues={
                        ":expires": {"N": str(int(time.time() + self.lease))},
                        ":token": {"S": token},
                    },
                )
            except ClientError as error:
                if error_code(error) == _TAKEN:  # someone forced it or took it over
                    self._lost.set()
                    return
            except BotoCoreError:
                continue  # a network blip: the next round tries again, within the lease

    def _item(self) -> dict[str, Any] | None:
        try:
            answer = self._client.get_item(
                TableName=self.table, Key={"LockID": {"S": self._key}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as error:
            raise self._failed("read", error) from None
        item = answer.get("Item")
        return item if isinstance(item, dict) else None

    def _timeout(self) -> LockTimeout:
        item = self._item()
        holder = _holder(item) if item else None
        who = holder.describe() if holder else "another process"
        expiry = ""
        if item is not None:
            until = dt.datetime.fromtimestamp(_expires(item), dt.UTC)
            expiry = f" (its lease ends {until.strftime('%Y-%m-%d %H:%M:%S UTC')} unless renewed)"
        return LockTimeout(
            f"the state {self._key} is locked in {self.table}: held by {who}{expiry}; gave up "
            f"after {self.timeout:g}s. A holder that died frees it when its lease ends; "
            "`cpl state unlock --env ENV --force` removes it now"
        )

    def _failed(self, what: str, error: Exception) -> ConfigError:
        code = error_code(error)
        hint = ""
        if code == "ResourceNotFoundException":
            hint = (
                f" (create the table: aws dynamodb create-table --table-name {self.table} "
                "--attribute-definitions AttributeName=LockID,AttributeType=S --key-schema "
                "AttributeName=LockID,KeyType=HASH --billing-mode PAY_PER_REQUEST)"
            )
        return ConfigError(
            f"could not {what} the state lock {self.location}: {aws_problem(error)}{hint}"
        )


def _expires(item: dict[str, Any]) -> float:
    try:
        return float(item["Expires"]["N"])
    except (KeyError, TypeError, ValueError):
        return 0.0


def _holder(item: dict[str, Any]) -> LockHolder | None:
    try:
        return LockHolder.from_json(json.loads(item["Info"]["S"]))
    except (KeyError, TypeError, ValueError):
        return None
