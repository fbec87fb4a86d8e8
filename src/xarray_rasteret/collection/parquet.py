"""Parquet I/O of collection tables: local files, partitioned folders, remote objects.

Knows nothing of :class:`~.table.Collection`: it reads and writes Arrow tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq

from .._hrefs import is_local
from .._sync import sync
from ..errors import ObjectNotFoundError
from ..storage import read_object_async, redact_url, resolve_store
from ..storage.local import local_path
from .compact import compact_table, expand_table
from .layout import ROW_GROUP_ROWS, write_tables
from .scan import RangeFile, Scan, columns_for, open_local, open_remote

__all__ = [
    "MANIFEST", "folder_parts", "open_scan", "partition_keys", "read_table",
    "write_manifest", "write_partitioned", "write_table",
]  # fmt: skip


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

    data = sync(read_object_async(target, storage_options=storage_options, backend=backend))
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
    """Open ``target`` lazily (one footer read), or None where only a whole read will do.

    A file, a flat folder (as :func:`append_table` writes) and a hive-partitioned
    folder (``year=2024/month=5/part-0.parquet``: its keys become columns) open
    lazily; the other files' footers are read only when a selection needs their
    rows. A remote folder (a URL ending in ``/``, or one with no object at it)
    is listed where its store can (S3), else found by its ``_metadata`` file (see
    :func:`write_manifest`): HTTP has no listing. A user store without ranged reads is read whole by
    :func:`read_table` instead.
    """

    def _remote(href: str, keys: dict[str, Any]) -> Any:
        return open_remote(href, storage_options, backend, keys)

    if backend is not None and not _ranged(target, storage_options, backend):
        return None
    if is_local(target):
        local = local_path(target)
        if not os.path.isdir(local):
            part = open_local(local) if backend is None else _remote(local, {})
            return Scan([part], bands)
        found = folder_parts(local)
        if not found:
            raise FileNotFoundError(f"no .parquet file in the folder {local}")
        return Scan(
            [
                open_local(path, keys) if backend is None else _remote(path, keys)
                for path, keys in found
            ],
            bands,
        )

    if not _ranged(target, storage_options, backend):
        return None
    if not target.endswith("/"):
        try:
            return Scan([_remote(target, {})], bands)
        except ObjectNotFoundError:
            if target.endswith(".parquet"):
                raise
            target += "/"  # no such object: a folder, maybe
    listed = _listed_parts(target, storage_options, backend)
    if listed is None:
        listed = _manifest_parts(target, storage_options, backend)
    return Scan([_remote(href, keys) for href, keys in listed], bands)


def _listed_parts(
    folder: str, storage_options: dict[str, Any] | None, backend: Any
) -> list[tuple[str, dict[str, Any]]] | None:
    """The files under a remote folder its store lists (S3), or None where none can."""
    store, prefix = resolve_store(folder, storage_options=storage_options, backend=backend)
    lister = getattr(getattr(store, "inner", store), "list_async", None)
    if lister is None:
        return None
    rel = []
    for path in sorted(sync(lister(prefix))):
        r = path[len(prefix) :]
        names = r.split("/")
        if r.endswith(".parquet") and not any(n.startswith(("_", ".")) for n in names):
            rel.append(r)
    if not rel:
        raise ObjectNotFoundError(
            f"no collection at {redact_url(folder)!r}: no file there, and no .parquet file "
            "under it; check the URL (a collection file's, or its folder's)"
        )
    keys = partition_keys(rel)
    return [(folder + r, k) for r, k in zip(rel, keys, strict=True)]  # keys as listed


def _ranged(target: str, storage_options: dict[str, Any] | None, backend: Any) -> bool:
    """Whether the store of ``target`` reads ranges (a user store may only read whole)."""
    store, _ = resolve_store(target, storage_options=storage_options, backend=backend)
    inner = getattr(store, "inner", store)
    return hasattr(inner, "head_async") and hasattr(store, "get_range_async")


MANIFEST = "_metadata"
"""The summary file of a folder: every file's footer, with its path (Spark's and
pyarrow's ``_metadata``); a remote folder is found by it."""

_NULL_KEY = "__HIVE_DEFAULT_PARTITION__"


def folder_parts(folder: str) -> list[tuple[str, dict[str, Any]]]:
    """The Parquet files under a local folder, in path order, with their partition keys.

    A flat folder's files have none; in a hive folder each ``key=value`` level
    gives one. Names starting with ``_`` or ``.`` (``_metadata``, ``_SUCCESS``)
    are not data.
    """
    rel: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")) and "=" in d)
        here = os.path.relpath(root, folder)
        for name in sorted(files):
            if name.endswith(".parquet") and not name.startswith(("_", ".")):
                rel.append(name if here == "." else os.path.join(here, name))
    keys = partition_keys([r.replace(os.sep, "/") for r in sorted(rel)])
    return [(os.path.join(folder, r), k) for r, k in zip(sorted(rel), keys, strict=True)]


def _folder_files(folder: str) -> list[str] | None:
    """The Parquet files of a flat folder (as :func:`append_table` writes), in name order.

    None for a hive-partitioned folder (a ``key=value`` subfolder).
    """
    found = folder_parts(folder)
    if any(keys for _, keys in found) or any(
        "=" in e and os.path.isdir(os.path.join(folder, e)) for e in os.listdir(folder)
    ):
        return None
    return [path for path, _ in found]


def partition_keys(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Each relative ``/``-separated path's hive keys, typed as pyarrow infers them.

    A key is an integer where every path's value is one, else a string;
    ``__HIVE_DEFAULT_PARTITION__`` is null. Paths that disagree on the keys are
    refused (a key missing from one folder would read as null there).
    """
    raw: list[dict[str, Any]] = []
    for path in paths:
        pairs = [seg.split("=", 1) for seg in path.split("/")[:-1] if "=" in seg]
        raw.append({k: None if v == _NULL_KEY else unquote(v) for k, v in pairs})
    names = [list(r) for r in raw]
    if any(n != names[0] for n in names):
        bad = next(p for p, n in zip(paths, names, strict=True) if n != names[0])
        raise ValueError(
            f"the partition folders disagree: {paths[0]!r} has keys {names[0]} but {bad!r} "
            "has other keys; a hive-partitioned folder needs the same keys in every path"
        )
    for key in names[0] if names else []:
        values = [r[key] for r in raw if r[key] is not None]
        if all(_is_int(v) for v in values):
            for r in raw:
                r[key] = None if r[key] is None else int(r[key])
    return raw


def _is_int(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    return body.isdigit() and len(body) < 10


def _manifest_parts(
    folder: str, storage_options: dict[str, Any] | None, backend: Any
) -> list[tuple[str, dict[str, Any]]]:
    """The files a remote folder's ``_metadata`` lists, with their partition keys."""
    url = folder + MANIFEST
    try:
        md = pq.read_metadata(RangeFile(url, storage_options, backend))
    except ObjectNotFoundError:
        raise ObjectNotFoundError(
            f"no collection at {redact_url(folder)!r}: no file there, and no {MANIFEST} file "
            f"({redact_url(url)}) listing a folder's files (HTTP cannot list a folder, so a "
            "remote folder is read through it). Write one with "
            "xarray_rasteret.collection.write_manifest(local_folder) before uploading the "
            "folder (write_partitioned(..., manifest=True) does it), or give a file's URL"
        ) from None
    rel = list(dict.fromkeys(md.row_group(i).column(0).file_path for i in range(md.num_row_groups)))
    if not rel or any(not r for r in rel):
        raise ValueError(
            f"{redact_url(url)} lists no file paths; write it again with "
            "xarray_rasteret.collection.write_manifest(local_folder)"
        )
    keys = partition_keys(rel)
    return [(folder + quote(r, safe="/="), k) for r, k in zip(rel, keys, strict=True)]


def write_manifest(folder: str | os.PathLike[str]) -> str:
    """Write the ``_metadata`` file of a local collection folder, listing its files.

    Remote folders (HTTP(S), S3, ...) are opened through it: upload it with the
    folder. It holds every file's footer (a few kB per file).

    Parameters
    ----------
    folder
        A flat or hive-partitioned folder of collection Parquet files.

    Returns
    -------
    str
        The path written.
    """
    local = os.fspath(folder)
    found = folder_parts(local)
    if not found:
        raise FileNotFoundError(f"no .parquet file in the folder {local}; nothing to list")
    collected = []
    schema = None
    for path, _ in found:
        md = pq.read_metadata(path)
        if schema is None:
            schema = pq.read_schema(path)
        md.set_file_path(os.path.relpath(path, local).replace(os.sep, "/"))
        collected.append(md)
    out = os.path.join(local, MANIFEST)
    try:
        pq.write_metadata(schema, out, metadata_collector=collected)
    except RuntimeError as exc:
        raise ValueError(
            f"cannot list the files of {local} in one {MANIFEST}: their schemas differ "
            f"({exc}); write the folder again with write_partitioned"
        ) from None
    return out


def write_partitioned(
    table: pa.Table,
    folder: str | os.PathLike[str],
    partition_by: Sequence[str],
    *,
    compact_tiles: bool = True,
    row_group_rows: int = ROW_GROUP_ROWS,
    manifest: bool = False,
) -> int:
    """Write a collection table as a hive-partitioned folder, one file per partition.

    Each ``key=value/.../part-0.parquet`` is written as :func:`write_table`
    writes one file (sorted by place then time, in row groups with statistics,
    compact tile tables); the keys are left out of the files, their folders say
    them.

    Parameters
    ----------
    table
        The collection table; it must have the ``partition_by`` columns.
    folder
        A local folder (created if missing); files of the same partitions are
        replaced, others left.
    partition_by
        The key columns, outermost first.
    compact_tiles, row_group_rows
        As for :func:`write_table`.
    manifest
        Also write the ``_metadata`` file (:func:`write_manifest`) that remote
        readers need.

    Returns
    -------
    int
        The rows written.
    """
    import pyarrow.compute as pc

    root = os.fspath(folder)
    keys = list(partition_by)
    if not keys:
        raise ValueError("partition_by is empty: give the key columns, or use write_table")
    if not is_local(root):
        raise ValueError(
            f"cannot write a partitioned folder to {redact_url(root)!r}: only local folders "
            "are written; write it locally, then upload the folder (for HTTP(S) readers "
            "with its _metadata: manifest=True)"
        )
    root = local_path(root)
    rest = [c for c in table.column_names if c not in keys]
    groups = table.group_by(keys, use_threads=False).aggregate([]) if table.num_rows else None
    rows = 0
    for values in [] if groups is None else groups.to_pylist():
        mask = None
        for key in keys:
            col = table.column(key)
            hit = pc.is_null(col) if values[key] is None else pc.equal(col, values[key])
            hit = pc.fill_null(hit, False)
            mask = hit if mask is None else pc.and_(mask, hit)
        sub = os.path.join(root, *(f"{k}={_key_text(values[k])}" for k in keys))
        os.makedirs(sub, exist_ok=True)
        part = table.filter(mask).select(rest)
        rows += write_table(
            part, os.path.join(sub, "part-0.parquet"), compact_tiles=compact_tiles,
            row_group_rows=row_group_rows,
        )  # fmt: skip
    if manifest:
        write_manifest(root)
    return rows


def _key_text(value: Any) -> str:
    return _NULL_KEY if value is None else quote(str(value), safe="")


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
