"""Parquet I/O of collection tables: local files, partitioned folders, remote objects.

Knows nothing of :class:`~.table.Collection`: it reads and writes Arrow tables.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .._hrefs import is_local
from .._sync import sync
from ..storage import object_info, resolve_store
from ..storage.local import local_path
from .schema import METADATA_SUFFIX

__all__ = ["read_table", "write_table"]


def read_table(
    target: str,
    *,
    bands: Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
) -> pa.Table:
    """Read the collection table at ``target`` (see :func:`~.table.load`)."""
    if backend is None and is_local(target):
        local = local_path(target)
        if os.path.isdir(local):  # a partitioned dataset (rasteret writes year=/month=)
            dataset = pq.ParquetDataset(local)
            columns = _columns_for(dataset.schema.names, bands)
            return dataset.read(columns=columns)
        # One file: ParquetFile skips loading pyarrow's dataset machinery, and a
        # buffer skips resolving a filesystem for the path (both cost when cold). Not a
        # memory map: rewriting the file would change (or, truncated, crash) the table.
        with open(local, "rb") as f:
            data = f.read()
        return _read_parquet(pq.ParquetFile(pa.BufferReader(data)), bands)

    data = sync(_read_object(target, storage_options, backend))
    return _read_parquet(pq.ParquetFile(pa.BufferReader(data)), bands)


_THREADED_ROWS = 4096
"""Collections with more rows than this are decoded on pyarrow's thread pool; for
smaller ones, starting that pool costs more than the decode itself."""


def _read_parquet(file: Any, bands: Sequence[str] | None) -> pa.Table:
    columns = _columns_for(file.schema_arrow.names, bands)
    return file.read(columns=columns, use_threads=file.metadata.num_rows > _THREADED_ROWS)


def _columns_for(names: Sequence[str], bands: Sequence[str] | None) -> list[str] | None:
    """The columns to read for ``bands``: all but the other bands' metadata (None: all)."""
    if bands is None:
        return None
    wanted = {band + METADATA_SUFFIX for band in bands}
    if not wanted <= set(names):
        return None  # an unknown band: read all, so its error lists every band
    return [n for n in names if n in wanted or not n.endswith(METADATA_SUFFIX)]


async def _read_object(href: str, storage_options: dict[str, Any] | None, backend: Any) -> bytes:
    """Read the whole object at ``href`` through its store."""
    store, key = resolve_store(href, storage_options=storage_options, backend=backend)
    get = getattr(store, "get_async", None)
    if get is not None:  # obspec GetAsync
        result = await get(key)
        return bytes(await result.bytes_async())
    if not hasattr(store, "head_async"):
        raise NotImplementedError(
            f"cannot find the size of {href!r}: its store has no head_async/get_async"
        )
    size = (await object_info(store, key)).size
    return bytes(memoryview(await store.get_range_async(key, start=0, end=size)))


def write_table(
    table: pa.Table, path: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
) -> None:
    """Write ``table`` as zstd-compressed Parquet at a local path, ``file://`` or writable store."""
    target = os.fspath(path)
    if not is_local(target):
        store, key = resolve_store(target, storage_options=storage_options)
        put = getattr(store, "put_async", None)
        if put is None:
            raise NotImplementedError(f"the store for {target!r} cannot write; write locally")
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        sync(put(key, sink.getvalue().to_pybytes()))
        return
    pq.write_table(table, local_path(target), compression="zstd")
