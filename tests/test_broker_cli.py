"""`edgewise broker` as a process: the ready line, a client served, a clean stop on a signal;
`edgewise broker passwd`; and the messages for a bad password file or a busy port."""

from __future__ import annotations

import re
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from mqtt_broker import DELIVERY_TIMEOUT, Credentials

from edgewise.broker import read_password_file, verify_password
from edgewise.cli import main
from edgewise.transport import BrokerSettings, Connection

EDGEWISE = str(Path(sys.executable).parent / "edgewise")
READY_TIMEOUT = 60.0  # imports are slow on a loaded machine
READY = re.compile(r"listening on mqtt://127\.0\.0\.1:(\d+)")


def start_broker(*options: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [EDGEWISE, "broker", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT)
    line = process.stdout.readline() if ready else ""
    found = READY.fullmatch(line.strip())
    if found is None:
        process.kill()
        pytest.fail(f"no ready line: {line!r} {process.communicate()[1]}")
    return process, int(found.group(1))


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_broker_serves_until_a_signal_then_exits_0(
    broker_credentials: Credentials, stop: signal.Signals
) -> None:
    process, port = start_broker("--password-file", str(broker_credentials.password_file))
    try:
        settings = BrokerSettings(
            "127.0.0.1", port, "dev-a", broker_credentials.passwords["dev-a"], keepalive=10
        )
        with Connection("dev-a", settings) as device:
            assert device.wait_connected(DELIVERY_TIMEOUT)
        process.send_signal(stop)
        _, err = process.communicate(timeout=DELIVERY_TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_a_bad_password_file_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    path.write_text("dev-a:hunter2\n")
    result = CliRunner().invoke(main, ["broker", "--port", "0", "--password-file", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}, line 1 (user 'dev-a'): expected a Mosquitto")


def test_a_busy_port_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["broker", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")


def test_passwd_adds_changes_and_deletes_users(tmp_path: Path) -> None:
    path = tmp_path / "users.pw"
    runner = CliRunner()
    add = ["broker", "passwd", str(path), "dev-a", "--password-stdin"]
    assert runner.invoke(main, add, input="first\n").exit_code == 0
    assert runner.invoke(main, add, input="second\n").exit_code == 0
    prompted = runner.invoke(main, ["broker", "passwd", str(path), "control"], input="c\nc\n")
    assert prompted.exit_code == 0, prompted.output
    users = read_password_file(path)
    assert verify_password("second", users["dev-a"]) and verify_password("c", users["control"])
    deleted = runner.invoke(main, ["broker", "passwd", str(path), "dev-a", "--delete"])
    assert deleted.exit_code == 0
    assert list(read_password_file(path)) == ["control"]
    empty = runner.invoke(main, add, input="\n")
    assert empty.exit_code == 2 and "the password is empty" in empty.output
