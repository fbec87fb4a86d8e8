"""Tamper with a collection's band metadata, and read what was tampered with.

Shared by the in-process tampered-index tests and by the guarded children that
read each tampered index (this module is imported by both, so it imports no
test framework).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from xarray_rasteret._read.fetch import read_into
from xarray_rasteret._read.tasks import ReadTask
from xarray_rasteret._sync import sync
from xarray_rasteret._types import RasterSource, Window
from xarray_rasteret.collection import Collection

__all__ = ["Edit", "index_bytes", "random_edit", "read_all", "set_field", "tampered"]

Edit = Callable[[dict[str, Any]], None]


def tampered(coll: Collection, band: str, edit: Edit) -> Collection:
    """``coll`` with ``edit`` applied to the first record's ``{band}_metadata`` struct."""
    column = band + "_metadata"
    rows = coll.table.column(column).to_pylist()
    rows[0] = copy.deepcopy(rows[0])
    edit(rows[0])
    index = coll.table.schema.get_field_index(column)
    typ = coll.table.schema.field(column).type
    return Collection(coll.table.set_column(index, column, pa.array(rows, typ)))


def index_bytes(coll: Collection, scratch: Path) -> bytes:
    """The bytes :meth:`Collection.to_parquet` writes for ``coll`` (through ``scratch``)."""
    coll.to_parquet(scratch)
    return scratch.read_bytes()


def read_all(src: RasterSource) -> list[np.ndarray]:
    """Every level of ``src``, read whole through the read path."""
    tasks = []
    for level, lv in enumerate(src.levels):
        out = np.empty((lv.height, lv.width), src.dtype)
        tasks.append(ReadTask(src, level, Window(0, lv.height, 0, lv.width), out, src.fill))
    sync(read_into(tasks))
    return [t.out for t in tasks]


def set_field(name: str, value: Any, overview: int | None = None) -> Edit:
    """An edit setting ``name`` (of the full level, or of overview ``overview``)."""

    def edit(md: dict[str, Any]) -> None:
        target = md if overview is None else md["overviews"][overview]
        target[name] = value(target[name]) if callable(value) else value

    return edit


def random_edit(rng: np.random.Generator, md: dict[str, Any]) -> None:
    """One random tampering of one field: a value, a null, a list cut or changed.

    Only values no header could have, or that cannot change the pixels: a plausible
    edit (predictor 2 -> 1, byte order < -> >) reads as the index says, and only
    comparing with the file's header could tell.
    """
    level = md
    if md["overviews"] and rng.random() < 0.3:
        level = md["overviews"][int(rng.integers(len(md["overviews"])))]
    name = str(rng.choice(sorted(k for k, v in level.items() if k != "overviews")))
    value = level[name]
    special = [None, 0, -1, 17, 2**31, -(2**40), np.nan, np.inf, "foo", "<"]
    if isinstance(value, list) and value and rng.random() < 0.7:
        value = list(value)
        i = int(rng.integers(len(value)))
        kind = rng.integers(4)
        if kind == 0:
            value = value[:i]
        elif kind == 1:
            # Not 0: a tile of 0 bytes is sparse (as in GDAL), an offset 0 is tested.
            entries = [None, -1, 17, 2**31, -(2**40), np.nan]
            value[i] = entries[int(rng.integers(len(entries)))]
        elif kind == 2:
            value[i] = value[i] * int(rng.choice([-3, -1, 2, 3])) if value[i] else None
        else:
            value = value + value[:i]
    else:
        value = special[int(rng.integers(len(special)))]
    level[name] = value
