"""`edgewise agent run` in this process; once it serves a prediction, print the modules it has
imported (JSON) and stop it with SIGTERM, as systemd would.

Usage: python agent_modules_process.py CONFIG STATE_DIR
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

DEADLINE = 60.0


def report(state_dir: Path, row: dict[str, object], before_run: list[str]) -> None:
    deadline = time.monotonic() + DEADLINE
    body = json.dumps({"rows": [row]}).encode()
    served = False
    while not served and time.monotonic() < deadline:
        try:
            port = int((state_dir / "http-port").read_text())
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=body)
            with urllib.request.urlopen(request, timeout=10) as response:
                served = response.status == 200
        except (OSError, ValueError, urllib.error.URLError):
            time.sleep(0.1)  # the agent is still starting: poll, bounded by the deadline
    from edgewise.agent import DEVICE_ENVIRONMENT

    environment = {name: os.environ.get(name) for name in DEVICE_ENVIRONMENT}
    print(
        json.dumps(
            {
                "served": served,
                "modules": sorted(sys.modules),
                "loaded_before_run": before_run,
                "environment": environment,
            }
        ),
        flush=True,
    )
    os.kill(os.getpid(), signal.SIGTERM)


def main(config: str, state_dir: str, row: str) -> None:
    from edgewise.cli import main as cli

    # What the command line loaded before `agent run` could set up the environment.
    before_run = sorted(m for m in ("numpy", "edgewise._core") if m in sys.modules)
    threading.Thread(
        target=report, args=(Path(state_dir), json.loads(row), before_run), daemon=True
    ).start()
    cli(["agent", "run", "--config", config], standalone_mode=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
