"""The on-disk layout of a collection: sort order, row groups, encodings, GeoParquet metadata.

Rows of tables larger than one row group are written sorted by place (a
Hilbert curve of the footprint's bbox centre, so that records of one grid tile
sit together) then time, in row groups of :data:`ROW_GROUP_ROWS` rows.
Statistics are written for the light columns only (``id``, ``datetime``, the
``bbox`` covering column, scalar user columns): a reader prunes row groups with
them, and leaving them off the heavy columns keeps the footer small. Of the
base level's tile tables, offsets and gaps (see :mod:`.compact`) are stored
``DELTA_BINARY_PACKED``, byte counts ``BYTE_STREAM_SPLIT`` (measured on the
Sentinel-2-like index of ``benchmarks/scale.py``: 363 bytes per record and band,
against 383 all delta and 516 plain; the types stay ``int64``).

:class:`CollectionWriter` writes tables as they come (a build of many files need
not hold them all), one row group at a time; the GeoParquet ``geo`` metadata is
completed at close.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .schema import METADATA_SUFFIX

__all__ = ["ROW_GROUP_ROWS", "CollectionWriter", "sort_order"]

ROW_GROUP_ROWS = 4096
"""Rows per row group: small enough to prune to a few records' neighbourhood, large
enough that a million records keep the footer (one entry per row group and leaf
column) near a megabyte."""

# Offsets and gaps: deltas of a growing sequence or constants. Counts: sizes with no
# order, whose high bytes alone repeat (byte-stream split lets zstd see that).
_ENCODINGS = {"tile_offsets": "DELTA_BINARY_PACKED", "tile_gaps": "DELTA_BINARY_PACKED",
              "tile_byte_counts": "BYTE_STREAM_SPLIT"}  # fmt: skip
_GEOMETRY_TYPES = {1: "Point", 2: "LineString", 3: "Polygon", 4: "MultiPoint",
                   5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}  # fmt: skip


def _hilbert(x: np.ndarray, y: np.ndarray, order: int = 16) -> np.ndarray:
    """Hilbert-curve index of integer coordinates in ``0 .. 2**order - 1``.

    Unlike a Z-order, the curve never jumps: consecutive rows, hence a row group,
    stay in one compact region, and its bbox statistics stay tight.
    """
    x = x.astype(np.int64).copy()
    y = y.astype(np.int64).copy()
    n = 1 << order
    d = np.zeros(len(x), np.int64)
    s = n // 2
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx.astype(np.int64)) ^ ry.astype(np.int64))
        flip = ~ry & rx
        x = np.where(flip, n - 1 - x, x)
        y = np.where(flip, n - 1 - y, y)
        swap = ~ry
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s //= 2
    return d


def sort_order(table: pa.Table) -> np.ndarray:
    """Row order by place (Hilbert curve of the bbox centre; no bbox: last) then time."""
    n = table.num_rows
    keys: list[np.ndarray] = []
    if "datetime" in table.column_names and pa.types.is_timestamp(
        table.schema.field("datetime").type
    ):
        t = pc.cast(table.column("datetime"), pa.int64())
        keys.append(np.asarray(t.fill_null(np.iinfo(np.int64).max).to_numpy(), np.int64))
    place = _place(table)
    if place is not None:
        keys.append(place)
    if not keys:
        return np.arange(n)
    return np.lexsort(keys)  # the last key is the primary one


def _place(table: pa.Table) -> np.ndarray | None:
    if "bbox" not in table.column_names:
        return None
    typ = table.schema.field("bbox").type
    if not pa.types.is_struct(typ) or not {"xmin", "ymin", "xmax", "ymax"} <= set(typ.names):
        return None
    bbox = table.column("bbox")

    def coord(name: str) -> np.ndarray:
        col = pc.struct_field(bbox, name)
        return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), np.float64)

    cx = (coord("xmin") + coord("xmax")) / 2
    cy = (coord("ymin") + coord("ymax")) / 2
    missing = ~(np.isfinite(cx) & np.isfinite(cy))
    qx = np.clip((np.nan_to_num(cx) + 180.0) / 360.0 * 65535, 0, 65535)
    qy = np.clip((np.nan_to_num(cy) + 90.0) / 180.0 * 65535, 0, 65535)
    code = _hilbert(qx, qy)
    code[missing] = np.iinfo(np.int64).max
    return code


def _leaves(field: pa.Field, prefix: str = "") -> list[str]:
    """Parquet column paths of ``field``'s leaves (lists as ``name.list.element``)."""
    path = prefix + field.name
    t = field.type
    if pa.types.is_struct(t):
        return [leaf for child in t for leaf in _leaves(child, path + ".")]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _leaves(pa.field("element", t.value_type), path + ".list.")
    if pa.types.is_map(t):
        return _leaves(pa.field("key", t.key_type), path + ".key_value.") + _leaves(
            pa.field("value", t.item_type), path + ".key_value."
        )
    return [path]


def _is_light(field: pa.Field) -> bool:
    return not field.name.endswith(METADATA_SUFFIX) and field.name not in ("geometry", "assets")


def writer_options(schema: pa.Schema) -> dict[str, Any]:
    """ParquetWriter keywords for ``schema``: encodings, dictionaries and statistics."""
    encodings: dict[str, str] = {}
    stats, dictionary = [], []
    for field in schema:
        for leaf in _leaves(field):
            parts = leaf.split(".")
            if field.name.endswith(METADATA_SUFFIX) and len(parts) == 4 and parts[1] in _ENCODINGS:
                encodings[leaf] = _ENCODINGS[parts[1]]  # the base level's tile table
                continue
            dictionary.append(leaf)
            if _is_light(field):
                stats.append(leaf)
    return {
        "compression": "zstd",
        "use_dictionary": dictionary,
        "column_encoding": encodings,
        "write_statistics": stats,
    }


class CollectionWriter:
    """Write a collection to one Parquet file, table after table, in sorted row groups.

    Parameters
    ----------
    where
        A local path or a writable file object.
    schema
        The schema every table written must have (cast to it if need be).
    row_group_rows
        Rows per row group.

    Each :meth:`write` sorts its table (see :func:`sort_order`) and writes it in
    whole row groups; a table given whole is thus sorted whole, tables given one
    after another each in itself.
    """

    def __init__(
        self,
        where: Any,
        schema: pa.Schema,
        *,
        row_group_rows: int = ROW_GROUP_ROWS,
        whole: pa.Table | None = None,
    ) -> None:
        self.schema = schema.remove_metadata()
        self.rows = int(row_group_rows)
        self._bounds: list[np.ndarray] = []
        self._types: set[int] = set()
        self.num_rows = 0
        meta = {k: v for k, v in (schema.metadata or {}).items() if k not in (b"geo", "geo")}
        if whole is not None:  # all of it known: the geo metadata goes in the schema too
            self._account(whole)
        if "geometry" in self.schema.names:
            # Streaming, the schema's copy has no bbox or types yet; close() adds the full one
            # to the file's key-value metadata (which GeoParquet readers read).
            meta[b"geo"] = json.dumps(self.geo_metadata()).encode()
        self._streaming = whole is None
        self._pending: pa.Table | None = None
        self._writer = pq.ParquetWriter(
            where, self.schema.with_metadata(meta), **writer_options(self.schema)
        )

    def write(self, table: pa.Table) -> None:
        """Sort ``table`` and write it in whole row groups (the rest waits for more rows)."""
        if table.schema.remove_metadata() != self.schema:
            table = table.select(self.schema.names).cast(self.schema)
        if self._streaming:
            self._account(table)
        # One row group's rows need no order for pruning: a small collection keeps its own.
        order = sort_order(table) if table.num_rows > self.rows else np.arange(table.num_rows)
        if self._pending is not None:
            order = np.concatenate(
                [np.arange(self._pending.num_rows), order + self._pending.num_rows]
            )
            table = pa.concat_tables([self._pending, table])
            self._pending = None
        whole = table.num_rows - table.num_rows % self.rows
        for start in range(0, whole, self.rows):
            part = table.take(pa.array(order[start : start + self.rows]))
            self._writer.write_table(part, row_group_size=self.rows)
        if whole < table.num_rows:
            self._pending = table.take(pa.array(order[whole:]))
        self.num_rows += table.num_rows - (0 if self._pending is None else self._pending.num_rows)

    def _account(self, table: pa.Table) -> None:
        """Gather what the ``geo`` metadata says of every row: total bounds, geometry types."""
        if "geometry" not in table.column_names:
            return
        geom = table.column("geometry")
        if isinstance(geom.type, pa.ExtensionType):
            geom = pa.chunked_array([c.storage for c in geom.chunks], geom.type.storage_type)
        valid = pc.drop_null(geom)
        if len(valid) == 0:
            return
        import shapely

        shapes = shapely.from_wkb(valid.to_numpy(zero_copy_only=False))
        self._types.update(int(k) for k in np.unique(shapely.get_type_id(shapes)) if k >= 0)
        self._bounds.append(np.asarray(shapely.total_bounds(shapes)))

    def geo_metadata(self) -> dict[str, Any]:
        """The GeoParquet 1.1 ``geo`` metadata of everything written so far."""
        from ..geo.crs import as_crs

        column: dict[str, Any] = {
            "encoding": "WKB",
            "geometry_types": [
                _GEOMETRY_TYPES[k] for k in sorted(self._types) if k in _GEOMETRY_TYPES
            ],
            "crs": as_crs("OGC:CRS84").to_json_dict(),
        }
        finite = [b for b in self._bounds if np.isfinite(b).all()]
        if finite:
            b = np.stack(finite)
            column["bbox"] = [float(b[:, 0].min()), float(b[:, 1].min()),
                              float(b[:, 2].max()), float(b[:, 3].max())]  # fmt: skip
        if "bbox" in self.schema.names and pa.types.is_struct(self.schema.field("bbox").type):
            column["covering"] = {
                "bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}
            }
        return {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}

    def close(self) -> None:
        """Write the last rows, the metadata and the footer."""
        if self._pending is not None:
            self._writer.write_table(self._pending, row_group_size=self.rows)
            self.num_rows += self._pending.num_rows
            self._pending = None
        if self._streaming and "geometry" in self.schema.names:
            self._writer.add_key_value_metadata({"geo": json.dumps(self.geo_metadata())})
        self._writer.close()

    def __enter__(self) -> CollectionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_tables(
    tables: Iterable[pa.Table],
    where: str | os.PathLike[str] | Any,
    *,
    schema: pa.Schema | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> int:
    """Write ``tables`` (one or many, each sorted in itself) to ``where``; rows written."""
    it = iter(tables)
    first = next(it, None)
    if first is None:
        if schema is None:
            raise ValueError("nothing to write: no table and no schema")
        first = schema.empty_table()
    second = next(it, None)
    target = os.fspath(where) if isinstance(where, str | os.PathLike) else where
    whole = first if second is None else None
    with CollectionWriter(
        target, schema or first.schema, whole=whole, row_group_rows=row_group_rows
    ) as writer:
        writer.write(first)
        if second is not None:
            writer.write(second)
        for table in it:
            writer.write(table)
    return writer.num_rows
