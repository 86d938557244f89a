# METADATA
# title: No plaintext secrets in workflow specs
# description: |
#   The workflow document (task parameters, schedules, labels, any field at
#   any depth) contains no plaintext secret: (1) no secret-like key
#   (password, secret, token, api key, private key, credential; case
#   insensitive) nearest above a literal: a non-empty string (data paths
#   ($.a.b) and references to a secret store (config.secretReferencePrefixes)
#   are fine), or a number when the key ends with the secret word
#   (`password: 31337420`, not `tokenCount: 3`); list items count under the
#   list's key (`apiKeys: [...]`), nested objects under their own keys;
#   (2) no string value holding a known credential format (AWS access key id,
#   PEM private key, GitHub, Slack, Stripe, Google API keys, JSON Web Tokens,
#   Bearer values, passwords in URLs, secret URL query parameters), whatever
#   its key. Messages never echo the value. The patterns mirror
#   controlplane/redaction.py (a test checks they agree).
# custom:
#   id: CPL-P018
#   severity: critical
#   controls:
#     - "PCI DSS 8.3.2 / 8.6.2 no hard-coded authentication credentials"
#     - "SOX ITGC logical access: credential management"
#     - "HIPAA §164.312(d) person or entity authentication"
#     - "CWE-798 use of hard-coded credentials"
#     - "OWASP ASVS V2.10 service authentication secrets"
package cpl.rules.plaintext_secrets

import rego.v1

import data.cpl.lib.config.config
import data.cpl.lib.steps
import data.cpl.lib.util

# The patterns below are the ones of controlplane/redaction.py (SECRET_WORDS, SECRET_KEY,
# SECRET_KEY_END, FORMATS, DATA_PATH): tests/policy/test_secret_patterns.py checks that
# both sides hold the same strings.
_secret_words := `password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|credential`

secret_key_pattern := sprintf("(?i)(%s)", [_secret_words])

secret_key_end_pattern := sprintf("(?i)(%s)s?$", [_secret_words])

_query_secret_names := `access_token|token|api[_-]?key|key|password|passwd|secret|client_secret|sig|signature|auth`

# Known credential formats, by name.
formats := {
	"AWS access key id": `\b(AKIA|ASIA)[0-9A-Z]{16}\b`,
	"PEM private key": `-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----`,
	"GitHub token": `\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b`,
	"Slack token": `\bxox[baprs]-[A-Za-z0-9-]{10,}`,
	"Stripe live secret key": `\b[sr]k_live_[0-9A-Za-z]{16,}\b`,
	"Google API key": `\bAIza[0-9A-Za-z_-]{35}\b`,
	"JSON Web Token": `\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`,
	"Bearer token": `(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}`,
	"password in a URL": `(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@"']+:[^/\s@"'$\{][^/\s@"']*@`,
	"secret in a URL query": sprintf(`(?i)[?&](%s)=[^&#\s"'*][^&#\s"']*`, [_query_secret_names]),
}

# Data paths as accepted by the spec ($, $.a.b, $.a[0].b).
data_path := `^\$((\.[A-Za-z_][A-Za-z0-9_-]*)|(\[\d+\]))*$`

_workflow := object.get(input, "workflow", {})

# Cheap pre-filters on the serialized workflow (plain `contains`, no regex), then per
# chunk (each top-level step with its nested steps, and the rest of the document): only
# chunks that may hold a candidate are walked. Key words are searched in the lowered text;
# the only non-ASCII letter that case-folds onto one of their letters without lower()
# mapping it is U+017F (long s). Format marks are lowered too (a superset).
_key_words := ["pass", "secret", "token", "apikey", "api_key", "api-key", "privatekey", "private_key", "private-key", "credential"]

_format_marks := ["akia", "asia", "private key", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-", "sk_live_", "rk_live_", "aiza", "eyj", "bearer", "://", "sig=", "signature=", "key=", "auth="]

_marshaled := json.marshal(_workflow)

_lowered := replace(lower(_marshaled), "ſ", "s")

_may_hold_secret if {
	some word in array.concat(_key_words, _format_marks)
	contains(_lowered, word)
}

_chunks := array.concat(
	[[["spec", "steps", i], s] | some i, s in object.get(_workflow, ["spec", "steps"], [])],
	[[[], json.remove(_workflow, ["spec/steps"])]],
)

_candidate(doc) if {
	lowered := replace(lower(json.marshal(doc)), "ſ", "s")
	some word in array.concat(_key_words, _format_marks)
	contains(lowered, word)
}

# Every string or number leaf of the candidate chunks as [path array, value].
_leaves := [[array.concat(base, rel), value] |
	_may_hold_secret
	some [base, doc] in _chunks
	_candidate(doc)
	walk(doc, [rel, value])
	_scalar(value)
]

_scalar(value) if is_string(value)

_scalar(value) if is_number(value)

# The nearest key above a leaf: array indices are skipped, so list items count under
# the list's key.
_nearest_key(path) := keys[count(keys) - 1] if {
	keys := [k | some k in path; is_string(k)]
	count(keys) > 0
}

# Secret-like key with a literal value.
deny contains v if {
	some [path, value] in _leaves
	key := _nearest_key(path)
	_secret_literal(key, value)
	ptr := util.pointer(path)
	v := {
		"msg": sprintf("%s holds a plaintext value under secret-like key '%s' (%s); reference a secret store or pass it at run time", [
			_where(ptr), key, _size(value),
		]),
		"path": ptr,
	}
}

# Known credential format anywhere (reported once per value, and not again
# when the key rule already reports it).
deny contains v if {
	some [path, value] in _leaves
	is_string(value)
	kinds := sort([name | some name, re in formats; regex.match(re, value)])
	count(kinds) > 0
	not _key_reported(path, value)
	ptr := util.pointer(path)
	v := {
		"msg": sprintf("%s holds a plaintext value in a known credential format (%s)", [_where(ptr), concat(", ", kinds)]),
		"path": ptr,
	}
}

_secret_literal(key, value) if {
	is_string(value)
	regex.match(secret_key_pattern, key)
	_literal(value)
}

_secret_literal(key, value) if {
	is_number(value)
	regex.match(secret_key_end_pattern, key)
}

_size(value) := sprintf("%d characters", [count(value)]) if is_string(value)

_size(value) := "a number" if is_number(value)

_literal(value) if {
	is_string(value)
	trim_space(value) != ""
	not regex.match(data_path, value)
	not _reference(value)
}

_reference(value) if {
	some prefix in config.secretReferencePrefixes
	startswith(value, prefix)
}

_key_reported(path, value) if {
	key := _nearest_key(path)
	_secret_literal(key, value)
}

_where(ptr) := sprintf("%s at %s", [steps.label(steps.all_steps[sptr]), substring(ptr, count(sptr), -1)]) if {
	sptr := steps.owner(ptr)
}

_where(ptr) := ptr if not steps.owner(ptr)
