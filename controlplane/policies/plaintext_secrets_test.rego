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

# Every JSON type under a secret-like key: numbers (when the key ends with the secret
# word), list items (under the list's key), values of nested objects.
test_numbers_lists_and_nested_values if {
	params := {
		"password": 31337420,
		"apiKeys": ["k-first", "k-second"],
		"db": [{"credentials": {"secret": 42}}],
		"tokenCount": 3,
		"retries": 5,
		"enabled": true,
		"tokens": [],
	}
	d := plaintext_secrets.deny with input as _inp(params)
	_paths(d) == {
		"/spec/steps/1/branches/0/steps/0/parameters/password",
		"/spec/steps/1/branches/0/steps/0/parameters/apiKeys/0",
		"/spec/steps/1/branches/0/steps/0/parameters/apiKeys/1",
		"/spec/steps/1/branches/0/steps/0/parameters/db/0/credentials/secret",
	}
	some v in d
	v.msg == "step 'charge' at /parameters/password holds a plaintext value under secret-like key 'password' (a number); reference a secret store or pass it at run time"
	not contains(concat(" ", [x.msg | some x in d]), "31337420")
}

test_bearer_values if {
	d := plaintext_secrets.deny with input as _inp({"headers": {"Authorization": "Bearer abcdefghijklmnop0123456789"}})
	d == {{
		"msg": "step 'charge' at /parameters/headers/Authorization holds a plaintext value in a known credential format (Bearer token)",
		"path": "/spec/steps/1/branches/0/steps/0/parameters/headers/Authorization",
	}}
	count(plaintext_secrets.deny) == 0 with input as _inp({"note": "use bearer authentication"})
}

test_json_web_tokens if {
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	_paths(plaintext_secrets.deny) == {"/spec/steps/1/branches/0/steps/0/parameters/session"} with input as _inp({"session": jwt})
}

test_credentials_in_urls if {
	params := {
		"dsn": "postgres://admin:pg-pass@db/x",
		"hook": "https://hooks.example.com/x?token=abc123",
		"signed": "https://bucket.example.com/o?X-Id=1&sig=abcdef",
		"plain": "https://example.com/a?b=c",
		"user": "ftp://anonymous@example.com/pub",
		"templated": "postgres://admin:${DB_PASSWORD}@db/x",
	}
	d := plaintext_secrets.deny with input as _inp(params)
	_paths(d) == {
		"/spec/steps/1/branches/0/steps/0/parameters/dsn",
		"/spec/steps/1/branches/0/steps/0/parameters/hook",
		"/spec/steps/1/branches/0/steps/0/parameters/signed",
	}
	some v in d
	v.msg == "step 'charge' at /parameters/dsn holds a plaintext value in a known credential format (password in a URL)"
}

test_token_formats if {
	params := {
		"a": "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
		"b": "xoxb-1234567890-abcdefghij",
		"c": "-----BEGIN OPENSSH PRIVATE KEY-----",
		"d": "ASIAABCDEFGHIJKLMNOP",
	}
	count(plaintext_secrets.deny) == 4 with input as _inp(params)
}

# The schema of a secret input is not a secret: only leaves under secret-like keys count.
test_schema_of_secret_fields_is_fine if {
	count(plaintext_secrets.deny) == 0 with input as _inp({"amount": "$.total"})
}
