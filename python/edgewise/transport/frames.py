"""Binary frames: a bundle chunk with a small fixed header in front of its bytes.

Header layout (format version 1, big-endian, 68 bytes)::

    offset  size  field
         0     4  magic b"EWFR"
         4     1  frame format version (1)
         5     1  frame kind (1 = bundle chunk; later kinds, e.g. profiles, reuse the header)
         6     2  reserved, zero
         8    16  transfer id (the request's `transfer`, as 16 raw bytes)
        24     4  chunk index (0-based)
        28     4  chunk count of the whole transfer
        32     4  payload length in bytes
        36    32  SHA-256 of the payload
        68     *  payload

The receiver checks the header and the payload's length and hash before it keeps a chunk, so a
chunk damaged or truncated on the way is discarded and asked for again.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from ..exceptions import MessageError
from .messages import MAX_CHUNK_SIZE

MAGIC = b"EWFR"
FRAME_VERSION = 1
KIND_CHUNK = 1
_HEADER = struct.Struct(">4sBBH16sIII32s")
HEADER_SIZE = _HEADER.size
MAX_FRAME_BYTES = HEADER_SIZE + MAX_CHUNK_SIZE


@dataclass(frozen=True)
class Chunk:
    transfer: str  # 32 hex digits
    index: int
    total: int
    data: bytes

    def encode(self) -> bytes:
        header = _HEADER.pack(
            MAGIC,
            FRAME_VERSION,
            KIND_CHUNK,
            0,
            bytes.fromhex(self.transfer),
            self.index,
            self.total,
            len(self.data),
            hashlib.sha256(self.data).digest(),
        )
        return header + self.data


def decode_chunk(topic: str, payload: bytes) -> Chunk:
    """The chunk that `payload` holds if its header and hash are sound, else a `MessageError`."""
    if len(payload) > MAX_FRAME_BYTES:
        raise MessageError(
            f"{topic}: frame of {len(payload)} bytes, over the limit of {MAX_FRAME_BYTES}"
        )
    if len(payload) < HEADER_SIZE:
        raise MessageError(f"{topic}: frame of {len(payload)} bytes is shorter than its header")
    magic, version, kind, _, transfer, index, total, length, digest = _HEADER.unpack_from(payload)
    if magic != MAGIC:
        raise MessageError(f"{topic}: not an edgewise frame (magic {magic!r})")
    if version != FRAME_VERSION:
        raise MessageError(
            f"{topic}: frame format version {version} is not supported "
            f"(this edgewise reads version {FRAME_VERSION})"
        )
    if kind != KIND_CHUNK:
        raise MessageError(f"{topic}: frame kind {kind} is not a bundle chunk")
    data = payload[HEADER_SIZE:]
    if length != len(data):
        raise MessageError(f"{topic}: header says {length} payload bytes, frame has {len(data)}")
    if index >= total:
        raise MessageError(f"{topic}: chunk index {index} is not below the chunk count {total}")
    if hashlib.sha256(data).digest() != digest:
        raise MessageError(f"{topic}: chunk {index} does not match its SHA-256")
    return Chunk(transfer.hex(), index, total, data)
