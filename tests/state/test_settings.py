"""`deploy.state`, `deploy.lock` and `deploy.aws` in an environment: mistakes are reported at
the field, and a directory's lock is the kernel's."""

from __future__ import annotations

import pytest

from controlplane.deploy.lock import StateLock
from controlplane.errors import ConfigError
from controlplane.spec.load import load_environment
from tests.deploy.conftest import ControlRepo


def _deploy(repo: ControlRepo, lines: str) -> None:
    path = repo.root / "environments/local.yaml"
    text = path.read_text()
    old = "    state: .cpl/state/local\n"
    assert old in text
    path.write_text(text.replace(old, lines))


def _codes(repo: ControlRepo) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as raised:
        load_environment(repo.root, "local")
    return [(d.code, d.message) for d in raised.value.diagnostics]


def test_an_s3_state_needs_a_lock(offline_repo: ControlRepo) -> None:
    _deploy(offline_repo, "    state: s3://cpl-state/prod\n")
    assert [c for c, m in _codes(offline_repo) if "needs a lock" in m] == ["CPL-S003"]


def test_a_lock_belongs_to_an_s3_state(offline_repo: ControlRepo) -> None:
    _deploy(offline_repo, "    state: .cpl/state/local\n    lock: dynamodb://cpl-locks\n")
    assert [c for c, m in _codes(offline_repo) if "applies to an s3://" in m] == ["CPL-S004"]


@pytest.mark.parametrize(
    ("lines", "wording"),
    [
        ("    state: gs://bucket/prod\n", "neither a directory of the repo nor s3://"),
        ("    state: s3://cpl-state\n    lock: redis://x\n", "is not dynamodb://table"),
        ("    state: ../shared-state\n", "leads outside the control repo"),
    ],
)
def test_bad_locations_are_named(offline_repo: ControlRepo, lines: str, wording: str) -> None:
    _deploy(offline_repo, lines)
    assert any(wording in message for _, message in _codes(offline_repo))


def test_a_directory_lock_cannot_be_broken_and_says_who_holds_it(
    offline_repo: ControlRepo,
) -> None:
    directory = offline_repo.root / ".cpl/state/local"
    with StateLock(directory, timeout=0, command="cpl apply --env local"):
        held = offline_repo.cpl("state", "unlock", "--env", "local", "--force")
        assert held.code == 1 and "cpl apply --env local" in held.err
        assert "frees itself when that process ends" in held.err
    free = offline_repo.cpl("state", "unlock", "--env", "local", "--force")
    assert free.code == 0 and "not locked" in free.out
