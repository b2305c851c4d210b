"""Rows from JSON into an Arrow batch the core can score, without pyarrow.

The agent must stay small (pyarrow alone costs about 55 MB of memory), yet the core takes Arrow.
This module exports numpy buffers through the Arrow C Data Interface (the PyCapsule protocol's
``__arrow_c_array__``): a struct array whose children are the columns. The buffers stay alive in
a registry until the consumer calls the release callback, as the interface requires.

Columns: float (float64), int (int64), bool and string (UTF-8), each with a validity bitmap
when it holds nulls.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._core import Batch


class ArrowSchema(ctypes.Structure):
    pass


class ArrowArray(ctypes.Structure):
    pass


_ReleaseSchema = ctypes.CFUNCTYPE(None, ctypes.POINTER(ArrowSchema))
_ReleaseArray = ctypes.CFUNCTYPE(None, ctypes.POINTER(ArrowArray))
ArrowSchema._fields_ = [
    ("format", ctypes.c_char_p),
    ("name", ctypes.c_char_p),
    ("metadata", ctypes.c_char_p),
    ("flags", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(ArrowSchema))),
    ("dictionary", ctypes.POINTER(ArrowSchema)),
    ("release", _ReleaseSchema),
    ("private_data", ctypes.c_void_p),
]
ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(ArrowArray))),
    ("dictionary", ctypes.POINTER(ArrowArray)),
    ("release", _ReleaseArray),
    ("private_data", ctypes.c_void_p),
]
_NULLABLE = 2  # ARROW_FLAG_NULLABLE
_FORMATS = {"float": b"g", "int": b"l", "bool": b"b", "string": b"u"}

# What each exported structure needs alive, by the key in its private_data; released by the
# consumer (the core) through the callbacks below.
_alive: dict[int, list[Any]] = {}
_lock = threading.Lock()
_keys = itertools.count(1)


def _release(structure: Any) -> None:
    with _lock:
        _alive.pop(structure.contents.private_data or 0, None)
    structure.contents.release = type(structure.contents.release)()  # NULL: released


_release_schema = _ReleaseSchema(_release)
_release_array = _ReleaseArray(_release)
_CapsuleDestructor = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_new_capsule = ctypes.pythonapi.PyCapsule_New
_new_capsule.restype = ctypes.py_object
_new_capsule.argtypes = [ctypes.c_void_p, ctypes.c_char_p, _CapsuleDestructor]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]


def _destructor(name: bytes, structure: type[ctypes.Structure]) -> Any:
    """A capsule destructor that releases the structure unless the consumer moved it out (a
    consumer that only borrowed it, as the core does with schemas, leaves that to us)."""

    def destroy(capsule: int) -> None:
        exported = structure.from_address(_capsule_pointer(capsule, name))
        if exported.release:
            exported.release(ctypes.pointer(exported))

    return _CapsuleDestructor(destroy)


_destroy_schema = _destructor(b"arrow_schema", ArrowSchema)
_destroy_array = _destructor(b"arrow_array", ArrowArray)


def _keep(objects: list[Any]) -> int:
    key = next(_keys)
    with _lock:
        _alive[key] = objects
    return key


def _address(array: np.ndarray | None) -> int | None:
    return None if array is None else int(array.ctypes.data)


def _validity(values: Sequence[Any]) -> tuple[np.ndarray | None, int]:
    present = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    nulls = len(values) - int(present.sum())
    if nulls == 0:
        return None, 0
    return np.packbits(present, bitorder="little"), nulls


def _buffers(kind: str, values: Sequence[Any]) -> list[np.ndarray]:
    if kind == "string":
        encoded = [b"" if v is None else str(v).encode() for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        data = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8).copy()
        return [offsets, data]
    if kind == "bool":
        bits = np.fromiter((bool(v) for v in values), dtype=bool, count=len(values))
        return [np.packbits(bits, bitorder="little") if len(bits) else np.zeros(1, np.uint8)]
    dtype = np.float64 if kind == "float" else np.int64
    return [np.array([0 if v is None else v for v in values], dtype=dtype)]


def _child(name: str, kind: str, values: Sequence[Any]) -> tuple[ArrowSchema, ArrowArray]:
    validity, nulls = _validity(values)
    buffers = _buffers(kind, values)
    pointers = (ctypes.c_void_p * (1 + len(buffers)))(
        _address(validity), *(_address(b) for b in buffers)
    )
    schema = ArrowSchema(_FORMATS[kind], name.encode(), None, _NULLABLE, 0, None, None)
    array = ArrowArray(len(values), nulls, 0, 1 + len(buffers), 0, pointers, None, None)
    # Children are released with their parent; their buffers live as long as it does.
    schema.release, array.release = _release_schema, _release_array
    schema.private_data = array.private_data = None
    array._keep = (validity, buffers, pointers)
    schema._keep = name.encode()
    return schema, array


class RowTable:
    """Typed columns of equal length, exportable as one Arrow record batch."""

    def __init__(self, columns: list[tuple[str, str, Sequence[Any]]], rows: int) -> None:
        self.columns = columns
        self.rows = rows

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]:
        children = [_child(name, kind, values) for name, kind, values in self.columns]
        n = len(children)
        schema_children = (ctypes.POINTER(ArrowSchema) * n)(
            *(ctypes.pointer(s) for s, _ in children)
        )
        array_children = (ctypes.POINTER(ArrowArray) * n)(*(ctypes.pointer(a) for _, a in children))
        no_buffers = (ctypes.c_void_p * 1)(None)
        schema = ArrowSchema(b"+s", b"", None, 0, n, schema_children, None, _release_schema)
        array = ArrowArray(self.rows, 0, 0, 1, n, no_buffers, array_children, None, _release_array)
        schema.private_data = _keep([schema, children, schema_children])
        array.private_data = _keep([array, children, array_children, no_buffers])
        return (
            _new_capsule(ctypes.addressof(schema), b"arrow_schema", _destroy_schema),
            _new_capsule(ctypes.addressof(array), b"arrow_array", _destroy_array),
        )

    def to_batch(self) -> Batch:
        return Batch.from_arrow(self)
