"""`edgewise broker`: the embedded MQTT broker, and `edgewise broker passwd` for its users."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

import click

from ..broker import DEFAULT_MAX_PAYLOAD, EmbeddedBroker, ServerTls, set_password
from ..transport.acl import CONTROL_USER, fleet_acl

log = logging.getLogger("edgewise.broker")


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=1883,
    show_default=True,
    help="Port to listen on; 0 picks a free one (the ready line says which).",
)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Mosquitto password file (mosquitto_passwd or `edgewise broker passwd`). "
    "Without it any client is accepted under the username it gives.",
)
@click.option(
    "--acl",
    type=click.Choice(["fleet", "none"]),
    default="fleet",
    show_default=True,
    help="fleet: the fleet protocol's ACL (docs/protocol.md); none: everyone reads and "
    "writes everything.",
)
@click.option(
    "--control-user",
    default=CONTROL_USER,
    show_default=True,
    help="The control plane's MQTT username in the fleet ACL.",
)
@click.option(
    "--max-payload",
    type=click.IntRange(1),
    default=DEFAULT_MAX_PAYLOAD,
    show_default=True,
    help="Largest message payload in bytes; a client sending a larger one is disconnected.",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Serve MQTT over TLS with this PEM certificate chain (with --tls-key).",
)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--retained-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep retained messages (TUF metadata, device states) in this SQLite file, so that "
    "they survive a restart. Without it they live in memory.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every connection (amqtt's log).")
@click.pass_context
def broker_group(
    ctx: click.Context,
    host: str,
    port: int,
    password_file: Path | None,
    acl: str,
    control_user: str,
    max_payload: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    retained_file: Path | None,
    verbose: bool,
) -> None:
    """Run an embedded MQTT 3.1.1 broker until SIGTERM or SIGINT (then exit 0).

    For the demo, tests and small fleets; production fleets use Mosquitto, EMQX or a cloud
    broker with the same password file and ACL (docs/operations.md). Once it listens it prints
    one line, `listening on mqtt://HOST:PORT`, on standard output.

    \b
    Example:
      edgewise broker passwd users.pw control
      edgewise broker --password-file users.pw --port 1883
    """
    if ctx.invoked_subcommand is not None:
        return
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    # Log lines go to stderr; stdout carries only the ready line. amqtt (and the state machine
    # library under it) are chatty at INFO: one line per connection and state change.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("edgewise").setLevel(logging.INFO)
    if verbose:
        logging.getLogger("amqtt").setLevel(logging.INFO)
    broker = EmbeddedBroker(
        host,
        port,
        password_file=password_file,
        acl=fleet_acl(control_user) if acl == "fleet" else None,
        max_payload=max_payload,
        tls=None if tls_cert is None or tls_key is None else ServerTls(tls_cert, tls_key),
        retained_file=retained_file,
    )
    if password_file is None:
        log.warning("no --password-file: any client may connect under any username")
    stopping = threading.Event()
    with broker:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        click.echo(f"listening on {broker.url}")
        sys.stdout.flush()
        stopping.wait()
        log.info("stopping")


@broker_group.command("passwd")
@click.argument("password_file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("username")
@click.option("--delete", is_flag=True, help="Remove the user instead.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts).",
)
def passwd_command(password_file: Path, username: str, delete: bool, password_stdin: bool) -> None:
    """Add a user to a Mosquitto password file, change its password, or delete it.

    The file works with `edgewise broker` and with Mosquitto (`password_file`); it is created
    with mode 0600 if missing. Without --password-stdin the password is prompted for.

    \b
    Example:
      edgewise broker passwd users.pw dev-0042
      printf '%s\\n' "$SECRET" | edgewise broker passwd users.pw control --password-stdin
    """
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif not delete:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not delete and not password:
        raise click.UsageError("the password is empty")
    set_password(password_file, username, None if delete else password)
    click.echo(f"{'deleted' if delete else 'set'} {username} in {password_file}", err=True)
