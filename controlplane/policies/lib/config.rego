# METADATA
# title: cpl library configuration
# description: |
#   Tunables of the built-in rules. `data.cpl.config` (the environment's
#   `policy.data`, durations already converted to seconds and sizes to bytes
#   by the Python side) is merged recursively over `defaults`.
package cpl.lib.config

import rego.v1

defaults := {
	# CPL-P003: highest allowed retry.maxAttempts
	"maxAttempts": 10,
	# CPL-P011: longest retention (seconds), 365d
	"maxRetention": 31536000,
	# CPL-P011: longest retention (seconds) for gdpr + pii workflows, 30d
	"gdprMaxRetention": 2592000,
	# CPL-P016: longest access.admin.jit.maxDuration (seconds), 4h
	"maxJit": 14400,
	# CPL-P019: shortest pause (seconds) of a wait/approval loop
	"minPollInterval": 5,
	# CPL-P013: inline payload limit (bytes) per engine, used when
	# input.target.payloadLimit is not given
	"payloadLimits": {
		"stepfunctions": 262144,
		"temporal": 2097152,
		"argo": 1048576,
	},
	# CPL-P002: tiers on which retries must use full jitter
	"jitterTiers": ["staging", "production"],
	# CPL-P018: literal values starting with one of these are references to a
	# secret store, not plaintext secrets
	"secretReferencePrefixes": [
		"arn:aws:secretsmanager:",
		"arn:aws:ssm:",
		"vault:",
		"secretsmanager:",
		"ssm:",
	],
}

default user := {}

user := data.cpl.config if is_object(data.cpl.config)

# The effective configuration: user values win, nested objects are merged.
config := object.union(defaults, user)
