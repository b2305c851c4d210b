"""A device connection in a process of its own, for tests that kill it (SIGKILL) mid-session.

Usage: python transport_device.py PORT USER PASSWORD. It connects with an offline last will,
publishes its retained online state, prints "ready" and then waits to be killed.
"""

from __future__ import annotations

import sys
import threading

from edgewise.transport import (
    BrokerSettings,
    Connection,
    Kind,
    State,
    Status,
    Will,
    device_topic,
    encode,
)


def main(port: int, user: str, password: str) -> None:
    topic = device_topic(user, Kind.STATE)
    will = Will(topic, encode(State(status=Status.OFFLINE, reason="connection lost")))
    settings = BrokerSettings("127.0.0.1", port, user, password)
    connection = Connection(user, settings, will=will).start()
    if not connection.wait_connected(30):
        sys.exit("could not connect")
    online = connection.publish(topic, encode(State(status=Status.ONLINE)), retain=True)
    online.wait_for_publish(30)
    print("ready", flush=True)
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
