"""Build a collection: parse COG headers (async-tiff) into RasterSources and rows.

Sources of records:

* a list of COG paths/URLs: one record per file, or records grouped from
  single-band files with ``group_by``;
* STAC items (dicts, FeatureCollections, pystac objects, JSON files);
* tables (pyarrow, Parquet/GeoParquet incl. stac-geoparquet, GeoDataFrame) with
  ``id``, ``datetime``, ``geometry`` and ``assets`` columns.

Each distinct file's header is read once, all files concurrently (bounded by
``max_concurrent``), normally with a single request per file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from .._sync import sync
from .._types import RasterSource
from ..collection import Collection, make_table
from ..geo.footprint import footprint_crs84
from ..geo.grid import same_crs
from ..storage import redact_url
from . import _stac
from ._header import read_sources_async
from ._paths import expand_paths, is_table_folder

__all__ = ["build", "build_async"]

_TABLE_SUFFIXES = (".parquet", ".geoparquet", ".pq")
_JSON_SUFFIXES = (".json", ".geojson")
# Columns of stac-geoparquet (and of our own schema) that are not user columns.
_BOOKKEEPING = frozenset(
    {"type", "stac_version", "stac_extensions", "links", "bbox", "proj:epsg", "crs"}
)

# ---------------------------------------------------------------------------
# Many headers
# ---------------------------------------------------------------------------


async def _parse_all(
    hrefs: Sequence[str],
    *,
    max_concurrent: int,
    progress: bool,
    storage_options: dict[str, Any] | None,
    backend: Any,
) -> dict[str, list[RasterSource]]:
    sem = asyncio.Semaphore(max(1, int(max_concurrent)))
    # No bar object at all without progress: tqdm's first instance creates a
    # multiprocessing lock, which costs before the first request.
    bar = tqdm(total=len(hrefs), desc="COG headers", unit="file") if progress else None

    async def one(href: str) -> tuple[str, list[RasterSource]]:
        async with sem:
            try:
                return href, await read_sources_async(
                    href, storage_options=storage_options, backend=backend
                )
            except Exception as e:
                shown = redact_url(href)  # no signature or token in a note
                if shown not in str(e):
                    e.add_note(f"while reading the TIFF header of {shown}")
                raise
            finally:
                if bar is not None:
                    bar.update(1)

    tasks = [asyncio.ensure_future(one(h)) for h in hrefs]
    out: dict[str, list[RasterSource]] = {}
    try:
        for fut in asyncio.as_completed(tasks):
            href, srcs = await fut
            out[href] = srcs
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return out


# ---------------------------------------------------------------------------
# Inputs -> records
# ---------------------------------------------------------------------------


def _is_table_like(obj: object) -> bool:
    return isinstance(obj, pa.Table) or hasattr(obj, "to_dict") and hasattr(obj, "columns")


def _rows_from_table(source: Any) -> list[dict[str, Any]]:
    """Rows (dicts) from a pyarrow Table, a pandas DataFrame or a GeoDataFrame."""
    if isinstance(source, pa.Table):
        return source.to_pylist()
    geom_name = getattr(source, "_geometry_column_name", None)
    if geom_name is not None:  # GeoDataFrame: footprints in OGC:CRS84
        crs = source.crs
        if crs is not None and not crs.equals("OGC:CRS84"):
            source = source.to_crs("OGC:CRS84")
        if geom_name != "geometry":
            source = source.rename_geometry("geometry")
    return source.to_dict("records")


def _asset_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list):  # a map column comes back as (key, value) pairs
        return dict(value)
    raise TypeError(f"cannot read an 'assets' value of type {type(value).__name__}")


def _geometry(value: Any) -> Any:
    import shapely
    from shapely.geometry import shape

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return shapely.from_wkb(bytes(value))
    if isinstance(value, Mapping):
        return shape(value)
    if isinstance(value, str):
        return shapely.from_wkt(value)
    return value


def _records_from_rows(rows: list[dict[str, Any]], bands: list[str] | None) -> list[_stac.Record]:
    records = []
    for row in rows:
        if "id" not in row or "assets" not in row:
            raise ValueError(
                f"a table to build from needs 'id' and 'assets' columns; it has {sorted(row)}"
            )
        assets_in = _asset_dict(row["assets"])
        selected: dict[str, _stac.AssetRef] = {}
        for key in bands if bands is not None else list(assets_in):
            asset = assets_in.get(key)
            if isinstance(asset, str):
                asset = {"href": asset}
            if not asset or not asset.get("href"):
                continue
            if bands is None and not _stac.asset_is_cog(key, asset):
                continue
            bi = asset.get("band_index")
            selected[key] = _stac.AssetRef(
                href=str(asset["href"]),
                band_index=int(bi) if bi is not None else None,
                overrides=_stac.band_overrides(asset),
            )
        props = {
            k: v
            for k, v in row.items()
            if k not in ("id", "datetime", "geometry", "assets")
            and k not in _BOOKKEEPING
            and not k.endswith("_metadata")
        }
        when = row.get("datetime")
        if when is None:
            when = row.get("start_datetime")
        records.append(
            _stac.Record(
                id=str(row["id"]),
                datetime=_stac.parse_datetime(when),
                geometry=_geometry(row.get("geometry")),
                properties=_stac.scalar_properties(props),
                assets=selected,
            )
        )
    return records


def _stem(href: str) -> str:
    base = os.path.basename(href.split("?")[0].rstrip("/"))
    root, ext = os.path.splitext(base)
    return root if ext.lower() in (".tif", ".tiff") else base


def _path_records(
    hrefs: Sequence[str], group_by: Callable[[str], tuple[str, str]] | None
) -> list[_stac.Record]:
    if group_by is None:
        stems = [_stem(h) for h in hrefs]
        ids = stems if len(set(stems)) == len(stems) else list(hrefs)
        return [
            _stac.Record(id=i, datetime=None, assets={"": _stac.AssetRef(h)})
            for i, h in zip(ids, hrefs, strict=True)
        ]
    by_id: dict[str, _stac.Record] = {}
    for h in hrefs:
        rid, band = group_by(h)
        rec = by_id.setdefault(str(rid), _stac.Record(id=str(rid), datetime=None))
        if band in rec.assets:
            raise ValueError(
                f"group_by gave record {rid!r} band {band!r} twice: {rec.assets[band].href} and {h}"
            )
        rec.assets[str(band)] = _stac.AssetRef(h)
    return list(by_id.values())


def _load_source(source: Any) -> tuple[str, Any]:
    """Classify ``source``: ('paths', [...]) | ('stac', [...]) | ('rows', [...])."""
    if _is_table_like(source):
        return "rows", _rows_from_table(source)
    if isinstance(source, str | os.PathLike):
        s = os.fspath(source)
        if s.lower().endswith(_TABLE_SUFFIXES) or is_table_folder(s):
            import pyarrow.parquet as pq

            return "rows", _rows_from_table(pq.read_table(s))
        if s.lower().endswith(_JSON_SUFFIXES):
            return "stac", _stac.read_items(s)
        return "paths", expand_paths([s])
    if _stac.is_stac_like(source):
        return "stac", _stac.read_items(source)
    if isinstance(source, Sequence):
        items = list(source)
        if not items:
            raise ValueError("nothing to build from: the source is empty")
        first = items[0]
        if _stac.is_stac_like(first) or (
            isinstance(first, str | os.PathLike)
            and os.fspath(first).lower().endswith(_JSON_SUFFIXES)
        ):
            return "stac", _stac.read_items(items)
        if all(isinstance(h, str | os.PathLike) for h in items):
            return "paths", expand_paths(items)
    raise TypeError(
        "build() takes a list of COG paths/URLs, STAC items (dicts, a FeatureCollection, "
        f"JSON files), or a table (pyarrow, Parquet, GeoDataFrame); got {type(source).__name__}"
    )


def _with_overrides(src: RasterSource, over: Mapping[str, float | None] | None) -> RasterSource:
    """Fill what the file lacks (nodata, scale/offset) from STAC ``raster:bands``."""
    if not over:
        return src
    changes: dict[str, Any] = {}
    if src.nodata is None and over.get("nodata") is not None:
        changes["nodata"] = over["nodata"]
    if src.scale == 1.0 and src.offset == 0.0:
        if over.get("scale") is not None:
            changes["scale"] = over["scale"]
        if over.get("offset") is not None:
            changes["offset"] = over["offset"]
    return dataclasses.replace(src, **changes) if changes else src


def _expand(
    record: _stac.Record,
    parsed: Mapping[str, list[RasterSource]],
    band_names: Sequence[str] | None,
) -> dict[str, RasterSource]:
    """Map the bands of one record to RasterSources (multi-sample files fan out)."""
    out: dict[str, RasterSource] = {}
    for key, ref in record.assets.items():
        srcs = parsed[ref.href]
        if ref.band_index is not None:
            if not 0 <= ref.band_index < len(srcs):
                raise ValueError(
                    f"record {record.id!r} band {key!r}: band_index {ref.band_index} but "
                    f"{redact_url(ref.href)} has {len(srcs)} samples"
                )
            picks = [(key, ref.band_index)]
        elif key == "":  # a plain path: bands named after the samples
            names = list(band_names) if band_names is not None else None
            if names is not None and len(names) != len(srcs):
                raise ValueError(
                    f"band_names has {len(names)} names but {redact_url(ref.href)} has "
                    f"{len(srcs)} samples"
                )
            names = names or [f"band_{i + 1}" for i in range(len(srcs))]
            picks = list(zip(names, range(len(srcs)), strict=True))
        elif len(srcs) == 1:
            picks = [(key, 0)]
        else:
            picks = [(f"{key}_{i + 1}", i) for i in range(len(srcs))]
        for name, i in picks:
            over = ref.overrides[i] if i < len(ref.overrides) else None
            out[name] = _with_overrides(srcs[i], over)
    return out


def _datetimes_from_tags(
    records: Sequence[_stac.Record], per_record: Sequence[Mapping[str, RasterSource]]
) -> None:
    """Give path records without a time the TIFF DateTime tag of their first file.

    Only paths carry no other time; the tag has no time zone and is taken as UTC.
    """
    for rec, srcs in zip(records, per_record, strict=True):
        if rec.datetime is not None:
            continue
        tagged = next((s.extra["datetime"] for s in srcs.values() if "datetime" in s.extra), None)
        if isinstance(tagged, str):
            rec.datetime = _stac.parse_datetime(tagged)


def _record_crs(record_id: str, srcs: Mapping[str, RasterSource]) -> str | None:
    crs = None
    first = None
    for band, s in srcs.items():
        if first is None:
            crs, first = s.crs, band
        elif not same_crs(crs, s.crs):
            raise ValueError(
                f"record {record_id!r}: band {band!r} is in {s.crs!r} but band {first!r} "
                f"in {crs!r}; bands of one record must share a CRS"
            )
    return crs


async def build_async(
    source: Any,
    *,
    bands: Sequence[str] | None = None,
    band_names: Sequence[str] | None = None,
    group_by: Callable[[str], tuple[str, str]] | None = None,
    progress: bool = False,
    max_concurrent: int = 64,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
    name: str | None = None,
    output: str | os.PathLike[str] | None = None,
    batch_size: int = 4096,
) -> Collection:
    """Build a collection by parsing the COG headers of ``source`` (async version of :func:`build`).

    See :func:`build` for the parameters.

    Returns
    -------
    Collection

    Examples
    --------
    >>> coll = await build_async(["a.tif", "b.tif"])  # doctest: +SKIP
    """
    kind, payload = _load_source(source)
    band_list = list(bands) if bands is not None else None
    if kind == "paths":
        records = _path_records(payload, group_by)
    elif kind == "stac":
        records = _stac.records_from_items(payload, band_list)
    else:
        records = _records_from_rows(payload, band_list)
    if kind != "paths" and (band_names is not None or group_by is not None):
        raise ValueError("band_names and group_by apply to a list of COG paths only")
    if not records:
        raise ValueError("nothing to build from: no records")
    if kind != "paths" and band_list is not None:
        absent = [b for b in band_list if not any(b in rec.assets for rec in records)]
        if absent:
            raise ValueError(
                f"bands {absent} are in the assets of none of the {len(records)} records"
            )

    hrefs = list(dict.fromkeys(r.href for rec in records for r in rec.assets.values()))
    if not hrefs:
        wanted = f" {band_list}" if band_list else ""
        raise ValueError(f"no COG assets{wanted} found in the {len(records)} records")
    options = dict(
        max_concurrent=max_concurrent,
        progress=progress,
        storage_options=storage_options,
        backend=backend,
    )
    if output is None:
        parsed = await _parse_all(hrefs, **options)
        table = _table_of(records, parsed, kind, band_names, band_list)
        return Collection(table, name=name)
    return await _build_to(output, records, kind, band_names, band_list, options, batch_size, name)


async def _build_to(
    output: str | os.PathLike[str],
    records: list[_stac.Record],
    kind: str,
    band_names: Sequence[str] | None,
    band_list: list[str] | None,
    options: dict[str, Any],
    batch_size: int,
    name: str | None,
) -> Collection:
    """Parse and write ``batch_size`` records at a time: only one batch is ever in memory."""
    from ..collection import load, write_collection

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    schema: list[pa.Schema] = []

    async def batches() -> Any:
        for start in range(0, len(records), batch_size):
            batch = records[start : start + batch_size]
            hrefs = list(dict.fromkeys(r.href for rec in batch for r in rec.assets.values()))
            parsed = await _parse_all(hrefs, **options)
            table = _table_of(batch, parsed, kind, band_names, band_list)
            if schema:
                table = _conform(table, schema[0], start)
            else:
                schema.append(table.schema)
            yield table

    loop_batches = batches()

    def tables() -> Any:
        # The writer pulls tables synchronously; each batch's headers are awaited here,
        # on the loop this coroutine runs on, one batch at a time.
        while True:
            try:
                yield asyncio.run_coroutine_threadsafe(anext(loop_batches), loop).result()
            except StopAsyncIteration:
                return

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(write_collection, tables(), output)
    out = load(output)
    out.name = name
    return out


def _conform(table: pa.Table, schema: pa.Schema, start: int) -> pa.Table:
    """``table`` in the first batch's ``schema``: missing bands/columns null, others refused."""
    extra = [n for n in table.column_names if n not in schema.names]
    if extra:
        raise ValueError(
            f"the records from {start} on have columns {extra} that the first batch lacks; "
            "build with a larger batch_size (or without output=) so that the first batch "
            "has every band and property"
        )
    cols = [
        table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    try:
        return pa.table(cols, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.Table.from_arrays(
            [c.cast(f.type) for c, f in zip(cols, schema, strict=True)], schema=schema
        )


def _table_of(
    records: list[_stac.Record],
    parsed: Mapping[str, list[RasterSource]],
    kind: str,
    band_names: Sequence[str] | None,
    band_list: list[str] | None,
) -> pa.Table:
    """The collection table of ``records`` from their parsed headers."""
    per_record = [_expand(rec, parsed, band_names) for rec in records]
    if kind == "paths":
        _datetimes_from_tags(records, per_record)
    all_bands = list(dict.fromkeys(b for srcs in per_record for b in srcs))
    if kind == "paths" and band_list is not None:
        unknown = [b for b in band_list if b not in all_bands]
        if unknown:
            raise ValueError(f"bands {unknown} not found; the files have bands {all_bands}")
        all_bands = band_list
    keep = [i for i, srcs in enumerate(per_record) if any(b in srcs for b in all_bands)]
    records = [records[i] for i in keep]
    per_record = [per_record[i] for i in keep]

    crs = [_record_crs(rec.id, srcs) for rec, srcs in zip(records, per_record, strict=True)]
    geometries = []
    for rec, srcs, c in zip(records, per_record, crs, strict=True):
        geom = rec.geometry
        if geom is None and srcs:
            s = next(iter(srcs.values()))
            geom = footprint_crs84(s.transform, s.levels[0].width, s.levels[0].height, c)
        geometries.append(geom)
    user_names = list(dict.fromkeys(k for rec in records for k in rec.properties))
    table = make_table(
        ids=[rec.id for rec in records],
        datetimes=[rec.datetime for rec in records],
        geometries=geometries,
        crs=crs,
        assets={
            b: [(s[b].href, s[b].band_index) if b in s else None for s in per_record]
            for b in all_bands
        },
        sources={b: [s.get(b) for s in per_record] for b in all_bands},
        user={k: [rec.properties.get(k) for rec in records] for k in user_names},
    )
    return table


def build(
    source: Any,
    *,
    bands: Sequence[str] | None = None,
    band_names: Sequence[str] | None = None,
    group_by: Callable[[str], tuple[str, str]] | None = None,
    progress: bool = False,
    max_concurrent: int = 64,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
    name: str | None = None,
    output: str | os.PathLike[str] | None = None,
    batch_size: int = 4096,
) -> Collection:
    """Build a collection by parsing the COG headers of ``source``.

    Parameters
    ----------
    source
        One of:

        * a list of COG paths/URLs: one record per file (id: the file name
          without ``.tif``), bands ``band_1..N`` after the file's samples;
        * STAC items: a list of item dicts, a FeatureCollection dict, pystac
          objects, or paths of JSON files holding items or a FeatureCollection
          (relative asset hrefs resolve against the item's file);
        * a table with ``id``, ``datetime``, ``geometry`` (WKB, OGC:CRS84) and
          ``assets`` columns: a pyarrow Table, a (Geo)Parquet path (stac-geoparquet
          too) or a (Geo)DataFrame.
    bands
        Asset keys to index (STAC, tables), or band names to keep (paths). By
        default every asset whose media type (or extension) is TIFF and whose
        roles are not only thumbnail/overview/metadata. A multi-sample asset
        becomes bands ``{key}_1..N`` unless the asset gives a ``band_index``.
    band_names
        Names of the samples of each file (paths without ``group_by``).
    group_by
        ``callable(href) -> (record_id, band_name)`` grouping single-band files
        into records (e.g. one Sentinel-2 scene from its ``_B04.tif`` files).
    progress
        Show a tqdm progress bar while headers are read.
    max_concurrent
        Headers read at once.
    storage_options, backend
        Store options or a user store (see :func:`xarray_rasteret.storage.resolve_store`).
    name
        A label for the collection.
    output
        Write the collection to this Parquet file as it is built, ``batch_size``
        records at a time (headers parsed, rows written, then the next batch: a
        build of 100k files never holds them all), and return it opened from
        there. The first batch must have every band and property column.
    batch_size
        Records per batch with ``output``.

    Returns
    -------
    Collection
        Footprints are computed from the raster bounds (densified, in
        OGC:CRS84) where the source gives none. Nodata, scale and offset come
        from the file (GDAL_NODATA, GDAL metadata); STAC ``raster:bands`` fill
        in what the file lacks.

    Raises
    ------
    NotATiffError, TruncatedFileError, UnsupportedTiffError, ObjectNotFoundError
        Naming the file that failed.

    Examples
    --------
    >>> import xarray_rasteret as xr_rt
    >>> coll = xr_rt.build(sorted(glob.glob("chips/*.tif")))  # doctest: +SKIP
    >>> coll = xr_rt.build(  # doctest: +SKIP
    ...     glob.glob("S2*/*_B0[234].tif"),
    ...     group_by=lambda h: tuple(os.path.basename(h)[:-4].rsplit("_", 1)),
    ... )
    >>> coll = xr_rt.build("items.json", bands=["B04", "B08"])  # doctest: +SKIP
    >>> coll.to_parquet("s2.parquet")  # doctest: +SKIP
    """
    return sync(
        build_async(
            source,
            bands=bands,
            band_names=band_names,
            group_by=group_by,
            progress=progress,
            max_concurrent=max_concurrent,
            storage_options=storage_options,
            backend=backend,
            name=name,
            output=output,
            batch_size=batch_size,
        )
    )
