"""QoS 1 messages in flight when a client's connection drops are sent again when it resumes.

MQTT 3.1.1 (4.4.0-1) wants a broker to resend unacknowledged PUBLISH packets when a persistent
session resumes; Mosquitto does, with the DUP flag. amqtt 0.12.1 forgets them when the
connection drops (it discards its in-flight record as it cancels the wait for the PUBACK), so a
command or chunk that reached a device's socket just before the device lost power was lost.
This plugin follows what amqtt sends and what is acknowledged, and on a disconnect puts the
unacknowledged messages back at the head of the session's queue of messages for an absent
client, which amqtt delivers when the client returns.

A PUBACK can be seen before the PUBLISH it answers is recorded (the two events race); such a
message is then delivered once more, which QoS 1 allows and receivers deduplicate by id.
"""

from __future__ import annotations

import logging
from typing import Any

from amqtt.broker import BrokerContext, RetainedApplicationMessage
from amqtt.mqtt.constants import QOS_1
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.plugins.base import BasePlugin
from amqtt.session import Session

from .plugins import PolicyConfig

log = logging.getLogger(__name__)


class RedeliveryPlugin(BasePlugin[BrokerContext]):
    Config = PolicyConfig

    def __init__(self, context: BrokerContext) -> None:
        super().__init__(context)
        # client id -> packet id -> the QoS 1 PUBLISH sent to it and not acknowledged yet
        self._unacked: dict[str, dict[int, PublishPacket]] = {}

    async def on_mqtt_packet_sent(self, *, packet: Any, session: Session | None = None) -> None:
        if (
            session is not None
            and session.client_id
            and isinstance(packet, PublishPacket)
            and packet.qos == QOS_1
            and packet.packet_id is not None
        ):
            self._unacked.setdefault(session.client_id, {})[packet.packet_id] = packet

    async def on_mqtt_packet_received(self, *, packet: Any, session: Session | None = None) -> None:
        if session is not None and session.client_id and isinstance(packet, PubackPacket):
            self._unacked.get(session.client_id, {}).pop(packet.packet_id, None)

    async def on_broker_client_disconnected(
        self, *, client_id: str, client_session: Session
    ) -> None:
        unacked = self._unacked.pop(client_id, {})
        if not unacked or client_session.clean_session:
            return  # a clean session ends here: nothing is kept for it
        queue = client_session.retained_messages
        waiting = [queue.get_nowait() for _ in range(queue.qsize())]
        for packet in unacked.values():
            queue.put_nowait(
                RetainedApplicationMessage(None, packet.topic_name or "", packet.data or b"", QOS_1)
            )
        for message in waiting:
            queue.put_nowait(message)
        log.info("%s: %d unacknowledged messages kept for its return", client_id, len(unacked))
