"""The engines that run a model's ONNX graph: edgewise's native Rust plan, or onnxruntime.

Both take an Arrow batch and the model's `InputLayout` and return the score columns of the
rows the layout accepts, as an Arrow batch, so the caller never cares which engine ran.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal, Protocol

from ._core import Batch, InputLayout, Plan, RowVerdicts
from .exceptions import ModelError, UnsupportedModelError

if TYPE_CHECKING:
    from .model import Outputs

EngineChoice = Literal["auto", "native", "onnxruntime"]
ENGINE_CHOICES: tuple[EngineChoice, ...] = ("auto", "native", "onnxruntime")

Inputs = list[tuple[str, str, list[str]]]

#: The score columns of the accepted rows, and which rows those are.
EngineResult = tuple[Batch, RowVerdicts]


class Engine(Protocol):
    name: str

    def run(self, layout: InputLayout, batch: Batch, source: str) -> EngineResult:
        """Check the rows of `batch` and run the graph on the accepted ones."""
        ...


class NativeEngine:
    """edgewise's Rust plan: reads the Arrow columns directly, in parallel over row blocks, and
    returns Arrow columns (no numpy array on the way)."""

    name = "native"

    def __init__(
        self, model: bytes, inputs: Inputs, outputs: Outputs, threads: int | None = None
    ) -> None:
        self.plan = Plan(model, inputs)
        self.columns = outputs.column_sources()
        self.threads = threads

    def run(self, layout: InputLayout, batch: Batch, source: str) -> EngineResult:
        verdicts = layout.check_rows(batch, source)
        accepted = verdicts.accepted(batch)
        return self.plan.score(accepted, self.columns, self.threads), verdicts


class OnnxRuntimeEngine:
    """onnxruntime, fed numpy tensors that the layout builds from the Arrow columns."""

    name = "onnxruntime"

    def __init__(self, model: bytes, outputs: Outputs, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.outputs = outputs
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # Spinning intra-op threads stay on: measured 5-10% faster on tree ensembles even with
        # the Parquet reader sharing the cores (BENCHMARKS.md).
        try:
            self.session = ort.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own unexported exception types
            raise ModelError(f"onnxruntime cannot load the model: {exc}") from exc
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, layout: InputLayout, batch: Batch, source: str) -> EngineResult:
        tensors, verdicts = layout.prepare(batch, source)
        rows = verdicts.accepted(batch).select([])
        if not verdicts.accepted_rows:
            return rows.with_columns(self.outputs.empty_columns()), verdicts
        values = self.session.run(self.output_names, tensors)
        results = dict(zip(self.output_names, values, strict=True))
        return rows.with_columns(self.outputs.score_columns(results)), verdicts


def load_engine(
    choice: EngineChoice, model: bytes, inputs: Inputs, outputs: Outputs, threads: int | None
) -> tuple[Engine, str]:
    """The engine to run `model` with, and why it was chosen.

    "auto" takes the native engine whenever it covers the whole graph, else onnxruntime.
    """
    if choice not in ENGINE_CHOICES:
        raise ValueError(f"unknown engine {choice!r}: choose one of {', '.join(ENGINE_CHOICES)}")
    if choice == "onnxruntime":
        return OnnxRuntimeEngine(model, outputs, threads), "chosen with --engine onnxruntime"
    try:
        engine = NativeEngine(model, inputs, outputs, threads)
    except UnsupportedModelError as exc:
        if choice == "native":
            raise
        reason = f"the native engine cannot run this graph ({exc}), so onnxruntime runs it"
        return OnnxRuntimeEngine(model, outputs, threads), reason
    if choice == "native":
        return engine, "chosen with --engine native"
    return engine, "the native engine covers every operator of the graph"
