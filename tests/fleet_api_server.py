"""The control plane's HTTP API served by a real uvicorn process on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_START_SECONDS = 60  # a loaded 2-core machine can take a while to import FastAPI


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_api(
    db: str | Path, root: Path | None = None, repository: Path | None = None
) -> Iterator[str]:
    """Serve `edgewise.fleet.api:app_from_environment` over the store `db` (with the trust root,
    and the TUF `repository` for its bundles and their reference profiles, when given); yield
    its URL."""
    env = {**os.environ, "EDGEWISE_DB": str(db)}
    if root is not None:
        env["EDGEWISE_ROOT"] = str(root)
    if repository is not None:
        env["EDGEWISE_REPOSITORY"] = str(repository)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "edgewise.fleet.api:app_from_environment",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert server.stderr is not None
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, server)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)
        server.stderr.close()


def _wait_until_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            assert server.stderr is not None
            raise RuntimeError(f"uvicorn exited with {server.returncode}: {server.stderr.read()!r}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer on {url} within {_START_SECONDS} s")
