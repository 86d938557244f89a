"""What looks like a secret, and how cpl masks it wherever a value is shown or stored.

One definition of "secret-looking", used by every output (plan diffs and plan files, drift
reports, audit events, stored spec copies, URLs and engine errors in messages). The rule
CPL-P018 (`controlplane/policies/plaintext_secrets.rego`) mirrors these patterns in Rego; a
test asserts the two agree. A value is secret-looking when:

* the nearest key above it (array indices skipped, so `apiKeys: [...]` counts) names a
  secret (`SECRET_KEY`) and it is a non-empty string that is not a data path (`$.a.b`), or
  a number under a key that ends with a secret word (`SECRET_KEY_END`: `password: 31337420`
  but not `tokenCount: 3`); booleans and nulls never are;
* or it is a string containing a known credential format (`FORMATS`: AWS access key ids,
  PEM private keys, GitHub/Slack/Stripe/Google tokens, JWTs, `Bearer` values, passwords in
  URLs, secret-looking URL query parameters), whatever its key.

A masked value reads `***sha256:<12 hex>`: the first 12 hex digits of the sha256 of the
value's canonical JSON, so a diff still shows that a secret changed, and masking twice gives
the same text. Twelve hex digits (48 bits) identify a change; they do not help guess a
password that was not already guessable from its hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK_PREFIX: Final = "***sha256:"
"""Every masked value starts with this."""

# These pattern strings are shared with the Rego rule CPL-P018 and must stay valid in both
# Python `re` and RE2 (no look-around, no backreferences).
SECRET_WORDS: Final = (
    r"password|passwd|passphrase|secret|token|api[_-]?key|private[_-]?key|credential"
)
SECRET_KEY: Final = rf"(?i)({SECRET_WORDS})"
SECRET_KEY_END: Final = rf"(?i)({SECRET_WORDS})s?$"
QUERY_SECRET_NAMES: Final = (
    r"access_token|token|api[_-]?key|key|password|passwd|secret|client_secret|sig|signature|auth"
)
URL_QUERY_SECRET: Final = rf"""(?i)[?&]({QUERY_SECRET_NAMES})=[^&#\s"'*][^&#\s"']*"""
FORMATS: Final[dict[str, str]] = {
    "AWS access key id": r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
    "PEM private key": r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----",
    "GitHub token": r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b",
    "Slack token": r"\bxox[baprs]-[A-Za-z0-9-]{10,}",
    "Stripe live secret key": r"\b[sr]k_live_[0-9A-Za-z]{16,}\b",
    "Google API key": r"\bAIza[0-9A-Za-z_-]{35}\b",
    "JSON Web Token": r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
    "Bearer token": r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}",
    "password in a URL": r"""(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@"']+:[^/\s@"'$\{][^/\s@"']*@""",
    "secret in a URL query": URL_QUERY_SECRET,
}
DATA_PATH: Final = r"^\$((\.[A-Za-z_][A-Za-z0-9_-]*)|(\[\d+\]))*$"

_SECRET_KEY = re.compile(SECRET_KEY)
_SECRET_KEY_END = re.compile(SECRET_KEY_END)
_DATA_PATH = re.compile(DATA_PATH)
_FORMATS = {name: re.compile(pattern) for name, pattern in FORMATS.items()}
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+")
_QUERY_SECRET_NAME = re.compile(rf"(?i)({QUERY_SECRET_NAMES})")
_MASK = re.compile(r"^\*\*\*sha256:[0-9a-f]{12}$")


def is_secret_key(key: str) -> bool:
    """Whether a key names a secret (password, token, api key ...; case-insensitive)."""
    return bool(_SECRET_KEY.search(key))


def looks_like_secret(text: str) -> bool:
    """Whether `text` contains a value in a known credential format."""
    return any(pattern.search(text) for pattern in _FORMATS.values())


def is_secret_value(key: str | None, value: Any) -> bool:
    """Whether a scalar under `key` (its nearest key; None at the top) is secret-looking."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return key is not None and bool(_SECRET_KEY_END.search(key))
    if not isinstance(value, str) or is_mask(value):
        return False
    if key is not None and is_secret_key(key) and value.strip() and not _DATA_PATH.match(value):
        return True
    return looks_like_secret(value)


def mask(value: Any) -> str:
    """`***sha256:<12 hex>` of the value's canonical JSON (a mask stays as it is)."""
    if isinstance(value, str) and is_mask(value):
        return value
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return MASK_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def is_mask(value: str) -> bool:
    """Whether `value` is already a mask."""
    return bool(_MASK.match(value))


def mask_secrets(value: Any, key: str | None = None) -> Any:
    """A copy of a JSON-like value with every secret-looking scalar masked.

    `key` is the nearest key above `value` (for a value taken out of a larger document, such
    as one side of a diff). Containers are walked, never masked whole, so the shape of a
    document (and the fields of a schema under a key like `password`) stays visible.
    """
    if isinstance(value, Mapping):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(item, key) for item in value]
    if is_secret_value(key, value):
        return mask(value)
    return value


def pointer_key(pointer: str) -> str | None:
    """The nearest key of a JSON pointer (`/a/b/0` → `b`): array indices are skipped."""
    for part in reversed(pointer.split("/")[1:]):
        if not part.isdigit():
            return part.replace("~1", "/").replace("~0", "~")
    return None


def mask_diff(
    entries: tuple[Mapping[str, Any], ...] | list[Mapping[str, Any]], sides: tuple[str, str]
) -> tuple[dict[str, Any], ...]:
    """Field-level diff entries (`{"path", <side>, <side>}`) with secret values masked on
    both sides, judged by the key the path ends in."""
    result: list[dict[str, Any]] = []
    for entry in entries:
        masked = dict(entry)
        key = pointer_key(str(entry.get("path", "")))
        for side in sides:
            if side in masked:
                masked[side] = mask_secrets(masked[side], key)
        result.append(masked)
    return tuple(result)


def redact_url(url: str) -> str:
    """A URL fit to show: `user:password@` becomes `***@` and the values of secret-looking
    query parameters (token, key, password, sig ...) become `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text_formats(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_query_secret(name) for name, _ in pairs):
            query = urlencode(
                [(name, "***" if _query_secret(name) else value) for name, value in pairs],
                safe="*",
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Free text (an error message) with URLs redacted and credential formats masked."""
    return mask_text_formats(_URL.sub(lambda m: redact_url(m.group(0)), text))


def mask_text_formats(text: str) -> str:
    """`text` with every match of a credential format replaced by its mask."""
    for pattern in _FORMATS.values():
        text = pattern.sub(lambda m: mask(m.group(0)), text)
    return text


def _query_secret(name: str) -> bool:
    return bool(_QUERY_SECRET_NAME.fullmatch(name))


DATA_BEARING_CLASSES: Final = frozenset({"pii", "phi", "pci", "confidential"})
"""Classifications whose engine error text is redacted (`redact_run_error`)."""

# Keys of a JSON error cause that describe the failure, not the data (kept for regulated
# workflows): the error's type and code, where it happened, the attempt.
_STRUCTURAL_CAUSE_KEYS: Final = frozenset(
    {"errorType", "errorCode", "type", "code", "error", "state", "stateName", "step", "attempt"}
)


def redact_run_error(
    error: Mapping[str, str] | None, classification: str | None
) -> dict[str, str] | None:
    """An engine's run error (`{"error": name, "cause": text}`) fit to show.

    The cause of a failed run is the engine's free text, and engines put data in it (a
    Fail state's cause taken from the input, an activity's exception message). For a
    workflow whose data is sensitive (`DATA_BEARING_CLASSES`: the regulated pii, phi and pci,
    whose audit events keep identifiers only, and confidential) the cause is replaced by its
    length and mask; a cause that is a JSON object keeps its structural keys (error type,
    code, state) and masks the rest. Every cause has its secrets masked (`redact_text`).
    """
    if error is None:
        return None
    name = redact_text(str(error.get("error", "")))
    cause = str(error.get("cause", ""))
    if classification not in DATA_BEARING_CLASSES:
        return {"error": name, "cause": redact_text(cause)}
    return {"error": name, "cause": _regulated_cause(cause, str(classification))}


def _regulated_cause(cause: str, classification: str) -> str:
    if not cause:
        return cause
    try:
        document = json.loads(cause)
    except ValueError:
        document = None
    if isinstance(document, dict):
        kept = {
            key: value
            if key in _STRUCTURAL_CAUSE_KEYS and isinstance(value, str | int)
            else mask(value)
            for key, value in document.items()
        }
        return redact_text(json.dumps(kept, ensure_ascii=False))
    return (
        f"[redacted: {len(cause)} characters of engine error text of a {classification} "
        f"workflow, {mask(cause)}]"
    )
