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
    UnsupportedModelError,
)
from .model import Model
from .profiles import DriftReport, Profile, drift, profile
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
    "SchemaError",
    "ScoreRunError",
    "ScoreSummary",
    "UnsupportedModelError",
    "__version__",
    "drift",
    "profile",
    "score",
]
