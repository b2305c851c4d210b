"""Helpers the agent tests share: bundle references, and bundles that are signed but wrong."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from edgewise import Bundle
from edgewise.transport import BundleRef


def ref_of(path: Path) -> BundleRef:
    data = path.read_bytes()
    bundle = Bundle.from_bytes(data)
    return BundleRef(bundle.name, bundle.version, hashlib.sha256(data).hexdigest(), len(data))


def with_wrong_expectations(bundle: Bundle, version: int) -> Bundle:
    """A bundle whose health sample expects other scores than its model gives: what a broken
    conversion would ship. Its signatures can still be good."""
    table = pq.read_table(io.BytesIO(bundle.health))
    column = next(name for name in table.column_names if name.startswith("expected_"))
    index = table.column_names.index(column)
    table = table.set_column(index, column, pc.add(table[column], 0.25))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    manifest = {k: v for k, v in bundle.manifest.items() if k != "files"}
    manifest["version"] = version
    return Bundle.create(manifest, bundle.model, sink.getvalue(), bundle.reference)
