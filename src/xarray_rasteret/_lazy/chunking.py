"""Dask chunks of the lazy variables: default sizes, and graphs whose tasks carry their own records.

xarray turns a backend array into dask with one ``dask.array.from_array``
call: the whole array (every record's placement and tile table) becomes one
graph key that every chunk's task depends on, so even a one-window compute
ships all records. The variables of this package are :class:`LazyVariable`
instead, whose :meth:`~LazyVariable.chunk` builds the graph itself: per time
chunk, a shard of the array holding only that chunk's records, and one task
per block reading it. A culled graph then holds the records of the blocks it
computes, whatever the size of the collection.

The index columns (``id``, ``platform``, ...) are :class:`ColumnVariable`:
in memory, they stay numpy when the Dataset is chunked (xarray would make
every non-index coordinate a dask array).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import xarray as xr
from xarray.core import indexing

__all__ = ["ColumnVariable", "LazyVariable", "default_chunks", "with_chunking_variables"]

TARGET_CHUNK_BYTES = 128 * 2**20
"""Bytes of one default chunk (dask's own default ``array.chunk-size``)."""
TARGET_CHUNK_SIDE = 2048
"""Pixels of a default chunk's side, rounded to whole tiles."""


def default_chunks(
    tile_height: int,
    tile_width: int,
    shape: tuple[int, ...],
    dtype: np.dtype,
    masked: bool = False,
) -> dict[str, int]:
    """Default (``chunks={}``) chunks: whole tiles about 2048 px a side, time steps up to 128 MiB.

    A task reads every tile of its chunk at once (one read with all its
    requests in flight), so large chunks cost no latency and keep graphs small:
    a Sentinel-2 stack of 10k scenes in 1024 px tiles has about 22k tasks.

    Parameters
    ----------
    tile_height, tile_width
        The first record's tile size.
    shape
        ``(time, y, x)`` of the variable.
    dtype
        Its stored dtype.
    masked
        Whether it is decoded (``mask_and_scale``): then its values are floats,
        at least 4 bytes each.

    Returns
    -------
    dict
        ``{"time": ..., "y": ..., "x": ...}``.
    """
    n_time, height, width = shape
    rows = min(max(height, 1), tile_height * max(1, TARGET_CHUNK_SIDE // tile_height))
    cols = min(max(width, 1), tile_width * max(1, TARGET_CHUNK_SIDE // tile_width))
    itemsize = np.dtype(dtype).itemsize
    step_bytes = rows * cols * (max(itemsize, 4) if masked else itemsize)
    steps = max(1, min(max(n_time, 1), TARGET_CHUNK_BYTES // step_bytes))
    return {"time": int(steps), "y": int(rows), "x": int(cols)}


def _is_lazy_array(obj: Any) -> bool:
    from .mosaic import MosaicArray
    from .native import RasteretArray
    from .records import DecodedArray

    return isinstance(obj, RasteretArray | MosaicArray | DecodedArray)


def _identity_key(key: Any, shape: tuple[int, ...]) -> bool:
    parts = key.tuple
    return len(parts) == len(shape) and all(
        isinstance(k, slice) and k.indices(n) == (0, n, 1)
        for k, n in zip(parts, shape, strict=True)
    )


def _inner_array(data: Any) -> Any | None:
    """The lazy array under xarray's wrappers, when they select all of it (else None)."""
    while not _is_lazy_array(data):
        if isinstance(data, indexing.LazilyIndexedArray):
            if not _identity_key(data.key, data.array.shape):
                return None
        elif isinstance(data, indexing.LazilyVectorizedIndexedArray):
            return None
        data = getattr(data, "array", None)
        if data is None or isinstance(data, np.ndarray | indexing.NumpyIndexingAdapter):
            return None
    return data


def _swap_inner(data: Any, part: Any) -> Any:
    """A copy of xarray's wrapper chain ``data`` over ``part`` in place of the lazy array."""
    if _is_lazy_array(data):
        return part
    out = copy.copy(data)
    out.array = _swap_inner(data.array, part)
    return out


def _chunk_spec(
    var: xr.Variable, chunks: Any, chunks_kwargs: Mapping[str, Any]
) -> tuple[Any, ...]:
    """Per-axis chunk request, as xarray's ``Variable.chunk`` reads it."""
    from xarray.core.utils import either_dict_or_kwargs

    if isinstance(chunks, Mapping) or chunks_kwargs:
        given = either_dict_or_kwargs(chunks if isinstance(chunks, Mapping) else {},
                                      chunks_kwargs, "chunk")
        # xarray's rule: an axis not named keeps one chunk.
        return tuple(given.get(dim, n) for dim, n in zip(var.dims, var.shape, strict=True))
    return chunks if isinstance(chunks, tuple) else (chunks,) * var.ndim


def _is_dask(manager: Any) -> bool:
    if manager is None or manager == "dask":
        return True
    from xarray.namedarray.daskmanager import DaskManager

    return isinstance(manager, DaskManager)


_SHARDED: set[str] = set()
"""Names of the dask arrays :func:`sharded_dask_array` made (their graph layers)."""


def _culled(data: Any, source: Any) -> Any:
    """``data`` (a selection from ``source``) with a graph of only the tasks it needs.

    ``dask.distributed`` ships a compute's graph unculled to the scheduler: a
    window's graph would carry every chunk's records. Culled here, at
    selection, it carries those of its own chunks.
    """
    if not _SHARDED:  # no sharded dask array made in this process (dask may be absent)
        return data
    from dask.array import Array
    from dask.core import flatten

    if not isinstance(data, Array) or not isinstance(source, Array):
        return data
    if data.npartitions >= source.npartitions or not _SHARDED & set(data.dask.layers):
        return data
    from dask.highlevelgraph import HighLevelGraph

    # One layer named as the array (HighLevelGraph.cull renames its layers).
    tasks = dict(data.dask.cull(set(flatten(data.__dask_keys__()))))
    graph = HighLevelGraph.from_collections(data.name, tasks, dependencies=())
    return Array(graph, data.name, data.chunks, meta=data._meta)


def sharded_dask_array(var: xr.Variable, chunks: tuple[tuple[int, ...], ...], name: str) -> Any:
    """A dask array of ``var`` whose tasks each depend on a shard of its own time chunk.

    Parameters
    ----------
    var
        A variable over a lazy array (see :func:`_inner_array`).
    chunks
        Normalized chunks ``(time, y, x)``.
    name
        The dask array's name.

    Returns
    -------
    dask.array.Array
    """
    import dask.array as da
    from dask.array.core import getter
    from dask.highlevelgraph import HighLevelGraph

    inner = _inner_array(var._data)
    if inner is None:
        raise ValueError("sharded_dask_array needs a variable over a whole lazy array")
    ybounds = np.cumsum((0, *chunks[1])).tolist()
    xbounds = np.cumsum((0, *chunks[2])).tolist()
    graph: dict[Any, Any] = {}
    t0 = 0
    for i, nt in enumerate(chunks[0]):
        part = _swap_inner(var._data, inner.shard(t0, t0 + nt))
        records = f"{name}-records-{i}"
        graph[records] = indexing.ImplicitToExplicitIndexingAdapter(part, indexing.OuterIndexer)
        tkey = slice(0, nt)
        for j in range(len(chunks[1])):
            ykey = slice(ybounds[j], ybounds[j + 1])
            for k in range(len(chunks[2])):
                xkey = slice(xbounds[k], xbounds[k + 1])
                graph[(name, i, j, k)] = (getter, records, (tkey, ykey, xkey))
        t0 += nt
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=())
    _SHARDED.add(name)
    meta = np.empty((0,) * var.ndim, dtype=var.dtype)
    return da.Array(hlg, name, chunks, dtype=var.dtype, meta=meta)


class LazyVariable(xr.Variable):
    """A variable over a lazy array whose dask chunks carry only their own records.

    Behaves as :class:`xarray.Variable`; only :meth:`chunk` differs, and only
    for dask chunks of the whole lazy array (otherwise it is xarray's).
    """

    __slots__ = ()

    def chunk(  # type: ignore[override]
        self,
        chunks: Any = {},  # noqa: B006  (xarray's own default, never mutated)
        name: str | None = None,
        lock: bool | None = None,
        inline_array: bool | None = None,
        chunked_array_type: Any = None,
        from_array_kwargs: Any = None,
        **chunks_kwargs: Any,
    ) -> Any:
        """As :meth:`xarray.Variable.chunk`; each task carries only its time chunk's records."""
        kwargs = dict(from_array_kwargs or {})
        plain = (
            not _is_dask(chunked_array_type)
            or self.ndim != 3
            or _inner_array(self._data) is None
            or set(kwargs) - {"name", "lock", "inline_array"}
            or chunks is None
        )
        if plain:
            return super().chunk(
                chunks, name=name, lock=lock, inline_array=inline_array,
                chunked_array_type=chunked_array_type, from_array_kwargs=from_array_kwargs,
                **chunks_kwargs,
            )
        from dask.array.core import normalize_chunks

        spec = _chunk_spec(self, chunks, chunks_kwargs)
        preferred = self.encoding.get("preferred_chunks", {})
        previous = tuple(preferred.get(d, n) for d, n in zip(self.dims, self.shape, strict=True))
        normal = normalize_chunks(spec, self.shape, dtype=self.dtype, previous_chunks=previous)
        label = name or kwargs.get("name") or f"rasteret-{uuid.uuid4().hex}"
        return self._replace(data=sharded_dask_array(self, normal, label))


    def __getitem__(self, key: Any) -> Any:
        """As :meth:`xarray.Variable.__getitem__`; a dask selection keeps only its own tasks."""
        out = super().__getitem__(key)
        culled = _culled(out._data, self._data)
        return out if culled is out._data else out._replace(data=culled)


class ColumnVariable(xr.Variable):
    """A coordinate read from the index columns: in memory, it stays numpy when chunked."""

    __slots__ = ()

    def chunk(self, *args: Any, **kwargs: Any) -> Any:
        """The variable itself, as numpy: its values are in memory already."""
        return self._replace(data=np.asarray(self._data))


def with_chunking_variables(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with its 3-D data variables :class:`LazyVariable` and 1-D coordinates columns."""
    data: dict[Hashable, Any] = {}
    for key, var in ds.data_vars.items():
        v = var.variable
        data[key] = LazyVariable(v.dims, v._data, v.attrs, v.encoding, fastpath=True)
    coords: dict[Hashable, Any] = {}
    for key, coord in ds.coords.items():
        v = coord.variable
        if v.ndim == 1 and key not in ds.indexes:
            coords[key] = ColumnVariable(v.dims, v._data, v.attrs, v.encoding, fastpath=True)
    # Dropped then assigned: assigning over a coordinate (or assign_coords) rebuilds it
    # as a plain Variable.
    return ds.drop_vars(list(coords)).assign({**data, **coords}).set_coords(list(coords))
