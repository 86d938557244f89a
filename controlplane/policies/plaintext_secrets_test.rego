package cpl.rules.plaintext_secrets_test

import rego.v1

import data.cpl.rules.plaintext_secrets

_inp(params) := {"workflow": {
	"metadata": {"name": "orders", "labels": {"domain": "commerce"}},
	"spec": {
		"input": {"schema": {"type": "object", "properties": {"password": {"type": "string"}, "apiKey": {"type": "string"}}}},
		"steps": [
			{"name": "reserve", "type": "task", "idempotencyKey": "$.orderId"},
			{"name": "p", "type": "parallel", "branches": [{"steps": [
				{"name": "charge", "type": "task", "parameters": params},
			]}]},
		],
	},
}}

_paths(d) := {v.path | some v in d}

test_compliant if {
	params := {
		"amount": "$.total",
		"apiKey": "$.credentials.psp",
		"password": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:psp",
		"token": "",
		"tokenCount": 3,
		"note": "rotate the password monthly",
	}
	count(plaintext_secrets.deny) == 0 with input as _inp(params)
}

test_literal_under_secret_keys if {
	params := {"db": {"Password": "hunter2"}, "API_KEY": "abc123", "auth": {"client_secret": "s3cr3t"}}
	d := plaintext_secrets.deny with input as _inp(params)
	_paths(d) == {
		"/spec/steps/1/branches/0/steps/0/parameters/db/Password",
		"/spec/steps/1/branches/0/steps/0/parameters/API_KEY",
		"/spec/steps/1/branches/0/steps/0/parameters/auth/client_secret",
	}
	some v in d
	v.msg == "step 'charge' at /parameters/db/Password holds a plaintext value under secret-like key 'Password' (7 characters); reference a secret store or pass it at run time"
	not contains(concat(" ", [x.msg | some x in d]), "hunter2")
}

test_known_formats_under_any_key if {
	params := {
		"headers": ["Bearer ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"],
		"aws": {"id": "AKIAIOSFODNN7EXAMPLE"},
		"pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIE...",
	}
	d := plaintext_secrets.deny with input as _inp(params)
	_paths(d) == {
		"/spec/steps/1/branches/0/steps/0/parameters/headers/0",
		"/spec/steps/1/branches/0/steps/0/parameters/aws/id",
		"/spec/steps/1/branches/0/steps/0/parameters/pem",
	}
	some v in d
	v.msg == "step 'charge' at /parameters/aws/id holds a plaintext value in a known credential format (AWS access key id)"
}

test_key_and_format_reported_once if {
	d := plaintext_secrets.deny with input as _inp({"slack_token": "xoxb-1234567890-abcdefghij"})
	count(d) == 1
}

test_outside_steps if {
	inp := json.patch(_inp({}), [{"op": "add", "path": "/workflow/metadata/labels/token", "value": "abc"}])
	d := plaintext_secrets.deny with input as inp
	d == {{"msg": "/metadata/labels/token holds a plaintext value under secret-like key 'token' (3 characters); reference a secret store or pass it at run time", "path": "/metadata/labels/token"}}
}

test_prefilter_handles_escaped_keys if {
	d := plaintext_secrets.deny with input as _inp({"my\"password\"x": "hunter2"})
	count(d) == 1
}

# The substring pre-filter is case-insensitive like the key pattern, including the
# long s (U+017F) that (?i) folds onto "s".
test_prefilter_case_folding if {
	_paths(plaintext_secrets.deny) == {"/spec/steps/1/branches/0/steps/0/parameters/DB_PASSWORD"} with input as _inp({"DB_PASSWORD": "hunter2"})
	_paths(plaintext_secrets.deny) == {"/spec/steps/1/branches/0/steps/0/parameters/pa\u017fsword"} with input as _inp({"pa\u017fsword": "hunter2"})
	_paths(plaintext_secrets.deny) == {"/spec/steps/1/branches/0/steps/0/parameters/note"} with input as _inp({"note": "AKIAABCDEFGHIJKLMNOP"})
}
