"""The model that answers predictions right now, swapped as a whole after an install or
rollback, so a request sees the old model or the new one, never a mix."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ..transport.messages import BundleRef

if TYPE_CHECKING:
    from ..model import Model


class Serving:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._bundle: BundleRef | None = None

    def swap(self, model: Model | None, bundle: BundleRef | None) -> None:
        with self._lock:
            self._model, self._bundle = model, bundle

    def current(self) -> tuple[Model | None, BundleRef | None]:
        with self._lock:
            return self._model, self._bundle
