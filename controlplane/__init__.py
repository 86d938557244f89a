"""cpl: a policy-and-compliance control plane for workflow orchestration."""

__version__ = "0.1.0"
