"""The engines that run a model's ONNX graph: edgewise's native Rust plan, or onnxruntime.

Both take an Arrow batch and the model's `InputLayout` and return the graph's outputs for
the rows the layout accepts, so the caller never cares which engine ran.
"""

from __future__ import annotations

import os
from typing import Literal, Protocol

import numpy as np

from ._core import Batch, InputLayout, Plan
from .exceptions import ModelError, UnsupportedModelError

EngineChoice = Literal["auto", "native", "onnxruntime"]
ENGINE_CHOICES: tuple[EngineChoice, ...] = ("auto", "native", "onnxruntime")

Inputs = list[tuple[str, str, list[str]]]

#: Graph outputs, accepted-row mask, rejected row indices, their reasons.
EngineResult = tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[str]]


class Engine(Protocol):
    name: str

    def run(self, layout: InputLayout, batch: Batch, source: str) -> EngineResult:
        """Check the rows of `batch` and run the graph on the accepted ones."""
        ...


class NativeEngine:
    """edgewise's Rust plan: reads the Arrow columns directly, in parallel over row blocks."""

    name = "native"

    def __init__(self, model: bytes, inputs: Inputs, threads: int | None = None) -> None:
        self.plan = Plan(model, inputs)
        self.threads = threads

    def run(self, layout: InputLayout, batch: Batch, source: str) -> EngineResult:
        accepted, rejected, reasons = layout.check_rows(batch, source)
        if len(rejected):
            batch = batch.filter(accepted)
        return self.plan.run(batch, self.threads), accepted, rejected, reasons


class OnnxRuntimeEngine:
    """onnxruntime, fed numpy tensors that the layout builds from the Arrow columns."""

    name = "onnxruntime"

    def __init__(self, model: bytes, threads: int | None = None) -> None:
        import onnxruntime as ort

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
        tensors, accepted, rejected, reasons = layout.prepare(batch, source)
        values = self.session.run(self.output_names, tensors)
        return dict(zip(self.output_names, values, strict=True)), accepted, rejected, reasons


def load_engine(
    choice: EngineChoice, model: bytes, inputs: Inputs, threads: int | None
) -> tuple[Engine, str]:
    """The engine to run `model` with, and why it was chosen.

    "auto" takes the native engine whenever it covers the whole graph, else onnxruntime.
    """
    if choice not in ENGINE_CHOICES:
        raise ValueError(f"unknown engine {choice!r}: choose one of {', '.join(ENGINE_CHOICES)}")
    if choice == "onnxruntime":
        return OnnxRuntimeEngine(model, threads), "chosen with --engine onnxruntime"
    try:
        engine = NativeEngine(model, inputs, threads)
    except UnsupportedModelError as exc:
        if choice == "native":
            raise
        reason = f"the native engine cannot run this graph ({exc}), so onnxruntime runs it"
        return OnnxRuntimeEngine(model, threads), reason
    if choice == "native":
        return engine, "chosen with --engine native"
    return engine, "the native engine covers every operator of the graph"
