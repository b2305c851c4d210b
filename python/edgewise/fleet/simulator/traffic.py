"""What a simulated device scores: rows drawn from its bundle's health sample, one window at a
time, profiled as the agent profiles what its inference server answers.

Each device has its own random generator (seeded by its index, so runs repeat), and a drifted
device adds a shift to one input column of every row it scores: the profiles it reports then
move away from the bundle's reference profile, as a sensor that drifts would make them move.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..._core import Batch
from ...agent.telemetry import Window, window_message
from ...exceptions import ConfigError
from ...transport.messages import Telemetry

if TYPE_CHECKING:
    import pyarrow as pa

    from .device import SimulatedDevice
    from .shared import SharedBundles

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drift:
    """`fraction` of the devices add `shift` to input column `column`."""

    fraction: float
    column: str
    shift: float

    @classmethod
    def parse(cls, text: str) -> Drift:
        """FRACTION:COLUMN:SHIFT, e.g. ``0.2:income:15000``."""
        parts = text.split(":")
        try:
            fraction, column, shift = float(parts[0]), parts[1], float(parts[2])
            if len(parts) != 3 or not column:
                raise ValueError(text)
        except (ValueError, IndexError):
            raise ConfigError(
                f"drift {text!r}: expected FRACTION:COLUMN:SHIFT, e.g. 0.2:income:15000"
            ) from None
        if not 0.0 <= fraction <= 1.0:
            raise ConfigError(f"drift {text!r}: the fraction must be between 0 and 1")
        return cls(fraction, column, shift)


class Traffic:
    def __init__(self, seed: int, rows: int, drift: Drift | None) -> None:
        self.rows = rows
        self.drift = drift
        self._random = np.random.default_rng(seed)
        self._warned = False

    def window(
        self, device: SimulatedDevice, start: float, end: float, bundles: SharedBundles
    ) -> Telemetry:
        """The telemetry of one window of `device` that began at `start`."""
        bundle, model = device.active, device.model
        window = Window(bundle, start)
        if bundle is not None and model is not None and self.rows > 0:
            table = bundles.sample(bundle, [column.name for column in model.schema.columns])
            inputs = Batch.from_arrow(self._drifted(self._draw(table), device.device))
            started = time.perf_counter()
            scored = model.score(inputs, f"{device.device}: simulated rows")
            elapsed = time.perf_counter() - started
            rejected = len(scored.rejected_rows) > 0
            outputs = None if rejected else scored.scores
            window.observe(inputs, outputs, elapsed)
        # Process CPU and memory are the simulator's, not a device's: not reported.
        return window_message(window, end, {})

    def _draw(self, table: pa.Table) -> pa.Table:
        return table.take(self._random.integers(0, table.num_rows, self.rows))

    def _drifted(self, table: pa.Table, device: str) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.drift is None:
            return table
        column = self.drift.column
        kind = table.schema.field(column).type if column in table.column_names else None
        if kind is None or not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            if not self._warned:
                self._warned = True
                log.warning("%s: drift column %r is not a numeric input", device, column)
            return table
        shifted = pc.add(table[column].cast(pa.float64()), self.drift.shift)
        if pa.types.is_integer(kind):  # a count shifted by a fraction stays a count
            shifted = pc.round(shifted)
        index = table.column_names.index(column)
        return table.set_column(index, column, shifted.cast(kind))
