"""The deploy state in S3 (on moto): the guarantees of a state directory, in a bucket."""

from __future__ import annotations

import json

import pytest

from controlplane.deploy.state import State
from controlplane.deploy.stores.s3 import S3Store
from controlplane.errors import ConfigError
from tests.state.conftest import Remote, make_remote, resource

KEY = "cpl/prod.cpl-state.json"


def _store(remote: Remote) -> S3Store:
    return S3Store(remote.state_url, "prod", remote.aws)


def test_a_saved_state_is_one_object_per_environment_and_loads_back(remote: Remote) -> None:
    store = _store(remote)
    state = store.load("prod")
    assert state.serial == 0 and remote.object_keys() == []

    written = store.save(state.with_resource(resource("orders")))

    assert remote.object_keys() == [KEY]
    document = json.loads(remote.object_text(KEY))
    assert document["serial"] == 1 and document["environment"] == "prod"
    assert document["lineage"] == state.lineage
    loaded = _store(remote).load("prod")  # another process, another clone
    assert loaded == written
    assert [r.workflow for r in loaded.resources] == ["retail/orders"]


def test_without_versioning_the_previous_document_is_kept_as_a_backup_object(
    remote: Remote,
) -> None:
    store = _store(remote)
    first = store.save(store.load("prod").with_resource(resource("orders")))
    store.save(first.with_resource(resource("billing")))

    assert remote.object_keys() == [KEY, f"{KEY}.backup"]
    backup = json.loads(remote.object_text(f"{KEY}.backup"))
    assert backup["serial"] == 1 and len(backup["resources"]) == 1


def test_with_versioning_the_bucket_keeps_the_previous_documents(moto_endpoint: str) -> None:
    remote = make_remote(moto_endpoint, versioned=True)
    store = _store(remote)
    first = store.save(store.load("prod"))
    store.save(first.with_resource(resource("orders")))

    assert remote.object_keys() == [KEY]  # no backup object
    versions = remote.s3.list_object_versions(Bucket=remote.bucket, Prefix=KEY)["Versions"]
    assert len(versions) == 2


def test_a_state_of_another_lineage_is_never_replaced(remote: Remote) -> None:
    store = _store(remote)
    store.save(store.load("prod"))
    stranger = State.new("prod")  # an unrelated state with its own lineage

    with pytest.raises(ConfigError, match="belongs to lineage"):
        _store(remote).save(stranger)

    assert json.loads(remote.object_text(KEY))["lineage"] != stranger.lineage


def test_a_document_that_changed_since_it_was_read_is_not_overwritten(remote: Remote) -> None:
    first, second = _store(remote), _store(remote)
    base = first.save(first.load("prod"))
    seen_by_second = second.load("prod")
    assert seen_by_second == base

    first.save(base.with_resource(resource("orders")))
    with pytest.raises(ConfigError, match="changed while this command ran"):
        second.save(seen_by_second.with_resource(resource("billing")))

    kept = json.loads(remote.object_text(KEY))
    assert [r["workflow"] for r in kept["resources"]] == ["retail/orders"]


def test_the_conditional_write_refuses_even_when_the_serial_matches(remote: Remote) -> None:
    """Two writers that read the same serial: the ETag, not the serial, decides."""
    first, second = _store(remote), _store(remote)
    base = first.save(first.load("prod"))
    second.load("prod")
    # someone rewrites the document with the same serial, bypassing cpl's checks
    remote.s3.put_object(Bucket=remote.bucket, Key=KEY, Body=remote.object_text(KEY) + " ")

    with pytest.raises(ConfigError, match="changed while this command ran"):
        second.save(base.with_resource(resource("billing")))


def test_a_corrupt_document_names_where_the_previous_one_is(remote: Remote) -> None:
    store = _store(remote)
    store.save(store.save(store.load("prod")))
    remote.s3.put_object(Bucket=remote.bucket, Key=KEY, Body=b'{"version": 1, "seri')

    with pytest.raises(ConfigError, match=r"corrupt \(not JSON.*\.backup"):
        _store(remote).load("prod")


def test_a_document_removed_by_hand_does_not_start_a_new_lineage(remote: Remote) -> None:
    store = _store(remote)
    store.save(store.save(store.load("prod")))
    remote.s3.delete_object(Bucket=remote.bucket, Key=KEY)

    with pytest.raises(ConfigError, match="is missing but its backup"):
        _store(remote).load("prod")


def test_the_state_of_another_environment_is_refused(remote: Remote) -> None:
    store = _store(remote)
    store.save(store.load("prod"))
    remote.s3.copy_object(
        Bucket=remote.bucket,
        Key="cpl/staging.cpl-state.json",
        CopySource={"Bucket": remote.bucket, "Key": KEY},
    )
    with pytest.raises(ConfigError, match="environment 'prod', not 'staging'"):
        S3Store(remote.state_url, "staging", remote.aws).load("staging")


def test_applied_specs_are_objects_next_to_the_state(remote: Remote) -> None:
    store = _store(remote)
    store.write_spec("retail/orders", "1.2.0", '{"a": 1}\n')
    store.write_spec("retail/orders", "1.3.0", '{"a": 2}\n')

    assert "cpl/prod.cpl-specs/retail/orders@1.2.0.json" in remote.object_keys()
    assert store.specs() == [("retail/orders", "1.2.0"), ("retail/orders", "1.3.0")]
    assert _store(remote).read_spec("retail/orders", "1.3.0") == '{"a": 2}\n'
    assert store.read_spec("retail/orders", "9.9.9") is None


def test_a_missing_bucket_is_a_clear_error(remote: Remote) -> None:
    store = S3Store("s3://cpl-no-such-bucket-here/x", "prod", remote.aws)
    with pytest.raises(ConfigError, match=r"could not read the deploy state s3://cpl-no-such"):
        store.load("prod")
