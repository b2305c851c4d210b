"""A real PostgreSQL server for the tests: a fresh cluster in a temporary directory, listening
only on 127.0.0.1 on a free port with trust authentication, stopped when the tests end.

PostgreSQL refuses to run as root, so under root (as CI runs) the cluster belongs to the
`postgres` system user that Debian's package creates, and its commands run as that user.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

_WAIT_SECONDS = 90  # pg_ctl start and stop waits; generous for a loaded 2-core machine


def _binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql; "
            "run `make system-deps` (tests/system_deps.sh installs Debian's postgresql)"
        )
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    port: int
    _databases: itertools.count[int]

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A URL of a new, empty database."""
        name = f"edgewise_test_{next(self._databases)}"
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    bin_dir = _binaries()
    as_user: list[str] = []
    directory = Path(tempfile.mkdtemp(prefix="edgewise-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(directory, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = directory / "data", directory / "server.log"

    def run(*command: str | Path) -> None:
        result = subprocess.run(
            [*as_user, *map(str, command)],
            capture_output=True,
            text=True,
            timeout=_WAIT_SECONDS + 30,
        )
        if result.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(map(str, command))} failed:\n{result.stdout}{result.stderr}{server_log}"
            )

    port = _free_port()
    try:
        run(bin_dir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={directory}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        run(
            bin_dir / "pg_ctl",
            "start",
            "-D",
            data,
            "-l",
            log,
            "-w",
            "-t",
            _WAIT_SECONDS,
            "-o",
            options,
        )
        try:
            yield PostgresServer(port, itertools.count())
        finally:
            run(bin_dir / "pg_ctl", "stop", "-D", data, "-m", "fast", "-w", "-t", _WAIT_SECONDS)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
