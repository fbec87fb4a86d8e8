"""rasteret 0.4's ``Collection`` methods that have a meaning here, kept name for name.

:class:`RasteretNames` is a base of :class:`~.table.Collection`: code written for
rasteret's ``Collection`` (``where``, ``export``, ``footprints``, ``native_res``,
``to_batches``, ``to_reader``, ``from_arrow``; ``from_parquet`` is on the class,
beside :func:`~.table.load`) runs unchanged.
Methods of rasteret's that concern its workspace and catalogue (``describe``,
``list_collections``, ``iterate_rasters``, ...) have no counterpart; the
migration guide lists them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._types import RasterSource

if TYPE_CHECKING:
    import geopandas as gpd
    import pyarrow.dataset as ds

__all__ = ["RasteretNames"]

_C = TypeVar("_C", bound="RasteretNames")


class _Indexed(Protocol):
    """What the methods below use of a :class:`~.table.Collection`."""

    name: str | None

    @property
    def table(self) -> pa.Table: ...

    @property
    def bands(self) -> list[str]: ...

    @property
    def geometries(self) -> np.ndarray: ...

    def sources(self, band: str) -> list[RasterSource]: ...


class RasteretNames:
    """rasteret 0.4's ``Collection`` API on top of a collection's table."""

    @classmethod
    def from_arrow(cls: type[_C], data: Any, **kwargs: Any) -> _C:
        """A collection from any Arrow table-like (``pa.table(data)``), as rasteret's."""
        return cls(pa.table(data), **kwargs)  # type: ignore[call-arg]

    def where(self: _Indexed, expr: ds.Expression) -> Any:
        """Rows matching a ``pyarrow.dataset`` expression (``ds.field("eo:cloud_cover") < 20``)."""
        return type(self)(self.table.filter(expr), name=self.name)  # type: ignore[call-arg]

    def to_batches(self: _Indexed, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """The table's record batches (of ``columns``)."""
        table = self.table if columns is None else self.table.select(columns)
        yield from table.to_batches()

    def to_reader(
        self: _Indexed, columns: list[str] | None = None, requested_schema: pa.Schema | None = None
    ) -> pa.RecordBatchReader:
        """A ``RecordBatchReader`` over the table (of ``columns``), cast to ``requested_schema``."""
        table = self.table if columns is None else self.table.select(columns)
        if requested_schema is not None:
            table = table.cast(requested_schema)
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    def export(
        self: _Indexed, path: str | Path, partition_by: Sequence[str] = ("year", "month")
    ) -> None:
        """Write the collection as a hive-partitioned Parquet folder (``year=/month=``).

        ``year`` and ``month`` are derived from ``datetime`` where the table lacks
        them, as rasteret does; :func:`~xarray_rasteret.load` opens the folder.
        """
        from .parquet import write_partitioned

        table = self.table
        if "datetime" in table.column_names:
            when = table.column("datetime")
            for part, fn in (("year", pc.year), ("month", pc.month)):
                if part in partition_by and part not in table.column_names:
                    table = table.append_column(part, pc.cast(fn(when), pa.int32()))
        missing = [c for c in partition_by if c not in table.column_names]
        if missing:
            raise ValueError(
                f"cannot partition by {missing}: the collection has no such column "
                f"(its columns: {table.column_names})"
            )
        # Each partition sorted in row groups with statistics, as to_parquet writes a file.
        write_partitioned(table, os.fspath(path), partition_by)

    def footprints(self: _Indexed, *, crs: Any = None, band: str | None = None) -> gpd.GeoDataFrame:
        """Each record's footprint (``id``, ``geometry``) in OGC:CRS84, or in ``crs``.

        ``band`` is accepted for rasteret's signature: the footprint is the record's.
        """
        import geopandas as gpd

        ids = self.table.column("id").to_pylist()
        frame = gpd.GeoDataFrame({"id": ids}, geometry=list(self.geometries), crs="OGC:CRS84")
        return frame if crs is None else frame.to_crs(crs)

    def native_res(self: _Indexed, band: str | None = None) -> tuple[float, float]:
        """``(x, y)`` pixel size of ``band`` (default: the first) in the first record's CRS."""
        src = self.sources(band or self.bands[0])[0]
        return abs(src.transform.a), abs(src.transform.e)
