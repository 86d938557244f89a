"""`cpl plan` and `cpl drift` against frozen engines: how long until the user hears which target
does not answer, and how long until the command ends.

Starts a moto server and a Temporal dev server of its own, copies the example repo's workflows
and `local` environment pointed at them, stops both engines with SIGSTOP (the kernel still
accepts connections, nothing answers), runs each command as a subprocess, and lets the engines
go on with SIGCONT. `--timeouts` sets every target's `timeouts` (default: the built-in ones).

    python -m bench.frozen [--timeouts "{connect: 1s, call: 1s, deadline: 3s}"]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from controlplane.engines.stepfunctions.emulator import start_moto_server
from controlplane.engines.temporal.devserver import start_dev_server

ROOT = Path(__file__).resolve().parents[1]


def write_repo(root: Path, moto: str, temporal: str, timeouts: str | None) -> None:
    shutil.copytree(ROOT / "workflows", root / "workflows")
    text = (ROOT / "environments/local.yaml").read_text()
    text = text.replace("http://127.0.0.1:4566", moto).replace("127.0.0.1:7233", temporal)
    if timeouts:
        text = re.sub(r"(?m)^(\s+)engine: (\w+)$", rf"\1engine: \2\n\1timeouts: {timeouts}", text)
    (root / "environments").mkdir()
    (root / "environments/local.yaml").write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)


def measure(root: Path, command: str, limit: float) -> tuple[float | None, float, int | None]:
    """Seconds to the first "not answering" line, seconds to the end, exit code."""
    began = time.monotonic()
    first: float | None = None
    process = subprocess.Popen(
        [sys.executable, "-m", "controlplane", command, "--env", "local", "--repo", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = process.stderr
    assert stderr is not None

    def watch() -> None:
        nonlocal first
        for line in stderr:
            if first is None and "not answering" in line:
                first = time.monotonic() - began

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        code: int | None = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        code = None
    total = time.monotonic() - began
    watcher.join(timeout=5)
    return first, total, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeouts", default=None, help="Every target's `timeouts` (YAML).")
    parser.add_argument("--limit", type=float, default=1800.0, help="Seconds per command.")
    options = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cpl-frozen-"))
    moto = start_moto_server()
    temporal = asyncio.run(start_dev_server(log_path=work / "temporal.log"))
    try:
        write_repo(work / "repo", moto.url, temporal.address, options.timeouts)
        for command in ("plan", "drift"):
            for process in (moto.process, temporal.process):
                os.kill(process.pid, signal.SIGSTOP)
            try:
                first, total, code = measure(work / "repo", command, options.limit)
            finally:
                for process in (moto.process, temporal.process):
                    os.kill(process.pid, signal.SIGCONT)
            told = f"{first:.1f} s" if first is not None else "never"
            print(f"cpl {command}: told after {told}, ended after {total:.1f} s, exit {code}")
    finally:
        moto.stop()
        temporal.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
