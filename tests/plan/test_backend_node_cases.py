"""The executor against ONNX's own backend node tests for the ai.onnx.ml domain.

Oracle: the expected outputs stored in each case by `onnx.backend.test.case.node` (the data
onnxruntime and every ONNX backend is checked with), compared with the case's rtol/atol.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgewise._core import Plan

# Listed explicitly so that collection stays instant; `test_case_list_is_current` notices an onnx
# release that adds or renames cases.
ML_NODE_CASES = [
    "test_ai_onnx_ml_array_feature_extractor",
    "test_ai_onnx_ml_binarizer",
    "test_ai_onnx_ml_label_encoder_string_int",
    "test_ai_onnx_ml_label_encoder_string_int_no_default",
    "test_ai_onnx_ml_label_encoder_tensor_mapping",
    "test_ai_onnx_ml_label_encoder_tensor_value_only_mapping",
    "test_ai_onnx_ml_tree_ensemble_set_membership",
    "test_ai_onnx_ml_tree_ensemble_single_tree",
]


# These map strings to int16 values. The native engine computes integers as int64 only, so it
# refuses such graphs (they run on onnxruntime) rather than answering with another dtype.
NARROW_INTEGER_CASES = {
    "test_ai_onnx_ml_label_encoder_tensor_mapping",
    "test_ai_onnx_ml_label_encoder_tensor_value_only_mapping",
}


def test_case_list_is_current(onnx_ml_node_cases) -> None:
    assert sorted(onnx_ml_node_cases) == ML_NODE_CASES


@pytest.mark.parametrize("name", sorted(NARROW_INTEGER_CASES))
def test_narrow_integer_outputs_are_refused(onnx_ml_node_cases, name: str) -> None:
    reasons = Plan.unsupported(onnx_ml_node_cases[name].model.SerializeToString())
    assert len(reasons) == 1 and "ONNX element type 5" in reasons[0]


@pytest.mark.parametrize("name", [n for n in ML_NODE_CASES if n not in NARROW_INTEGER_CASES])
def test_backend_node_case(onnx_ml_node_cases, name: str) -> None:
    case = onnx_ml_node_cases[name]
    plan = Plan(case.model.SerializeToString())
    assert plan.output_names == list(case.data_sets[0][1])
    for inputs, expected in case.data_sets:
        got = plan.run_tensors(inputs)
        assert sorted(got) == sorted(expected)
        for output, want in expected.items():
            assert got[output].dtype == want.dtype, output
            assert got[output].shape == want.shape, output
            if want.dtype == object:
                assert got[output].tolist() == want.tolist(), output
            else:
                np.testing.assert_allclose(
                    got[output], want, rtol=case.rtol, atol=case.atol, err_msg=output
                )
