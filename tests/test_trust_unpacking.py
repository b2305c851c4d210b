"""Hostile tar files: the bundle reader refuses them from the headers, before reading content,
and never writes anything to disk, so no path in a tar can land outside anything."""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from edgewise import Bundle, BundleError
from edgewise.bundle import MEMBER_LIMITS, read_manifest


def tar_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = link
    return info, data


def manifest_of(bundle: Bundle) -> tuple[tarfile.TarInfo, bytes]:
    with tarfile.open(fileobj=io.BytesIO(bundle.to_bytes())) as tar:
        info = tar.getmember("manifest.json")
        return member("manifest.json", tar.extractfile(info).read())  # type: ignore[union-attr]


def refused(data: bytes, tmp_path: Path, match: str) -> None:
    """Both readers (the whole bundle, and the manifest-only read before verification) refuse."""
    with pytest.raises(BundleError, match=match):
        Bundle.from_bytes(data)
    path = tmp_path / "hostile.ewb"
    path.write_bytes(data)
    with pytest.raises(BundleError, match=match):
        read_manifest(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.ewb"]  # nothing extracted


@pytest.mark.parametrize(
    "name", ["../evil.sh", "/etc/cron.d/evil", "model.onnx/../../evil", "./manifest.json"]
)
def test_zip_slip_paths_are_refused(bundle, tmp_path, name):
    refused(tar_of(member(name, b"x"), manifest_of(bundle)), tmp_path, "unexpected member")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE], ids=["symlink", "hardlink"])
def test_links_are_refused(bundle, tmp_path, kind):
    link = member("manifest.json", kind=kind, link="/etc/passwd")
    refused(tar_of(link), tmp_path, r"'manifest\.json' is not a regular file")


@pytest.mark.parametrize(
    "kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE], ids=["char", "block", "fifo"]
)
def test_device_files_are_refused(bundle, tmp_path, kind):
    device = member("model.onnx", kind=kind)
    device[0].devmajor, device[0].devminor = 1, 5  # /dev/zero
    refused(tar_of(manifest_of(bundle), device), tmp_path, r"'model\.onnx' is not a regular file")


def test_gzip_decompression_bomb_is_never_decompressed(bundle, tmp_path):
    # 1 GiB of zeros in about 1 MiB: a reader that decompressed it would fill memory.
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as compressed:
        header = tar_of(member("model.onnx", b""))[:512]  # a plausible tar header first
        compressed.write(header)
        zeros = bytes(1 << 20)
        for _ in range(1024):
            compressed.write(zeros)
    bomb = raw.getvalue()
    assert len(bomb) < 8 << 20
    refused(bomb, tmp_path, r"gzip-compressed archive; bundles are plain tar files")


def test_sparse_member_bomb_is_refused(bundle, tmp_path):
    # GNU tar stores a sparse file as its data runs: a 1.5 GiB model.onnx in a few KiB, under
    # the model size cap, that would expand in memory when read.
    source = tmp_path / "src"
    source.mkdir()
    (source / "manifest.json").write_bytes(manifest_of(bundle)[1])
    with (source / "model.onnx").open("wb") as handle:
        handle.truncate(3 << 29)
    archive = tmp_path / "sparse.tar"
    subprocess.run(
        [
            "tar",
            "--sparse",
            "--format=gnu",
            "-cf",
            str(archive),
            "-C",
            str(source),
            "manifest.json",
            "model.onnx",
        ],
        check=True,
    )
    data = archive.read_bytes()
    assert len(data) < 1 << 20 and MEMBER_LIMITS["model.onnx"] > (3 << 29)
    for path in source.iterdir():
        path.unlink()
    source.rmdir()
    archive.unlink()
    refused(data, tmp_path, r"'model\.onnx' is a sparse file")


def test_oversized_member_is_refused_from_its_header(bundle, tmp_path):
    # The header claims more than the cap; the content is never read (it is not even there).
    manifest, data = manifest_of(bundle)
    info, _ = member("health.parquet")
    info.size = MEMBER_LIMITS["health.parquet"] + 1
    first = manifest.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)
    archive = first + info.tobuf(tarfile.USTAR_FORMAT) + bytes(1024)
    refused(archive, tmp_path, r"'health\.parquet' is \d+ bytes, over the limit")


def test_a_file_longer_than_any_bundle_is_not_read_whole(tmp_path, monkeypatch):
    import edgewise.bundle

    monkeypatch.setattr(edgewise.bundle, "MAX_BUNDLE_BYTES", 1024)
    path = tmp_path / "huge.ewb"
    path.write_bytes(bytes(4096))
    with pytest.raises(BundleError, match=r"huge\.ewb: longer than the limit of 1024 bytes"):
        Bundle.read(path)
