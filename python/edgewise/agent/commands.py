"""Signed fleet commands: the operator signs, the device checks before it acts.

On the wire (the device's ``cmd`` topic, at most 64 KiB)::

    {"v": 1, "type": "command", "payload": "<JSON text>",
     "signatures": [{"keyid": "...", "sig": "..."}]}

``payload`` is signed as its exact UTF-8 bytes, so nobody has to agree on a canonical JSON form.
It holds ``device``, ``seq`` (an integer that grows with every command to that device),
``issued`` and ``expires`` (Unix seconds), ``action`` (``install`` or ``rollback``) and, for an
install, ``bundle`` ({name, version}). A device acts on a command only when one signature is
by an operator key of its trusted root, the command is addressed to it, has not expired, and
its ``seq`` is above the last one it accepted (kept on disk, so no replay survives a restart).
Anyone who can publish on the topic (a compromised broker or control credential) still
cannot make a device do anything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import CommandError, EdgewiseError
from .durable import replace_durably

if TYPE_CHECKING:
    from securesystemslib.signer import Signer
    from tuf.api.metadata import Root

COMMAND_VERSION = 1
ACTIONS = ("install", "rollback")
MAX_SIGNATURES = 8
SEQUENCE_FILE = "command-sequence.json"
#: How long a command stays valid by default: long enough for a device that was briefly
#: offline, short enough that a captured command is soon worthless.
DEFAULT_LIFETIME = 24 * 3600.0


@dataclass(frozen=True)
class Command:
    device: str
    seq: int
    action: str
    issued: float
    expires: float
    bundle_name: str | None = None
    bundle_version: int | None = None

    def describe(self) -> str:
        what = self.action
        if self.bundle_name is not None:
            what += f" {self.bundle_name} version {self.bundle_version}"
        return f"command {self.seq} ({what})"

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "device": self.device,
            "seq": self.seq,
            "action": self.action,
            "issued": self.issued,
            "expires": self.expires,
        }
        if self.bundle_name is not None:
            payload["bundle"] = {"name": self.bundle_name, "version": self.bundle_version}
        return payload


def new_command(
    device: str,
    action: str,
    *,
    bundle: tuple[str, int] | None = None,
    seq: int | None = None,
    lifetime: float = DEFAULT_LIFETIME,
) -> Command:
    """A command issued now. The default `seq` is the time in microseconds, which grows across
    restarts of whoever sends commands; a control plane with a database may count instead."""
    now = time.time()
    if action not in ACTIONS:
        raise CommandError(f"unknown action {action!r}: expected one of {', '.join(ACTIONS)}")
    if (action == "install") != (bundle is not None):
        raise CommandError("an install names a bundle (name, version); a rollback does not")
    return Command(
        device=device,
        seq=time.time_ns() // 1000 if seq is None else seq,
        action=action,
        issued=now,
        expires=now + lifetime,
        bundle_name=None if bundle is None else bundle[0],
        bundle_version=None if bundle is None else bundle[1],
    )


def sign_command(command: Command, signer: Signer) -> bytes:
    """The wire form of `command` signed with an operator's private key."""
    payload = json.dumps(command.to_payload(), separators=(",", ":"), sort_keys=True)
    signature = signer.sign(payload.encode())
    document = {
        "v": COMMAND_VERSION,
        "type": "command",
        "payload": payload,
        "signatures": [signature.to_dict()],
    }
    return json.dumps(document, separators=(",", ":")).encode()


class SequenceFile:
    """The last accepted sequence number in the state directory (fsynced, so no replay survives
    a restart or a power cut)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / SEQUENCE_FILE

    def last(self) -> int:
        try:
            return int(json.loads(self.path.read_bytes())["seq"])
        except FileNotFoundError:
            return -1
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"{self.path}: unreadable command sequence: {exc}") from exc

    def record(self, seq: int) -> None:
        replace_durably(self.path, json.dumps({"seq": seq}).encode())


class SequenceInMemory:
    """The last accepted sequence number of a simulated device, which lives as long as its
    process (the fleet simulator's devices have no disk of their own)."""

    def __init__(self) -> None:
        self.seq = -1

    def last(self) -> int:
        return self.seq

    def record(self, seq: int) -> None:
        self.seq = seq


class CommandVerifier:
    """Checks commands for one device against the operator keys of its trusted root."""

    def __init__(
        self,
        device: str,
        sequence: Path | SequenceFile | SequenceInMemory,
        trusted_root: Callable[[], Root],
    ) -> None:
        """`sequence` keeps the last accepted sequence number: a state directory (the agent's
        file there) or a `SequenceInMemory`."""
        self.device = device
        self.trusted_root = trusted_root
        self.sequence = SequenceFile(sequence) if isinstance(sequence, Path) else sequence

    @property
    def last_seq(self) -> int:
        return self.sequence.last()

    def accept(self, data: bytes, now: float | None = None) -> Command:
        """The command in `data` if it may be acted on, else `CommandError` with the reason.

        Acceptance is recorded before returning: a command is acted on at most once even if
        the process dies while acting on it."""
        payload, signatures = _envelope(data)
        self._check_signatures(payload, signatures)
        command = parse_payload(payload)
        now = time.time() if now is None else now
        if command.device != self.device:
            raise CommandError(
                f"{command.describe()}: addressed to device {command.device!r}, not to this "
                f"device ({self.device})"
            )
        if command.expires <= now:
            raise CommandError(f"{command.describe()}: expired {now - command.expires:.0f}s ago")
        last = self.last_seq
        if command.seq <= last:
            raise CommandError(
                f"{command.describe()}: sequence {command.seq} is not above the last accepted "
                f"({last}); a replay or an out-of-date command"
            )
        self.sequence.record(command.seq)
        return command

    def _check_signatures(self, payload: str, signatures: list[Any]) -> None:
        from securesystemslib.signer import Signature

        from ..trust import verify_operator_signature

        root = self.trusted_root()
        reasons = []
        for entry in signatures:
            try:
                signature = Signature.from_dict(dict(entry))
                verify_operator_signature(root, payload.encode(), signature)
                return
            except EdgewiseError as exc:
                reasons.append(str(exc))
            except (KeyError, TypeError, ValueError) as exc:
                reasons.append(f"malformed signature ({exc!r})")
        raise CommandError(f"command not signed by an operator key: {'; '.join(reasons)}")


def _envelope(data: bytes) -> tuple[str, list[Any]]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CommandError(f"command is not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise CommandError("command is not a JSON object")
    version = document.get("v")
    if type(version) is not int or version != COMMAND_VERSION:
        raise CommandError(f"command format version {version!r} is not supported")
    payload, signatures = document.get("payload"), document.get("signatures")
    if document.get("type") != "command" or not isinstance(payload, str):
        raise CommandError("not a command (type 'command' with a 'payload' string)")
    if not isinstance(signatures, list) or not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise CommandError(f"command needs 1 to {MAX_SIGNATURES} signatures")
    return payload, signatures


def parse_payload(payload: str) -> Command:
    """The command a payload holds, its fields checked (a signed one only after its signature
    was)."""
    try:
        fields = json.loads(payload)
        action = fields["action"]
        bundle = fields.get("bundle")
        command = Command(
            device=_typed(fields["device"], str),
            seq=_typed(fields["seq"], int),
            action=_typed(action, str),
            issued=float(_typed(fields["issued"], (int, float))),
            expires=float(_typed(fields["expires"], (int, float))),
            bundle_name=None if bundle is None else _typed(bundle["name"], str),
            bundle_version=None if bundle is None else _typed(bundle["version"], int),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"malformed command payload ({exc!r})") from exc
    if command.action not in ACTIONS or (action == "install") != (bundle is not None):
        raise CommandError(f"command {command.seq}: unknown or malformed action {action!r}")
    return command


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{value!r} is not of the expected type")
    return value
