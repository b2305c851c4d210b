"""Ask the fitted pipeline itself what it accepts: missing values and unseen categories.

Reading this off each transformer's parameters would need a rule per estimator; a probe
scores a few training rows with one column altered and watches whether the pipeline refuses.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ..schema import InputSchema

UNSEEN = "__edgewise_unseen_category__"


def _predicts(pipeline: Any, frame: pd.DataFrame) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            output = pipeline.predict(frame)
    except (ValueError, TypeError):
        return False
    values = np.asarray(output)
    return not (values.dtype.kind == "f" and np.isnan(values).any())


def probe_schema(pipeline: Any, schema: InputSchema, sample: pd.DataFrame) -> InputSchema:
    """`schema` with `accepts_missing` and `accepts_unknown` measured on `sample` rows."""
    rows = sample.head(16).copy()
    probed = []
    for column in schema.columns:
        altered = rows.copy()
        if column.kind == "string":
            altered[column.name] = UNSEEN
            probed.append(replace(column, accepts_unknown=_predicts(pipeline, altered)))
        else:
            altered[column.name] = np.nan
            probed.append(replace(column, accepts_missing=_predicts(pipeline, altered)))
    return InputSchema(probed)
