"""Drift: the live engines read back and compared with the desired artifacts.

`detect_drift(env, desired) -> DriftReport` is the seam (detect.py); ignore rules from
`drift/ignore.yaml` (ignore.py), the policy verdict on live states (compliance.py), the
report model (model.py) and its renderings (render.py, metrics.py) live next to it.
"""

from __future__ import annotations

from controlplane.drift.detect import DEFAULT_CONCURRENCY, detect_drift
from controlplane.drift.ignore import IgnoreRule, IgnoreRules, load_ignore
from controlplane.drift.model import DriftItem, DriftReport, ReadFailure, Status, TargetStats

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DriftItem",
    "DriftReport",
    "IgnoreRule",
    "IgnoreRules",
    "ReadFailure",
    "Status",
    "TargetStats",
    "detect_drift",
    "load_ignore",
]
