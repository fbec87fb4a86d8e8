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
        self._tail: tuple[int, bytes] = (0, b"")

    def _get(self, start: int, end: int) -> Any:
        return sync(
            get_range_checked(
                self.store, self.key, start=start, end=end, size=self.size, etag=self.etag
            )
        )

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
        start, end = self.pos, self.pos + n
        # pyarrow reads a file's last 64 KiB, then the whole footer: the tail read is
        # kept, so that the second read fetches only the bytes before it.
        tail_at, tail = self._tail
        if tail and tail_at <= end <= tail_at + len(tail) and start < tail_at + len(tail):
            head = b"" if start >= tail_at else self._get(start, tail_at)
            data = head + tail[max(0, start - tail_at) : end - tail_at]
        else:
            data = self._get(start, end)
            if end == self.size:
                self._tail = (start, bytes(data))
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


class _Fixed:
    """Statistics of a column one value fills: a hive partition key within its folder."""

    has_min_max = True

    def __init__(self, value: Any) -> None:
        self.min = self.max = value


class Part:
    """One Parquet file of a collection, its footer read when first needed.

    Parameters
    ----------
    label
        The file's path or (redacted) URL, for messages.
    opener
        Opens the file: ``(ParquetFile, guard or None)``.
    partition
        Hive partition values of its folder (``{"year": 2024}``), typed.
    """

    def __init__(
        self,
        label: str,
        opener: Callable[[], tuple[pq.ParquetFile, Callable[[], None] | None]],
        partition: dict[str, Any] | None = None,
    ) -> None:
        self.label = label
        self.partition = dict(partition or {})
        self._opener: Callable[[], Any] | None = opener
        self._file: pq.ParquetFile | None = None
        self.guard: Callable[[], None] | None = None

    @property
    def opened(self) -> bool:
        """Whether the footer has been read."""
        return self._file is not None

    @property
    def file(self) -> pq.ParquetFile:
        """The open file (its footer read on first access)."""
        if self._file is None:
            assert self._opener is not None
            file, self.guard = self._opener()
            md = file.metadata
            self._schema = file.schema_arrow  # pyarrow rebuilds it at each access
            self._rows = np.array([md.row_group(i).num_rows for i in range(md.num_row_groups)])
            self._columns = {md.schema.column(j).path: j for j in range(md.num_columns)}
            self._file, self._opener = file, None
            _check_period(self)
        return self._file

    @property
    def schema(self) -> pa.Schema:
        """The file's Arrow schema (partition keys not included)."""
        _ = self.file
        return self._schema

    @property
    def group_rows(self) -> np.ndarray:
        """Rows of each row group."""
        _ = self.file
        return self._rows

    @property
    def column_index(self) -> dict[str, int]:
        """Parquet column path -> column number."""
        _ = self.file
        return self._columns

    def stats(self, group: int, path: str) -> Any:
        """Statistics of column ``path`` in row group ``group`` (None if not written)."""
        if path in self.partition and self.partition[path] is not None:
            return _Fixed(self.partition[path])
        j = self.column_index.get(path)
        if j is None:
            return None
        s = self.file.metadata.row_group(group).column(j).statistics
        return s if s is not None and s.has_min_max else None

    def period(self) -> tuple[np.datetime64, np.datetime64] | None:
        """The UTC time span its ``year=`` (and ``month=``) folders say its records have.

        Inclusive, in ns; None without an integer ``year`` key. Collection.export
        and rasteret derive these keys from ``datetime``, so time filters can skip
        folders unread (:func:`_check_period` refuses a file that disagrees).
        """
        year, month = self.partition.get("year"), self.partition.get("month")
        if not isinstance(year, int) or isinstance(year, bool) or not 1 <= year <= 9999:
            return None
        if isinstance(month, int) and not isinstance(month, bool) and 1 <= month <= 12:
            start = np.datetime64(f"{year:04d}-{month:02d}", "M")
            end = start + np.timedelta64(1, "M")
        else:
            start = np.datetime64(f"{year:04d}", "Y")
            end = start + np.timedelta64(1, "Y")
        one = np.timedelta64(1, "ns")
        return start.astype("datetime64[ns]"), end.astype("datetime64[ns]") - one


def _check_period(part: Part) -> None:
    """Refuse a file whose datetimes lie outside its ``year=/month=`` folders' span.

    Time filters skip folders by those keys without opening their files: were a
    folder's records of another time, the filter would silently miss them.
    """
    span = part.period()
    typ = part._schema.field("datetime").type if "datetime" in part._schema.names else None
    if span is None or typ is None or not pa.types.is_timestamp(typ):
        return
    j = part._columns.get("datetime")
    md = part._file.metadata if part._file is not None else None
    if j is None or md is None:
        return
    for g in range(md.num_row_groups):
        s = md.row_group(g).column(j).statistics
        if s is None or not s.has_min_max or not isinstance(s.min_raw, int):
            continue
        lo = np.datetime64(s.min_raw, typ.unit).astype("datetime64[ns]")
        hi = np.datetime64(s.max_raw, typ.unit).astype("datetime64[ns]")
        if lo < span[0] or hi > span[1]:
            keys = "/".join(f"{k}={part.partition[k]}" for k in ("year", "month")
                            if k in part.partition)  # fmt: skip
            raise ValueError(
                f"{part.label}: its records' datetime ({np.datetime_as_string(lo, 's')} to "
                f"{np.datetime_as_string(hi, 's')}, UTC) lies outside its folder {keys}; "
                "year=/month= folders must hold each record's UTC year and month (time "
                "filters skip the other folders unread). Rewrite the collection with "
                "Collection.export(...), or name such keys otherwise (e.g. acq_year=)"
            )


def open_local(path: str, partition: dict[str, Any] | None = None) -> Part:
    """A local Parquet file, opened (its footer read) when first needed."""

    def opener() -> tuple[pq.ParquetFile, Callable[[], None]]:
        handle = open(path, "rb")  # noqa: SIM115 - held by the file, closed with it
        try:
            file = pq.ParquetFile(handle)
        except BaseException:
            handle.close()
            raise
        weakref.finalize(file, handle.close)
        return file, _LocalGuard(path, handle)

    return Part(path, opener, partition)


def open_remote(
    href: str, storage_options: dict[str, Any] | None, backend: Any,
    partition: dict[str, Any] | None = None,
) -> Part:  # fmt: skip
    """A remote Parquet file; when first needed, a HEAD, then its footer by ranges."""

    def opener() -> tuple[pq.ParquetFile, None]:
        raw = RangeFile(href, storage_options, backend)
        # pre_buffer: the column chunks of one read coalesce into few ranges.
        return pq.ParquetFile(raw, pre_buffer=True), None

    return Part(redact_url(href), opener, partition)


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
        keys = parts[0].partition
        if keys:
            # A hive folder: the first file's schema stands for all (as pyarrow's datasets
            # take it), so that opening reads one footer; its keys are columns.
            merged = parts[0].schema
            for key in keys:
                if key not in merged.names:
                    merged = merged.append(pa.field(key, _key_type(parts, key)))
        elif len(parts) > 1:
            merged = pa.unify_schemas([p.schema for p in parts], promote_options="permissive")
        else:
            merged = parts[0].schema
        self.names = columns_for(merged.names, bands)
        self.schema = pa.schema([_public_field(merged.field(n)) for n in self.names])

    def with_index(self, index: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Scan:
        """The same files with another selection."""
        out = Scan.__new__(Scan)
        out.parts, out.bands, out.index = self.parts, self.bands, index
        out.names, out.schema = self.names, self.schema
        return out

    def __bool__(self) -> bool:
        return True  # not len(): that reads every file's footer

    def __len__(self) -> int:
        if self.index is None:
            return int(sum(p.group_rows.sum() for p in self.parts))
        return len(self.index[0])

    def groups(self, parts: Sequence[int] | None = None) -> list[tuple[int, int]]:
        """The (part, row group) pairs holding selected rows, in file order.

        ``parts``: of these parts only (the others' files stay unopened).
        """
        if self.index is None:
            chosen = range(len(self.parts)) if parts is None else parts
            return [(i, g) for i in chosen for g in range(len(self.parts[i].group_rows))]
        if parts is not None:
            keep = np.isin(self.index[0], np.asarray(list(parts), np.int64))
            pairs = np.unique(np.stack([self.index[0][keep], self.index[1][keep]], axis=1), axis=0)
            return [(int(a), int(b)) for a, b in pairs]
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
            _ = part.file
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
            for name in columns:  # a partition key, or a column another file of the folder has
                if name not in got.column_names and name in self.schema.names:
                    field = self.schema.field(name)
                    value = part.partition.get(name)
                    got = got.append_column(
                        field,
                        pa.nulls(got.num_rows, field.type)
                        if value is None
                        else pa.array([value] * got.num_rows, field.type),
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


def _key_type(parts: Sequence[Part], key: str) -> pa.DataType:
    """A partition key's column type: int32 if every value is an integer, else string.

    pyarrow infers a hive key's type so too.
    """
    values = [p.partition.get(key) for p in parts]
    return pa.int32() if all(v is None or isinstance(v, int) for v in values) else pa.string()


def _public_field(field: pa.Field) -> pa.Field:
    """The field as tables in memory have it (tile offsets, not gaps)."""
    t = field.type
    if field.name.endswith(METADATA_SUFFIX) and pa.types.is_struct(t) and GAPS in t.names:
        return pa.field(field.name, pa.struct([f for f in t if f.name != GAPS]), field.nullable)
    return field
