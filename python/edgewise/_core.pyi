"""edgewise's Rust core. Users import from `edgewise`; these are its building blocks."""

import os
from collections.abc import Sequence
from typing import Any, TypeAlias, final

import numpy as np
import numpy.typing as npt

__version__: str

#: A decoded telemetry frame's fields as `TelemetryBatch.windows` gives them: id, ts,
#: window_start, window_end, bundle (name, version, sha256 hex, length) or None, metrics, the
#: roles whose profiles parsed, and (role, reason) of those that did not.
WindowFields: TypeAlias = tuple[
    str,
    float,
    float,
    float,
    tuple[str, int, str, int] | None,
    dict[str, float],
    list[str],
    list[tuple[str, str]],
]

@final
class Batch:
    """An Arrow record batch owned by the core; readable by any Arrow consumer."""

    @staticmethod
    def from_arrow(data: Any) -> Batch:
        """Import any object with `__arrow_c_stream__` or `__arrow_c_array__` as one batch."""
    @property
    def num_rows(self) -> int: ...
    @property
    def column_names(self) -> list[str]: ...
    def select(self, names: list[str]) -> Batch:
        """The columns named, in that order."""
    def slice(self, offset: int, length: int) -> Batch:
        """`length` rows from `offset` on, sharing this batch's buffers."""
    def append_columns(self, others: list[Batch]) -> Batch:
        """This batch with the columns of `others` after its own, in order (no copy)."""
    def column(self, name: str) -> npt.NDArray[Any]:
        """One column as a numpy array (float64, float32, int64, bool, or str objects)."""
    def filter(self, mask: npt.NDArray[np.bool_]) -> Batch:
        """The rows where `mask` is true."""
    def with_columns(
        self,
        columns: Sequence[
            tuple[
                str,
                npt.NDArray[Any] | list[int] | list[str] | list[str | None] | str | int | float,
            ]
        ],
    ) -> Batch:
        """This batch with columns appended: 1-D numpy arrays (float32/64, int64, bool or str
        objects), lists of int or of str, or a str / int / float repeated on every row."""
    def __len__(self) -> int: ...
    def __arrow_c_schema__(self) -> object: ...
    def __arrow_c_array__(
        self, requested_schema: object | None = None
    ) -> tuple[object, object]: ...

@final
class ParquetFile:
    """A Parquet file whose footer has been read; row groups are read in parallel."""

    def __new__(cls, path: str | os.PathLike[str], threads: int | None = None) -> ParquetFile: ...
    @property
    def path(self) -> str: ...
    @property
    def num_rows(self) -> int: ...
    @property
    def row_group_rows(self) -> list[int]:
        """Rows in each row group, in file order."""
    def column_kinds(self) -> list[tuple[str, str]]:
        """(column, kind) with kind one of float, int, bool, string, temporal, null, other."""
    def read(self, row_groups: list[int], columns: list[str], dictionary: list[str] = ...) -> Batch:
        """The given row groups and columns (in the order given) as one batch; string columns
        named in `dictionary` come back dictionary-encoded."""

@final
class ParquetWriter:
    """Streams batches into a Parquet file, one row group per batch, its columns encoded on
    `threads` threads (default: one per core); `close` writes the footer and fsyncs."""

    def __new__(
        cls, path: str | os.PathLike[str], compression: str = "zstd", threads: int | None = None
    ) -> ParquetWriter: ...
    def write(self, batch: Batch) -> None: ...
    def close(self) -> int:
        """Finish the file; returns its size in bytes."""

@final
class InputLayout:
    """How a model's input tensors are built from columns, and which rows it can score."""

    def __new__(
        cls,
        inputs: list[tuple[str, str, list[str]]],
        rules: list[tuple[str, bool, list[str] | None]],
    ) -> InputLayout: ...
    @property
    def columns(self) -> list[str]: ...
    def prepare(
        self, batch: Batch, source: str = "input"
    ) -> tuple[dict[str, npt.NDArray[Any]], RowVerdicts]:
        """Validate rows and build tensors of the accepted ones: (tensors, verdicts)."""
    def check_rows(self, batch: Batch, source: str = "input") -> RowVerdicts:
        """Validate rows only."""

@final
class RowVerdicts:
    """Which rows of a batch the model scores, and why the others are refused."""

    @property
    def rows(self) -> int: ...
    @property
    def accepted_rows(self) -> int:
        """How many rows the model scores."""
    @property
    def rejected_rows(self) -> list[int]:
        """Indices of the refused rows, in order."""
    @property
    def reasons(self) -> list[str]:
        """Why each refused row was refused, in the order of `rejected_rows`."""
    def accepted(self, batch: Batch) -> Batch:
        """The accepted rows of `batch` (the batch judged, or a projection of it)."""
    def rejected(self, batch: Batch) -> Batch:
        """The refused rows of `batch`, in order."""

@final
class Plan:
    """An ONNX graph compiled for the native engine."""

    def __new__(
        cls, model: bytes, inputs: list[tuple[str, str, list[str]]] | None = None, fuse: bool = True
    ) -> Plan:
        """Raises UnsupportedModelError naming every node outside the engine's operators.
        `fuse=False` runs one kernel per node instead of fusing linear pipelines and the
        feature matrices of tree ensembles."""
    @staticmethod
    def unsupported(model: bytes) -> list[str]:
        """Why the native engine cannot run `model`; empty when it can."""
    @property
    def input_names(self) -> list[str]: ...
    @property
    def output_names(self) -> list[str]: ...
    @property
    def fused(self) -> list[str]:
        """The chains of nodes that run as one fused kernel, one description each."""
    def run_tensors(self, tensors: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        """Run on numpy arrays keyed by graph input name, like onnxruntime's session.run."""
    def run(self, batch: Batch, threads: int | None = None) -> dict[str, npt.NDArray[Any]]:
        """Run on an Arrow batch, in parallel over blocks of rows."""
    def score(
        self, batch: Batch, columns: list[tuple[str, str, int | None]], threads: int | None = None
    ) -> Batch:
        """Run on an Arrow batch and return the score columns: `columns` lists (column name,
        graph output, column of a 2-D output or None). No numpy array is made."""

@final
class Profile:
    """A mergeable profile of a table's columns: counts, nulls, NaN and infinities, moments,
    KLL quantiles, HLL distinct counts and frequent categories."""

    def __new__(
        cls, batch: Batch, k: int = 200, sensitive: list[str] = ..., threads: int | None = None
    ) -> Profile:
        """An empty profile of the columns of `batch` (its rows are not added): quantile sketches
        of accuracy `k`, and no raw values kept for the `sensitive` columns."""
    def update(self, batch: Batch) -> None:
        """Add the rows of `batch` (which has at least this profile's columns)."""
    def update_parquet(self, file: ParquetFile, columns: list[str], dictionary: list[str]) -> None:
        """Add every row group of `file` (its `columns`, the `dictionary` string columns read
        as Arrow dictionaries): each of the file's threads profiles every n-th row group into a
        part of its own, and the parts are merged at the end."""
    def merge(self, other: Profile) -> Profile:
        """A new profile of both profiles' rows; the columns must be the same."""
    @staticmethod
    def merge_all(profiles: Sequence[Profile], threads: int | None = None) -> Profile:
        """One profile of all the profiles' rows (the same columns in each): as merging them
        one by one, but each column's distinct counts are combined in one union, which makes
        merging many small profiles much faster. ValueError for an empty sequence."""
    def to_bytes(self) -> bytes: ...
    @staticmethod
    def from_bytes(data: bytes, threads: int | None = None) -> Profile:
        """Read a profile back; raises `ProfileFormatError` for bytes that are not one."""
    @property
    def rows(self) -> int: ...
    @property
    def k(self) -> int: ...
    @property
    def column_names(self) -> list[str]: ...
    def column_sizes(self) -> list[tuple[str, int]]:
        """Bytes each column takes in `to_bytes`."""
    def quantiles(self, column: str, fractions: list[float]) -> list[float | None]:
        """Values at the given fractions of a numeric column (None if it has no finite values
        or is sensitive)."""
    def summary(self) -> list[dict[str, Any]]:
        """Each column's statistics."""

def drift_exact_numeric(
    reference: npt.NDArray[np.float64], current: npt.NDArray[np.float64], bins: int = 10
) -> dict[str, float]:
    """Every numeric drift metric between two samples, computed on all their values.

    NaN and infinities are dropped and counted (`reference_missing`, `current_missing`); the
    values compared are `reference_count` and `current_count`. Metrics: `ks`, the two-sample
    Kolmogorov-Smirnov statistic, and `ks_band` (0 here, exact); `wasserstein`, and
    `wasserstein_normed` over max(reference std, 0.001) as Evidently reports it;
    `psi_evidently` and `js_evidently` on Evidently's bins; `psi_quantile` and `js_quantile` on
    `bins` equal-mass bins of the reference, open at both ends; `js_nannyml` on NannyML's bins.
    Jensen-Shannon distances are in nats, except NannyML's in bits. Raises ValueError when a
    side has no value left.
    """

def drift_exact_categorical(
    reference: Sequence[str | float | None] | npt.NDArray[np.object_],
    current: Sequence[str | float | None] | npt.NDArray[np.object_],
) -> dict[str, Any]:
    """Every categorical drift metric between two samples of str; None and NaN are missing.

    Keys: `reference_count`, `reference_missing`, `current_count`, `current_missing`,
    `categories` (seen in either), `linf` (largest difference in a category's share), `chi2`
    (a dict: `statistic`, `dof`, `p_value` as scipy's `chi2_contingency` with its default Yates
    correction for two categories, and `cramers_v` from the uncorrected statistic), `psi` and
    `js` (nats) over the categories.
    """

def drift_profiles(
    reference: Profile,
    current: Profile,
    numeric_threshold: float = 0.1,
    categorical_threshold: float = 0.05,
    significance: float = 0.001,
) -> list[dict[str, Any]]:
    """Each column of either profile compared: name, kind, method, score, threshold, drifted,
    metrics and distribution (for plots)."""

def infer_schema(profile: Profile, margin: float = 0.0) -> list[dict[str, Any]]:
    """Each column of `profile` as a schema column: a dict of name, kind, nullable,
    max_null_fraction, range (min, max) or None, allow_nan, allow_positive_infinity,
    allow_negative_infinity, domain (list of str) or None, and comment. Numeric ranges are
    widened by `margin` times their width on each side; dates are in days, timestamps in their
    unit since the epoch. Raises ValueError for a margin that is negative or not finite."""

@final
class Validator:
    """Checks batches against schema columns (dicts as `infer_schema` returns them) in one
    streaming pass, their columns in parallel on `threads` threads (default: one per core)."""

    def __new__(cls, columns: list[dict[str, Any]], threads: int | None = None) -> Validator:
        """Raises ValueError for contradicting rules or a column listed twice."""
    def update(self, batch: Batch) -> None:
        """Check the rows of `batch`, which follow those of the batches before it."""
    @property
    def rows(self) -> int: ...
    def anomalies(self) -> list[dict[str, Any]]:
        """Each rule broken so far: column, type, severity ("error" or "warning"), count,
        share (of all rows), first_row, examples (up to 5 distinct values as str) and found
        (the kind in the data, for a wrong type)."""

#: The largest telemetry frame decoded (bytes).
TELEMETRY_MAX_BYTES: int

@final
class TelemetryBatch:
    """A batch of raw telemetry frames (transport/telemetry_frame.py), decoded and checked and
    their profiles parsed without the GIL; a bad frame is refused by itself."""

    def __new__(cls, payloads: Sequence[bytes], threads: int | None = None) -> TelemetryBatch: ...
    def __len__(self) -> int: ...
    def windows(self) -> list[WindowFields | str]:
        """Per payload: `(id, ts, window_start, window_end, bundle, metrics, roles, corrupt)`
        (bundle `(name, version, sha256 hex, length)` or None; roles whose profiles parsed;
        `(role, reason)` of those that did not), or why the payload was refused."""

    def rows(
        self, devices: Sequence[str], max_integer: int
    ) -> tuple[
        list[tuple[str, str, str, int, float, float, int, int, str, int]],
        list[tuple[int, str, str]],
        int,
        list[tuple[str, str, str, str]],
    ]:
        """The store's rows of the batch, `devices[i]` the sender of frame `i`: `(rows,
        refused, unattributed, corrupt)`. Rows: `telemetry_windows`' columns (device, message
        key, bundle name, version, start, end, count, errors, latency JSON) then the frame's
        index, the first of each message key only; refused `(index, device, reason)`: frames
        that did not decode or whose version or counters fall outside [0, `max_integer`];
        unattributed: windows of no bundle; corrupt `(device, message id, role, reason)`."""

    def totals(
        self, groups: Sequence[Sequence[int]]
    ) -> list[tuple[float, float, float, dict[str, float], int]]:
        """Per group of frame indices: requests, rows, errors and latency buckets summed, and
        how many of their profiles were unreadable."""

    def payload(self, index: int) -> bytes:
        """Payload `index` as received."""

    def sections(self, index: int) -> dict[str, bytes]:
        """The raw profile bytes of payload `index` by role (none for a refused payload)."""

    def merge(self, groups: Sequence[Sequence[int]]) -> list[tuple[dict[str, bytes], int]]:
        """Per group of payload indices: their profiles merged per role, and how many were
        skipped (columns unlike the first one's). A payload's profiles are taken by the first
        group that names it."""

@final
class TelemetryDelivery:
    """One batch a `TelemetrySubscriber` received: acknowledge it with `commit` once stored."""

    @property
    def devices(self) -> list[str]:
        """The device of each frame, from its topic."""
    @property
    def frames(self) -> TelemetryBatch:
        """The frames, decoded, in the order of `devices`."""
    @property
    def refused(self) -> list[tuple[str, str]]:
        """`(topic, reason)` of the messages whose topic named no valid device."""
    def __len__(self) -> int: ...

@final
class TelemetrySubscriber:
    """An MQTT session of its own (persistent, QoS 1, manual acks) on a Rust thread, subscribed
    to every device's telemetry topic. Messages are acknowledged only by `commit`, so those not
    committed are redelivered by the broker. A full queue (`queue` messages, plus two batches
    being decoded or waiting) stops the reading.
    TLS uses the system's OpenSSL (`tls=True`: the system's CAs; `ca_file`: that CA)."""

    def __new__(
        cls,
        host: str,
        port: int,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: str | os.PathLike[str] | None = None,
        keepalive: float = 30.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        queue: int = 10_000,
        batch_size: int = 1000,
        batch_wait: float = 0.05,
        threads: int | None = None,
    ) -> TelemetrySubscriber: ...
    def next_batch(self, timeout: float = 0.1) -> TelemetryDelivery | None:
        """The next batch (up to `batch_size` messages, closed `batch_wait` seconds after its
        first), decoded ahead on the core's thread pool while the previous one is stored; waits
        up to `timeout` seconds, None if none came."""
    def commit(self, delivery: TelemetryDelivery) -> int:
        """Acknowledges the delivery's messages to the broker (once it is stored); how many
        were acknowledged (those of an earlier connection are redelivered instead)."""
    def stop(self) -> None:
        """Disconnects and ends the session's thread; what was not committed stays queued."""
    @property
    def connected(self) -> bool:
        """Whether the session is connected and subscribed."""
    @property
    def pending(self) -> int:
        """Messages received and not yet batched (at most `queue`)."""
    @property
    def connections(self) -> int:
        """How many times the session has connected."""
    @property
    def last_error(self) -> str | None: ...

def merge_profiles(
    groups: Sequence[Sequence[bytes]], threads: int | None = None
) -> list[tuple[bytes | None, int]]:
    """Per group of serialized profiles: one profile of them all (None if none was usable) and
    how many were skipped (unreadable, or columns unlike the first readable one's)."""
