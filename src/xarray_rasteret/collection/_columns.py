"""Column-wise readers of a ``{band}_metadata`` struct array, shared by its decoders.

Tolerant of missing fields (older indexes) and strict about wrong types, which
raise a :class:`MissingMetadataError` naming the field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import MissingMetadataError
from ._checks import FIX, Levels

__all__ = ["Fields", "overview_levels"]


class Fields:
    """Column-wise access to a ``{band}_metadata`` struct array, tolerant of missing fields."""

    def __init__(self, md: pa.StructArray) -> None:
        self.md = md
        self.n = len(md)
        self.names = set(md.type.names)

    def has(self, name: str) -> bool:
        return name in self.names

    def scalar(self, name: str, default: Any, dtype: Any) -> np.ndarray:
        if name not in self.names:
            return np.full(self.n, default, dtype=dtype)
        arr = pc.struct_field(self.md, name)
        if pa.types.is_null(arr.type):
            return np.full(self.n, default, dtype=dtype)
        try:
            return np.asarray(arr.fill_null(default).to_numpy(zero_copy_only=False), dtype=dtype)
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            raise _bad_type(name, arr.type) from exc

    def valid(self, name: str) -> np.ndarray:
        if name not in self.names:
            return np.zeros(self.n, bool)
        return pc.struct_field(self.md, name).is_valid().to_numpy(zero_copy_only=False)

    def objects(self, name: str) -> list[Any]:
        if name not in self.names:
            return [None] * self.n
        return pc.struct_field(self.md, name).to_pylist()

    def lists(self, name: str, dtype: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """``(offsets, values)``: row ``i`` is ``values[offsets[i]:offsets[i + 1]]``."""
        if name not in self.names:
            return None
        arr = pc.struct_field(self.md, name)
        try:
            return _split_list(arr, dtype)
        except (pa.ArrowException, ValueError, TypeError, OverflowError, AttributeError) as exc:
            raise _bad_type(name, arr.type) from exc


def _bad_type(name: str, typ: pa.DataType) -> MissingMetadataError:
    return MissingMetadataError(f"band metadata field {name!r} has the wrong type {typ}; {FIX}")


def _split_list(arr: pa.Array, dtype: Any) -> tuple[np.ndarray, np.ndarray] | None:
    if pa.types.is_null(arr.type):
        return None
    offsets = arr.offsets.to_numpy().astype(np.int64, copy=False)
    values = arr.values
    if values.null_count:
        # A null inside a list is no number: make it one the checks refuse (a negative
        # offset, a NaN coefficient) rather than one NumPy invents.
        values = values.fill_null(-1 if np.dtype(dtype).kind in "iu" else np.nan)
    return offsets, np.asarray(values.to_numpy(zero_copy_only=False), dtype=dtype)


def overview_levels(
    md: pa.StructArray, name: str = "overviews", where: str = "overview: "
) -> tuple[np.ndarray, Levels] | None:
    """The ``name`` lists' offsets, and every row's levels of them (None if all null)."""
    ov_arr = pc.struct_field(md, name)
    if pa.types.is_null(ov_arr.type):
        return None
    of = Fields(ov_arr.values)
    offsets = ov_arr.offsets.to_numpy().astype(np.int64)
    n_levels = np.diff(offsets)
    # The overview structs of the rows, in row order, start at offsets[0].
    row = np.repeat(np.arange(len(md)), n_levels)
    first, last = int(offsets[0]), int(offsets[-1])
    lv = Levels(
        of.scalar("image_width", 0, np.int64)[first:last],
        of.scalar("image_height", 0, np.int64)[first:last],
        of.scalar("tile_width", -1, np.int64)[first:last],
        of.scalar("tile_height", -1, np.int64)[first:last],
        _sliced(of.lists("tile_offsets", np.int64), first, last),
        _sliced(of.lists("tile_byte_counts", np.int64), first, last),
        row=row,
        where=where,
    )
    return offsets - first, lv


def _sliced(
    lists: tuple[np.ndarray, np.ndarray] | None, first: int, last: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Entries ``first:last`` of ``(offsets, values)`` lists (values kept whole)."""
    return None if lists is None else (lists[0][first : last + 1], lists[1])
