"""A real Prometheus, started once per test session (`prometheus_server`).

It evaluates the rules files tests write into its rules directory (`cpl apply` reloads it
through the lifecycle API) and scrapes the endpoints tests list in its file of scrape targets,
every second: tests poll its HTTP API with a deadline for what they expect.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.engines.temporal.devserver import free_port
from controlplane.monitoring.local import (
    config_document,
    find_prometheus,
    start_prometheus,
    write_scrape_targets,
)


@dataclass
class PrometheusServer:
    """A running Prometheus: its URL, rules directory and file of scrape targets."""

    url: str
    rules: Path
    targets_file: Path

    def scrape(self, source: str, *addresses: str) -> None:
        """Add scrape targets (under the label `source`)."""
        jobs = {source: list(addresses)}
        if self.targets_file.exists():
            for group in json.loads(self.targets_file.read_text()):
                jobs.setdefault(group["labels"]["source"], []).extend(group["targets"])
        write_scrape_targets(self.targets_file, jobs)

    def api(self, path: str, **query: str) -> Any:
        url = f"{self.url}/api/v1/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=5) as answer:
            document = json.loads(answer.read())
        assert document["status"] == "success", document
        return document["data"]

    def wait_for(self, what: str, found: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Poll `found` until it returns something truthy; fail naming `what` at the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = found()
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"{what}: not within {timeout:g}s")

    def alerts(self, name: str, **labels: str) -> list[dict[str, Any]]:
        return [
            alert
            for alert in self.api("alerts")["alerts"]
            if alert["labels"].get("alertname") == name
            and all(alert["labels"].get(k) == v for k, v in labels.items())
        ]

    def firing(self, name: str, **labels: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts(name, **labels) if a["state"] == "firing"]


@pytest.fixture(scope="session")
def prometheus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    binary = find_prometheus()
    if binary is None:
        pytest.skip("the prometheus binary is not installed (make tools installs it)")
    directory = tmp_path_factory.mktemp("prometheus")
    rules = directory / "rules"
    rules.mkdir()
    targets = directory / "targets.json"
    write_scrape_targets(targets, {})
    config = directory / "prometheus.yml"
    document = config_document([str(rules / "*.rules.yml")], targets, interval="1s")
    config.write_text(yaml.safe_dump(document))
    port = free_port()
    process = start_prometheus(
        binary, config, "127.0.0.1", port, directory / "data", directory / "prometheus.log"
    )
    try:
        yield PrometheusServer(f"http://127.0.0.1:{port}", rules, targets)
    finally:
        process.terminate()
        process.wait(timeout=30)
