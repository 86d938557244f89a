"""A copy of the example control repo (workflows, environments, waivers) in a git repository.

The copy's prod environment writes its audit events to the file sink only: the example's HTTP
collector (audit.acme.example) is removed so that no test reaches for the network.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import git
import pytest

ROOT = Path(__file__).resolve().parents[2]
HTTP_SINK = '      - {http: "https://audit.acme.example/v1/events"}\n'

CopyRepo = Callable[[Path], Path]


def copy_example(destination: Path) -> Path:
    """The example repo under `destination`, committed (HEAD is a clean tree)."""
    for folder in ("workflows", "environments", "waivers"):
        shutil.copytree(ROOT / folder, destination / folder)
    prod = destination / "environments" / "prod.yaml"
    text = prod.read_text(encoding="utf-8")
    assert HTTP_SINK in text, "the example prod environment changed its audit sinks"
    prod.write_text(text.replace(HTTP_SINK, ""), encoding="utf-8")
    (destination / ".gitignore").write_text(".cpl/\n*.html\n", encoding="utf-8")
    repo = git.Repo.init(destination)
    repo.git.add(A=True)
    repo.index.commit("example control repo")
    return destination


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "repo")
