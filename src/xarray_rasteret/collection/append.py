"""Incremental collections: a folder of Parquet files, each update one new file.

A daily update writes its records as one more file of the folder (written
under a temporary name, then renamed, so that a reader never sees half a
file); nothing already written is rewritten, except, with
``on_duplicate="replace"``, the files holding records being replaced.
:func:`~.table.load` opens the folder as one collection.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._hrefs import is_local
from ..storage.local import local_path
from .parquet import _folder_files, write_table

__all__ = ["append"]

_SHOWN = 10


def _ids_of(table: pa.Table) -> list[str]:
    return [str(v) for v in table.column("id").to_pylist()]


def _named(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:_SHOWN])
    return shown + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else "")


def append(
    collection: Any,
    path: str | os.PathLike[str],
    *,
    on_duplicate: Literal["raise", "replace", "skip"] = "raise",
    compact_tiles: bool = True,
) -> int:
    """Add the records of ``collection`` to the collection folder at ``path``.

    Parameters
    ----------
    collection
        A :class:`~xarray_rasteret.Collection` (or a table in its schema).
    path
        A local folder; created (with this as its first file) if it does not exist.
    on_duplicate
        What to do with records whose id is already in the folder: ``"raise"`` a
        ValueError naming them, ``"replace"`` the old records (the files holding
        them are rewritten without them), or ``"skip"`` the new ones.
    compact_tiles
        See :meth:`~xarray_rasteret.Collection.to_parquet`.

    Returns
    -------
    int
        The records written.

    Raises
    ------
    ValueError
        Ids already in the folder (with ``on_duplicate="raise"``), or repeated
        within ``collection``; an unknown ``on_duplicate``.

    Examples
    --------
    >>> from xarray_rasteret.collection import append
    >>> append(xr_rt.build(todays_items), "s2-index")  # doctest: +SKIP
    >>> xr_rt.load("s2-index")  # every day's records  # doctest: +SKIP
    """
    if on_duplicate not in ("raise", "replace", "skip"):
        raise ValueError(f"on_duplicate must be 'raise', 'replace' or 'skip', got {on_duplicate!r}")
    target = os.fspath(path)
    if not is_local(target):
        raise NotImplementedError(
            f"append writes local folders only; {target!r} is remote: append locally, then upload"
        )
    folder = local_path(target)
    table = collection if isinstance(collection, pa.Table) else collection.table
    new_ids = _ids_of(table)
    repeated = sorted(i for i, n in Counter(new_ids).items() if n > 1)
    if repeated:
        raise ValueError(
            f"the records to append repeat the ids {_named(repeated)}; each id may appear once"
        )
    if os.path.isfile(folder):
        raise ValueError(
            f"{folder} is a single Parquet file, which cannot grow without being rewritten; "
            "keep a collection you update as a folder: append(collection, 'folder') creates one"
        )
    os.makedirs(folder, exist_ok=True)
    files = _folder_files(folder)
    if files is None:
        raise ValueError(
            f"{folder} is hive-partitioned (key=value subfolders, as rasteret writes); append "
            "adds files to a flat folder: load it and write it anew with append(...)"
        )
    existing: dict[str, list[str]] = {f: _ids_of(pq.read_table(f, columns=["id"])) for f in files}
    wanted = set(new_ids)
    dup = sorted({i for ids in existing.values() for i in ids if i in wanted})
    if dup and on_duplicate == "raise":
        raise ValueError(
            f"{len(dup)} of the {len(new_ids)} records to append are already in {folder}: "
            f"ids {_named(dup)}; pass on_duplicate='replace' to replace them or 'skip' to "
            "keep the records there"
        )
    if dup and on_duplicate == "skip":
        keep = ~np.isin(np.array(new_ids, dtype=object), np.array(dup, dtype=object))
        table = table.filter(pa.array(keep))
    if dup and on_duplicate == "replace":
        gone = pa.array(dup, pa.string())
        for f, ids in existing.items():
            if wanted.isdisjoint(ids):
                continue
            old = pq.read_table(f)
            left = old.filter(pc.invert(pc.is_in(pc.cast(old.column("id"), pa.string()), gone)))
            _write_atomic(left, folder, os.path.basename(f), compact_tiles)
    if table.num_rows == 0:
        return 0
    name = f"part-{len(files):06d}-{uuid.uuid4().hex[:8]}.parquet"
    _write_atomic(table, folder, name, compact_tiles)
    return table.num_rows


def _write_atomic(table: pa.Table, folder: str, name: str, compact_tiles: bool) -> None:
    """Write ``folder/name`` under a temporary name first (no reader sees half a file)."""
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write_table(table, tmp, compact_tiles=compact_tiles)
        os.replace(tmp, os.path.join(folder, name))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
