"""JSON rows exported to the core through the Arrow C Data Interface, without pyarrow."""

from __future__ import annotations

import gc

import pyarrow as pa

from edgewise.agent import arrow_rows
from edgewise.agent.arrow_rows import RowTable


def test_columns_of_every_kind_with_nulls_arrive_intact():
    table = RowTable(
        [
            ("x", "float", [1.5, None, -3.0]),
            ("n", "int", [1, None, 3]),
            ("b", "bool", [True, None, False]),
            ("s", "string", ["é", None, ""]),
        ],
        3,
    )
    batch = table.to_batch()
    assert (batch.num_rows, batch.column_names) == (3, ["x", "n", "b", "s"])
    assert pa.record_batch(batch).to_pydict() == {
        "x": [1.5, None, -3.0],
        "n": [1, None, 3],
        "b": [True, None, False],
        "s": ["é", None, ""],
    }


def test_buffers_are_released_when_the_batch_goes():
    gc.collect()
    alive = len(arrow_rows._alive)
    for _ in range(200):
        batch = RowTable([("x", "float", [0.5] * 64)], 64).to_batch()
        del batch
    gc.collect()
    assert len(arrow_rows._alive) == alive
