"""The broker access-control list of the fleet protocol, in Mosquitto's `acl_file` syntax.

Devices get `pattern` lines, in which Mosquitto substitutes the MQTT username (`%u`, which is the
device id) per client: each device may write only its own `state`, `events` and `telemetry`
and read only its own `cmd` and `xfer`, plus the TUF metadata everyone needs. The control user
may read what every device reports and write every device's `cmd` and `xfer` and the TUF
topics. Anything not granted is denied: Mosquitto drops an unauthorised publish (MQTT 3.1.1 has
no way to say so) and does not deliver a message to a client not allowed to read it.

Mosquitto warns at start that the TUF `pattern` line has no `%u`: that is intended, since a
`pattern` line is the only kind that applies to every authenticated user.
"""

from __future__ import annotations

from .topics import DEVICES, TUF, Kind

CONTROL_USER = "control"


def mosquitto_acl(control_user: str = CONTROL_USER) -> str:
    device_writes = [f"pattern write {DEVICES}/%u/{k.value}" for k in Kind if k.from_device]
    device_reads = [f"pattern read {DEVICES}/%u/{k.value}" for k in Kind if not k.from_device]
    control_reads = [f"topic read {DEVICES}/+/{k.value}" for k in Kind if k.from_device]
    control_writes = [f"topic write {DEVICES}/+/{k.value}" for k in Kind if not k.from_device]
    lines = [
        "# edgewise fleet protocol ACL (docs/protocol.md). %u is the MQTT username = device id.",
        *device_writes,
        *device_reads,
        f"pattern read {TUF}/#",
        "",
        f"user {control_user}",
        *control_reads,
        *control_writes,
        f"topic readwrite {TUF}/#",
    ]
    return "\n".join(lines) + "\n"
