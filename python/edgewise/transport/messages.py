"""Messages of the fleet protocol: encoding, and checking what comes off the network.

Telemetry travels as a binary frame (transport/telemetry_frame.py, since protocol version 2);
every other message is a JSON object with the envelope fields ``v`` (protocol version), ``type``,
``id`` (unique per sender, so receivers can deduplicate) and ``ts`` (the sender's Unix time),
plus the fields of its type (docs/protocol.md lists them). `decode` trusts nothing: it checks
the size before parsing, then the version, then that the type belongs on the topic, then every
field's presence, type and range. Anything wrong is a `MessageError` naming the topic and field.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, ClassVar

from ..exceptions import MessageError
from .topics import Kind, parse_device_topic

PROTOCOL_VERSION = 2
#: JSON versions read: version 2 changed only telemetry (now a binary frame), so a version-1
#: device's state and events are still understood; its JSON telemetry is refused by name.
READABLE_VERSIONS = (1, 2)
#: JSON messages stay well under the smallest broker cap we target (AWS IoT Core: 128 KB).
MAX_MESSAGE_BYTES = 96 * 1024
#: Chunk sizes a transfer request may ask for: the upper bound keeps a chunk frame under the
#: AWS IoT Core payload cap; the lower bound keeps a bundle from needing absurdly many chunks.
MIN_CHUNK_SIZE = 1024
MAX_CHUNK_SIZE = 96 * 1024
#: Chunks one request may ask for: far below Mosquitto's per-client queue (1000 messages), so a
#: window never overflows a slow device's queue.
MAX_WINDOW = 64

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_EVENT_NAME = re.compile(r"[a-z][a-z0-9_.]{0,63}")
#: A label name in a device's state (the value is any string of up to 256 characters).
LABEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,62}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TRANSFER_ID = re.compile(r"[0-9a-f]{32}")


def new_id() -> str:
    """A fresh message or transfer id (random, so restarts never reuse one)."""
    return uuid.uuid4().hex


class Status(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class SlotStatus(StrEnum):
    EMPTY = "empty"
    DOWNLOADING = "downloading"
    INSTALLED = "installed"  # verified and health-checked, not serving
    ACTIVE = "active"
    FAILED = "failed"


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class BundleRef:
    """Which bundle: what the trust layer's target entry says about it."""

    name: str
    version: int
    sha256: str
    length: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "length": self.length,
        }


@dataclass(frozen=True)
class Slot:
    status: SlotStatus
    bundle: BundleRef | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status.value, "bundle": _optional_json(self.bundle)}


@dataclass(frozen=True, kw_only=True)
class Message:
    """The envelope every message shares; subclasses add their fields and a `TYPE`."""

    TYPE: ClassVar[str]
    KIND: ClassVar[Kind]  # the device topic this type travels on
    id: str = field(default_factory=new_id)
    ts: float = field(default_factory=time.time)

    def body(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class State(Message):
    """The device's retained state: the last will publishes an offline one."""

    TYPE = "state"
    KIND = Kind.STATE
    status: Status
    active: BundleRef | None = None
    slots: dict[str, Slot] = field(default_factory=dict)
    reason: str | None = None
    #: The device's configured labels, what operators select devices by.
    labels: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "active": _optional_json(self.active),
            "slots": {name: slot.to_json() for name, slot in self.slots.items()},
            "reason": self.reason,
            "labels": self.labels,
        }


@dataclass(frozen=True, kw_only=True)
class Event(Message):
    TYPE = "event"
    KIND = Kind.EVENTS
    name: str
    level: Level = Level.INFO
    detail: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"name": self.name, "level": self.level.value, "detail": self.detail}


@dataclass(frozen=True, kw_only=True)
class Telemetry(Message):
    """One window of a device's numbers, and the profiles of what it scored in it."""

    TYPE = "telemetry"
    KIND = Kind.TELEMETRY
    window_start: float
    window_end: float
    bundle: BundleRef | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    #: Profiles by role ("inputs", "outputs"): the bytes of `Profile.to_bytes`, whose own
    #: format checks guard the reader; the frame's size cap bounds them.
    profiles: dict[str, bytes] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        raise MessageError("telemetry is a binary frame, not a JSON message")


@dataclass(frozen=True, kw_only=True)
class TransferRequest(Message):
    """A device asks for some chunks of a bundle; they come back on its `xfer` topic."""

    TYPE = "transfer_request"
    KIND = Kind.EVENTS
    transfer: str
    bundle: BundleRef
    chunk_size: int
    chunks: tuple[int, ...]

    def body(self) -> dict[str, Any]:
        return {
            "transfer": self.transfer,
            "bundle": self.bundle.to_json(),
            "chunk_size": self.chunk_size,
            "chunks": list(self.chunks),
        }


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls for cls in (State, Event, Telemetry, TransferRequest)
}


def chunk_count(length: int, chunk_size: int) -> int:
    return max(1, -(-length // chunk_size))


def encode(message: Message) -> bytes:
    """The payload of `message`: a binary frame for telemetry, JSON for the others."""
    if isinstance(message, Telemetry):
        from .telemetry_frame import encode_telemetry  # it builds on this module

        return encode_telemetry(message)
    document = {"v": PROTOCOL_VERSION, "type": message.TYPE, "id": message.id, "ts": message.ts}
    payload = json.dumps({**document, **message.body()}, separators=(",", ":")).encode()
    if len(payload) > MAX_MESSAGE_BYTES:
        raise MessageError(
            f"{message.TYPE} message {message.id}: {len(payload)} bytes encoded, "
            f"over the limit of {MAX_MESSAGE_BYTES}"
        )
    return payload


def decode(topic: str, payload: bytes) -> Message:
    """The checked message that `payload` on device topic `topic` holds, or a `MessageError`."""
    kind = parse_device_topic(topic).kind
    if not kind.from_device:
        raise MessageError(f"{topic}: {kind.value} topics do not carry JSON control messages")
    if kind is Kind.TELEMETRY:
        from .telemetry_frame import decode_telemetry  # it builds on this module

        return decode_telemetry(topic, payload)
    if len(payload) > MAX_MESSAGE_BYTES:
        raise MessageError(
            f"{topic}: message of {len(payload)} bytes, over the limit of {MAX_MESSAGE_BYTES}"
        )
    document = _parse_json(topic, payload)
    fields = _Fields(document, topic)
    version = document.get("v")
    if type(version) is not int or version not in READABLE_VERSIONS:  # not True, not 1.0
        raise MessageError(
            f"{topic}: protocol version {version!r} is not supported "
            f"(this edgewise speaks version {PROTOCOL_VERSION})"
        )
    type_name = fields.text("type")
    cls = MESSAGE_TYPES.get(type_name)
    if cls is None or cls.KIND is not kind:
        allowed = sorted(name for name, c in MESSAGE_TYPES.items() if c.KIND is kind)
        raise MessageError(
            f"{topic}: message type {type_name!r} does not belong on a {kind.value} topic "
            f"(expected {', '.join(allowed)})"
        )
    envelope = {"id": fields.text("id", pattern=_ID), "ts": fields.number("ts")}
    return _PARSERS[cls](fields, envelope)


def _parse_json(topic: str, payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise MessageError(f"{topic}: message is not UTF-8 ({exc.reason})") from exc
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise MessageError(f"{topic}: message is not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise MessageError(f"{topic}: message is a JSON {type(document).__name__}, not an object")
    return document


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _optional_json(value: BundleRef | None) -> dict[str, Any] | None:
    return None if value is None else value.to_json()


class _Fields:
    """Typed access to the fields of one JSON object, with errors that name the field's path."""

    def __init__(self, document: Any, topic: str, path: str = "") -> None:
        if not isinstance(document, dict):
            raise MessageError(f"{topic}: field {path!r} must be an object")
        self.document = document
        self.topic = topic
        self.path = path

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _fail(self, key: str, problem: str) -> MessageError:
        return MessageError(f"{self.topic}: field {self._where(key)!r} {problem}")

    def _get(self, key: str, expected: tuple[type, ...], what: str) -> Any:
        if key not in self.document:
            raise self._fail(key, "is missing")
        value = self.document[key]
        # bool is an int in Python, never a number or a string in the protocol.
        if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
            raise self._fail(key, f"must be {what}, not {type(value).__name__}")
        return value

    def present(self, key: str) -> bool:
        """Whether an optional field has a value (absent and null both mean no)."""
        return self.document.get(key) is not None

    def text(self, key: str, pattern: re.Pattern[str] | None = None, max_length: int = 256) -> str:
        value: str = self._get(key, (str,), "a string")
        if len(value) > max_length or (pattern is not None and not pattern.fullmatch(value)):
            raise self._fail(key, f"has an invalid value {value[:80]!r}")
        return value

    def integer(self, key: str, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
        value: int = self._get(key, (int,), "an integer")
        if not minimum <= value <= maximum:
            raise self._fail(key, f"is {value}, outside [{minimum}, {maximum}]")
        return value

    def number(self, key: str) -> float:
        value = self._get(key, (int, float), "a number")
        if not math.isfinite(value):
            raise self._fail(key, "must be finite")
        return float(value)

    def choice(self, key: str, choices: type[Enum]) -> Any:
        value = self._get(key, (str,), "a string")
        try:
            return choices(value)
        except ValueError:
            allowed = ", ".join(member.value for member in choices)
            raise self._fail(key, f"is {value[:80]!r}, expected one of {allowed}") from None

    def obj(self, key: str) -> _Fields:
        return _Fields(self._get(key, (dict,), "an object"), self.topic, self._where(key))

    def items(self) -> Iterable[tuple[str, _Fields]]:
        """Each field of this object as an object of its own (for maps of records)."""
        for key in self.document:
            yield key, self.obj(key)

    def text_map(self, key: str, pattern: re.Pattern[str], max_length: int = 256) -> dict[str, str]:
        """An optional object of strings whose keys match `pattern` (empty when absent)."""
        if not self.present(key):
            return {}
        values = self.obj(key)
        for name in values.document:
            if not pattern.fullmatch(name):
                raise values._fail(name, "is not a valid name")
        return {name: values.text(name, max_length=max_length) for name in values.document}

    def integer_list(self, key: str, max_items: int) -> list[int]:
        values: list[Any] = self._get(key, (list,), "a list")
        if not 1 <= len(values) <= max_items:
            raise self._fail(key, f"has {len(values)} items, expected 1 to {max_items}")
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
            raise self._fail(key, "must hold non-negative integers only")
        if len(set(values)) != len(values):
            raise self._fail(key, "holds an item twice")
        return values

    def bundle(self, key: str) -> BundleRef:
        ref = self.obj(key)
        return BundleRef(
            name=ref.text("name", pattern=_NAME),
            version=ref.integer("version"),
            sha256=ref.text("sha256", pattern=_SHA256),
            length=ref.integer("length"),
        )

    def optional_bundle(self, key: str) -> BundleRef | None:
        return self.bundle(key) if self.present(key) else None


def _state(fields: _Fields, envelope: dict[str, Any]) -> State:
    slots = {}
    if fields.present("slots"):
        for name, slot in fields.obj("slots").items():
            if not _NAME.fullmatch(name):
                raise MessageError(f"{fields.topic}: slot name {name[:80]!r} is invalid")
            slots[name] = Slot(slot.choice("status", SlotStatus), slot.optional_bundle("bundle"))
    return State(
        **envelope,
        status=fields.choice("status", Status),
        active=fields.optional_bundle("active"),
        slots=slots,
        reason=fields.text("reason", max_length=1024) if fields.present("reason") else None,
        labels=fields.text_map("labels", LABEL_NAME),
    )


def _event(fields: _Fields, envelope: dict[str, Any]) -> Event:
    return Event(
        **envelope,
        name=fields.text("name", pattern=_EVENT_NAME),
        level=fields.choice("level", Level),
        detail=fields.obj("detail").document if fields.present("detail") else {},
    )


def _transfer_request(fields: _Fields, envelope: dict[str, Any]) -> TransferRequest:
    bundle = fields.bundle("bundle")
    chunk_size = fields.integer("chunk_size", MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)
    chunks = fields.integer_list("chunks", MAX_WINDOW)
    total = chunk_count(bundle.length, chunk_size)
    if max(chunks) >= total:
        raise MessageError(
            f"{fields.topic}: chunk {max(chunks)} requested, but the bundle has {total} chunks"
        )
    return TransferRequest(
        **envelope,
        transfer=fields.text("transfer", pattern=_TRANSFER_ID),
        bundle=bundle,
        chunk_size=chunk_size,
        chunks=tuple(chunks),
    )


_PARSERS: dict[type[Message], Callable[[_Fields, dict[str, Any]], Message]] = {
    State: _state,
    Event: _event,
    TransferRequest: _transfer_request,
}
