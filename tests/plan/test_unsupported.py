"""What the executor refuses, and how: models outside its op subset, malformed models, inputs
that do not match the graph, and data the graph forbids.

Oracle: the documented contract of `edgewise._core.Plan` (UnsupportedModelError naming every node
outside the subset, ModelError for malformed models, a ValueError naming the graph input), and
`onnx.checker`, which confirms that each "malformed" model here really is invalid ONNX.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from edgewise._core import Plan
from edgewise.exceptions import ModelError, UnsupportedModelError

FLOAT = TensorProto.FLOAT


def model_of(
    nodes: list[onnx.NodeProto],
    *,
    outputs: tuple[str, ...] = ("Y",),
    opsets: tuple[tuple[str, int], ...] = (("", 21),),
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", FLOAT, [None, 2])],
        [helper.make_tensor_value_info(name, FLOAT, [None, 2]) for name in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(*o) for o in opsets])


def abs_model() -> onnx.ModelProto:
    return model_of([helper.make_node("Abs", ["X"], ["Y"])])


def test_a_model_inside_the_subset_has_no_reasons() -> None:
    model = abs_model()
    onnx.checker.check_model(model)
    assert Plan.unsupported(model.SerializeToString()) == []
    plan = Plan(model.SerializeToString())
    assert (plan.input_names, plan.output_names) == (["X"], ["Y"])


def test_ops_outside_the_subset_are_all_named() -> None:
    model = model_of(
        [
            helper.make_node("Abs", ["X"], ["A"]),
            helper.make_node("Erf", ["A"], ["E"], name="erf_1"),
            helper.make_node("Mod", ["E", "A"], ["Y"], name="mod_2", fmod=1),
        ]
    )
    onnx.checker.check_model(model)
    reasons = Plan.unsupported(model.SerializeToString())
    assert len(reasons) == 2
    assert "Erf" in reasons[0] and "erf_1" in reasons[0]
    assert "Mod" in reasons[1] and "mod_2" in reasons[1]
    with pytest.raises(UnsupportedModelError, match=r"Erf.*Mod") as raised:
        Plan(model.SerializeToString())
    assert isinstance(raised.value, ModelError) and isinstance(raised.value, ValueError)


def test_a_known_op_in_another_domain_is_unsupported() -> None:
    model = model_of(
        [helper.make_node("Abs", ["X"], ["Y"], domain="com.example")],
        opsets=(("", 21), ("com.example", 1)),
    )
    (reason,) = Plan.unsupported(model.SerializeToString())
    assert "com.example" in reason and "Abs" in reason
    with pytest.raises(UnsupportedModelError, match=r"com\.example"):
        Plan(model.SerializeToString())


def test_skl2onnx_zipmap_is_unsupported() -> None:
    """skl2onnx's default classifier output (ZipMap, a sequence of maps) is outside the subset;
    edgewise converts with zipmap=False."""
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    model = to_onnx(LogisticRegression().fit(x, x[:, 0] > 0), x[:1])
    reasons = Plan.unsupported(model.SerializeToString())
    assert len(reasons) == 1 and "ZipMap" in reasons[0]
    with pytest.raises(UnsupportedModelError, match="ZipMap"):
        Plan(model.SerializeToString())


@pytest.mark.parametrize(
    "data",
    [b"", b"not a model", abs_model().SerializeToString()[:-7]],
    ids=["empty", "text", "truncated"],
)
def test_bytes_that_are_not_a_model(data: bytes) -> None:
    with pytest.raises(ModelError):
        Plan(data)
    with pytest.raises(ModelError):
        Plan.unsupported(data)


def malformed_models() -> dict[str, onnx.ModelProto]:
    return {
        "undefined-value": model_of([helper.make_node("Abs", ["nowhere"], ["Y"])]),
        "output-without-producer": model_of([helper.make_node("Abs", ["X"], ["Z"])]),
        "domain-without-opset-import": model_of(
            [helper.make_node("Scaler", ["X"], ["Y"], domain="ai.onnx.ml", scale=[2.0])]
        ),
        "value-assigned-twice": model_of(
            [
                helper.make_node("Abs", ["X"], ["Y"]),
                helper.make_node("Abs", ["X"], ["Y"]),
            ]
        ),
    }


@pytest.mark.parametrize("name", list(malformed_models()))
def test_malformed_model(name: str) -> None:
    model = malformed_models()[name]
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(model)
    with pytest.raises(ModelError):
        Plan(model.SerializeToString())


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({"X": np.zeros((2, 2), np.float64)}, r"'X'.*float32.*float64"),
        ({"X": np.zeros((2, 2), np.int64)}, r"'X'.*float32.*int64"),
        ({"X": np.array([["a", "b"]], object)}, r"'X'.*float32.*str"),
        ({}, r"'X'"),
        ({"x": np.zeros((2, 2), np.float32)}, r"'X'"),
    ],
    ids=["float64", "int64", "strings", "missing", "misnamed"],
)
def test_inputs_that_do_not_match_the_graph(feeds: dict, message: str) -> None:
    plan = Plan(abs_model().SerializeToString())
    with pytest.raises(ValueError, match=message):
        plan.run_tensors(feeds)


def test_one_hot_encoder_unknown_category_with_zeros_0() -> None:
    """zeros=0 makes a category outside cats_strings an error (onnxruntime raises too)."""
    node = helper.make_node(
        "OneHotEncoder", ["X"], ["Y"], domain="ai.onnx.ml", cats_strings=["a", "b"], zeros=0
    )
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.STRING, [None, 1])],
        [helper.make_tensor_value_info("Y", FLOAT, [None, 1, 2])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 1)]
    )
    plan = Plan(model.SerializeToString())
    known = plan.run_tensors({"X": np.array([["b"], ["a"]], object)})
    np.testing.assert_array_equal(known["Y"], [[[0.0, 1.0]], [[1.0, 0.0]]])
    with pytest.raises(ValueError, match="zz"):
        plan.run_tensors({"X": np.array([["a"], ["zz"]], object)})
