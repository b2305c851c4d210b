"""Telemetry as a binary frame (protocol version 2): a window's numbers and its profiles' own
bytes, without base64 or JSON, so the collector decodes a whole batch in one Rust call.

Layout, little-endian (the profile codec's byte order); a `name` is a u8 length and that many
ASCII bytes (docs/protocol.md is the reference)::

    magic b"EWTM" | version u8 (2) | id: name | ts f64 | window_start f64 | window_end f64
    | bundle: u8 0 (none) or 1, then name: name, version u64, sha256 32 raw bytes, length u64
    | metrics: u8 count, each name: name, value f64
    | profiles: u8 count, each role: name, u32 length, the `Profile.to_bytes` bytes

The reader is Rust (`edgewise._core.TelemetryBatch`); this module writes frames and decodes
one for callers that want a `Telemetry` (the batch path never builds one).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._core import TELEMETRY_MAX_BYTES, TelemetryBatch
from ..exceptions import MessageError
from .messages import BundleRef, Telemetry

if TYPE_CHECKING:
    from .._core import WindowFields

MAGIC = b"EWTM"
FRAME_VERSION = 2
MAX_FRAME_BYTES: int = TELEMETRY_MAX_BYTES
#: What a device still sending protocol-1 JSON telemetry is told (the Rust reader says the same).
JSON_REFUSED = (
    "JSON telemetry (protocol version 1, base64 profiles) is no longer accepted: telemetry is "
    "a binary frame since protocol version 2; upgrade the device's edgewise"
)
_F64 = struct.Struct("<d")
_BUNDLE = struct.Struct("<Q32sQ")
_WINDOW = struct.Struct("<ddd")


@dataclass(frozen=True)
class RawTelemetry:
    """A telemetry frame as received, its header only glanced at: the collector decodes and
    checks frames a batch at a time (`TelemetryBatch`), off the network thread."""

    payload: bytes

    def decode(self, topic: str) -> Telemetry:
        """The checked `Telemetry` (for consumers that want one message at a time)."""
        return decode_telemetry(topic, self.payload)


def glance(topic: str, payload: bytes) -> RawTelemetry:
    """`payload` if its size, magic and version say it is a telemetry frame this edgewise
    reads, else a `MessageError` naming the topic (the full checks come with the batch)."""
    if len(payload) > MAX_FRAME_BYTES:
        raise MessageError(
            f"{topic}: telemetry frame of {len(payload)} bytes, over the limit of {MAX_FRAME_BYTES}"
        )
    if payload[:1] == b"{":
        raise MessageError(f"{topic}: {JSON_REFUSED}")
    if payload[:4] != MAGIC or payload[4:5] != bytes([FRAME_VERSION]):
        decode_telemetry(topic, payload)  # raises, naming what is wrong
    return RawTelemetry(payload)


def encode_telemetry(message: Telemetry) -> bytes:
    """The frame of `message`; a `MessageError` if it would pass the size cap or a field
    cannot be framed."""
    parts = [MAGIC, bytes([FRAME_VERSION]), _name(message.id, "id")]
    parts.append(_WINDOW.pack(message.ts, message.window_start, message.window_end))
    if message.bundle is None:
        parts.append(b"\x00")
    else:
        b = message.bundle
        parts += [b"\x01", _name(b.name, "bundle.name")]
        parts.append(_BUNDLE.pack(b.version, bytes.fromhex(b.sha256), b.length))
    parts.append(_count(len(message.metrics), "metrics"))
    for key, value in message.metrics.items():
        parts += [_name(key, "metrics"), _F64.pack(value)]
    parts.append(_count(len(message.profiles), "profiles"))
    for role, data in message.profiles.items():
        parts += [_name(role, "profiles"), struct.pack("<I", len(data)), data]
    frame = b"".join(parts)
    if len(frame) > MAX_FRAME_BYTES:
        raise MessageError(
            f"telemetry message {message.id}: {len(frame)} bytes encoded, "
            f"over the limit of {MAX_FRAME_BYTES}"
        )
    return frame


def decode_telemetry(topic: str, payload: bytes) -> Telemetry:
    """The checked `Telemetry` that `payload` received on `topic` holds, or a `MessageError`
    naming the topic and field. Its profiles are checked to parse; one that does not is left
    out, as the collector would skip it."""
    batch = TelemetryBatch([payload], threads=1)
    fields = batch.windows()[0]
    if isinstance(fields, str):
        raise MessageError(f"{topic}: {fields}")
    return telemetry_of(fields, batch.sections(0))


def telemetry_of(fields: WindowFields, profiles: dict[str, bytes]) -> Telemetry:
    """A `Telemetry` from `TelemetryBatch.windows` fields and the sections that parsed."""
    id_, ts, start, end, bundle, metrics, roles, _ = fields
    return Telemetry(
        id=id_,
        ts=ts,
        window_start=start,
        window_end=end,
        bundle=None if bundle is None else BundleRef(*bundle),
        metrics=metrics,
        profiles={role: profiles[role] for role in roles},
    )


def _name(text: str, field: str) -> bytes:
    data = text.encode()
    if not 1 <= len(data) <= 255:
        raise MessageError(f"telemetry field {field!r}: {text[:80]!r} cannot be framed")
    return bytes([len(data)]) + data


def _count(count: int, field: str) -> bytes:
    if count > 255:
        raise MessageError(f"telemetry field {field!r}: {count} items cannot be framed")
    return bytes([count])
