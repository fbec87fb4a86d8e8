"""A lazy scan over collection Parquet files: row groups, selections and ranged reads.

A :class:`Scan` holds open Parquet files (their footers read, nothing else)
and a selection of rows. Filters read only the light columns of the row groups
their statistics cannot rule out; the selected rows' other columns are read
when the table is first needed. Remote files are read by ranges through the
package's stores (footer, then the column chunks needed), each range checked
against the size and ETag seen at open.
"""

from __future__ import annotations

import io
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .._sync import sync
from ..storage import object_info, redact_url, resolve_store
from ..storage._checks import get_range_checked
from .compact import GAPS, expand_table
from .schema import METADATA_SUFFIX

__all__ = ["Part", "Scan", "open_local", "open_remote"]

_THREADED_ROWS = 4096
"""Reads of more rows than this decode on pyarrow's thread pool; for fewer, starting
that pool costs more than the decode itself."""


class RangeFile(io.RawIOBase):
    """A remote object as a read-only file for pyarrow: each read one checked range."""

    def __init__(self, href: str, storage_options: dict[str, Any] | None, backend: Any) -> None:
        super().__init__()
        self.href = href
        self.store, self.key = resolve_store(href, storage_options=storage_options, backend=backend)
        info = sync(object_info(self.store, self.key))
        self.size, self.etag = info.size, info.etag
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), self.size - self.pos))
        if n == 0:
            return 0
        data = sync(
            get_range_checked(
                self.store, self.key, start=self.pos, end=self.pos + n, size=self.size,
                etag=self.etag,
            )
        )  # fmt: skip
        view = memoryview(data)
        buffer[: len(view)] = view
        self.pos += len(view)
        return len(view)


class _LocalGuard:
    """Refuses to read a local file rewritten since it was opened (it would mix two files)."""

    def __init__(self, path: str, handle: Any) -> None:
        self.path = path
        self.handle = handle
        st = os.fstat(handle.fileno())
        self.stamp = (st.st_size, st.st_mtime_ns)

    def __call__(self) -> None:
        st = os.fstat(self.handle.fileno())
        if (st.st_size, st.st_mtime_ns) != self.stamp:
            raise OSError(
                f"{self.path} changed since the collection was opened (size {self.stamp[0]} "
                f"-> {st.st_size} bytes); load it again"
            )


@dataclass
class Part:
    """One Parquet file of a collection."""

    label: str
    file: pq.ParquetFile
    guard: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        md = self.file.metadata
        self.schema = self.file.schema_arrow  # pyarrow rebuilds it at each access
        self.group_rows = np.array([md.row_group(i).num_rows for i in range(md.num_row_groups)])
        self.column_index = {md.schema.column(j).path: j for j in range(md.num_columns)}

    def stats(self, group: int, path: str) -> Any:
        """Statistics of column ``path`` in row group ``group`` (None if not written)."""
        j = self.column_index.get(path)
        if j is None:
            return None
        s = self.file.metadata.row_group(group).column(j).statistics
        return s if s is not None and s.has_min_max else None


def open_local(path: str) -> Part:
    """Open one local Parquet file (its footer read)."""
    handle = open(path, "rb")  # noqa: SIM115 - held by the Part, closed with it
    try:
        part = Part(path, pq.ParquetFile(handle), _LocalGuard(path, handle))
    except BaseException:
        handle.close()
        raise
    weakref.finalize(part, handle.close)
    return part


def open_remote(href: str, storage_options: dict[str, Any] | None, backend: Any) -> Part:
    """Open one remote Parquet file: a HEAD, then its footer by ranges."""
    raw = RangeFile(href, storage_options, backend)
    # pre_buffer: the column chunks of one read coalesce into few ranges.
    return Part(redact_url(href), pq.ParquetFile(raw, pre_buffer=True))


def columns_for(names: Sequence[str], bands: Sequence[str] | None) -> list[str]:
    """The columns to read for ``bands``: all but the other bands' metadata (None: all)."""
    if bands is None:
        return list(names)
    wanted = {band + METADATA_SUFFIX for band in bands}
    if not wanted <= set(names):
        return list(names)  # an unknown band: read all, so its error lists every band
    return [n for n in names if n in wanted or not n.endswith(METADATA_SUFFIX)]


class Scan:
    """Parquet files of one collection and the rows of them selected.

    Parameters
    ----------
    parts
        The files, in order.
    bands
        Read these bands' metadata columns only (None: all).
    index
        Selected rows as ``(part, row group, row in group)`` arrays, in file
        order; None: every row.
    """

    def __init__(
        self,
        parts: list[Part],
        bands: Sequence[str] | None = None,
        index: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.parts = parts
        self.bands = bands
        self.index = index
        first = parts[0].schema
        schemas = [p.schema for p in parts]
        merged = (
            pa.unify_schemas(schemas, promote_options="permissive") if len(parts) > 1 else first
        )
        self.names = columns_for(merged.names, bands)
        self.schema = pa.schema([_public_field(merged.field(n)) for n in self.names])

    def with_index(self, index: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Scan:
        """The same files with another selection."""
        out = Scan.__new__(Scan)
        out.parts, out.bands, out.index = self.parts, self.bands, index
        out.names, out.schema = self.names, self.schema
        return out

    def __len__(self) -> int:
        if self.index is None:
            return int(sum(p.group_rows.sum() for p in self.parts))
        return len(self.index[0])

    def groups(self) -> list[tuple[int, int]]:
        """The (part, row group) pairs holding selected rows, in file order."""
        if self.index is None:
            return [(i, g) for i, p in enumerate(self.parts) for g in range(len(p.group_rows))]
        pairs = np.unique(np.stack([self.index[0], self.index[1]], axis=1), axis=0)
        return [(int(a), int(b)) for a, b in pairs]

    def full_index(self, groups: Sequence[tuple[int, int]]) -> tuple[np.ndarray, ...]:
        """The selected rows of ``groups``, as index arrays."""
        if self.index is None:
            sizes = [int(self.parts[p].group_rows[g]) for p, g in groups]
            part = np.repeat([p for p, _ in groups], sizes).astype(np.int64)
            group = np.repeat([g for _, g in groups], sizes).astype(np.int64)
            row = np.concatenate([np.arange(s) for s in sizes]) if sizes else np.zeros(0, np.int64)
            return part, group, row.astype(np.int64)
        key = self.index[0] * (1 << 32) + self.index[1]
        wanted = np.array([p * (1 << 32) + g for p, g in groups], np.int64)
        keep = np.isin(key, wanted)
        return tuple(a[keep] for a in self.index)

    def read(self, columns: Sequence[str], index: tuple[np.ndarray, ...]) -> pa.Table:
        """Columns ``columns`` of the rows ``index`` (in its order, which is file order)."""
        part_ids, group_ids, rows = index
        tables = []
        for p in dict.fromkeys(part_ids.tolist()):
            part = self.parts[p]
            if part.guard is not None:
                part.guard()
            sel = part_ids == p
            groups, rows_p = group_ids[sel], rows[sel]
            wanted = list(dict.fromkeys(groups.tolist()))
            starts = dict(
                zip(wanted, np.cumsum([0] + [part.group_rows[g] for g in wanted[:-1]]), strict=True)
            )
            present = [c for c in columns if c in part.schema.names]
            # Whole row groups decode, whatever rows are kept: a band's tile tables are
            # worth the thread pool even for one row.
            heavy = any(c.endswith(METADATA_SUFFIX) for c in present)
            decoded = int(sum(part.group_rows[g] for g in wanted))
            got = part.file.read_row_groups(
                wanted, columns=present, use_threads=heavy or decoded > _THREADED_ROWS
            )
            where = np.array([starts[g] for g in groups.tolist()], np.int64) + rows_p
            if len(where) != got.num_rows or not (np.diff(where) == 1).all():
                got = got.take(pa.array(where))
            got = expand_table(got)  # each file's own layout, before they meet
            for name in columns:  # a column another file of the folder has
                if name not in got.column_names and name in self.schema.names:
                    got = got.append_column(
                        self.schema.field(name),
                        pa.nulls(got.num_rows, self.schema.field(name).type),
                    )
            tables.append(got)
        if not tables:
            return self.schema.empty_table().select([c for c in columns if c in self.schema.names])
        if len(tables) > 1:
            tables = [pa.concat_tables(tables, promote_options="permissive")]
        return tables[0]

    def table(self) -> pa.Table:
        """Every selected row, every column read."""
        groups = self.groups()
        return self.read(self.names, self.full_index(groups))


def _public_field(field: pa.Field) -> pa.Field:
    """The field as tables in memory have it (tile offsets, not gaps)."""
    t = field.type
    if field.name.endswith(METADATA_SUFFIX) and pa.types.is_struct(t) and GAPS in t.names:
        return pa.field(field.name, pa.struct([f for f in t if f.name != GAPS]), field.nullable)
    return field
