"""Monitoring: a workflow's `slo` and `alerts` as Prometheus rules (docs/alerts.md).

`rules` turns the normalized slo/alerts of an engine's workflows into one Prometheus rules
document per target, on the metrics that engine exposes (`MetricSource`); `delivery` writes
that document where the environment's Prometheus loads it and asks Prometheus to reload;
`share` makes it the shared resource `shared:rules/<target>` of the engines' `share` hooks;
`local` runs the Prometheus of `cpl local up`.
"""
