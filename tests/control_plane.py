"""`edgewise control run` as a real process around a real broker and TUF repository."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from mqtt_broker import Broker
from trust_world import World

from edgewise.fleet.auth import Role, create_token
from edgewise.fleet.store import Store
from edgewise.transport.acl import CONTROL_USER

EDGEWISE = str(Path(sys.executable).parent / "edgewise")
START_TIMEOUT = 90.0  # seconds: FastAPI, uvicorn and the core load slowly on a loaded machine
READY = re.compile(r"control plane ready: API (http://\S+)")


class ControlProcess:
    """One control plane with its configuration, store and log; an admin token to call it."""

    def __init__(
        self, directory: Path, broker: Broker, world: World, db: str | None = None
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.db = db or str(directory / "control.db")
        self.config = directory / "control.toml"
        self.log = directory / "control.log"
        lines = [
            f'store = "{self.db}"',
            f'repository = "{world.repo}"',
            f'operator_keys = "{world.keys}"',
            "[api]",
            "port = 0",
            "[broker]",
            f'url = "mqtt://127.0.0.1:{broker.port}"',
            "backoff_initial = 0.2",
            "backoff_max = 1.0",
            "[collector]",
            "window = 2.0",
            "[alerts]",
            "interval = 1.0",
            "[rollouts]",
            "tick = 0.2",
            "",
        ]
        self.config.write_text("\n".join(lines))
        self.env = {
            **os.environ,
            "EDGEWISE_CONTROL_BROKER_PASSWORD": broker.credentials.passwords[CONTROL_USER],
        }
        with Store.open(self.db) as store:
            self.token = create_token(store, "test-admin", Role.ADMIN)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> ControlProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [EDGEWISE, "control", "run", "--config", str(self.config)],
                env=self.env,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = READY.search(self.log.read_text())
            if found:
                self.url = found.group(1)
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"control plane exited at start:\n{self.log.read_text()}")
            time.sleep(0.1)  # polling the log for the ready line: nothing else to wait on
        raise AssertionError(f"control plane not ready in {START_TIMEOUT}s:\n{self.log_text()}")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def wait_for(self, path: str, check: Any, timeout: float = 90.0) -> Any:
        """GET `path` until `check(document)` holds; the last document."""
        deadline = time.monotonic() + timeout
        document = None
        while time.monotonic() < deadline:
            document = self.call("GET", path)
            if check(document):
                return document
            time.sleep(0.2)  # polling the API, as an operator's script would
        raise AssertionError(f"{path} never passed the check; last: {document}\n{self.log_text()}")

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=60)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""
