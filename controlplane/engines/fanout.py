"""The contract between a fanned-out drift run's engine side and the code that computes it.

An engine that runs `cpl drift --on ENGINE` (Temporal: a workflow whose activities `cpl
worker` hosts) calls a `DriftHost` for everything that reads the control repo or the live
engines; the host (built by the CLI around the local drift code) is the same code as a local
`cpl drift`, so the engine package never imports drift, the pipeline or deploy. Every value
crossing it is JSON, since it travels between processes.
"""

from __future__ import annotations

from typing import Any, Protocol


class VersionMismatch(Exception):
    """This process reads the control repo at another version than the run (the message says
    which and what to do): another process may still compute the work."""


class DriftHost(Protocol):
    def plan(self, request: dict[str, Any]) -> dict[str, Any]:
        """`{"version": ..., "shards": [shard, ...]}` for the run `request` describes (the
        version of the repo this process reads: `{"commit": sha | None, "digest": sha256}`);
        VersionMismatch when `request["version"]` is set and is not this process's."""
        ...

    def shard(self, request: dict[str, Any], shard: dict[str, Any]) -> dict[str, Any]:
        """One shard's drift report (wire form); VersionMismatch as for `plan`."""
        ...

    def finish(self, request: dict[str, Any], reports: dict[str, Any]) -> dict[str, Any]:
        """The report of the run from the shards' (by shard id), recorded once in the audit
        trail: `{"report": ..., "drifted": [[workflow, target], ...], "partial": bool}`."""
        ...

    def sync(self, request: dict[str, Any], drifted: list[list[str]]) -> dict[str, Any]:
        """Re-apply the drifted (workflow, target) pairs through apply's policy gate:
        `{"exit": code}`."""
        ...
