"""Bundle transfer against a real Mosquitto and the embedded broker: windows of chunks, resume
(across a broker restart), hostile chunks."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from mqtt_broker import DELIVERY_TIMEOUT, AnyBroker, Connect

from edgewise.exceptions import TransferError
from edgewise.transport import (
    BundleDownload,
    BundleRef,
    Chunk,
    ChunkServer,
    Connection,
    Kind,
    TransferProgress,
    device_topic,
)
from edgewise.transport.frames import HEADER_SIZE
from edgewise.transport.messages import new_id
from edgewise.transport.progress import PROGRESS

CHUNK_SIZE = 64 * 1024
XFER_A = device_topic("dev-a", Kind.XFER)
RUN_TIMEOUT = 60.0


@pytest.fixture
def broker(any_broker: AnyBroker) -> AnyBroker:
    """Every test here runs against Mosquitto, then against the embedded broker."""
    return any_broker


def make_bundle(directory: Path, length: int, seed: int = 0) -> tuple[Path, BundleRef]:
    data = hashlib.shake_256(seed.to_bytes(4, "big")).digest(length)
    path = directory / f"credit-{seed}.ewb"
    path.write_bytes(data)
    return path, BundleRef("credit", seed, hashlib.sha256(data).hexdigest(), length)


def serve(connect: Connect, files: dict[str, Path]) -> tuple[Connection, ChunkServer]:
    """The control plane's side, resolving bundles by SHA-256."""
    control = connect("control")
    server = ChunkServer(control, lambda ref: files.get(ref.sha256)).start()
    assert control.wait_connected(DELIVERY_TIMEOUT)
    return control, server


def run_in_thread(download: BundleDownload, name: str) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(download.run(RUN_TIMEOUT, name))
        except TransferError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def when_received(
    count: int, action: Callable[[], None]
) -> tuple[threading.Event, Callable[[int, int], None]]:
    """A progress callback that runs `action` once, in the receiver's thread, when `count`
    chunks are stored: no more than the chunks already delivered can be stored after it."""
    reached = threading.Event()

    def on_progress(received: int, total: int) -> None:
        if received >= count and not reached.is_set():
            action()
            reached.set()

    return reached, on_progress


def test_a_megabyte_survives_hostile_chunks_a_broker_restart_and_a_receiver_restart(
    tmp_path: Path, broker: AnyBroker, connect: Connect
) -> None:
    bundle_path, ref = make_bundle(tmp_path, 1_000_003)  # 16 chunks, the last one short
    control, server = serve(connect, {ref.sha256: bundle_path})
    state = tmp_path / "device" / ref.sha256

    # First life of the device: a few windows arrive, then the broker goes away.
    device = connect("dev-a")
    progress = TransferProgress.open(state, ref, CHUNK_SIZE)
    reached, on_progress = when_received(6, broker.stop)
    download = BundleDownload(
        device, "dev-a", progress, window=4, request_timeout=2.0, on_progress=on_progress
    )
    assert device.wait_connected(DELIVERY_TIMEOUT)  # subscribed to xfer
    inject_hostile_chunks(control, progress.transfer, bundle_path, progress.total)
    thread, outcome = run_in_thread(download, "credit.ewb")
    assert reached.wait(DELIVERY_TIMEOUT), "the first chunks never arrived"
    download.cancel()
    thread.join(DELIVERY_TIMEOUT)
    download.close()
    assert isinstance(outcome[0], TransferError) and "cancelled" in str(outcome[0])
    device.stop()
    progress.close()
    assert device.dropped >= 1 and download.rejected >= 2  # the hostile chunks were noticed

    # Second life: a new receiver from the persisted progress, after the broker is back.
    broker.start()
    resumed = TransferProgress.open(state, ref, CHUNK_SIZE)
    assert resumed.transfer == progress.transfer
    assert 6 <= resumed.received < resumed.total
    assert control.wait_connected(DELIVERY_TIMEOUT)
    device = connect("dev-a")
    with BundleDownload(device, "dev-a", resumed, window=4, request_timeout=2.0) as download:
        result = download.run(RUN_TIMEOUT, "credit.ewb")

    assert result.read_bytes() == bundle_path.read_bytes()
    assert not (state / PROGRESS).exists()
    # Resumed, not restarted: far fewer chunks than two full downloads were served.
    assert server.chunks_sent < 2 * progress.total


def inject_hostile_chunks(control: Connection, transfer: str, bundle: Path, total: int) -> None:
    """What a broken or malicious path could deliver on the device's xfer topic."""
    data = bundle.read_bytes()
    first = Chunk(transfer, 0, total, data[:CHUNK_SIZE]).encode()
    bit_flipped = bytearray(Chunk(transfer, 1, total, data[CHUNK_SIZE : 2 * CHUNK_SIZE]).encode())
    bit_flipped[HEADER_SIZE + 100] ^= 1  # the header's hash no longer matches
    frames = [
        first,
        first,  # a duplicate
        bytes(bit_flipped),
        Chunk(transfer, 2, total, data[2 * CHUNK_SIZE : 2 * CHUNK_SIZE + 10]).encode(),  # short
        Chunk(new_id(), 3, total, data[3 * CHUNK_SIZE : 4 * CHUNK_SIZE]).encode(),  # other transfer
        Chunk(transfer, 4, total + 1, data[4 * CHUNK_SIZE : 5 * CHUNK_SIZE]).encode(),  # bad total
    ]
    for frame in frames:
        control.publish(XFER_A, frame).wait_for_publish(DELIVERY_TIMEOUT)


def test_a_well_framed_but_wrong_chunk_fails_the_whole_file_check_and_restarts(
    tmp_path: Path, connect: Connect
) -> None:
    bundle_path, ref = make_bundle(tmp_path, 200_000)  # 4 chunks
    control, _ = serve(connect, {ref.sha256: bundle_path})
    device = connect("dev-a")
    progress = TransferProgress.open(tmp_path / "device", ref, CHUNK_SIZE)
    download = BundleDownload(device, "dev-a", progress, window=8, request_timeout=2.0)
    assert device.wait_connected(DELIVERY_TIMEOUT)
    # Sound frame, right length, wrong bytes: only the whole-file SHA-256 can catch it.
    poisoned = Chunk(progress.transfer, 0, progress.total, b"\0" * CHUNK_SIZE).encode()
    control.publish(XFER_A, poisoned).wait_for_publish(DELIVERY_TIMEOUT)
    first_transfer = progress.transfer
    with pytest.raises(TransferError, match="does not match the request"):
        download.run(RUN_TIMEOUT, "credit.ewb")
    assert progress.transfer != first_transfer and progress.received == 0
    result = download.run(RUN_TIMEOUT, "credit.ewb")  # a fresh transfer id: clean chunks only
    assert result.read_bytes() == bundle_path.read_bytes()


def test_a_bundle_the_control_plane_does_not_have_times_out(
    tmp_path: Path, connect: Connect
) -> None:
    serve(connect, {})
    device = connect("dev-a")
    _, ref = make_bundle(tmp_path, 100_000)
    progress = TransferProgress.open(tmp_path / "device", ref, CHUNK_SIZE)
    download = BundleDownload(device, "dev-a", progress, request_timeout=0.5)
    with progress, pytest.raises(TransferError, match="timed out with 2 of 2 chunks missing"):
        download.run(3.0, "credit.ewb")
    assert download.requests >= 2  # it asked again after each quiet spell


def test_progress_for_another_bundle_is_not_resumed(tmp_path: Path) -> None:
    _, first = make_bundle(tmp_path, 100_000, seed=1)
    _, second = make_bundle(tmp_path, 100_000, seed=2)
    state = tmp_path / "device"
    data = (tmp_path / "credit-1.ewb").read_bytes()
    with TransferProgress.open(state, first, CHUNK_SIZE) as progress:
        progress.accept(Chunk(progress.transfer, 0, progress.total, data[:CHUNK_SIZE]))
    with TransferProgress.open(state, first, CHUNK_SIZE) as progress:
        assert progress.received == 1
    with TransferProgress.open(state, second, CHUNK_SIZE) as progress:
        assert progress.received == 0
    (state / PROGRESS).write_text("{not json")
    with TransferProgress.open(state, second, CHUNK_SIZE) as progress:
        assert progress.received == 0
    assert os.path.getsize(state / "bundle.part") == second.length


def test_windows_and_chunk_sizes_outside_the_protocol_are_refused_up_front(
    tmp_path: Path, connect: Connect
) -> None:
    _, ref = make_bundle(tmp_path, 100_000)
    with pytest.raises(ValueError, match="chunk size must be 1024 to 98304 bytes"):
        TransferProgress.open(tmp_path / "device", ref, 128 * 1024)
    device = connect("dev-a")
    with TransferProgress.open(tmp_path / "device", ref, CHUNK_SIZE) as progress:
        for window in (0, 65):
            with pytest.raises(ValueError, match="window must be 1 to 64 chunks"):
                BundleDownload(device, "dev-a", progress, window=window)
