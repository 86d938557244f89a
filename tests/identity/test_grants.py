"""Grants kept with the deploy state: signed, so an edited or copied grant grants nothing;
in a state directory and in an S3 state (on moto)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import stat
from pathlib import Path

import pytest

from controlplane.deploy.stores.local import LocalStore
from controlplane.deploy.stores.s3 import S3Store
from controlplane.identity.grants import Grant, GrantStore, new_grant_id
from tests.state.conftest import Remote, make_remote

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def grant(requester: str = "bob") -> Grant:
    return Grant(
        id=new_grant_id(),
        environment="prod",
        role="sre",
        workflow="retail/orders",
        seconds=1800,
        reason="stuck order",
        requester=requester,
        requested=NOW.isoformat(),
    )


def approved(item: Grant, at: dt.datetime = NOW) -> Grant:
    expires = (at + dt.timedelta(seconds=item.seconds)).isoformat()
    return dataclasses.replace(item, approver="carol", approved=at.isoformat(), expires=expires)


def test_grants_round_trip_and_run_until_they_expire(tmp_path: Path) -> None:
    store = GrantStore(LocalStore(tmp_path / "state"))
    saved = store.save(approved(grant()))
    assert GrantStore(LocalStore(tmp_path / "state")).get(saved.id) == saved
    assert [g.id for g in store.active("bob", NOW + dt.timedelta(minutes=29))] == [saved.id]
    assert store.active("bob", NOW + dt.timedelta(minutes=31)) == []
    assert store.active("carol", NOW) == []
    key = tmp_path / "state" / "grants" / "signing-key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_an_edited_or_copied_grant_grants_nothing(tmp_path: Path) -> None:
    store = GrantStore(LocalStore(tmp_path / "a"))
    pending = store.save(grant())
    path = tmp_path / "a" / "grants" / f"{pending.id}.json"
    document = json.loads(path.read_text())
    # approving by hand: expires added, signature kept
    document.update(approver="bob", expires=(NOW + dt.timedelta(hours=1)).isoformat())
    path.write_text(json.dumps(document))
    assert store.active("bob", NOW) == []
    assert store.all() == []
    # a grant signed for another state (another key) is not one of this state's
    other = GrantStore(LocalStore(tmp_path / "b"))
    foreign = other.save(approved(grant()))
    copy = tmp_path / "a" / "grants" / f"{foreign.id}.json"
    copy.write_text((tmp_path / "b" / "grants" / f"{foreign.id}.json").read_text())
    assert store.active("bob", NOW) == []


@pytest.fixture
def remote(moto_endpoint: str) -> Remote:
    return make_remote(moto_endpoint)


def test_grants_live_next_to_an_s3_state(remote: Remote) -> None:
    store = GrantStore(S3Store(remote.state_url, "prod", remote.aws))
    saved = store.save(approved(grant()))
    again = GrantStore(S3Store(remote.state_url, "prod", remote.aws))  # another clone
    assert [g.id for g in again.active("bob", NOW)] == [saved.id]
    keys = remote.object_keys()
    assert f"cpl/prod.cpl-grants/{saved.id}.json" in keys
    assert "cpl/prod.cpl-grants/signing-key" in keys
    revoked = again.save(dataclasses.replace(saved, revoked=NOW.isoformat(), revoker="carol"))
    assert store.get(saved.id) == revoked
    assert store.active("bob", NOW) == []
