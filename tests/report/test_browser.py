"""The report renders in a real browser: headless Chromium (Debian's `chromium` package, which
`make tools` installs) loads the page from a file and writes a screenshot.

Chromium runs with networking features off and a throwaway profile; the page itself allows no
fetch at all (Content-Security-Policy `default-src 'none'`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controlplane.cli import run
from controlplane.report.html import COLOURS
from tests.report.png import read_png

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 2000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is absent: run `make tools` (apt-get install chromium)",
)


def screenshot(page: Path, png: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={WIDTH},{HEIGHT}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def test_chromium_renders_the_report(example_repo: Path, tmp_path: Path) -> None:
    page, png = tmp_path / "report.html", tmp_path / "report.png"
    for _ in range(2):  # two reports: the history chart has two bars
        assert (
            run(
                [
                    "report",
                    "--env",
                    "prod",
                    "--repo",
                    str(example_repo),
                    "-o",
                    str(page),
                    "--no-slo",
                ]
            )
            == 0
        )
    done = screenshot(page, png, tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    assert png.exists() and png.stat().st_size > 50_000, "a blank page compresses to a few KB"
    image = read_png(png, limit=900)  # the header, summary and history chart
    assert image.width == WIDTH
    colours = {image.pixel(x, y) for y in range(0, image.height, 3) for x in range(0, WIDTH, 3)}
    assert len(colours) > 50, "the page rendered as (almost) a single colour"
    # The summary's failing badge and the chart's bars are drawn: red and green are on screen.
    assert _rgb(COLOURS["fail"]) in colours
    assert _rgb(COLOURS["pass"]) in colours
