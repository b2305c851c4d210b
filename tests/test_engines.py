"""Engine choice: the native plan by default, onnxruntime on request or when the plan cannot
cover a graph, and the same scores either way."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from onnx import TensorProto, helper

from edgewise import Batch, Model
from edgewise._core import Plan
from edgewise.datasets import FEATURES, credit_frame
from edgewise.exceptions import UnsupportedModelError


@pytest.fixture(scope="module")
def frame():
    return credit_frame(2000, seed=11)[FEATURES]


def _graph_with(op: str) -> bytes:
    """x -> op -> y, a bare ONNX graph over one float64 column."""
    node = helper.make_node(op, ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def test_auto_takes_the_native_engine_for_a_compiled_bundle(bundle_path):
    model = Model.load(bundle_path)
    assert model.engine.name == "native"
    assert "covers every operator" in model.engine_reason


def test_native_and_onnxruntime_agree_and_native_matches_scikit_learn(
    bundle_path, credit_model, frame
):
    native = pa.table(Model.load(bundle_path, engine="native").predict(frame))
    runtime = pa.table(Model.load(bundle_path, engine="onnxruntime").predict(frame))
    expected = credit_model.predict_proba(frame)
    for i, c in enumerate(credit_model.classes_):
        column = f"proba_{c}"
        np.testing.assert_allclose(native[column].to_numpy(), expected[:, i], rtol=0, atol=1e-12)
        np.testing.assert_allclose(
            native[column].to_numpy(), runtime[column].to_numpy(), rtol=0, atol=1e-9
        )
    assert native["label"].to_pylist() == list(credit_model.predict(frame))


def test_auto_falls_back_to_onnxruntime_and_says_why():
    model = Model.from_onnx(_graph_with("Tanh"), name="tanh")
    assert model.engine.name == "onnxruntime"
    assert "ai.onnx:Tanh" in model.engine_reason


def test_native_on_request_refuses_a_graph_it_cannot_run():
    with pytest.raises(UnsupportedModelError, match=r"ai.onnx:Tanh node .* outside"):
        Model.from_onnx(_graph_with("Tanh"), name="tanh", engine="native")


def test_unknown_engine_is_a_value_error(bundle_path):
    with pytest.raises(ValueError, match="unknown engine 'gpu'"):
        Model.load(bundle_path, engine="gpu")  # type: ignore[arg-type]


def test_bare_graph_runs_natively_on_arrow_columns():
    model = Model.from_onnx(_graph_with("Abs"), name="abs", engine="native")
    table = pa.table({"x": [-1.5, 2.0, None]})
    scores, verdicts = model.engine.run(model.layout, Batch.from_arrow(table), "t")
    assert verdicts.accepted_rows == 3 and verdicts.rejected_rows == []
    np.testing.assert_array_equal(scores.column("prediction"), [1.5, 2.0, np.nan])


def test_empty_and_one_row_batches(bundle_path, frame):
    model = Model.load(bundle_path, engine="native")
    assert pa.table(model.predict(frame.head(0))).num_rows == 0
    assert pa.table(model.predict(frame.head(1))).num_rows == 1


def test_threads_and_blocks_do_not_change_results(bundle_path):
    big = credit_frame(20_000, seed=5)[FEATURES]
    one = pa.table(Model.load(bundle_path, engine="native", threads=1).predict(big))
    two = pa.table(Model.load(bundle_path, engine="native", threads=2).predict(big))
    assert one.equals(two)


def test_unsupported_lists_every_node():
    graph = helper.make_graph(
        [helper.make_node("Tanh", ["x"], ["t"]), helper.make_node("Erf", ["t"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 1])],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    reasons = Plan.unsupported(data.SerializeToString())
    assert [r.split(" node")[0] for r in reasons] == ["ai.onnx:Tanh", "ai.onnx:Erf"]


@pytest.mark.parametrize("rows", [0, 1, 300])
def test_both_engines_give_the_same_columns_and_verdicts(bundle_path, frame, rows):
    """The native plan's Arrow score columns have onnxruntime's names, types and values, and
    both engines refuse the same rows for the same reasons (empty batches included)."""
    data = frame.head(rows).copy()
    if rows > 2:
        data.loc[[1, 2], "product"] = None  # refused: the model cannot take a null category
    batch = Batch.from_arrow(pa.Table.from_pandas(data, preserve_index=False))
    native = Model.load(bundle_path, engine="native").score(batch, "t")
    runtime = Model.load(bundle_path, engine="onnxruntime").score(batch, "t")
    assert native.rejected_rows == runtime.rejected_rows == ([1, 2] if rows > 2 else [])
    assert native.reasons == runtime.reasons
    ours, theirs = pa.table(native.scores), pa.table(runtime.scores)
    assert ours.schema == theirs.schema
    assert ours.num_rows == native.verdicts.accepted_rows == rows - len(native.rejected_rows)
    assert ours["label"].equals(theirs["label"])
    for name in ("proba_0", "proba_1"):
        np.testing.assert_allclose(ours[name].to_numpy(), theirs[name].to_numpy(), atol=1e-5)
    # The numpy view of the same columns, for callers that compute on them.
    assert [name for name, _ in native.columns] == ours.column_names
    np.testing.assert_array_equal(dict(native.columns)["proba_1"], ours["proba_1"].to_numpy())
