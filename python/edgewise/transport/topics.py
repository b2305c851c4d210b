"""The MQTT topic tree of the fleet protocol (docs/protocol.md) and device ids.

::

    edgewise/v1/devices/{id}/state       device -> control, retained (online/offline via LWT)
    edgewise/v1/devices/{id}/events      device -> control (events and transfer requests)
    edgewise/v1/devices/{id}/telemetry   device -> control
    edgewise/v1/devices/{id}/cmd         control -> device (signed commands)
    edgewise/v1/devices/{id}/xfer        control -> device (bundle chunks it asked for)
    edgewise/v1/tuf/{role}               control -> everyone, retained TUF metadata
    edgewise/v1/tuf/root/{version}       control -> everyone, retained: every root version
    edgewise/v1/alerts/...               control -> control (alerts raised and resolved)

A device's MQTT username is its id and the broker's ACL substitutes it into the topic (`%u`),
so an id must never contain what MQTT or the ACL would read as structure: `/`, `+`, `#`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from ..exceptions import MessageError

ROOT = "edgewise/v1"
DEVICES = f"{ROOT}/devices"
TUF = f"{ROOT}/tuf"
ALERTS = f"{ROOT}/alerts"

#: Device ids are short, printable and free of MQTT structure; the ASCII subset below keeps them
#: safe in file names, log lines and ACL patterns as well.
DEVICE_ID_MAX_LENGTH = 64
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
TUF_ROLES = ("root", "targets", "snapshot", "timestamp")
_ROOT_VERSION = re.compile(r"[1-9][0-9]{0,18}")
_RULE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class Kind(StrEnum):
    """The last level of a device topic: what flows there and in which direction."""

    STATE = "state"
    EVENTS = "events"
    TELEMETRY = "telemetry"
    CMD = "cmd"
    XFER = "xfer"

    @property
    def from_device(self) -> bool:
        return self in (Kind.STATE, Kind.EVENTS, Kind.TELEMETRY)


@dataclass(frozen=True)
class DeviceTopic:
    device: str
    kind: Kind


def check_device_id(device: str) -> str:
    """`device` if it is a valid device id, else a `MessageError` that says why."""
    if not isinstance(device, str) or not device:
        raise MessageError(f"device id {device!r}: must be a non-empty string")
    if len(device) > DEVICE_ID_MAX_LENGTH:
        raise MessageError(
            f"device id {device[:16]!r}...: {len(device)} characters, "
            f"over the limit of {DEVICE_ID_MAX_LENGTH}"
        )
    if not _DEVICE_ID.fullmatch(device):
        raise MessageError(
            f"device id {device!r}: use letters, digits and . _ : - only "
            "(starting with a letter or digit); '/', '+' and '#' are MQTT structure"
        )
    return device


def device_topic(device: str, kind: Kind) -> str:
    return f"{DEVICES}/{check_device_id(device)}/{kind.value}"


def all_devices(kind: Kind) -> str:
    """The subscription filter that the control plane uses for one kind of every device."""
    return f"{DEVICES}/+/{kind.value}"


def tuf_topic(role: str) -> str:
    if role not in TUF_ROLES:
        raise MessageError(f"TUF role {role!r}: expected one of {', '.join(TUF_ROLES)}")
    return f"{TUF}/{role}"


def parse_device_topic(topic: str) -> DeviceTopic:
    """(device, kind) of a device topic; a `MessageError` for any other topic."""
    prefix = f"{DEVICES}/"
    if not topic.startswith(prefix):
        raise MessageError(f"{topic}: not a device topic (expected {DEVICES}/{{id}}/{{kind}})")
    device, _, kind = topic[len(prefix) :].partition("/")
    try:
        return DeviceTopic(check_device_id(device), Kind(kind))
    except ValueError as exc:  # MessageError is a ValueError too
        raise MessageError(f"{topic}: not a device topic ({exc})") from exc


def tuf_root_topic(version: int) -> str:
    """Where root metadata of `version` stays retained beside the current one, so that a client
    several root rotations behind can walk the chain of roots one by one, as TUF requires."""
    return f"{TUF}/root/{version}"


def parse_tuf_topic(topic: str) -> tuple[str, int | None]:
    """The TUF role of a TUF topic, and the root version of a versioned root topic; a
    `MessageError` for any other topic."""
    prefix = f"{TUF}/"
    role, _, version = (topic[len(prefix) :] if topic.startswith(prefix) else "").partition("/")
    if role in TUF_ROLES and not version:
        return role, None
    if role == "root" and _ROOT_VERSION.fullmatch(version):
        return role, int(version)
    raise MessageError(
        f"{topic}: not a TUF topic (expected {TUF}/{{role}} or {TUF}/root/{{version}})"
    )


def alert_topic(rule: str) -> str:
    """Where the control plane publishes the alerts of `rule` as they fire and resolve."""
    if not _RULE.fullmatch(rule):
        raise MessageError(f"alert rule {rule!r}: use lower-case letters, digits and _")
    return f"{ALERTS}/{rule}"
