"""A bundle download's progress on disk, so that it survives disconnects and restarts.

`ChunkLedger` holds what every download shares (which chunks arrived, the checks each chunk
passes, the check of the whole); `TransferProgress` keeps a device's download on disk and
`MemoryProgress` keeps a simulated device's in memory. On disk a download lives in its own
directory::

    bundle.part      the bundle's bytes at their final offsets, as far as received
    progress.json    which chunks `bundle.part` holds (a bitmap), for which bundle and chunk size

A chunk's bytes are written and fsynced before the bitmap that claims them is replaced
(atomically), so after a crash the bitmap never claims a chunk that is not on disk. Storing a
chunk twice is harmless. When every chunk is there, `assemble` checks the whole file's length and
SHA-256 against the request (the trust layer verifies the bundle fully before install) and
renames it into place; a file that does not match is discarded and the download starts over.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..bundle import write_atomic
from ..exceptions import MessageError, TransferError
from .frames import Chunk
from .messages import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, BundleRef, chunk_count, new_id

log = logging.getLogger(__name__)

FORMAT = "edgewise-transfer-progress"
FORMAT_VERSION = 1
PARTIAL = "bundle.part"
PROGRESS = "progress.json"


class Accepted(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


class ChunkLedger:
    """Which chunks of one bundle have arrived, and the checks every arriving chunk passes.
    Subclasses keep the bytes: `TransferProgress` on disk, `MemoryProgress` in memory."""

    def __init__(
        self, bundle: BundleRef, chunk_size: int, transfer: str, bitmap: bytearray
    ) -> None:
        _check_chunk_size(chunk_size)
        self.bundle = bundle
        self.chunk_size = chunk_size
        self.transfer = transfer
        self.total = chunk_count(bundle.length, chunk_size)
        self._bitmap = bitmap

    def has(self, index: int) -> bool:
        return bool(self._bitmap[index // 8] >> (index % 8) & 1)

    def missing(self) -> list[int]:
        return [index for index in range(self.total) if not self.has(index)]

    @property
    def received(self) -> int:
        return self.total - len(self.missing())

    @property
    def complete(self) -> bool:
        return self.received == self.total

    def expected_length(self, index: int) -> int:
        return min(self.chunk_size, self.bundle.length - index * self.chunk_size)

    def accept(self, chunk: Chunk) -> Accepted:
        """Store `chunk`; a `MessageError` if it is not a chunk of this transfer."""
        if chunk.transfer != self.transfer:
            raise MessageError(f"chunk of transfer {chunk.transfer}, expected {self.transfer}")
        if chunk.total != self.total or chunk.index >= self.total:
            raise MessageError(
                f"chunk {chunk.index} of {chunk.total}, expected one of {self.total} chunks"
            )
        if len(chunk.data) != self.expected_length(chunk.index):
            raise MessageError(
                f"chunk {chunk.index} has {len(chunk.data)} bytes, "
                f"expected {self.expected_length(chunk.index)}"
            )
        if self.has(chunk.index):
            return Accepted.DUPLICATE
        self._store(chunk)
        self._bitmap[chunk.index // 8] |= 1 << (chunk.index % 8)
        self._stored()
        return Accepted.STORED

    def _store(self, chunk: Chunk) -> None:
        raise NotImplementedError

    def _stored(self) -> None:
        """After the bitmap changed (the disk version saves it)."""

    def _check_whole(self, length: int, digest: str, where: str) -> None:
        """A `TransferError` (and a fresh start) when the assembled bytes are not the bundle."""
        if length != self.bundle.length or digest != self.bundle.sha256:
            self._restart()
            raise TransferError(
                f"{where}: the assembled bundle ({length} bytes, SHA-256 {digest}) does not "
                f"match the request ({self.bundle.length} bytes, SHA-256 "
                f"{self.bundle.sha256}); download restarted"
            )

    def _restart(self) -> None:
        """Forget everything received: some chunk was wrong although its frame was sound."""
        self.transfer = new_id()
        self._bitmap = _empty_bitmap(self.bundle, self.chunk_size)


class MemoryProgress(ChunkLedger):
    """A download kept in memory: for the fleet simulator, whose devices have no disk of their
    own (a restart of the simulator starts every download over)."""

    def __init__(self, bundle: BundleRef, chunk_size: int) -> None:
        super().__init__(bundle, chunk_size, new_id(), _empty_bitmap(bundle, chunk_size))
        self._chunks: dict[int, bytes] = {}

    def _store(self, chunk: Chunk) -> None:
        self._chunks[chunk.index] = chunk.data

    def assemble(self, where: str) -> bytes:
        """The complete bundle, checked against the request's length and SHA-256."""
        if not self.complete:
            raise TransferError(f"{where}: {len(self.missing())} chunks still missing")
        data = b"".join(self._chunks[index] for index in range(self.total))
        self._check_whole(len(data), hashlib.sha256(data).hexdigest(), where)
        self._chunks.clear()
        return data

    def _restart(self) -> None:
        super()._restart()
        self._chunks.clear()


class TransferProgress(ChunkLedger):
    """Which chunks of one bundle are on disk. Use `open`, which resumes saved progress."""

    def __init__(
        self, directory: Path, bundle: BundleRef, chunk_size: int, transfer: str, bitmap: bytearray
    ) -> None:
        super().__init__(bundle, chunk_size, transfer, bitmap)
        self.directory = directory
        self._fd = os.open(directory / PARTIAL, os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(self._fd, bundle.length)  # a sparse file of the final size

    @classmethod
    def open(cls, directory: str | Path, bundle: BundleRef, chunk_size: int) -> TransferProgress:
        """Resume the saved progress in `directory` if it is for this bundle and chunk size,
        else start a new download there (a new transfer id, nothing received)."""
        _check_chunk_size(chunk_size)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        saved = _load(directory / PROGRESS, bundle, chunk_size)
        if saved is not None:
            transfer, bitmap = saved
            return cls(directory, bundle, chunk_size, transfer, bitmap)
        (directory / PARTIAL).unlink(missing_ok=True)
        progress = cls(directory, bundle, chunk_size, new_id(), _empty_bitmap(bundle, chunk_size))
        progress._save()
        return progress

    def _store(self, chunk: Chunk) -> None:
        # The bytes are on disk before the bitmap that claims them (`_stored`) is saved.
        os.pwrite(self._fd, chunk.data, chunk.index * self.chunk_size)
        os.fsync(self._fd)

    def _stored(self) -> None:
        self._save()

    def assemble(self, name: str) -> Path:
        """Check the complete file against the request and rename it to `directory/name`."""
        if not self.complete:
            raise TransferError(f"{self.directory}: {len(self.missing())} chunks still missing")
        digest = hashlib.sha256()
        with open(self.directory / PARTIAL, "rb") as partial:
            length = 0
            while block := partial.read(1 << 20):
                digest.update(block)
                length += len(block)
        self._check_whole(length, digest.hexdigest(), str(self.directory))
        final = self.directory / name
        os.replace(self.directory / PARTIAL, final)
        (self.directory / PROGRESS).unlink()
        self.close()
        return final

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> TransferProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _restart(self) -> None:
        super()._restart()
        os.ftruncate(self._fd, 0)
        os.ftruncate(self._fd, self.bundle.length)
        self._save()

    def _save(self) -> None:
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "transfer": self.transfer,
            "bundle": self.bundle.to_json(),
            "chunk_size": self.chunk_size,
            "received": base64.b64encode(bytes(self._bitmap)).decode(),
        }
        write_atomic(self.directory / PROGRESS, json.dumps(document).encode())


def _check_chunk_size(chunk_size: int) -> None:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(
            f"chunk size must be {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes, got {chunk_size}"
        )


def _empty_bitmap(bundle: BundleRef, chunk_size: int) -> bytearray:
    return bytearray(-(-chunk_count(bundle.length, chunk_size) // 8))


def _load(path: Path, bundle: BundleRef, chunk_size: int) -> tuple[str, bytearray] | None:
    """(transfer id, bitmap) saved at `path` for this bundle, or None to start over."""
    try:
        document: Any = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable, the download starts over: %s", path, exc)
        return None
    try:
        same = (
            document["format"] == FORMAT
            and document["format_version"] == FORMAT_VERSION
            and document["bundle"] == bundle.to_json()
            and document["chunk_size"] == chunk_size
        )
        bitmap = bytearray(base64.b64decode(document["received"], validate=True))
        transfer = str(document["transfer"])
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("%s: malformed, the download starts over: %s", path, exc)
        return None
    if not same or len(bitmap) != len(_empty_bitmap(bundle, chunk_size)):
        log.info("%s: saved progress is for another bundle or chunk size; starting over", path)
        return None
    if not (path.parent / PARTIAL).exists():
        return None
    return transfer, bitmap
