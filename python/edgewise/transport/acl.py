"""The broker access-control list of the fleet protocol: one definition, two uses.

`fleet_acl()` is the list of rules as data. `mosquitto_acl()` renders it in Mosquitto's
`acl_file` syntax for deployments on Mosquitto; `Acl` evaluates the same rules inside the
embedded broker (`edgewise.broker`), with Mosquitto's meaning:

- a rule without a user applies to every authenticated client (Mosquitto's `pattern` line);
  `%u` in its topic stands for the client's MQTT username, which is the device id;
- a rule with a user applies to that user only (`user NAME` followed by `topic` lines);
- anything not granted is denied. A client is never granted anything through a `%u` that holds
  MQTT structure (`/`, `+`, `#`): Mosquitto refuses such substitutions too.

So each device may write only its own `state`, `events` and `telemetry` and read only its own
`cmd` and `xfer`, plus the TUF metadata everyone needs. The control user may read what every
device reports, write every device's `cmd` and `xfer`, and read and write the TUF and alert
topics.

Mosquitto warns at start that the TUF `pattern` line has no `%u`: that is intended, since a
`pattern` line is the only kind that applies to every authenticated user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Flag
from functools import lru_cache

from .topics import ALERTS, DEVICES, TUF, Kind

CONTROL_USER = "control"
USERNAME = "%u"  # where a rule's topic takes the client's username


class Access(Flag):
    READ = 1  # receive messages on the topic
    WRITE = 2  # publish on the topic
    READWRITE = READ | WRITE

    @property
    def mosquitto(self) -> str:
        return {Access.READ: "read", Access.WRITE: "write"}.get(self, "readwrite")


@dataclass(frozen=True)
class Rule:
    """Grants `access` to topics matching the filter `topic` (`%u`: the username) to `user`,
    or to every authenticated client when `user` is None."""

    access: Access
    topic: str
    user: str | None = None


def fleet_acl(control_user: str = CONTROL_USER) -> tuple[Rule, ...]:
    device = f"{DEVICES}/{USERNAME}"
    every_device = f"{DEVICES}/+"
    return (
        *(Rule(Access.WRITE, f"{device}/{k.value}") for k in Kind if k.from_device),
        *(Rule(Access.READ, f"{device}/{k.value}") for k in Kind if not k.from_device),
        Rule(Access.READ, f"{TUF}/#"),
        *(
            Rule(Access.READ, f"{every_device}/{k.value}", control_user)
            for k in Kind
            if k.from_device
        ),
        *(
            Rule(Access.WRITE, f"{every_device}/{k.value}", control_user)
            for k in Kind
            if not k.from_device
        ),
        Rule(Access.READWRITE, f"{TUF}/#", control_user),
        Rule(Access.READWRITE, f"{ALERTS}/#", control_user),
    )


def mosquitto_acl(control_user: str = CONTROL_USER) -> str:
    """The fleet ACL as a Mosquitto `acl_file`."""
    return render_mosquitto(fleet_acl(control_user))


def render_mosquitto(rules: Iterable[Rule]) -> str:
    rules = tuple(rules)
    lines = [
        "# edgewise fleet protocol ACL (docs/protocol.md). %u is the MQTT username = device id."
    ]
    lines += [f"pattern {r.access.mosquitto} {r.topic}" for r in rules if r.user is None]
    for user in dict.fromkeys(r.user for r in rules if r.user is not None):
        lines += ["", f"user {user}"]
        lines += [f"topic {r.access.mosquitto} {r.topic}" for r in rules if r.user == user]
    return "\n".join(lines) + "\n"


def topic_matches(topic: str, topic_filter: str) -> bool:
    """Whether the topic name `topic` matches the MQTT filter `topic_filter` (`+`, `#`)."""
    levels, filter_levels = topic.split("/"), topic_filter.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(levels) or level not in ("+", levels[index]):
            return False
    return len(levels) == len(filter_levels)


class Acl:
    """Evaluates rules the way Mosquitto evaluates an `acl_file` (see the module docstring)."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self._filters = lru_cache(maxsize=4096)(self._filters_of)

    def allows(self, username: str | None, topic: str, access: Access) -> bool:
        """Whether `username` (None: an anonymous client) may `access` the topic name `topic`."""
        if username is None:
            return False
        return any(topic_matches(topic, f) for f in self._filters(username, access))

    def _filters_of(self, username: str, access: Access) -> tuple[str, ...]:
        usable = bool(username) and not any(c in username for c in "/+#")
        return tuple(
            rule.topic.replace(USERNAME, username)
            for rule in self.rules
            if access in rule.access
            and rule.user in (None, username)
            and (usable or USERNAME not in rule.topic)
        )
