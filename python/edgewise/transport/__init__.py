"""The fleet protocol over MQTT: topics, messages, the connection, the outbox, bundle transfer.

docs/protocol.md describes the protocol itself. This package imports only the standard library
and paho-mqtt, so that the edge agent stays small.
"""

from __future__ import annotations

from .client import BrokerSettings, Connection, Tls, Will
from .dedup import SeenIds
from .download import BundleDownload
from .frames import Chunk, decode_chunk
from .inbound import Inbound, decode_inbound
from .messages import (
    PROTOCOL_VERSION,
    BundleRef,
    Event,
    Level,
    Message,
    Slot,
    SlotStatus,
    State,
    Status,
    Telemetry,
    TransferRequest,
    decode,
    encode,
)
from .outbox import Outbox, OutboxPublisher
from .progress import TransferProgress
from .sender import ChunkServer
from .topics import Kind, check_device_id, device_topic, parse_device_topic

__all__ = [
    "PROTOCOL_VERSION",
    "BrokerSettings",
    "BundleDownload",
    "BundleRef",
    "Chunk",
    "ChunkServer",
    "Connection",
    "Event",
    "Inbound",
    "Kind",
    "Level",
    "Message",
    "Outbox",
    "OutboxPublisher",
    "SeenIds",
    "Slot",
    "SlotStatus",
    "State",
    "Status",
    "Telemetry",
    "Tls",
    "TransferProgress",
    "TransferRequest",
    "Will",
    "check_device_id",
    "decode",
    "decode_chunk",
    "decode_inbound",
    "device_topic",
    "encode",
    "parse_device_topic",
]
