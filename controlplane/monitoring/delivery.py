"""Delivering a target's rules file: written where its Prometheus loads it, then a reload.

The shared artifact `shared:rules/<target>` (see `share.py`) is one file,
`<prometheus.rulesDir>/<target>.rules.yml`. Apply writes it atomically with the artifact's
digest in its first comment line (the stamp `read` returns, as other resources carry theirs in
a tag) and, when the target names `prometheus.reloadUrl`, POSTs that URL so Prometheus loads
it at once (otherwise at its next restart or SIGHUP). On a development environment a
Prometheus that is not running (connection refused) is a warning: it loads the file when it
starts. An error answer, a timeout, or any other tier fails the resource. Drift reads the
file back: a rule edited by hand is a changed field, a removed file a missing resource.
Removing the last monitored workflow deletes the file and reloads.

Every engine client that serves rules (Temporal, Argo) hands the rules artifact to `RulesFile`.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from controlplane.engines.live import (
    DIGEST_TAG,
    MANAGED_TAG,
    Change,
    LiveResource,
    ResourceError,
    diff_documents,
)
from controlplane.engines.translator import Artifact
from controlplane.engines.warnings import warn
from controlplane.files import write_atomic
from controlplane.monitoring.rules import LOADER, rules_text
from controlplane.spec.environment import Environment, Target, confine_to_repo

RULES_KIND = "prometheus-rules"
"""`kind` of a rules artifact's document."""
RULES_ID_PREFIX = "prometheus-rules:"
"""The start of a rules file's resource id (`prometheus-rules:<rulesDir>/<file>`)."""
DIGEST_MARK = "# cpl-digest: "
RELOAD_TIMEOUT = 10.0


def is_rules(artifact: Artifact) -> bool:
    return bool(artifact.document.get("kind") == RULES_KIND)


def is_rules_id(resource_id: str) -> bool:
    return resource_id.startswith(RULES_ID_PREFIX)


def rules_file_name(target: str) -> str:
    return f"{target}.rules.yml"


class RulesFile:
    """The rules file of one target, as a live resource (the part of an engine client)."""

    def __init__(self, target: Target, environment: Environment, repo: Path | None) -> None:
        self.target = target
        self.environment = environment
        self.repo = repo or Path.cwd()
        self.engine = target.engine

    # -- the contract -----------------------------------------------------------------------

    def read(self, artifact: Artifact) -> LiveResource | None:
        return self._read(str(artifact.document["file"]), artifact.resource)

    def apply(self, artifact: Artifact) -> LiveResource:
        relative = str(artifact.document["file"])
        path = self._path(relative)
        text = f"{DIGEST_MARK}{artifact.digest}\n" + rules_text(artifact.document["rules"])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text)
        except OSError as error:
            raise self._error(relative, f"cannot write {path}: {error.strerror}") from None
        self._reload(relative)
        found = self._read(relative, artifact.resource)
        if found is None:
            raise self._error(relative, "nothing readable right after apply")
        return found

    def delete(self, resource_id: str) -> None:
        relative = resource_id.removeprefix(RULES_ID_PREFIX)
        path = self._path(relative)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise self._error(relative, f"cannot remove {path}: {error.strerror}") from None
        self._reload(relative, "removed")

    def diff(self, artifact: Artifact, live: LiveResource) -> list[Change]:
        return diff_documents(self.desired_document(artifact), dict(live.document))

    @staticmethod
    def desired_document(artifact: Artifact) -> dict[str, Any]:
        # through YAML and back, as the file holds it
        rules = yaml.load(rules_text(artifact.document["rules"]), Loader=LOADER)
        return {"kind": RULES_KIND, "file": artifact.document["file"], "rules": rules}

    # -- helpers ----------------------------------------------------------------------------

    def _read(self, relative: str, resource: str) -> LiveResource | None:
        path = self._path(relative)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise self._error(relative, f"cannot read {path}: {error}") from None
        first, _, _ = text.partition("\n")
        digest = first.removeprefix(DIGEST_MARK) if first.startswith(DIGEST_MARK) else None
        try:
            rules = yaml.load(text, Loader=LOADER)
        except yaml.YAMLError as error:
            rules = f"unreadable YAML: {str(error)[:200]}"
        tags = {MANAGED_TAG: "true"}
        if digest:
            tags[DIGEST_TAG] = digest.strip()
        return LiveResource(
            engine=self.engine,
            target=self.target.name,
            resource=resource,
            id=RULES_ID_PREFIX + relative,
            document={"kind": RULES_KIND, "file": relative, "rules": rules},
            tags=tags,
        )

    def _path(self, relative: str) -> Path:
        settings = self.target.prometheus
        allow = settings.allow_outside_repo if settings is not None else False
        pointer = "/spec/targets/prometheus/rulesDir"
        return confine_to_repo(self.repo, relative, allow, self.environment.name, pointer)

    def _reload(self, relative: str, done: str = "written") -> None:
        settings = self.target.prometheus
        if settings is None or not settings.reload_url:
            return
        request = urllib.request.Request(settings.reload_url, method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, timeout=RELOAD_TIMEOUT) as answer:
                answer.read(1024)
        except urllib.error.HTTPError as error:
            # 400/500: Prometheus refused the rules (it keeps the previous ones)
            body = error.read(300).decode("utf-8", "replace").strip()
            raise self._error(
                relative,
                f"Prometheus at {settings.reload_url} refused the reload ({error.code}): {body}",
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, ConnectionRefusedError) and self._development():
                # a development Prometheus (`cpl local up`) that is not running: it loads
                # the file when it starts, so the apply is done
                warn(
                    f"Prometheus at {settings.reload_url} is not running: the rules file "
                    f"{relative} is {done}, and Prometheus loads its rules files when it starts"
                )
                return
            raise self._error(
                relative,
                f"the rules are written but Prometheus at {settings.reload_url} did not "
                f"reload: {reason}",
                transient=True,
            ) from None

    def _development(self) -> bool:
        return self.environment.tier == "development"

    def _error(self, resource: str, message: str, transient: bool = False) -> ResourceError:
        return ResourceError(
            message,
            engine=self.engine,
            target=self.target.name,
            resource=resource,
            transient=transient,
        )


class RulesAwareClient:
    """An engine client that also serves its target's rules file: rules artifacts and ids go
    to `RulesFile`, everything else to `client` (for engines whose client has no rules of
    its own, e.g. Argo's)."""

    def __init__(
        self, client: Any, target: Target, environment: Environment, repo: Path | None
    ) -> None:
        self._client = client
        self.rules = RulesFile(target, environment, repo)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def read(self, artifact: Artifact) -> LiveResource | None:
        if is_rules(artifact):
            return self.rules.read(artifact)
        result: LiveResource | None = self._client.read(artifact)
        return result

    def create(self, artifact: Artifact) -> LiveResource:
        if is_rules(artifact):
            return self.rules.apply(artifact)
        result: LiveResource = self._client.create(artifact)
        return result

    def update(self, artifact: Artifact, live: LiveResource) -> LiveResource:
        if is_rules(artifact):
            return self.rules.apply(artifact)
        result: LiveResource = self._client.update(artifact, live)
        return result

    def delete(self, resource_id: str) -> None:
        if is_rules_id(resource_id):
            self.rules.delete(resource_id)
        else:
            self._client.delete(resource_id)

    def diff(self, artifact: Artifact, live: LiveResource) -> list[Change]:
        if is_rules(artifact):
            return self.rules.diff(artifact, live)
        result: list[Change] = self._client.diff(artifact, live)
        return result

    def desired_document(self, artifact: Artifact, live: LiveResource) -> dict[str, Any]:
        if is_rules(artifact):
            return self.rules.desired_document(artifact)
        result: dict[str, Any] = self._client.desired_document(artifact, live)
        return result
