"""edgewise: score tabular scikit-learn models fast on Parquet and on fleets of edge devices.

The names below load on first use (PEP 562): `import edgewise` costs nothing, so a command such
as `edgewise agent run` can set up the environment before the Rust core and numpy load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_names
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

if TYPE_CHECKING:
    from ._core import Batch, __version__
    from .bundle import Bundle
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
    from .scoring import ScoreSummary, score

#: Where each lazily loaded name lives.
_LAZY = {
    "Batch": "._core",
    "__version__": "._core",
    "Bundle": ".bundle",
    "Model": ".model",
    "DriftReport": ".profiles",
    "Profile": ".profiles",
    "Schema": ".profiles",
    "ValidationReport": ".profiles",
    "drift": ".profiles",
    "infer_schema": ".profiles",
    "profile": ".profiles",
    "validate": ".profiles",
    "ScoreSummary": ".scoring",
    "score": ".scoring",
}


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

__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
