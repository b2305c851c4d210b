"""What a payload received on a fleet topic is: the one place that picks the decoder per topic.

Device-to-control topics carry JSON control messages (`messages.decode`), except `telemetry`,
whose binary frames are only glanced at here and decoded a batch at a time by the collector
(`telemetry_frame.glance`); `xfer` carries chunk frames (`frames.decode_chunk`). Commands and
TUF metadata are signed documents that the trust layer parses and verifies; here they are only
size-capped and passed on as bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..exceptions import MessageError
from . import frames, messages, telemetry_frame
from .topics import TUF, Kind, parse_device_topic, parse_tuf_topic

#: Signed documents (commands, TUF metadata) are small; root.json with many keys is the largest.
MAX_SIGNED_BYTES = 64 * 1024


@dataclass(frozen=True)
class Inbound:
    """A received payload that passed the checks of its topic."""

    topic: str
    device: str | None  # None on TUF topics
    kind: Kind | None  # None on TUF topics
    #: bytes: commands and TUF metadata
    body: messages.Message | frames.Chunk | telemetry_frame.RawTelemetry | bytes


def decode_inbound(topic: str, payload: bytes) -> Inbound:
    """The checked contents of `payload` received on `topic`, or a `MessageError`."""
    if topic.startswith(f"{TUF}/"):
        parse_tuf_topic(topic)
        return Inbound(topic, None, None, _capped(topic, payload))
    where = parse_device_topic(topic)
    body: messages.Message | frames.Chunk | telemetry_frame.RawTelemetry | bytes
    if where.kind is Kind.TELEMETRY:
        body = telemetry_frame.glance(topic, payload)
    elif where.kind is Kind.XFER:
        body = frames.decode_chunk(topic, payload)
    elif where.kind is Kind.CMD:
        body = _capped(topic, payload)
    else:
        body = messages.decode(topic, payload)
    return Inbound(topic, where.device, where.kind, body)


def _capped(topic: str, payload: bytes) -> bytes:
    if len(payload) > MAX_SIGNED_BYTES:
        raise MessageError(
            f"{topic}: document of {len(payload)} bytes, over the limit of {MAX_SIGNED_BYTES}"
        )
    return payload
