"""`cpl drift --on temporal`: the drift workflow, its activities (hosted by `cpl worker`) and
the calls that start it, wait for it and keep its schedule."""

from __future__ import annotations

DRIFT_WORKFLOW = "cpl.drift"
APPROVE_SIGNAL = "approve-sync"
