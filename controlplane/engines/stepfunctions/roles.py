"""The live IAM role of a state machine (stepfunctions/iam.py renders it), read and written
through the client's retrying call on the `iam` boto3 client.

A managed role (`role.managed`: the target has no `roleArn`) is read back in the artifact's
shape: name, path, trust policy, inline policies by name and the managed policies attached
to it (cpl attaches none: one attached by hand shows as drift). It is known as cpl's by its
path (`/cpl/`), so deleting a state machine deletes its role and never a role cpl did not
make.

A target's own role (`role.managed` false) is not cpl's to change: it is read, its inline
policies and the default versions of its attached policies listed as `Granted`, so that the
live compliance pass of `cpl drift` (CPL-P021) can compare them with `Needs`. A role that
cannot be read (absent, or no permission to read IAM) gets no `Granted`: nothing is claimed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from controlplane.engines.live import ResourceError
from controlplane.engines.stepfunctions.iam import ROLE_PATH

Call = Callable[[str, Callable[[], Any]], Any]

_ABSENT = ("NoSuchEntity",)
_UNREADABLE = ("NoSuchEntity", "AccessDenied")
_MAX_POLICIES = 50
"""At most this many policies are read per role (IAM allows 10 attached and a few inline
ones by default): an engine answer is bounded."""


class Roles:
    def __init__(self, iam: Any, call: Call) -> None:
        self.iam = iam
        self.call = call

    # -- reading ----------------------------------------------------------------------------

    def read(self, desired: dict[str, Any] | None, role_arn: str | None) -> dict[str, Any] | None:
        """The live `role` of a machine whose live roleArn is `role_arn`, in the shape of the
        artifact's `desired` role (None: the artifact has none, e.g. a listing)."""
        if desired is not None and not desired.get("managed"):
            return self._provided(desired)
        name = _managed_name(role_arn)
        if name is None:
            return None
        return self.read_managed(name)

    def read_managed(self, name: str) -> dict[str, Any] | None:
        role = self._get_role(name, _ABSENT)
        if role is None or role.get("Path") != ROLE_PATH:
            return None
        return {
            "managed": True,
            "RoleName": role["RoleName"],
            "Path": role["Path"],
            "AssumeRolePolicyDocument": _document(role.get("AssumeRolePolicyDocument")),
            "Policies": self._inline(name),
            "AttachedPolicies": sorted(p["PolicyArn"] for p in self._attached(name)),
        }

    def _provided(self, desired: dict[str, Any]) -> dict[str, Any]:
        live: dict[str, Any] = {
            key: desired[key] for key in ("managed", "Arn", "Needs") if key in desired
        }
        name = str(desired.get("Arn") or "").rsplit("/", 1)[-1]
        if not name:
            return live
        try:
            if self._get_role(name, _UNREADABLE) is None:
                return live
            granted = list(self._inline(name).values())
            for attached in self._attached(name):
                granted.append(self._attached_document(attached["PolicyArn"]))
        except ResourceError as error:
            if any(code in error.message for code in _UNREADABLE):
                return live  # no permission to read IAM: nothing is claimed
            raise
        live["Granted"] = granted
        return live

    def _get_role(self, name: str, tolerated: tuple[str, ...]) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.call(
                f"get role {name}", lambda: self.iam.get_role(RoleName=name)
            )["Role"]
        except ResourceError as error:
            if any(code in error.message for code in tolerated):
                return None
            raise
        return found

    def _inline(self, name: str) -> dict[str, Any]:
        names = self.call(
            f"list the inline policies of role {name}",
            lambda: self.iam.list_role_policies(RoleName=name, MaxItems=_MAX_POLICIES),
        ).get("PolicyNames", [])
        policies: dict[str, Any] = {}
        for policy in sorted(names)[:_MAX_POLICIES]:
            answer = self.call(
                f"get policy {policy} of role {name}",
                functools.partial(self.iam.get_role_policy, RoleName=name, PolicyName=policy),
            )
            policies[policy] = _document(answer.get("PolicyDocument"))
        return policies

    def _attached(self, name: str) -> list[dict[str, Any]]:
        answer = self.call(
            f"list the attached policies of role {name}",
            lambda: self.iam.list_attached_role_policies(RoleName=name, MaxItems=_MAX_POLICIES),
        )
        return list(answer.get("AttachedPolicies", []))[:_MAX_POLICIES]

    def _attached_document(self, arn: str) -> Any:
        policy = self.call(f"get policy {arn}", lambda: self.iam.get_policy(PolicyArn=arn))
        version = policy["Policy"]["DefaultVersionId"]
        answer = self.call(
            f"get policy {arn} version {version}",
            lambda: self.iam.get_policy_version(PolicyArn=arn, VersionId=version),
        )
        return _document(answer["PolicyVersion"].get("Document"))

    # -- writing ----------------------------------------------------------------------------

    def put(self, role: dict[str, Any] | None, tags: dict[str, str]) -> None:
        """Make the managed role exactly `role` (nothing for a target's own role)."""
        if role is None or not role.get("managed"):
            return
        name = role["RoleName"]
        trust = json.dumps(role["AssumeRolePolicyDocument"], sort_keys=True)
        try:
            self.call(
                f"create role {name}",
                lambda: self.iam.create_role(
                    RoleName=name,
                    Path=role["Path"],
                    AssumeRolePolicyDocument=trust,
                    Description="cpl: the workload identity of one state machine",
                    Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
                ),
            )
        except ResourceError as error:
            if "EntityAlreadyExists" not in error.message:
                raise
            self.call(
                f"update the trust policy of role {name}",
                lambda: self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust),
            )
        live = self.read_managed(name) or {}
        for policy, document in sorted(role["Policies"].items()):
            self.call(
                f"put policy {policy} of role {name}",
                functools.partial(
                    self.iam.put_role_policy,
                    RoleName=name,
                    PolicyName=policy,
                    PolicyDocument=json.dumps(document, sort_keys=True),
                ),
            )
        self._remove_extras(name, live, role)

    def _remove_extras(self, name: str, live: dict[str, Any], role: dict[str, Any]) -> None:
        for policy in sorted(set(live.get("Policies", {})) - set(role["Policies"])):
            self.call(
                f"delete policy {policy} of role {name}",
                functools.partial(self.iam.delete_role_policy, RoleName=name, PolicyName=policy),
            )
        for arn in sorted(set(live.get("AttachedPolicies", [])) - set(role["AttachedPolicies"])):
            self.call(
                f"detach policy {arn} from role {name}",
                functools.partial(self.iam.detach_role_policy, RoleName=name, PolicyArn=arn),
            )

    def delete(self, name: str) -> None:
        """Delete the managed role `name` with its policies (IAM refuses it before them)."""
        live = self.read_managed(name)
        if live is None:
            return  # absent, or not under cpl's path: not cpl's role
        self._remove_extras(name, live, {"Policies": {}, "AttachedPolicies": []})
        try:
            self.call(f"delete role {name}", lambda: self.iam.delete_role(RoleName=name))
        except ResourceError as error:
            if not any(code in error.message for code in _ABSENT):
                raise


def _managed_name(role_arn: str | None) -> str | None:
    """The role name of an ARN under cpl's path, e.g. `arn:aws:iam::1:role/cpl/cpl-t-n`."""
    marker = f":role{ROLE_PATH}"
    if not role_arn or marker not in role_arn:
        return None
    return role_arn.split(marker, 1)[1] or None


def _document(value: Any) -> Any:
    """A policy document: IAM answers URL-encoded JSON text where boto3 does not decode it."""
    if isinstance(value, str):
        return json.loads(unquote(value))
    return value
