package cpl.rules.schedule_explicit_test

import rego.v1

import data.cpl.rules.schedule_explicit

_inp(spec) := {"workflow": {"metadata": {"name": "ledger"}, "spec": spec}}

test_compliant if {
	count(schedule_explicit.deny) == 0 with input as _inp({"schedule": {"cron": "0 2 * * *", "timezone": "Europe/Berlin", "overlap": "skip"}})
	count(schedule_explicit.deny) == 0 with input as _inp({})
}

test_missing_both if {
	d := schedule_explicit.deny with input as _inp({"schedule": {"cron": "0 2 * * *"}})
	d == {
		{"msg": "workflow 'ledger' schedule '0 2 * * *' does not set timezone explicitly", "path": "/spec/schedule"},
		{"msg": "workflow 'ledger' schedule '0 2 * * *' does not set overlap explicitly", "path": "/spec/schedule"},
	}
}
