"""The embedded MQTT broker: `edgewise broker`, for the demo, the tests and small fleets.

Production fleets use Mosquitto, EMQX or a cloud IoT broker; the embedded one takes the same
Mosquitto password file and enforces the same ACL (`edgewise.transport.acl`), so a fleet moves
between them without touching a device. See docs/operations.md.
"""

from .passwords import hash_password, read_password_file, set_password, verify_password
from .server import DEFAULT_MAX_PAYLOAD, EmbeddedBroker, ServerTls

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "EmbeddedBroker",
    "ServerTls",
    "hash_password",
    "read_password_file",
    "set_password",
    "verify_password",
]
