"""Fixtures of the native executor's suites: the ONNX backend node cases for ai.onnx.ml."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

ML_CASE_PREFIX = "test_ai_onnx_ml_"


@dataclass(frozen=True)
class NodeCase:
    """One backend node case: the model, its data sets as numpy arrays, and its tolerances."""

    name: str
    model: onnx.ModelProto
    data_sets: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]
    rtol: float
    atol: float


def _as_array(value: object) -> np.ndarray:
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return np.asarray(value)


def _named(values: list[object], infos) -> dict[str, np.ndarray]:
    return {info.name: _as_array(v) for v, info in zip(values, infos, strict=True)}


@pytest.fixture(scope="session")
def onnx_ml_node_cases() -> dict[str, NodeCase]:
    """The `test_ai_onnx_ml_*` cases of `onnx.backend.test.case.node`, by name.

    onnx >= 1.23 ships no `.pb` data for node tests, only the generators, so they are run here
    (about 7 s: importing the package runs every `export_*` of every op). Some generators of other
    ops overflow on purpose while casting, hence the silenced warnings. The `op_type` filter of
    `collect_testcases` only works on the first call in a process, so the cases are picked by
    name instead.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        from onnx.backend.test.case import node as node_cases

        collected = node_cases.collect_testcases()
    cases = {}
    for case in collected:
        if not case.name.startswith(ML_CASE_PREFIX):
            continue
        graph = case.model.graph
        data_sets = [
            (_named(inputs, graph.input), _named(outputs, graph.output))
            for inputs, outputs in case.data_sets
        ]
        cases[case.name] = NodeCase(case.name, case.model, data_sets, case.rtol, case.atol)
    return cases
