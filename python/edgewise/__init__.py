"""edgewise: score tabular scikit-learn models fast on Parquet and on fleets of edge devices."""

from __future__ import annotations

from ._core import __version__
from .bundle import Bundle
from .exceptions import (
    BundleError,
    DataError,
    DataFileError,
    EdgewiseError,
    ModelError,
    SchemaError,
    ScoreRunError,
)
from .model import Model
from .score import ScoreSummary, score

__all__ = [
    "Bundle",
    "BundleError",
    "DataError",
    "DataFileError",
    "EdgewiseError",
    "Model",
    "ModelError",
    "SchemaError",
    "ScoreRunError",
    "ScoreSummary",
    "__version__",
    "score",
]
