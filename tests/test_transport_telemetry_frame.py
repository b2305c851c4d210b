"""Telemetry frames (protocol version 2): round trips, and every way a frame off the network
can be wrong refused with a reason naming the field, one bad frame never failing its batch."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgewise import Profile
from edgewise._core import Batch, TelemetryBatch, merge_profiles
from edgewise.exceptions import MessageError
from edgewise.transport.inbound import decode_inbound
from edgewise.transport.messages import BundleRef, Telemetry, decode, encode
from edgewise.transport.telemetry_frame import (
    MAX_FRAME_BYTES,
    RawTelemetry,
    decode_telemetry,
)
from edgewise.transport.topics import Kind, device_topic

TOPIC = device_topic("dev-a", Kind.TELEMETRY)
BUNDLE = BundleRef("credit", 3, "ab" * 32, 12345)


def small_profile(rows: int = 20, offset: float = 0.0, name: str = "x") -> bytes:
    table = pa.table({name: [offset + i for i in range(rows)], "region": ["n", "s"] * (rows // 2)})
    data = Batch.from_arrow(table.to_batches()[0])
    profile = Profile(data, k=64, threads=1)
    profile.update(data)
    return profile.to_bytes()


INPUTS = small_profile()
OUTPUTS = small_profile(10, name="score")


def message(**changes: object) -> Telemetry:
    fields: dict[str, object] = {
        "id": "w1",
        "ts": 1.5,
        "window_start": 100.0,
        "window_end": 160.0,
        "bundle": BUNDLE,
        "metrics": {"requests": 10.0, "errors": 1.0, "latency_le_1ms": 9.0},
        "profiles": {"inputs": INPUTS, "outputs": OUTPUTS},
    }
    return Telemetry(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_frame_round_trips_and_carries_no_base64() -> None:
    original = message()
    frame = encode(original)
    assert frame.startswith(b"EWTM\x02") and INPUTS in frame and OUTPUTS in frame
    assert decode(TOPIC, frame) == original
    assert decode_telemetry(TOPIC, frame) == original
    assert len(frame) < len(INPUTS) + len(OUTPUTS) + 200  # the header is small
    bare = message(bundle=None, metrics={}, profiles={})
    assert decode(TOPIC, encode(bare)) == bare


names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False)


@given(
    id_=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    start=finite,
    length=st.floats(min_value=0, max_value=1e9),
    bundle=st.none()
    | st.builds(
        BundleRef,
        names,
        st.integers(0, 2**63 - 1),
        st.binary(min_size=32, max_size=32).map(bytes.hex),
        st.integers(0, 2**63 - 1),
    ),
    metrics=st.dictionaries(names, finite, max_size=20),
    roles=st.lists(st.sampled_from(["inputs", "outputs", "extra"]), unique=True),
)
def test_any_window_round_trips(id_, start, length, bundle, metrics, roles) -> None:
    end = start + length
    if end == float("inf"):
        return
    original = message(
        id=id_,
        window_start=start,
        window_end=end,
        bundle=bundle,
        metrics=metrics,
        profiles={role: INPUTS for role in roles},
    )
    assert decode(TOPIC, encode(original)) == original


def test_every_truncation_is_refused_naming_what_was_cut() -> None:
    frame = encode(message())
    for cut in range(len(frame)):
        with pytest.raises(MessageError, match=rf"^{TOPIC}: .*(truncated|magic)"):
            decode(TOPIC, frame[:cut])


def _replace(frame: bytes, old: bytes, new: bytes) -> bytes:
    assert frame.count(old) == 1
    return frame.replace(old, new)


F64 = struct.Struct("<d")
DAMAGE: list[tuple[Callable[[bytes], bytes], str]] = [
    (lambda f: b"EWTX" + f[4:], "not an edgewise telemetry frame"),
    (lambda f: f[:4] + b"\x03" + f[5:], "frame version 3 is not supported"),
    (lambda f: f + b"\x00", "1 unexpected bytes after the telemetry frame"),
    (lambda f: _replace(f, b"\x02w1", b"\x02w "), "field 'id' has an invalid value"),
    (
        lambda f: _replace(f, F64.pack(160.0), F64.pack(50.0)),
        r"field 'window_end' 50 is before window_start 100",
    ),
    (lambda f: _replace(f, F64.pack(1.5), F64.pack(float("nan"))), "field 'ts' must be finite"),
    (
        lambda f: _replace(f, b"1ms" + F64.pack(9.0), b"1ms" + F64.pack(float("inf"))),
        r"field 'metrics\.latency_le_1ms' must be finite",
    ),
    (lambda f: _replace(f, b"\x06credit", b"\x06cr/dit"), "field 'bundle.name' has an invalid"),
]


@pytest.mark.parametrize(("damage", "error"), DAMAGE)
def test_damaged_frames_are_refused_with_the_field_named(
    damage: Callable[[bytes], bytes], error: str
) -> None:
    with pytest.raises(MessageError, match=rf"^{TOPIC}: .*{error}"):
        decode(TOPIC, damage(encode(message())))


def test_duplicates_and_too_many_items_are_refused() -> None:
    same = encode(message(metrics={"requests": 1.0, "requestz": 2.0}))
    with pytest.raises(MessageError, match=r"field 'metrics\.requests' appears twice"):
        decode(TOPIC, _replace(same, b"requestz", b"requests"))
    many = encode(message(metrics={f"m{i}": 1.0 for i in range(129)}))
    with pytest.raises(MessageError, match="field 'metrics' has 129 items, at most 128"):
        decode(TOPIC, many)


def test_oversize_frames_are_refused_before_decoding() -> None:
    with pytest.raises(MessageError, match=f"over the limit of {MAX_FRAME_BYTES}"):
        encode(message(profiles={"inputs": b"\x00" * MAX_FRAME_BYTES}))
    with pytest.raises(MessageError, match=rf"^{TOPIC}: .*over the limit of {MAX_FRAME_BYTES}"):
        decode_inbound(TOPIC, b"EWTM\x02" + b"\x00" * MAX_FRAME_BYTES)


def test_old_json_telemetry_is_refused_by_name_on_the_network_thread() -> None:
    with pytest.raises(MessageError, match=r"JSON telemetry .* upgrade the device"):
        decode_inbound(TOPIC, b'{"v": 1, "type": "telemetry"}')
    inbound = decode_inbound(TOPIC, encode(message()))
    assert inbound.body == RawTelemetry(encode(message())) and inbound.device == "dev-a"
    assert inbound.body.decode(TOPIC) == message()


def test_a_corrupt_profile_is_left_out_and_named_the_window_kept() -> None:
    broken = INPUTS[: len(INPUTS) // 2]
    frame = encode(message(profiles={"inputs": broken, "outputs": OUTPUTS}))
    assert decode(TOPIC, frame).profiles == {"outputs": OUTPUTS}
    [fields] = TelemetryBatch([frame]).windows()
    assert not isinstance(fields, str)
    assert fields[6] == ["outputs"]
    [(role, reason)] = fields[7]
    assert role == "inputs" and reason.startswith("not a valid profile: ")


def test_a_bad_frame_in_the_middle_of_a_batch_fails_only_itself() -> None:
    good = [
        encode(message(id=f"w{i}", profiles={"inputs": small_profile(20, i)})) for i in range(4)
    ]
    batch = TelemetryBatch([good[0], good[1], b"EWTM\x02\x05short", good[2], good[3]], threads=1)
    windows = batch.windows()
    assert isinstance(windows[2], str) and "truncated" in windows[2]
    assert [w[0] for w in windows if not isinstance(w, str)] == ["w0", "w1", "w2", "w3"]
    (merged, skipped), (alone, _) = batch.merge([[0, 1, 2, 3], [4]])
    assert skipped == 0 and set(merged) == {"inputs"}
    expected = Profile.merge_all([Profile.from_bytes(small_profile(20, i)) for i in range(3)])
    assert Profile.from_bytes(merged["inputs"]).summary() == expected.summary()
    assert Profile.from_bytes(alone["inputs"]).rows == 20
    # Profiles are taken by the first group that names them.
    assert batch.merge([[0]]) == [({}, 0)]


def test_merging_skips_unreadable_and_unlike_profiles_by_count() -> None:
    other_columns = small_profile(20, name="y")
    [(merged, skipped), (nothing, zero)] = merge_profiles(
        [[INPUTS, b"garbage", other_columns, small_profile(20, 5.0)], []]
    )
    assert skipped == 2 and (nothing, zero) == (None, 0)
    assert merged is not None and Profile.from_bytes(merged).rows == 40
