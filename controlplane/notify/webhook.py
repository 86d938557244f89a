"""Webhook URLs: which may be posted to, where one comes from, and how one is shown.

The URL of a chat webhook is its credential (Slack's `/services/T…/B…/<secret>`), so a
webhook is shown as its scheme and host only (`https://hooks.slack.com/…`), named by the
environment variable it came from when it came from one. Nothing of its path or query is
ever printed, logged or used in a file name.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from controlplane.redaction import redact_url

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def url_problem(url: str) -> str | None:
    """Why `url` may not be posted to (None when it may): https://, or http:// to loopback
    only (tests and local receivers), with a host and without user:password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f"'{shown_url(url)}' is not a valid URL"
    if not host:
        return f"'{shown_url(url)}' has no host"
    if parts.username is not None or parts.password is not None:
        return f"'{shown_url(url)}' carries a user name or password: not allowed"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http":
        if is_loopback(host):
            return None
        return f"'{shown_url(url)}' is http:// to a host that is not loopback: use https://"
    return f"'{shown_url(url)}' is not an https:// URL"


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shown_url(url: str) -> str:
    """`scheme://host[:port]/…`: what of a webhook URL may be shown (never its path)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return "<unparsable URL>"
    if not parts.scheme or not netloc:
        return "<unparsable URL>"
    netloc = urlsplit(redact_url(f"{parts.scheme}://{netloc}")).netloc
    rest = "/…" if (parts.path not in ("", "/") or parts.query or parts.fragment) else "/"
    return f"{parts.scheme}://{netloc}{rest}"


@dataclass(frozen=True)
class Webhook:
    """A configured webhook: its URL (None when its variable is unset), what it is called
    in messages, and the key of its spool (stable when a secret URL is rotated)."""

    url: str | None
    name: str
    key: str
    problem: str | None = None


def resolve(literal: str | None, variable: str | None) -> Webhook:
    """The webhook of a notification setting: a URL written in the environment file, or one
    read from the environment variable `variable` now."""
    if variable is not None:
        url = os.environ.get(variable, "").strip() or None
        name = f"${variable}"
        if url is None:
            return Webhook(None, name, f"env:{variable}", f"{name} is not set")
        problem = url_problem(url)
        return Webhook(url, f"{name} ({shown_url(url)})", f"env:{variable}", problem)
    assert literal is not None
    return Webhook(literal, shown_url(literal), f"url:{literal}", url_problem(literal))


def scrub(text: str, url: str | None) -> str:
    """`text` (an error message) with `url` and its path replaced by its shown form."""
    if not url:
        return text
    shown = shown_url(url)
    text = text.replace(url, shown)
    path = urlsplit(url).path
    if len(path) > 1:
        text = text.replace(path, "/…")
    return text
