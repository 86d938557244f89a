"""Compose the body of a pull-request comment or an issue from a cpl Markdown report.

The body starts with a hidden marker (`<!-- cpl-plan:staging -->`) by which the workflow finds
the comment (or issue) it wrote before and updates it in place, and stays under GitHub's limit
(65,536 characters for a comment or an issue body) whatever the report's size:

    python -m controlplane.ci.body --marker '<!-- cpl-plan:staging -->' plan.md > body.md
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

MAX_CHARS = 65_000
"""The longest body written: below GitHub's 65,536, with room for what the API adds."""

_MARKER = re.compile(r"<!-- [\w.:/-]{1,200} -->")


def compose(marker: str, report: str, footer: str = "", limit: int = MAX_CHARS) -> str:
    """`marker`, the report and the footer; the report is cut (with a note) to fit `limit`."""
    if not _MARKER.fullmatch(marker):
        raise ValueError(f"not a hidden marker: {marker!r} (expected <!-- NAME -->)")
    head = marker + "\n"
    tail = f"\n---\n{footer.strip()}\n" if footer.strip() else ""
    room = limit - len(head) - len(tail)
    text = report.rstrip() + "\n"
    if len(text) > room:
        note = (
            "\n\n_The report is cut here: it exceeds what a comment can hold. "
            "The full report is in the workflow run's artifacts._\n"
        )
        fence = "\n```"
        cut = text[: max(room - len(note) - len(fence), 0)]
        if cut.count("```") % 2:  # do not leave a code block open behind the cut
            cut += fence
        text = cut + note
    return head + text + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m controlplane.ci.body", description=__doc__.splitlines()[0]
    )
    parser.add_argument("report", type=Path, help="The Markdown report of cpl.")
    parser.add_argument("--marker", required=True, help="The hidden marker: <!-- NAME -->.")
    parser.add_argument("--footer", default="", help="Markdown after the report.")
    args = parser.parse_args(argv)
    try:
        report = args.report.read_text(encoding="utf-8")
        body = compose(args.marker, report, args.footer)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
