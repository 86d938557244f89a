"""`cpl worker` with a test-only slow shard: `python -m tests.fanout.slow_worker worker ...`.

When the folder CPL_TEST_SLOW_DIR holds a file `shard` naming a shard id, the first attempt of
that shard writes this process's pid to `taken` in that folder and then hangs (heartbeating,
as a long read would) until the test kills the process; a retry computes the shard normally.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from temporalio import activity

from controlplane.cli import main
from controlplane.cli.drift_fanout import FanoutHost

_shard = FanoutHost.shard


def _slow_shard(self: FanoutHost, request: dict[str, Any], shard: dict[str, Any]) -> Any:
    folder = Path(os.environ.get("CPL_TEST_SLOW_DIR", "/nonexistent"))
    wanted = folder / "shard"
    slow = wanted.is_file() and wanted.read_text() == shard["id"]
    if slow and activity.info().attempt == 1:
        (folder / "taken").write_text(str(os.getpid()))
        while True:
            time.sleep(1)
    return _shard(self, request, shard)


FanoutHost.shard = _slow_shard  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
