"""`Model`: a compiled model loaded for scoring, from a bundle or a bare ONNX file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._core import Batch, InputLayout, Profile, RowVerdicts
from .bundle import Bundle, sha256_hex
from .engines import EngineChoice, load_engine
from .exceptions import BundleError, DataError, ModelError
from .schema import Column, InputSchema

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Outputs:
    """How the graph's output tensors become named score columns."""

    task: str  # "classification" or "regression"
    classes: list[Any] | None = None
    label_output: str | None = None
    probability_output: str | None = None
    prediction_output: str | None = None

    @property
    def columns(self) -> list[str]:
        if self.task == "regression":
            return ["prediction"]
        assert self.classes is not None
        return ["label", *(f"proba_{c}" for c in self.classes)]

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}

    def column_sources(self) -> list[tuple[str, str, int | None]]:
        """Where each score column comes from: (column, graph output, column of a 2-D output)."""
        if self.task == "regression":
            assert self.prediction_output is not None
            return [("prediction", self.prediction_output, None)]
        assert self.label_output and self.probability_output and self.classes is not None
        return [("label", self.label_output, None)] + [
            (f"proba_{c}", self.probability_output, i) for i, c in enumerate(self.classes)
        ]

    def score_columns(self, results: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        """The named 1-D columns of one run's numpy results (onnxruntime's)."""
        import numpy as np  # only onnxruntime's results are numpy: `edgewise score` skips it

        if self.task == "regression":
            assert self.prediction_output is not None
            values = results[self.prediction_output].reshape(-1).astype(np.float64, copy=False)
            return [("prediction", values)]
        assert self.label_output and self.probability_output and self.classes is not None
        labels = results[self.label_output].reshape(-1)
        # copy=False: the engines' arrays are already int64 / float64 and nothing else holds
        # them, so they become the score columns as they are (a copy is 8 bytes a row each).
        if labels.dtype.kind in "iub":
            labels = labels.astype(np.int64, copy=False)
        probabilities = results[self.probability_output].astype(np.float64, copy=False)
        columns = [("label", labels)]
        columns += [(f"proba_{c}", probabilities[:, i]) for i, c in enumerate(self.classes)]
        return columns

    def empty_columns(self) -> list[tuple[str, np.ndarray]]:
        """Zero-row score columns with the types a real run produces."""
        import numpy as np

        columns = []
        for name in self.columns:
            if name == "label":
                classes = np.asarray(self.classes)
                dtype = np.int64 if classes.dtype.kind in "iub" else object
                columns.append((name, np.empty(0, dtype=dtype)))
            else:
                columns.append((name, np.empty(0, dtype=np.float64)))
        return columns


@dataclass(frozen=True)
class ScoredBatch:
    """One batch through a model: scores of the accepted rows, and why the rest were not."""

    #: The score columns, one row per accepted row.
    scores: Batch
    verdicts: RowVerdicts

    @property
    def rejected_rows(self) -> list[int]:
        return self.verdicts.rejected_rows

    @property
    def reasons(self) -> list[str]:
        return self.verdicts.reasons

    @property
    def columns(self) -> list[tuple[str, np.ndarray]]:
        """The score columns as numpy arrays (copies), for callers that compute on them."""
        return [(name, self.scores.column(name)) for name in self.scores.column_names]


class Model:
    """A model ready to score Arrow data: input layout, engine and output mapping."""

    def __init__(
        self,
        *,
        name: str,
        version: int,
        schema: InputSchema,
        inputs: list[tuple[str, str, list[str]]],
        outputs: Outputs,
        onnx_model: bytes,
        threads: int | None = None,
        manifest: dict[str, Any] | None = None,
        engine: EngineChoice = "auto",
        reference: Profile | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.schema = schema
        self.outputs = outputs
        self.manifest = manifest or {}
        #: The training data's profile, when the bundle has one: what drift is measured against.
        self.reference = reference
        self.sha256 = sha256_hex(onnx_model)
        self.layout = InputLayout(inputs, [c.rule() for c in schema.columns])
        self.engine, self.engine_reason = load_engine(engine, onnx_model, inputs, outputs, threads)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        engine: EngineChoice = "auto",
    ) -> Model:
        """Load a bundle (`.ewb`) or a bare ONNX file (`.onnx`) to run on `engine`."""
        path = Path(path)
        if path.suffix == ".onnx":
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ModelError(f"{path}: cannot read: {exc.strerror}") from exc
            return cls.from_onnx(data, name=path.stem, threads=threads, engine=engine)
        return cls.from_bundle(Bundle.read(path), threads=threads, engine=engine)

    @classmethod
    def from_bundle(
        cls, bundle: Bundle, *, threads: int | None = None, engine: EngineChoice = "auto"
    ) -> Model:
        manifest = bundle.manifest
        try:
            inputs = [(i["name"], i["type"], list(i["columns"])) for i in manifest["inputs"]]
            outputs = Outputs(**manifest["outputs"])
        except (KeyError, TypeError) as exc:
            raise BundleError(f"bundle {bundle.name}: malformed inputs or outputs: {exc}") from exc
        return cls(
            name=bundle.name,
            version=bundle.version,
            schema=InputSchema.from_json(manifest["schema"]),
            inputs=inputs,
            outputs=outputs,
            onnx_model=bundle.model,
            threads=threads,
            manifest=manifest,
            engine=engine,
            reference=None if bundle.reference is None else Profile.from_bytes(bundle.reference),
        )

    @classmethod
    def from_onnx(
        cls,
        data: bytes,
        *,
        name: str,
        threads: int | None = None,
        engine: EngineChoice = "auto",
    ) -> Model:
        """A bare ONNX graph: each input of shape [N, 1] reads the column of its own name."""
        import onnx  # only bare graphs need it; keeps `edgewise score` start-up short

        tensor_types = {
            onnx.TensorProto.FLOAT: "float32",
            onnx.TensorProto.DOUBLE: "float64",
            onnx.TensorProto.INT64: "int64",
            onnx.TensorProto.STRING: "string",
        }
        try:
            graph = onnx.load_model_from_string(data).graph
        except Exception as exc:  # onnx raises protobuf's DecodeError and others
            raise ModelError(f"{name}: not an ONNX model: {exc}") from exc
        inputs = []
        columns = []
        for tensor in graph.input:
            element = tensor.type.tensor_type.elem_type
            dims = tensor.type.tensor_type.shape.dim
            if element not in tensor_types or len(dims) != 2 or dims[1].dim_value != 1:
                raise ModelError(
                    f"{name}: input {tensor.name!r} is not a [N, 1] column of a supported type; "
                    "compile the pipeline with `edgewise compile` to get a bundle"
                )
            tensor_type = tensor_types[element]
            inputs.append((tensor.name, tensor_type, [tensor.name]))
            kind = "string" if tensor_type == "string" else "float"
            columns.append(Column(tensor.name, kind, nullable=True, accepts_missing=True))
        return cls(
            name=name,
            version=0,
            schema=InputSchema(columns),
            inputs=inputs,
            outputs=_outputs_of_graph(graph, name),
            onnx_model=data,
            threads=threads,
            engine=engine,
        )

    @property
    def output_columns(self) -> list[str]:
        return self.outputs.columns

    def score(self, batch: Batch, source: str = "input") -> ScoredBatch:
        """Check every row of `batch` and score the ones the model can take."""
        scores, verdicts = self.engine.run(self.layout, batch, source)
        return ScoredBatch(scores, verdicts)

    def predict(self, data: Any) -> Batch:
        """Score any table with the Arrow PyCapsule interface (polars, pyarrow, pandas).

        Returns a `Batch` of the score columns.

        Raises `DataError` naming the first row the model cannot score.
        """
        scored = self.score(Batch.from_arrow(data))
        if scored.rejected_rows:
            raise DataError(
                f"input row {scored.rejected_rows[0]}: {scored.reasons[0]} "
                f"({len(scored.rejected_rows)} rows cannot be scored)"
            )
        return scored.scores

    def __repr__(self) -> str:
        return f"Model({self.name!r}, version={self.version}, engine={self.engine.name!r})"


def _outputs_of_graph(graph: Any, name: str) -> Outputs:
    names = [o.name for o in graph.output]
    if "label" in names and "probabilities" in names:
        probabilities = next(o for o in graph.output if o.name == "probabilities")
        dims = probabilities.type.tensor_type.shape.dim
        if len(dims) != 2 or not dims[1].dim_value:
            raise ModelError(f"{name}: cannot tell the number of classes from the graph")
        return Outputs(
            task="classification",
            classes=list(range(dims[1].dim_value)),
            label_output="label",
            probability_output="probabilities",
        )
    if len(names) == 1:
        return Outputs(task="regression", prediction_output=names[0])
    raise ModelError(f"{name}: cannot tell which outputs hold the scores ({', '.join(names)})")
