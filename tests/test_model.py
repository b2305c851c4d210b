"""`Model.predict` over the Arrow-compatible tables users hold, and bare ONNX models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from edgewise import DataError, Model, ModelError
from edgewise.datasets import FEATURES, credit_frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return credit_frame(500, seed=9)


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda f: pa.Table.from_pandas(f, preserve_index=False), id="pyarrow"),
        pytest.param(pl.from_pandas, id="polars"),
        pytest.param(lambda f: f, id="pandas"),
    ],
)
def test_predict_any_arrow_table(bundle_path, credit_model, frame, convert):
    model = Model.load(bundle_path)
    result = pl.DataFrame(model.predict(convert(frame)))
    assert result.columns == ["label", "proba_0", "proba_1"]
    expected = credit_model.predict_proba(frame[FEATURES])
    np.testing.assert_allclose(result["proba_1"].to_numpy(), expected[:, 1], atol=1e-5)


def test_predict_names_the_first_bad_row(bundle_path, frame):
    bad = frame.copy()
    bad.loc[[7, 9], "product"] = None
    with pytest.raises(DataError, match=r"input row 7: column 'product' is null \(2 rows"):
        Model.load(bundle_path).predict(bad)


def test_bare_onnx_model_reads_columns_by_input_name(bundle, tmp_path, frame):
    path = tmp_path / "credit.onnx"
    path.write_bytes(bundle.model)
    model = Model.load(path)
    assert (model.name, model.outputs.task) == ("credit", "classification")
    from_bundle = Model.from_bundle(bundle).predict(frame)
    from_onnx = model.predict(frame)
    assert pl.DataFrame(from_onnx).equals(pl.DataFrame(from_bundle))


def test_not_an_onnx_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00junk")
    with pytest.raises(ModelError, match="junk: not an ONNX model"):
        Model.load(path)
