"""The Collection: a table of raster records, its views, filters and repr.

One row is one record (a scene, a tile, a chip); each band of a record is one
:class:`~xarray_rasteret._types.RasterSource`. The table's schema is in
:mod:`.schema`, its decoding into RasterSources in :mod:`.sources`, and its
Parquet I/O in :mod:`.parquet`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._hrefs import is_local
from .._types import RasterSource
from ..errors import BandNotFoundError, MissingMetadataError, ObjectNotFoundError
from ..geo.crs import as_crs
from ..storage.local import local_path
from ._rasteret_names import RasteretNames
from .filters import SUBSET_OPTIONS, criteria, datetimes_of, select, table_mask
from .parquet import open_scan, read_table, write_table
from .scan import Scan
from .schema import METADATA_SUFFIX, SCHEMA_COLUMNS, epsg_of
from .sources import sources_from_metadata
from .summary import summary_html, summary_text

__all__ = ["Collection", "load"]

# rasteret's Collection.subset keywords, also accepted by filter() and the helpers.
_SUBSET_OPTIONS = SUBSET_OPTIONS


def _combined(col: pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


class Collection(RasteretNames):
    """A GeoParquet-backed index of raster records.

    Parameters
    ----------
    table
        A table in the collection schema (see :mod:`xarray_rasteret._schema`); tables written
        by rasteret 0.4 are accepted as they are.
    name
        A label shown in the repr.

    Examples
    --------
    >>> import xarray_rasteret as xr_rt
    >>> coll = xr_rt.build(["a.tif", "b.tif"])  # doctest: +SKIP
    >>> coll.filter(time=("2024-01-01", "2024-06-30"), cloud_cover_lt=20)  # doctest: +SKIP
    >>> coll.sources("band_1")[0].levels[0].tile_width  # doctest: +SKIP
    512
    """

    skipped: list[tuple[str, str, str]] = []  # shared empty default: build assigns a new list
    """What ``build(on_error="skip")`` left out: ``(record id, href, reason)`` per failed
    asset (hrefs redacted). In memory only: not saved, not kept by ``filter``/``subset``."""

    def __init__(self, table: pa.Table, *, name: str | None = None) -> None:
        _check_ids(table.schema)
        self._table: pa.Table | None = table
        self._scan: Scan | None = None
        self.name = name

    @classmethod
    def _lazy(cls, scan: Scan, name: str | None) -> Collection:
        """A collection over files, read when first needed (see :mod:`.scan`)."""
        _check_ids(scan.schema)
        out = cls.__new__(cls)
        out._table, out._scan, out.name = None, scan, name
        return out

    @property
    def table(self) -> pa.Table:
        """The collection's Arrow table (a lazy collection reads its selected rows once)."""
        if self._table is None:
            assert self._scan is not None
            self._table = self._scan.table()
            self._scan = None  # the files stay open only as long as needed
            self.__dict__.pop("_columns", None)
        return self._table

    @table.setter
    def table(self, value: pa.Table) -> None:
        self._table, self._scan = value, None
        self.__dict__.pop("_columns", None)

    @property
    def schema(self) -> pa.Schema:
        """The table's schema (no row read)."""
        return self._scan.schema if self._table is None and self._scan else self.table.schema

    def _column(self, name: str) -> pa.ChunkedArray:
        """One column; a lazy collection reads it alone (for the selected rows) and keeps it."""
        if self._table is not None or self._scan is None:
            return self.table.column(name)
        cache = self.__dict__.setdefault("_columns", {})
        if name not in cache:
            scan = self._scan
            cache[name] = scan.read([name], scan.full_index(scan.groups())).column(name)
        return cache[name]

    def __getstate__(self) -> dict[str, Any]:
        # Open files do not pickle: a pickled collection carries its rows.
        return {"_table": self.table, "_scan": None, "name": self.name}

    # -- basic views -------------------------------------------------------

    def __len__(self) -> int:
        if self._table is None and self._scan is not None:
            return len(self._scan)
        return self.table.num_rows

    @property
    def bands(self) -> list[str]:
        """Band names: those with a ``{band}_metadata`` column, else the asset keys."""
        schema = self.schema
        meta = [
            c[: -len(METADATA_SUFFIX)]
            for c in schema.names
            if c.endswith(METADATA_SUFFIX) and pa.types.is_struct(schema.field(c).type)
        ]
        keys = self._asset_keys()
        if not meta:
            return keys
        return [k for k in keys if k in meta] + [m for m in meta if m not in keys]

    def _asset_keys(self) -> list[str]:
        if "assets" not in self.schema.names:
            return []
        t = self.schema.field("assets").type
        if pa.types.is_struct(t):
            return [f.name for f in t]
        if pa.types.is_map(t):
            keys = _combined(self._column("assets")).keys
            return [str(k) for k in dict.fromkeys(keys.to_pylist())]
        return []

    @property
    def ids(self) -> list[str]:
        """Record ids, in row order."""
        return [str(v) for v in self._column("id").to_pylist()]

    @property
    def datetimes(self) -> np.ndarray:
        """Record times as ``datetime64[ns]`` (UTC, tz-naive); NaT where unknown."""
        if "datetime" not in self.schema.names:
            return datetimes_of(pa.table({"id": pa.nulls(len(self))}))
        return datetimes_of(pa.table({"datetime": self._column("datetime")}))

    @property
    def geometries(self) -> np.ndarray:
        """Footprints as shapely geometries in OGC:CRS84 (None where unknown)."""
        import shapely

        if "geometry" not in self.schema.names:
            return np.full(len(self), None, dtype=object)
        col = _combined(self._column("geometry"))
        if isinstance(col.type, pa.ExtensionType):
            col = col.storage
        return shapely.from_wkb(col.to_numpy(zero_copy_only=False))

    @property
    def crs(self) -> list[str | None]:
        """Each record's CRS (authority code or WKT), from ``crs`` or ``proj:epsg``."""
        n = len(self)
        out: list[str | None] = [None] * n
        if "crs" in self.schema.names:
            out = [None if v is None else str(v) for v in self._column("crs").to_pylist()]
        if "proj:epsg" in self.schema.names:
            codes = self._column("proj:epsg").to_pylist()
            out = [
                c if c else (f"EPSG:{int(e)}" if e else None)
                for c, e in zip(out, codes, strict=True)
            ]
        return out

    def user_columns(self) -> list[str]:
        """Scalar columns beyond the schema (split, label, cloud cover, ...), in table order."""
        out = []
        for f in self.schema:
            if f.name in SCHEMA_COLUMNS or f.name.endswith(METADATA_SUFFIX):
                continue
            t = f.type
            if pa.types.is_dictionary(t):
                t = t.value_type
            if pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
                continue
            out.append(f.name)
        return out

    # -- sources -----------------------------------------------------------

    def _asset_field(self, band: str, name: str) -> pa.Array | None:
        if "assets" not in self.schema.names:
            return None
        assets = _combined(self._column("assets"))
        t = assets.type
        if pa.types.is_struct(t):
            if band not in t.names:
                return None
            sub = pc.struct_field(assets, band)
        elif pa.types.is_map(t):
            sub = pc.map_lookup(assets, pa.scalar(band, t.key_type), "first")
        else:
            return None
        if pa.types.is_string(sub.type) or pa.types.is_large_string(sub.type):
            return sub if name == "href" else None
        if pa.types.is_struct(sub.type) and name in sub.type.names:
            return pc.struct_field(sub, name)
        return None

    def hrefs(self, band: str) -> list[str | None]:
        """The href of ``band`` in each record, in row order (None where a record has none).

        Reads the ``assets`` column only: no header metadata is parsed.
        """
        found = self._asset_field(band, "href")
        return [None] * len(self) if found is None else found.to_pylist()

    def sources(self, band: str) -> list[RasterSource]:
        """One :class:`~xarray_rasteret._types.RasterSource` per record for ``band``, in row order.

        Parameters
        ----------
        band
            A band name from :attr:`bands`.

        Returns
        -------
        list of RasterSource

        Raises
        ------
        BandNotFoundError
            If the collection has no such band (the message lists the bands there are).
        MissingMetadataError
            If a record lacks the band's header metadata or its href.

        Examples
        --------
        >>> src = coll.sources("B04")[0]  # doctest: +SKIP
        >>> src.href, src.crs, src.levels[0].width  # doctest: +SKIP
        ('s3://.../B04.tif', 'EPSG:32633', 10980)
        """
        bands = self.bands
        if band not in bands:
            raise BandNotFoundError(f"no band {band!r} in the collection; its bands are {bands}")
        column = band + METADATA_SUFFIX
        fix = "rebuild the collection with xarray_rasteret.build(...) to parse the COG headers"
        if column not in self.schema.names:
            first = self.ids[0] if len(self) else "?"
            raise MissingMetadataError(
                f"record {first!r} has no {column!r} (no header metadata for band {band!r}); {fix}"
            )
        md = _combined(self._column(column))
        missing = md.is_null().to_numpy(zero_copy_only=False)
        hrefs = self.hrefs(band)
        bad = missing | np.array([h is None for h in hrefs], bool)
        if bad.any():
            i = int(np.argmax(bad))
            what = f"no {column!r}" if missing[i] else f"no href for band {band!r} in 'assets'"
            raise MissingMetadataError(
                f"record {self.ids[i]!r} has {what} ({int(bad.sum())} of {len(self)} records "
                f"lack band {band!r}); filter those records out or {fix}"
            )
        bi = self._asset_field(band, "band_index")
        band_index = None
        if bi is not None:
            band_index = np.asarray(bi.fill_null(0).to_numpy(zero_copy_only=False), np.int64)
        return sources_from_metadata(
            md, hrefs, self.crs, band_index=band_index, ids=self._column("id"), band=band
        )

    # -- filtering -----------------------------------------------------------

    def filter(
        self,
        *,
        bbox: Sequence[float] | None = None,
        bbox_crs: str = "EPSG:4326",
        time: Any = None,
        **equals: Any,
    ) -> Collection:
        """Select records by footprint, time and column values.

        Parameters
        ----------
        bbox
            ``(xmin, ymin, xmax, ymax)`` in ``bbox_crs``; records whose footprint
            intersects it are kept.
        bbox_crs
            CRS of ``bbox`` (default EPSG:4326, longitude/latitude, as in
            ``open_dataset`` and the helpers).
        time
            ``(start, end)``, inclusive; strings or datetimes (naive ones are UTC).
            A date-only end (``"2024-03-31"``, ``"2024-03"``, ``"2024"``) includes
            that whole period. A single value selects that period.
        **equals
            ``column=value`` (a list/set of values matches any of them);
            ``column_lt/_le/_gt/_ge=value`` compares. ``datetime=(start, end)``
            is the same as ``time=(start, end)``.

        Returns
        -------
        Collection
            The selected records, in their order.

        Raises
        ------
        ValueError
            For an unknown column (the message lists the columns).

        Examples
        --------
        >>> coll.filter(bbox=(11, 46, 11.5, 46.5), time=("2024-06", "2024-08"))  # doctest: +SKIP
        >>> coll.filter(split="train", cloud_cover_lt=20)  # doctest: +SKIP
        """
        names = self.schema.names
        rasteret_names = {k: equals.pop(k) for k in _SUBSET_OPTIONS if k in equals}
        if "split_column" in rasteret_names and "split" in equals:
            rasteret_names["split"] = equals.pop("split")
        if "cloud_cover_lt" in rasteret_names and "cloud_cover" in names:
            equals["cloud_cover_lt"] = rasteret_names.pop("cloud_cover_lt")  # a column's own
        if rasteret_names:
            return self.filter(bbox=bbox, bbox_crs=bbox_crs, time=time, **equals).subset(
                **rasteret_names
            )
        crit = criteria(names, bbox, bbox_crs, time, equals)
        if self._table is None and self._scan is not None:
            return Collection._lazy(select(self._scan, crit), self.name)
        mask = table_mask(self.table, crit, lambda rows: self.geometries[rows])
        return Collection(self.table.filter(pa.array(mask)), name=self.name)

    # -- output ----------------------------------------------------------------

    # rasteret's Collection methods take the geometries (points) and the bands
    # positionally; so do these, so that code written for rasteret runs unchanged.

    def get_numpy(self, geometries: Any = None, bands: Any = None, **kwargs: Any) -> np.ndarray:
        """Pixels inside geometries as one array; see :func:`xarray_rasteret.get_numpy`."""
        from ..helpers import get_numpy

        return get_numpy(self, **_positional(geometries=geometries, bands=bands), **kwargs)

    def get_gdf(self, geometries: Any = None, bands: Any = None, **kwargs: Any) -> Any:
        """One row per (geometry, record); see :func:`xarray_rasteret.get_gdf`."""
        from ..helpers import get_gdf

        return get_gdf(self, **_positional(geometries=geometries, bands=bands), **kwargs)

    def get_xarray(self, geometries: Any = None, bands: Any = None, **kwargs: Any) -> Any:
        """Pixels inside geometries as a Dataset; see :func:`xarray_rasteret.get_xarray`."""
        from ..helpers import get_xarray

        return get_xarray(self, **_positional(geometries=geometries, bands=bands), **kwargs)

    def sample_points(self, points: Any = None, bands: Any = None, **kwargs: Any) -> pa.Table:
        """Values at points; see :func:`xarray_rasteret.sample_points`."""
        from ..helpers import sample_points

        return sample_points(self, **_positional(points=points, bands=bands), **kwargs)

    # -- rasteret's names for views of the table -------------------------------

    def subset(
        self,
        *,
        cloud_cover_lt: float | None = None,
        date_range: tuple[Any, Any] | None = None,
        bbox: Sequence[float] | None = None,
        geometries: Any = None,
        split: str | Sequence[str] | None = None,
        split_column: str = "split",
    ) -> Collection:
        """Records matching every given criterion, as rasteret's ``Collection.subset``.

        Parameters
        ----------
        cloud_cover_lt
            Keep records whose ``eo:cloud_cover`` is below this value.
        date_range
            ``(start, end)``, inclusive (see :meth:`filter`'s ``time``).
        bbox
            ``(xmin, ymin, xmax, ymax)`` in OGC:CRS84.
        geometries
            Any geometry input of the helpers (a bbox, shapely, WKB, GeoJSON,
            Arrow arrays); records whose footprint intersects one are kept.
        split, split_column
            Keep records whose ``split_column`` is ``split`` (or one of them).

        Returns
        -------
        Collection
        """
        equals: dict[str, Any] = {}
        if cloud_cover_lt is not None:
            equals["eo:cloud_cover_lt"] = cloud_cover_lt
        if split is not None:
            equals[split_column] = [split] if isinstance(split, str) else list(split)
        out = self.filter(bbox=bbox, time=date_range, **equals)
        if geometries is not None:
            out = out._intersecting(geometries)
        return out

    @classmethod
    def from_parquet(
        cls, path: str | os.PathLike[str], name: str = "", **kwargs: Any
    ) -> Collection:
        """:func:`load` of ``path`` (rasteret's spelling); ``name`` labels it."""
        coll = load(path, **kwargs)
        if name:
            coll.name = name
        return coll

    def select_split(
        self, split: str | Sequence[str], *, split_column: str = "split"
    ) -> Collection:
        """Records of one split (or several): ``subset(split=...)``, as in rasteret."""
        return self.subset(split=split, split_column=split_column)

    def head(self, n: int = 5, columns: list[str] | None = None) -> pa.Table:
        """The first ``n`` rows of the table (of ``columns``), as in rasteret."""
        if n < 0:
            raise ValueError(f"head() needs n >= 0, got {n}")
        return self.to_table(columns).slice(0, n)

    def to_table(self, columns: list[str] | None = None) -> pa.Table:
        """The collection's table (of ``columns``, in that order)."""
        return self.table if columns is None else self.table.select(columns)

    @property
    def bounds(self) -> tuple[float, float, float, float] | None:
        """``(xmin, ymin, xmax, ymax)`` of every footprint in OGC:CRS84 (None if none)."""
        import shapely

        geoms = [g for g in self.geometries if g is not None]
        if not geoms:
            return None
        x0, y0, x1, y1 = (float(v) for v in shapely.total_bounds(geoms))
        return (x0, y0, x1, y1)

    @property
    def epsg(self) -> list[int]:
        """The distinct EPSG codes of the records' CRSs, sorted (as rasteret's ``epsg``)."""
        return sorted({code for c in set(self.crs) if (code := epsg_of(c)) is not None})

    def _intersecting(self, geometries: Any) -> Collection:
        import shapely

        from ..geo.aoi import normalize_geometries, to_crs

        aois = normalize_geometries(geometries)
        areas = to_crs(aois.geometries, aois.crs, as_crs("OGC:CRS84"))
        hit = shapely.intersects(self.geometries[:, None], np.asarray(areas)[None, :]).any(axis=1)
        return Collection(self.table.filter(pa.array(hit)), name=self.name)

    def to_parquet(
        self,
        path: str | os.PathLike[str],
        *,
        storage_options: dict[str, Any] | None = None,
        compact_tiles: bool = True,
    ) -> None:
        """Write the collection as GeoParquet 1.1.

        Larger collections than one row group (4096 records) are written sorted
        by place then time, so that filters skip most row groups; smaller ones
        keep their order.

        Parameters
        ----------
        path
            Local path (or ``file://`` URL); remote URLs when the store can write.
        storage_options
            Options for a remote store.
        compact_tiles
            Store each band's tile offsets as the gaps between tiles (``tile_gaps``,
            ``tile_offsets`` null: a fraction of the bytes, the same facts). False
            writes the offsets themselves, for tools that read them (DuckDB, rasteret).

        Examples
        --------
        >>> coll.to_parquet("s2.parquet")  # doctest: +SKIP
        >>> import geopandas
        >>> geopandas.read_parquet("s2.parquet").crs  # doctest: +SKIP
        <Geographic 2D CRS: OGC:CRS84>
        """
        write_table(
            self.table, path, storage_options=storage_options, compact_tiles=compact_tiles
        )

    def crs_counts(self) -> dict[str, int]:
        """How many records each CRS has, by a short label (``EPSG:32633``, or WKT cut short)."""
        counts: dict[str, int] = {}
        for c in self.crs:
            key = _short_crs(c)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def _first_record(self) -> Collection:
        """The first record alone (a lazy collection reads one row group of it, not all)."""
        if self._table is not None or self._scan is None or not len(self):
            return Collection(self.table.slice(0, 1), name=self.name)
        scan = self._scan
        index = scan.full_index(scan.groups()[:1])
        return Collection(scan.read(scan.names, tuple(a[:1] for a in index)), name=self.name)

    def __repr__(self) -> str:
        return summary_text(self)

    def _repr_html_(self) -> str:
        return summary_html(self)


def _short_crs(crs: str | None) -> str:
    if crs is None:
        return "none"
    if len(crs) < 40:
        return crs
    code = epsg_of(crs)
    return f"EPSG:{code}" if code else crs[:37] + "..."


def load(
    path: str | os.PathLike[str],
    *,
    bands: Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
) -> Collection:
    """Open a collection written by :meth:`Collection.to_parquet` (or by rasteret 0.4).

    A file, a flat folder of files (as :func:`~xarray_rasteret.collection.append`
    writes) or a remote file opens lazily: only the footers are read. A filter
    then reads the light columns (time, the ``bbox`` covering column, compared
    columns) of the row groups whose statistics could match and the footprints
    of the bbox candidates; the other columns of the selected rows are read when
    first needed (remote files by ranges). In a hive folder (``year=2024/...``), a
    filter on a key (time, on ``year=/month=``) opens no other partition's file.

    Parameters
    ----------
    path
        A Parquet file or a directory of them (hive-partitioned, as rasteret
        writes), a ``file://`` URL, or an ``http(s)://``/``s3://`` URL of one file
        or of a folder with a ``_metadata`` file.
    bands
        Read the header metadata of these bands only (the other bands'
        ``{band}_metadata`` columns, most of a collection's bytes, are not
        decoded; the collection then has these bands). Default: every band.
        If one of them has no metadata column, every band is read, so that
        using it raises an error listing the bands there are.
    storage_options
        Options for a remote store.
    backend
        A user store (obspec ``get_range_async``/``head_async``).

    Returns
    -------
    Collection

    Examples
    --------
    >>> coll = xr_rt.load("s2.parquet")  # doctest: +SKIP
    >>> len(coll), coll.bands  # doctest: +SKIP
    (120, ['B02', 'B03', 'B04'])
    >>> xr_rt.load("s2.parquet", bands=["B04"]).bands  # doctest: +SKIP
    ['B04']
    """
    target = os.fspath(path)
    name = os.path.basename(target.rstrip("/")) or None
    if is_local(target) and not os.path.exists(local_path(target)):
        raise ObjectNotFoundError(
            f"no collection at {target!r}: no such file or folder. Build one first, e.g. "
            f"xarray_rasteret.build(items).to_parquet({target!r}), or check the path"
        )
    scan = open_scan(target, bands=bands, storage_options=storage_options, backend=backend)
    if scan is not None:
        return Collection._lazy(scan, name)
    table = read_table(target, bands=bands, storage_options=storage_options, backend=backend)
    return Collection(table, name=name)


def _check_ids(schema: pa.Schema) -> None:
    if "id" not in schema.names:
        raise ValueError(f"a collection table needs an 'id' column; it has {schema.names}")


def _positional(**given: Any) -> dict[str, Any]:
    """The positional arguments of a helper method that were given, as keywords."""
    return {name: value for name, value in given.items() if value is not None}
