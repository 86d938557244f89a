"""Waivers (`cpl schema --kind Waiver`): an owned, expiring exception to one rule for named
workflows."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from controlplane.spec.model import Model
from controlplane.spec.types import NAME_PATTERN

MAX_WAIVER_DAYS = 180
EXPIRING_SOON_DAYS = 14
RULE_ID_PATTERN = r"^CPL-[A-Z]\d{3}$"
_WORKFLOW_REF = re.compile(r"^[a-z][a-z0-9-]{0,30}/[a-z][a-z0-9-]{0,62}$")


class WaiverMetadata(Model):
    name: str = Field(pattern=NAME_PATTERN)


class WaiverBody(Model):
    rule: str = Field(pattern=RULE_ID_PATTERN)
    workflows: list[str] = Field(min_length=1)
    environments: list[str] = Field(min_length=1)
    path: str | None = Field(default=None, pattern=r"^(/[^/]*)*$")
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    ticket: str | None = None
    expires: dt.date

    @field_validator("workflows")
    @classmethod
    def _workflow_refs(cls, value: list[str]) -> list[str]:
        for ref in value:
            if not _WORKFLOW_REF.match(ref):
                raise PydanticCustomError(
                    "CPL-S004",
                    "'{ref}' is not a workflow reference tenant/name (no wildcards)",
                    {"ref": ref},
                )
        return value


class Waiver(Model):
    api_version: Literal["cpl.dev/v1"]
    kind: Literal["Waiver"]
    metadata: WaiverMetadata
    spec: WaiverBody

    @property
    def name(self) -> str:
        return self.metadata.name

    def is_expired(self, today: dt.date) -> bool:
        return self.spec.expires < today

    def expires_within(self, today: dt.date, days: int = EXPIRING_SOON_DAYS) -> bool:
        return not self.is_expired(today) and self.spec.expires <= today + dt.timedelta(days=days)
