"""Which graph a bundle ships and which engine runs it by default.

The exact float64 graph is the first choice; skl2onnx's float32 graph is the fallback when a
step has no exact form or no engine can load the exact graph. The native engine runs the bundle
whenever it can load the graph, onnxruntime otherwise; both are measured at compile time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engines import EngineChoice
from ..exceptions import ModelError
from ..model import Model, Outputs
from ..schema import InputSchema
from .convert import Layout, input_layout, to_onnx
from .exact import ExactGraphUnsupported, to_exact_onnx

#: Every engine edgewise can score with, in order of preference.
ENGINES: tuple[EngineChoice, ...] = ("native", "onnxruntime")
EXACT = "exact-float64"
FLOAT32 = "float32"


@dataclass(frozen=True)
class Graph:
    kind: str  # EXACT or FLOAT32
    reason: str  # why this graph, in words
    onnx_model: bytes
    inputs: Layout


@dataclass(frozen=True)
class LoadedGraph:
    """A graph loaded on every engine that can run it."""

    graph: Graph
    models: dict[str, Model]
    unavailable: dict[str, str]  # engine -> why it cannot load the graph

    @property
    def default(self) -> str:
        return next(engine for engine in ENGINES if engine in self.models)

    def to_json(self) -> dict[str, Any]:
        """The manifest's "engine" entry."""
        if self.default == "native":
            reason = "the native engine runs this graph"
        else:
            reason = f"the native engine cannot run this graph: {self.unavailable['native']}"
        return {
            "name": self.default,
            "reason": reason,
            "graph": self.graph.kind,
            "graph_reason": self.graph.reason,
            "unavailable": self.unavailable,
        }


def load_best_graph(
    pipeline: Any, schema: InputSchema, outputs: Outputs, *, name: str, version: int
) -> LoadedGraph:
    """Build the exact graph, or else the float32 one, and load it on every engine that can
    run it. Raises `ModelError` when no engine can run either graph."""

    def load(graph: Graph) -> LoadedGraph:
        models: dict[str, Model] = {}
        unavailable: dict[str, str] = {}
        for engine in ENGINES:
            try:
                models[engine] = Model(
                    name=name,
                    version=version,
                    schema=schema,
                    inputs=graph.inputs,
                    outputs=outputs,
                    onnx_model=graph.onnx_model,
                    engine=engine,
                )
            except ModelError as exc:  # UnsupportedModelError, or onnxruntime refusing it
                unavailable[engine] = str(exc)
        return LoadedGraph(graph, models, unavailable)

    try:
        loaded = load(exact_graph(pipeline, schema))
        if loaded.models:
            return loaded
        fallback = f"no engine can run it ({_describe(loaded.unavailable)})"
    except ExactGraphUnsupported as exc:
        fallback = str(exc)
    loaded = load(
        float32_graph(pipeline, schema, f"the exact float64 graph cannot be used: {fallback}")
    )
    if not loaded.models:
        raise ModelError(f"no engine can run the converted model: {_describe(loaded.unavailable)}")
    return loaded


def exact_graph(pipeline: Any, schema: InputSchema) -> Graph:
    inputs = input_layout(pipeline, schema, "float64")
    onnx_model = to_exact_onnx(pipeline, inputs)
    return Graph(EXACT, "every step has an exact float64 form", onnx_model, inputs)


def float32_graph(pipeline: Any, schema: InputSchema, reason: str) -> Graph:
    inputs = input_layout(pipeline, schema, "float32")
    return Graph(FLOAT32, reason, to_onnx(pipeline, inputs), inputs)


def _describe(unavailable: dict[str, str]) -> str:
    return "; ".join(f"{engine}: {reason}" for engine, reason in unavailable.items())
