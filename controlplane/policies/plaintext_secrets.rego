# METADATA
# title: No plaintext secrets in workflow specs
# description: |
#   The workflow document (task parameters, schedules, labels, any field at
#   any depth) contains no plaintext secret: (1) no secret-like key
#   (password, secret, token, api key, private key, credential; case
#   insensitive) holding a literal, non-empty string -- data paths ($.a.b)
#   and references to a secret store (config.secretReferencePrefixes) are
#   fine; (2) no string value in a known credential format (AWS access key
#   id, PEM private key, GitHub, Slack, Stripe, Google API keys), whatever
#   its key. Messages never echo the value.
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

secret_key_pattern := `(?i)(password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|credential)`

# Known credential formats, by name.
formats := {
	"AWS access key id": `\b(AKIA|ASIA)[0-9A-Z]{16}\b`,
	"PEM private key": `-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----`,
	"GitHub token": `\b(gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})\b`,
	"Slack token": `\bxox[baprs]-[A-Za-z0-9-]{10,}`,
	"Stripe live secret key": `\b[sr]k_live_[0-9A-Za-z]{16,}\b`,
	"Google API key": `\bAIza[0-9A-Za-z_-]{35}\b`,
}

# Cheap pre-filter: a string is checked against `formats` only if it matches this.
_any_format := `(AKIA|ASIA)[0-9A-Z]{16}|PRIVATE KEY|gh[pousr]_|github_pat_|xox[baprs]-|[sr]k_live_|AIza`

# Data paths as accepted by the spec ($, $.a.b, $.a[0].b).
_data_path := `^\$((\.[A-Za-z_][A-Za-z0-9_-]*)|(\[\d+\]))*$`

_workflow := object.get(input, "workflow", {})

# Pre-filters on serialized chunks of the workflow (each top-level step with
# its nested steps, and the rest of the document), after one pre-filter of the
# whole document: only chunks that may hold
# a candidate are walked. The key pre-filter looks for a secret-like key
# whose string value does not start like a data path ("$", "$." or "$["), so
# `apiKey: $.secrets.psp` stays cheap.
_key_prefilter := `(?i)(password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|credential)(\\.|[^"\\])*":"([^$"]|\$[^.\["])`

_chunks := array.concat(
	[[["spec", "steps", i], s] | some i, s in object.get(_workflow, ["spec", "steps"], [])],
	[[[], json.remove(_workflow, ["spec/steps"])]],
)

_prefilter := concat("|", [_key_prefilter, _any_format])

_candidate(doc) if regex.match(_prefilter, json.marshal(doc))

# Cheapest pre-filter first: substrings that every match of `_prefilter` contains
# (`contains` is far cheaper than a regex over the whole document). Key words are
# searched case-insensitively in the lowered text; the only non-ASCII letter that
# case-folds onto one of their letters without lower() mapping it is U+017F (long s).
_key_words := ["pass", "secret", "token", "apikey", "api_key", "api-key", "privatekey", "private_key", "private-key", "credential"]

_format_marks := ["AKIA", "ASIA", "PRIVATE KEY", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-", "sk_live_", "rk_live_", "AIza"]

_marshaled := json.marshal(_workflow)

_may_hold_secret if {
	lowered := replace(lower(_marshaled), "ſ", "s")
	some word in _key_words
	contains(lowered, word)
}

_may_hold_secret if {
	some mark in _format_marks
	contains(_marshaled, mark)
}

# Every string leaf of the candidate chunks as [path array, value].
_strings := [[array.concat(base, rel), value] |
	_may_hold_secret
	regex.match(_prefilter, _marshaled)
	some [base, doc] in _chunks
	_candidate(doc)
	walk(doc, [rel, value])
	is_string(value)
]

# Secret-like key with a literal value.
deny contains v if {
	some [path, value] in _strings
	count(path) > 0
	key := path[count(path) - 1]
	is_string(key)
	regex.match(secret_key_pattern, key)
	_literal(value)
	ptr := util.pointer(path)
	v := {
		"msg": sprintf("%s holds a plaintext value under secret-like key '%s' (%d characters); reference a secret store or pass it at run time", [
			_where(ptr), key, count(value),
		]),
		"path": ptr,
	}
}

# Known credential format anywhere (reported once per value, and not again
# when the key rule already reports it).
deny contains v if {
	some [path, value] in _strings
	regex.match(_any_format, value)
	kinds := sort([name | some name, re in formats; regex.match(re, value)])
	count(kinds) > 0
	not _key_reported(path, value)
	ptr := util.pointer(path)
	v := {
		"msg": sprintf("%s holds a plaintext value in a known credential format (%s)", [_where(ptr), concat(", ", kinds)]),
		"path": ptr,
	}
}

_literal(value) if {
	is_string(value)
	trim_space(value) != ""
	not regex.match(_data_path, value)
	not _reference(value)
}

_reference(value) if {
	some prefix in config.secretReferencePrefixes
	startswith(value, prefix)
}

_key_reported(path, value) if {
	count(path) > 0
	key := path[count(path) - 1]
	is_string(key)
	regex.match(secret_key_pattern, key)
	_literal(value)
}

_where(ptr) := sprintf("%s at %s", [steps.label(steps.all_steps[sptr]), substring(ptr, count(sptr), -1)]) if {
	sptr := steps.owner(ptr)
}

_where(ptr) := ptr if not steps.owner(ptr)
