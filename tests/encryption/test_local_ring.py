"""A local key ring (development) is made on first use, once: processes that start
encrypting at the same moment all wrap with the same first key."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from controlplane.engines.temporal.keyring import LocalKeyring, parse_key


def test_a_local_ring_is_made_on_first_use_once(tmp_path: Path) -> None:
    ref = parse_key("local:orders", "test")
    rings = [LocalKeyring(ref, tmp_path / "keys") for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda ring: ring.new_data_key(), rings))
    assert {version for _, version, _ in keys} == {"1"}
    # every data key unwraps with every other instance's view of the ring: one first key
    for data_key, version, wrapped in keys:
        assert rings[0].unwrap(version, wrapped) == data_key
    ring_file = tmp_path / "keys" / "orders.json"
    assert stat.S_IMODE(ring_file.stat().st_mode) == 0o600
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["orders.json"]
