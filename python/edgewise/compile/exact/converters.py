"""skl2onnx converters for the exact graph, registered only while it is being converted.

skl2onnx keeps one global converter per scikit-learn type. The exact ones replace skl2onnx's
for SimpleImputer and the tree models for the duration of one conversion, and act only on
float64 inputs: string imputers, and a float32 conversion running at the same time in another
thread, still reach skl2onnx's own converters, which are put back afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sklearn.impute import SimpleImputer

from .imputer import convert_simple_imputer
from .tree_model import TREE_MODELS, convert_tree_model

Converter = Callable[[Any, Any, Any], None]

_registry_lock = threading.Lock()


@contextmanager
def exact_converters() -> Iterator[None]:
    from skl2onnx import get_model_alias
    from skl2onnx.common import _registration

    exact: dict[type, Converter] = {SimpleImputer: convert_simple_imputer}
    exact.update(dict.fromkeys(TREE_MODELS, convert_tree_model))
    with _registry_lock:
        originals = {}
        for model, converter in exact.items():
            alias = get_model_alias(model)
            originals[alias] = original = _registration.get_converter(alias)
            _registration.register_converter(
                alias,
                _for_float64(converter, original),
                overwrite=True,
                options=original.get_allowed_options(),
            )
        try:
            yield
        finally:
            # The registered objects themselves, as skl2onnx had them.
            _registration._converter_pool.update(originals)


def _for_float64(exact: Converter, original: Converter) -> Converter:
    def convert(scope: Any, operator: Any, container: Any) -> None:
        from skl2onnx.common.data_types import DoubleTensorType

        if isinstance(operator.inputs[0].type, DoubleTensorType):
            exact(scope, operator, container)
        else:
            original(scope, operator, container)

    return convert
