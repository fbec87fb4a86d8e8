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
from affine import Affine

from .._types import RasterSource
from ..errors import BandNotFoundError, MissingMetadataError
from ..geo.crs import as_crs
from ..geo.footprint import footprint_crs84, is_crs84
from .parquet import read_table, write_table
from .schema import METADATA_SUFFIX, SCHEMA_COLUMNS, epsg_of
from .sources import sources_from_metadata

__all__ = ["Collection", "load"]

# rasteret's Collection.subset keywords, also accepted by filter() and the helpers.
_SUBSET_OPTIONS = ("cloud_cover_lt", "date_range", "geometries", "split_column")

_CMP = {"_lt": pc.less, "_le": pc.less_equal, "_gt": pc.greater, "_ge": pc.greater_equal}


def _combined(col: pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


class Collection:
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

    def __init__(self, table: pa.Table, *, name: str | None = None) -> None:
        if "id" not in table.column_names:
            raise ValueError(
                f"a collection table needs an 'id' column; it has {table.column_names}"
            )
        self.table = table
        self.name = name

    # -- basic views -------------------------------------------------------

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def bands(self) -> list[str]:
        """Band names: those with a ``{band}_metadata`` column, else the asset keys."""
        meta = [
            c[: -len(METADATA_SUFFIX)]
            for c in self.table.column_names
            if c.endswith(METADATA_SUFFIX) and pa.types.is_struct(self.table.schema.field(c).type)
        ]
        keys = self._asset_keys()
        if not meta:
            return keys
        return [k for k in keys if k in meta] + [m for m in meta if m not in keys]

    def _asset_keys(self) -> list[str]:
        if "assets" not in self.table.column_names:
            return []
        t = self.table.schema.field("assets").type
        if pa.types.is_struct(t):
            return [f.name for f in t]
        if pa.types.is_map(t):
            keys = _combined(self.table.column("assets")).keys
            return [str(k) for k in dict.fromkeys(keys.to_pylist())]
        return []

    @property
    def ids(self) -> list[str]:
        """Record ids, in row order."""
        return [str(v) for v in self.table.column("id").to_pylist()]

    @property
    def datetimes(self) -> np.ndarray:
        """Record times as ``datetime64[ns]`` (UTC, tz-naive); NaT where unknown."""
        if "datetime" not in self.table.column_names:
            return np.full(len(self), np.datetime64("NaT"), "datetime64[ns]")
        col = _combined(self.table.column("datetime"))
        tz = col.type.tz if pa.types.is_timestamp(col.type) else None
        col = pc.cast(col, pa.timestamp("ns", tz=tz))  # values are UTC either way
        return np.asarray(col.to_numpy(zero_copy_only=False), "datetime64[ns]")

    @property
    def geometries(self) -> np.ndarray:
        """Footprints as shapely geometries in OGC:CRS84 (None where unknown)."""
        import shapely

        if "geometry" not in self.table.column_names:
            return np.full(len(self), None, dtype=object)
        col = _combined(self.table.column("geometry"))
        if isinstance(col.type, pa.ExtensionType):
            col = col.storage
        return shapely.from_wkb(col.to_numpy(zero_copy_only=False))

    @property
    def crs(self) -> list[str | None]:
        """Each record's CRS (authority code or WKT), from ``crs`` or ``proj:epsg``."""
        n = len(self)
        out: list[str | None] = [None] * n
        if "crs" in self.table.column_names:
            out = [None if v is None else str(v) for v in self.table.column("crs").to_pylist()]
        if "proj:epsg" in self.table.column_names:
            codes = self.table.column("proj:epsg").to_pylist()
            out = [
                c if c else (f"EPSG:{int(e)}" if e else None)
                for c, e in zip(out, codes, strict=True)
            ]
        return out

    def user_columns(self) -> list[str]:
        """Scalar columns beyond the schema (split, label, cloud cover, ...), in table order."""
        out = []
        for f in self.table.schema:
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
        if "assets" not in self.table.column_names:
            return None
        assets = _combined(self.table.column("assets"))
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
        if column not in self.table.column_names:
            first = self.ids[0] if len(self) else "?"
            raise MissingMetadataError(
                f"record {first!r} has no {column!r} (no header metadata for band {band!r}); {fix}"
            )
        md = _combined(self.table.column(column))
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
            md, hrefs, self.crs, band_index=band_index, ids=self.table.column("id"), band=band
        )

    # -- filtering -----------------------------------------------------------

    def filter(
        self,
        *,
        bbox: Sequence[float] | None = None,
        bbox_crs: str = "OGC:CRS84",
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
            CRS of ``bbox``.
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
        names = self.table.column_names
        rasteret_names = {k: equals.pop(k) for k in _SUBSET_OPTIONS if k in equals}
        if "split_column" in rasteret_names and "split" in equals:
            rasteret_names["split"] = equals.pop("split")
        if "cloud_cover_lt" in rasteret_names and "cloud_cover" in names:
            equals["cloud_cover_lt"] = rasteret_names.pop("cloud_cover_lt")  # a column's own
        if rasteret_names:
            return self.filter(bbox=bbox, bbox_crs=bbox_crs, time=time, **equals).subset(
                **rasteret_names
            )
        mask = np.ones(len(self), bool)
        when = equals.get("datetime")
        if isinstance(when, tuple) and len(when) == 2:  # datetime=(start, end) means time=
            del equals["datetime"]
            mask &= self._time_mask(when)
        if bbox is not None:
            mask &= self._bbox_mask(bbox, bbox_crs)
        if time is not None:
            mask &= self._time_mask(time)
        for key, value in equals.items():
            op = None
            column = key
            if key not in names and key[-3:] in _CMP and key[:-3] in names:
                column, op = key[:-3], _CMP[key[-3:]]
            if column not in names:
                raise ValueError(
                    f"unsupported option or unknown column {key!r} in filter; the options are "
                    f"bbox, bbox_crs, time, datetime, {', '.join(_SUBSET_OPTIONS)}, and "
                    f"column filters on the columns {names} (suffix _lt/_le/_gt/_ge to compare)"
                )
            col = self.table.column(column)
            if op is not None:
                res = op(col, value)
            elif isinstance(value, list | tuple | set | frozenset):  # any of
                res = pc.is_in(col, value_set=pa.array(list(value)))
            else:
                res = pc.equal(col, value)
            mask &= np.asarray(res.fill_null(False).to_numpy(zero_copy_only=False), bool)
        return Collection(self.table.filter(pa.array(mask)), name=self.name)

    def _bbox_mask(self, bbox: Sequence[float], bbox_crs: str) -> np.ndarray:
        import shapely

        x0, y0, x1, y1 = (float(v) for v in bbox)
        area = shapely.box(x0, y0, x1, y1)
        if not is_crs84(bbox_crs):
            area = footprint_crs84(Affine(x1 - x0, 0, x0, 0, y1 - y0, y0), 1, 1, bbox_crs)
        return np.asarray(shapely.intersects(self.geometries, area), bool)

    def _time_mask(self, time: Any) -> np.ndarray:
        start, end = time if isinstance(time, tuple | list) else (time, time)
        t = self.datetimes
        mask = ~np.isnat(t)
        if start is not None:
            mask &= t >= _time_bound(start, end=False)
        if end is not None:
            mask &= t <= _time_bound(end, end=True)
        return mask

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
        self, path: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
    ) -> None:
        """Write the collection as GeoParquet 1.1.

        Parameters
        ----------
        path
            Local path (or ``file://`` URL); remote URLs when the store can write.
        storage_options
            Options for a remote store.

        Examples
        --------
        >>> coll.to_parquet("s2.parquet")  # doctest: +SKIP
        >>> import geopandas
        >>> geopandas.read_parquet("s2.parquet").crs  # doctest: +SKIP
        <Geographic 2D CRS: OGC:CRS84>
        """
        import json

        table = self.table
        meta = dict(table.schema.metadata or {})
        meta[b"geo"] = json.dumps(self._geo_metadata()).encode()
        write_table(table.replace_schema_metadata(meta), path, storage_options=storage_options)

    def _geo_metadata(self) -> dict[str, Any]:
        import shapely

        geoms = self.geometries
        valid = np.array([g is not None for g in geoms], bool)
        kinds = sorted({shapely.get_type_id(g) for g in geoms[valid]}) if valid.any() else []
        names = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint",
                 5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}  # fmt: skip
        column: dict[str, Any] = {
            "encoding": "WKB",
            "geometry_types": [names[k] for k in kinds if k in names],
            "crs": as_crs("OGC:CRS84").to_json_dict(),
        }
        if valid.any():
            b = shapely.total_bounds(geoms[valid])
            column["bbox"] = [float(v) for v in b]
        if "bbox" in self.table.column_names:
            column["covering"] = {
                "bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}
            }
        return {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}

    def crs_counts(self) -> dict[str, int]:
        """How many records each CRS has, by a short label (``EPSG:32633``, or WKT cut short)."""
        counts: dict[str, int] = {}
        for c in self.crs:
            key = _short_crs(c)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        lines = [f"<xarray_rasteret.Collection{label}: {len(self)} records>"]
        lines.append(f"  bands: {', '.join(self.bands) or '-'}")
        t = self.datetimes
        t = t[~np.isnat(t)]
        if len(t):
            lines.append(f"  time:  {t.min()} .. {t.max()}")
        counts = self.crs_counts()
        lines.append("  crs:   " + ", ".join(f"{k} ({v})" for k, v in counts.items()))
        extra = self.user_columns()
        if extra:
            lines.append(f"  columns: {', '.join(extra)}")
        return "\n".join(lines)


def _short_crs(crs: str | None) -> str:
    if crs is None:
        return "none"
    if len(crs) < 40:
        return crs
    code = epsg_of(crs)
    return f"EPSG:{code}" if code else crs[:37] + "..."


def _time_bound(value: Any, *, end: bool) -> np.datetime64:
    import pandas as pd

    if isinstance(value, str) and "T" not in value and len(value.strip()) <= 10:
        period = pd.Period(value.strip())
        ts = period.end_time if end else period.start_time
    else:
        ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.to_datetime64(), "ns")


def load(
    path: str | os.PathLike[str],
    *,
    bands: Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
) -> Collection:
    """Open a collection written by :meth:`Collection.to_parquet` (or by rasteret 0.4).

    Parameters
    ----------
    path
        A Parquet file or a directory of them (hive-partitioned, as rasteret
        writes), a ``file://`` URL, or an ``http(s)://``/``s3://`` URL of one file.
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
    table = read_table(target, bands=bands, storage_options=storage_options, backend=backend)
    return Collection(table, name=name)


def _positional(**given: Any) -> dict[str, Any]:
    """The positional arguments of a helper method that were given, as keywords."""
    return {name: value for name, value in given.items() if value is not None}
