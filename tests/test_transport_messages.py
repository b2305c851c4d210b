"""Topics, JSON control messages and chunk frames: round trips, and hostile input never crashes."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgewise.exceptions import EdgewiseError, MessageError
from edgewise.transport import (
    PROTOCOL_VERSION,
    BundleRef,
    Chunk,
    Event,
    Kind,
    Level,
    Slot,
    SlotStatus,
    State,
    Status,
    TransferRequest,
    check_device_id,
    decode,
    decode_chunk,
    decode_inbound,
    device_topic,
    encode,
    parse_device_topic,
)
from edgewise.transport.frames import HEADER_SIZE, MAX_FRAME_BYTES
from edgewise.transport.messages import MAX_MESSAGE_BYTES, MAX_WINDOW, new_id
from edgewise.transport.topics import (
    DEVICE_ID_MAX_LENGTH,
    parse_tuf_topic,
    tuf_root_topic,
    tuf_topic,
)

BUNDLE = BundleRef("credit", 3, "ab" * 32, 1_000_003)
STATE = device_topic("dev-a", Kind.STATE)
EVENTS = device_topic("dev-a", Kind.EVENTS)
TELEMETRY = device_topic("dev-a", Kind.TELEMETRY)
XFER = device_topic("dev-a", Kind.XFER)


def test_message_error_is_an_edgewise_value_error() -> None:
    assert issubclass(MessageError, EdgewiseError)
    assert issubclass(MessageError, ValueError)


# -- topics ----------------------------------------------------------------------------------


def test_topics_round_trip() -> None:
    for kind in Kind:
        topic = device_topic("pump-7.berlin", kind)
        assert topic == f"edgewise/v1/devices/pump-7.berlin/{kind.value}"
        parsed = parse_device_topic(topic)
        assert (parsed.device, parsed.kind) == ("pump-7.berlin", kind)


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "+", "-lead", "é", "a b"])
def test_device_ids_that_would_break_topics_or_the_acl_are_refused(bad: str) -> None:
    with pytest.raises(MessageError, match="device id"):
        check_device_id(bad)


def test_tuf_topics_name_a_role_or_a_root_version() -> None:
    assert parse_tuf_topic(tuf_topic("timestamp")) == ("timestamp", None)
    assert parse_tuf_topic(tuf_root_topic(12)) == ("root", 12)
    for bad in ("edgewise/v1/tuf/targets/3", "edgewise/v1/tuf/root/0", "edgewise/v1/tuf/root/x"):
        with pytest.raises(MessageError, match="not a TUF topic"):
            parse_tuf_topic(bad)


def test_device_id_length_is_capped() -> None:
    check_device_id("a" * DEVICE_ID_MAX_LENGTH)
    with pytest.raises(MessageError, match="over the limit"):
        check_device_id("a" * (DEVICE_ID_MAX_LENGTH + 1))


@pytest.mark.parametrize(
    "topic",
    [
        "edgewise/v1/devices/dev-a/shell",
        "edgewise/v1/devices/dev-a/state/extra",
        "edgewise/v2/devices/dev-a/state",
        "edgewise/v1/devices//state",
        "edgewise/v1/tuf/root",
    ],
)
def test_other_topics_are_not_device_topics(topic: str) -> None:
    with pytest.raises(MessageError, match="not a device topic"):
        parse_device_topic(topic)


# -- JSON messages ---------------------------------------------------------------------------

EXAMPLES: list[tuple[str, Any]] = [
    (
        STATE,
        State(
            status=Status.ONLINE,
            active=BUNDLE,
            slots={"a": Slot(SlotStatus.ACTIVE, BUNDLE), "b": Slot(SlotStatus.EMPTY)},
            labels={"site": "berlin", "hw/class": "pi4"},
        ),
    ),
    (STATE, State(status=Status.OFFLINE, reason="connection lost")),
    (EVENTS, Event(name="install.health_failed", level=Level.ERROR, detail={"p99_ms": 12.5})),
    (EVENTS, TransferRequest(transfer=new_id(), bundle=BUNDLE, chunk_size=65536, chunks=(0, 15))),
]


@pytest.mark.parametrize(("topic", "message"), EXAMPLES)
def test_messages_round_trip(topic: str, message: Any) -> None:
    payload = encode(message)
    document = json.loads(payload)
    assert document["v"] == PROTOCOL_VERSION == 2
    assert document["id"] == message.id
    assert decode(topic, payload) == message


def document_of(message: Any) -> dict[str, Any]:
    return dict(json.loads(encode(message)))


def payload_of(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"v": 3}, "protocol version 3 is not supported"),
        ({"v": True}, "protocol version True is not supported"),
        ({"v": 1.0}, "protocol version 1.0 is not supported"),
        ({"type": "state"}, "message type 'state' does not belong on a events topic"),
        ({"id": "no spaces allowed"}, "field 'id' has an invalid value"),
        ({"ts": "yesterday"}, "field 'ts' must be a number, not str"),
        ({"level": "fatal"}, "field 'level' is 'fatal', expected one of info, warning, error"),
        ({"name": 7}, "field 'name' must be a string, not int"),
        ({"detail": []}, "field 'detail' must be an object, not list"),
    ],
)
def test_event_schema_errors_name_topic_and_field(change: dict[str, Any], error: str) -> None:
    document = {**document_of(EXAMPLES[2][1]), **change}
    with pytest.raises(MessageError, match=rf"^{EVENTS}: .*{error}"):
        decode(EVENTS, payload_of(document))


def test_a_missing_version_is_an_unknown_version() -> None:
    document = document_of(EXAMPLES[2][1])
    del document["v"]
    with pytest.raises(MessageError, match="protocol version None is not supported"):
        decode(EVENTS, payload_of(document))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"chunks": []}, "field 'chunks' has 0 items"),
        ({"chunks": list(range(MAX_WINDOW + 1))}, f"has {MAX_WINDOW + 1} items"),
        ({"chunks": [1, 1]}, "holds an item twice"),
        ({"chunks": [True]}, "non-negative integers only"),
        ({"chunks": [16]}, "chunk 16 requested, but the bundle has 16 chunks"),
        ({"chunk_size": 10}, "field 'chunk_size' is 10, outside"),
        ({"chunk_size": 1 << 20}, "field 'chunk_size' is 1048576, outside"),
        ({"transfer": "../../etc"}, "field 'transfer' has an invalid value"),
        ({"bundle": {**BUNDLE.to_json(), "sha256": "AB" * 32}}, "field 'bundle.sha256'"),
        ({"bundle": {**BUNDLE.to_json(), "length": -1}}, "field 'bundle.length' is -1"),
    ],
)
def test_transfer_request_schema(change: dict[str, Any], error: str) -> None:
    document = {**document_of(EXAMPLES[3][1]), **change}
    with pytest.raises(MessageError, match=error):
        decode(EVENTS, payload_of(document))


def test_state_slot_status_is_an_enum() -> None:
    document = document_of(EXAMPLES[0][1])
    document["slots"]["a"]["status"] = "exploded"
    with pytest.raises(MessageError, match=r"field 'slots\.a\.status' is 'exploded'"):
        decode(STATE, payload_of(document))


@pytest.mark.parametrize(
    ("topic", "field", "value", "error"),
    [
        (STATE, "labels", {"bad name": "x"}, r"field 'labels\.bad name' is not a valid name"),
        (STATE, "labels", {"site": 3}, r"field 'labels\.site' must be a string"),
    ],
)
def test_labels_are_a_map_of_strings(topic, field, value, error) -> None:
    document = {**document_of(EXAMPLES[0][1]), field: value}
    with pytest.raises(MessageError, match=error):
        decode(topic, payload_of(document))


def test_version_1_json_is_still_read_except_telemetry() -> None:
    """Protocol 2 changed only telemetry: a version-1 device's state and events are read."""
    document = {**document_of(EXAMPLES[2][1]), "v": 1}
    assert decode(EVENTS, payload_of(document)) == EXAMPLES[2][1]
    old = {"v": 1, "type": "telemetry", "id": "w1", "ts": 1.0, "window_start": 0.0}
    with pytest.raises(MessageError, match=rf"^{TELEMETRY}: JSON telemetry .* no longer accepted"):
        decode(TELEMETRY, payload_of({**old, "window_end": 1.0, "profiles": {}}))


def test_non_finite_numbers_are_refused() -> None:
    payload = encode(EXAMPLES[2][1]).replace(b'"p99_ms":12.5', b'"p99_ms":NaN')
    with pytest.raises(MessageError, match="not valid JSON"):
        decode(EVENTS, payload)


def test_size_is_checked_before_parsing() -> None:
    # Over the cap and not even JSON: the size is what the error names.
    with pytest.raises(MessageError, match=f"over the limit of {MAX_MESSAGE_BYTES}"):
        decode(EVENTS, b"{" * (MAX_MESSAGE_BYTES + 1))


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(MessageError, match="not valid JSON"):
        decode(EVENTS, b"[" * (MAX_MESSAGE_BYTES - 1))


def test_commands_and_chunks_are_not_json_messages() -> None:
    with pytest.raises(MessageError, match="cmd topics do not carry JSON"):
        decode(device_topic("dev-a", Kind.CMD), encode(EXAMPLES[2][1]))


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
        max_leaves=25,
    )


def fields_of_every_type() -> st.SearchStrategy[dict[str, Any]]:
    """Documents near the schema: right keys with random values, plus stray keys."""
    keys = st.sampled_from(
        [
            "v",
            "type",
            "id",
            "ts",
            "status",
            "active",
            "slots",
            "name",
            "level",
            "detail",
            "window_start",
            "window_end",
            "metrics",
            "bundle",
            "transfer",
            "chunk_size",
            "chunks",
        ]
    )
    return st.dictionaries(keys | st.text(max_size=8), json_values(), max_size=12)


@given(topic=st.sampled_from([STATE, EVENTS, TELEMETRY, XFER]), payload=st.binary(max_size=512))
def test_random_bytes_never_crash_the_decoder(topic: str, payload: bytes) -> None:
    with contextlib.suppress(MessageError):
        decode_inbound(topic, payload)


@given(
    topic=st.sampled_from([STATE, EVENTS, TELEMETRY]),
    document=fields_of_every_type(),
    version=st.sampled_from([1, 1, 1, 2, "1", None]),
    type_name=st.sampled_from(["state", "event", "telemetry", "transfer_request", "cmd"]),
)
def test_random_json_never_crashes_the_decoder(
    topic: str, document: dict[str, Any], version: Any, type_name: str
) -> None:
    payload = json.dumps({**document, "v": version, "type": type_name}).encode()
    try:
        message = decode(topic, payload)
    except MessageError:
        return
    # Whatever is accepted encodes back to a message that decodes to itself.
    assert decode(topic, encode(message)) == message


# -- chunk frames ----------------------------------------------------------------------------


def test_chunk_frames_round_trip() -> None:
    chunk = Chunk(new_id(), 3, 16, b"x" * 1000)
    frame = chunk.encode()
    assert len(frame) == HEADER_SIZE + 1000
    assert frame[:4] == b"EWFR"
    assert frame[36:68] == hashlib.sha256(b"x" * 1000).digest()
    assert decode_chunk(XFER, frame) == chunk


def corrupt(frame: bytes, offset: int) -> bytes:
    return frame[:offset] + bytes([frame[offset] ^ 0xFF]) + frame[offset + 1 :]


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda f: corrupt(f, 0), "not an edgewise frame"),
        (lambda f: corrupt(f, 4), "frame format version 254 is not supported"),
        (lambda f: corrupt(f, 5), "is not a bundle chunk"),
        (lambda f: corrupt(f, HEADER_SIZE + 5), "does not match its SHA-256"),
        (lambda f: f[:-1], "header says 1000 payload bytes, frame has 999"),
        (lambda f: f[:20], "shorter than its header"),
        (lambda f: f + b"\0" * MAX_FRAME_BYTES, "over the limit"),
    ],
)
def test_damaged_frames_are_refused(damage: Any, error: str) -> None:
    frame = Chunk(new_id(), 3, 16, b"x" * 1000).encode()
    with pytest.raises(MessageError, match=error):
        decode_chunk(XFER, damage(frame))


def test_the_transport_imports_only_the_standard_library_and_paho() -> None:
    """The edge agent must stay small: nothing here may pull in numpy, pandas or onnxruntime.

    Checked on the source, over the transport package and the two modules it uses."""
    package = Path(__file__).parents[1] / "python" / "edgewise"
    sources = [
        *(package / "transport").glob("*.py"),
        package / "exceptions.py",
        package / "bundle.py",
    ]
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [str(node.module)]
            elif isinstance(node, ast.ImportFrom) and node.level == 2:
                # _core: the Rust core the agent already profiles with (telemetry frames).
                allowed = ("exceptions", "bundle", "_core")
                assert node.module in allowed, f"{source}: ..{node.module}"
                continue
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "paho" or top in sys.stdlib_module_names, f"{source}: {name}"
