"""edgewise: score tabular scikit-learn models fast on Parquet and on fleets of edge devices."""

from __future__ import annotations

from ._core import Batch, __version__
from .bundle import Bundle
from .exceptions import (
    BundleError,
    DataError,
    DataFileError,
    EdgewiseError,
    ModelError,
    ProfileFormatError,
    SchemaError,
    ScoreRunError,
    TrustError,
    UnsupportedModelError,
)
from .model import Model
from .profiles import (
    DriftReport,
    Profile,
    Schema,
    ValidationReport,
    drift,
    infer_schema,
    profile,
    validate,
)
from .score import ScoreSummary, score

__all__ = [
    "Batch",
    "Bundle",
    "BundleError",
    "DataError",
    "DataFileError",
    "DriftReport",
    "EdgewiseError",
    "Model",
    "ModelError",
    "Profile",
    "ProfileFormatError",
    "Schema",
    "SchemaError",
    "ScoreRunError",
    "ScoreSummary",
    "TrustError",
    "UnsupportedModelError",
    "ValidationReport",
    "__version__",
    "drift",
    "infer_schema",
    "profile",
    "score",
    "validate",
]
