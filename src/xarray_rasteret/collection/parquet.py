"""Parquet I/O of collection tables: local files, partitioned folders, remote objects.

Knows nothing of :class:`~.table.Collection`: it reads and writes Arrow tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .._hrefs import is_local
from .._sync import sync
from ..errors import ObjectNotFoundError
from ..storage import read_object_async, redact_url, resolve_store
from ..storage.local import local_path
from .compact import compact_table, expand_table
from .layout import ROW_GROUP_ROWS, write_tables
from .scan import Scan, columns_for, open_local, open_remote

__all__ = ["open_scan", "read_table", "write_table"]


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
            return expand_table(dataset.read(columns=columns))
        # One file: ParquetFile skips loading pyarrow's dataset machinery, and a
        # buffer skips resolving a filesystem for the path (both cost when cold). Not a
        # memory map: rewriting the file would change (or, truncated, crash) the table.
        with open(local, "rb") as f:
            data = f.read()
        return _read_parquet(pq.ParquetFile(pa.BufferReader(data)), bands)

    data = sync(
        read_object_async(target, storage_options=storage_options, backend=backend)
    )
    return _read_parquet(pq.ParquetFile(pa.BufferReader(data)), bands)


_THREADED_ROWS = 4096
"""Collections with more rows than this are decoded on pyarrow's thread pool; for
smaller ones, starting that pool costs more than the decode itself."""


def _read_parquet(file: Any, bands: Sequence[str] | None) -> pa.Table:
    columns = _columns_for(file.schema_arrow.names, bands)
    table = file.read(columns=columns, use_threads=file.metadata.num_rows > _THREADED_ROWS)
    return expand_table(table)


def _columns_for(names: Sequence[str], bands: Sequence[str] | None) -> list[str] | None:
    return None if bands is None else columns_for(names, bands)


def open_scan(
    target: str,
    *,
    bands: Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
) -> Scan | None:
    """Open ``target`` lazily (footers only), or None where only a whole read will do.

    A hive-partitioned folder (rasteret's ``year=/month=``: its partition values
    are columns) and a user store without ranged reads are read whole by
    :func:`read_table` instead.
    """
    if backend is None and is_local(target):
        local = local_path(target)
        if not os.path.isdir(local):
            return Scan([open_local(local)], bands)
        files = _folder_files(local)
        if files is None:
            return None
        if not files:
            raise FileNotFoundError(f"no .parquet file in the folder {local}")
        return Scan([open_local(f) for f in files], bands)
    store, _ = resolve_store(target, storage_options=storage_options, backend=backend)
    inner = getattr(store, "inner", store)
    if not (hasattr(inner, "head_async") and hasattr(store, "get_range_async")):
        return None
    return Scan([open_remote(target, storage_options, backend)], bands)


def _folder_files(folder: str) -> list[str] | None:
    """The Parquet files of a flat folder (as :func:`append_table` writes), in name order.

    None for a hive-partitioned folder (a ``key=value`` subfolder).
    """
    entries = sorted(os.listdir(folder))
    if any("=" in e and os.path.isdir(os.path.join(folder, e)) for e in entries):
        return None
    return [os.path.join(folder, e) for e in entries if e.endswith(".parquet")]


def write_table(
    tables: pa.Table | Iterable[pa.Table],
    path: str | os.PathLike[str],
    *,
    storage_options: dict[str, Any] | None = None,
    compact_tiles: bool = True,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> int:
    """Write tables as one zstd-compressed GeoParquet 1.1 file, as they come.

    Parameters
    ----------
    tables
        One table in the collection schema, or an iterable of them (a generator
        is consumed one table at a time: only one row group waits in memory).
        A table larger than one row group is written sorted by place then time;
        tables given one by one are each sorted in themselves.
    path
        A local path, ``file://`` URL or a URL of a writable store.
    storage_options
        Options for a remote store.
    compact_tiles
        Tile offsets stored as gaps (see :mod:`.compact`); False writes the offsets.
    row_group_rows
        Rows per row group.

    Returns
    -------
    int
        The rows written.

    Examples
    --------
    >>> from xarray_rasteret.collection import write_collection
    >>> write_collection((make_table(**b) for b in batches), "big.parquet")  # doctest: +SKIP
    """
    target = os.fspath(path)
    parts = iter([tables] if isinstance(tables, pa.Table) else tables)
    compacted = (compact_table(t) for t in parts) if compact_tiles else parts
    if not is_local(target):
        store, key = resolve_store(target, storage_options=storage_options)
        put = getattr(store, "put_async", None)
        if put is None:
            raise NotImplementedError(
                f"the store for {redact_url(target)!r} cannot write; write locally"
            )
        sink = pa.BufferOutputStream()
        rows = write_tables(compacted, sink, row_group_rows=row_group_rows)
        sync(put(key, sink.getvalue().to_pybytes()))
        return rows
    local = local_path(target)
    if os.path.isdir(local):
        raise IsADirectoryError(
            f"{local} is a folder; write to a file path, or add to the folder with "
            "xarray_rasteret.collection.append(...)"
        )
    folder = os.path.dirname(os.path.abspath(local))
    if not os.path.isdir(folder):
        raise ObjectNotFoundError(
            f"cannot write {local!r}: the folder {folder!r} does not exist; create it first "
            "(os.makedirs(folder, exist_ok=True)) or write elsewhere"
        )
    return write_tables(compacted, local, row_group_rows=row_group_rows)
