"""A remote OPA server (`policy.server: URL`) through `opa-python-client`.

The modules are uploaded with the Policy API (`PUT /v1/policies/<id>`, helpers first so the
server can compile each upload), the configuration with the Data API (`PUT
/v1/data/cpl/config`), and inputs are evaluated in batches with one `POST
/v1/data/cpl/gate/batch` per chunk (a round trip per input would dominate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from opa_client import OpaClient
from opa_client.errors import RegoParseError

from controlplane.errors import EngineError
from controlplane.policy.library import (
    Finding,
    Library,
    RuleInfo,
    findings_of,
    load_library,
    location_error,
    policy_config,
    policy_paths,
    rule_infos,
)
from controlplane.redaction import redact_text, redact_url
from controlplane.spec.environment import Environment

POLICY_PREFIX = "cpl"
CHUNK = 200


class RemoteOpa:
    """Policies evaluated by an OPA server."""

    def __init__(
        self,
        url: str,
        library: Library,
        config: Mapping[str, Any] | None = None,
        *,
        timeout: float = 60.0,
        chunk: int = CHUNK,
    ) -> None:
        self.url = url.rstrip("/")
        self.library = library
        self.chunk = chunk
        self._client = _client(self.url, timeout)
        self._names: dict[str, str] = {}
        try:
            for module in library.ordered():
                policy_id = f"{POLICY_PREFIX}/{quote(module.name.lstrip('/'), safe='/.-_')}"
                self._names[policy_id] = module.name
                self._client.update_policy_from_string(module.source, policy_id, rego_compat=False)
            self._client.update_or_create_data(dict(config or {}), "cpl/config")
            chains = self._query({}, "metadata")
        except RegoParseError as exc:
            errors = [self._rename(e) for e in (exc.errors or [])]
            raise location_error(errors, "policy modules do not compile") from None
        except requests.RequestException as exc:
            raise EngineError(
                f"OPA server {redact_url(self.url)} is unreachable: {redact_text(str(exc))}"
            ) from None
        self._by_package = rule_infos(library, chains)
        self._by_id = {info.id: info for info in self._by_package.values()}

    @classmethod
    def for_environment(cls, environment: Environment, repo: Path) -> RemoteOpa:
        assert environment.spec.policy.server
        library = load_library(policy_paths(environment, repo), base=repo)
        return cls(environment.spec.policy.server, library, policy_config(environment))

    @property
    def rules(self) -> Mapping[str, RuleInfo]:
        return self._by_id

    def evaluate(self, documents: Sequence[Mapping[str, Any]]) -> list[list[Finding]]:
        outcomes: list[list[Finding]] = []
        for start in range(0, len(documents), self.chunk):
            chunk = [dict(d) for d in documents[start : start + self.chunk]]
            try:
                results = self._query({"inputs": chunk}, "batch")
            except requests.RequestException as exc:
                raise EngineError(
                    f"OPA server {redact_url(self.url)} failed to evaluate: {redact_text(str(exc))}"
                ) from None
            if not isinstance(results, list) or len(results) != len(chunk):
                raise EngineError(
                    f"OPA server {redact_url(self.url)} returned no result for the batch"
                )
            outcomes.extend(findings_of(r, self._by_package) for r in results)
        return outcomes

    def close(self) -> None:
        self._client.close_connection()

    def _query(self, input_data: dict[str, Any], rule: str) -> Any:
        response = self._client.query_rule(input_data, "cpl/gate", rule)
        if not isinstance(response, dict) or "result" not in response:
            raise EngineError(
                f"OPA server {redact_url(self.url)}: data.cpl.gate.{rule} is undefined"
            )
        return response["result"]

    def _rename(self, error: dict[str, Any]) -> dict[str, Any]:
        """Map a policy id in an OPA error back to the file users know."""
        location = dict(error.get("location") or {})
        file = str(location.get("file", ""))
        location["file"] = self._names.get(file, file)
        return {**error, "location": location}


def _client(url: str, timeout: float) -> OpaClient:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EngineError(f"policy.server {redact_url(url)!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    client = OpaClient(host=parts.hostname, port=port, ssl=parts.scheme == "https", timeout=timeout)
    # OpaClient builds scheme://host:port/v1; keep a path prefix (a proxy mount) if any.
    client.root_url = f"{client.schema}{parts.hostname}:{port}{parts.path.rstrip('/')}/v1"
    return client
