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
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from .._arguments import checked_max_concurrent
from .._sync import sync
from .._types import RasterSource
from ..collection import Collection, make_table
from ..errors import ObjectNotFoundError
from ..geo.footprint import footprint_crs84
from ..geo.grid import same_crs
from ..storage import redact_url
from . import _stac
from ._datetime_from import datetime_parser
from ._header import read_sources_async
from ._paths import expand_paths, is_table_folder
from ._rows import is_table_like, records_from_rows, rows_from_table

__all__ = ["build", "build_async"]

_TABLE_SUFFIXES = (".parquet", ".geoparquet", ".pq")

# ---------------------------------------------------------------------------
# Many headers
# ---------------------------------------------------------------------------


async def _parse_all(
    hrefs: Sequence[str],
    *,
    origins: Mapping[str, str],
    max_concurrent: int,
    progress: bool,
    storage_options: dict[str, Any] | None,
    backend: Any,
) -> dict[str, list[RasterSource]]:
    sem = asyncio.Semaphore(checked_max_concurrent(max_concurrent))
    # No bar object at all without progress: tqdm's first instance creates a
    # multiprocessing lock, which costs before the first request.
    bar = tqdm(total=len(hrefs), desc="COG headers", unit="file") if progress else None

    async def one(href: str) -> tuple[str, list[RasterSource]]:
        async with sem:
            try:
                return href, await read_sources_async(
                    href, storage_options=storage_options, backend=backend
                )
            except ObjectNotFoundError as e:
                raise _missing(href, origins.get(href), e) from None
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


def _origins(records: Sequence[_stac.Record]) -> dict[str, str]:
    """Who names each href (record, band, and how a relative href was resolved)."""
    out: dict[str, str] = {}
    for rec in records:
        for band, ref in rec.assets.items():
            named = f"record {rec.id!r}" + (f" band {band!r}" if band else "")
            if ref.resolved_from:
                named += f": {ref.resolved_from}; pass base_href= to resolve it elsewhere"
            out.setdefault(ref.href, named)
    return out


def _missing(href: str, origin: str | None, error: Exception) -> ObjectNotFoundError:
    """A missing file at build time: the source names a file that is not there."""
    status = " (HTTP 404)" if "HTTP 404" in str(error) else ""
    return ObjectNotFoundError(
        f"{redact_url(href)} is missing{status}: no file at that path or URL"
        + (f" ({origin})" if origin else "")
        + "; check the source"
    )


# ---------------------------------------------------------------------------
# Inputs -> records
# ---------------------------------------------------------------------------


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


async def _load_source(
    source: Any, base_href: str | None, reach: dict[str, Any]
) -> tuple[str, Any]:
    """Classify ``source``: ('paths', [...]) | ('stac', [...]) | ('rows', [...])."""

    async def stac(obj: Any) -> list[tuple[dict[str, Any], str | None]]:
        return await _stac.read_items_async(
            obj,
            base_href=base_href,
            storage_options=reach["storage_options"],
            backend=reach["backend"],
        )

    if is_table_like(source):
        return "rows", rows_from_table(source)
    if isinstance(source, str | os.PathLike):
        s = os.fspath(source)
        if s.lower().endswith(_TABLE_SUFFIXES) or is_table_folder(s):
            import pyarrow.parquet as pq

            return "rows", rows_from_table(pq.read_table(s))
        if _stac.is_item_file(s):
            return "stac", await stac(s)
        return "paths", expand_paths([s])
    if _stac.is_stac_like(source):
        return "stac", await stac(source)
    if isinstance(source, Sequence):
        items = list(source)
        if not items:
            raise ValueError("nothing to build from: the source is empty")
        first = items[0]
        if _stac.is_stac_like(first) or _stac.is_item_file(first):
            return "stac", await stac(items)
        if all(isinstance(h, str | os.PathLike) for h in items):
            return "paths", expand_paths(items)
    raise TypeError(
        "build() takes a list of COG paths/URLs, STAC items (dicts, a FeatureCollection, "
        "JSON/NDJSON files), or a table (pyarrow, Parquet, GeoDataFrame); "
        f"got {type(source).__name__}"
    )


def _times_from_names(records: Sequence[_stac.Record], spec: str | re.Pattern[str]) -> None:
    """Give each path record the time its file names spell (they must agree)."""
    parse = datetime_parser(spec)
    for rec in records:
        times = {ref.href: parse(ref.href) for ref in rec.assets.values()}
        if len(set(times.values())) > 1:
            raise ValueError(
                f"record {rec.id!r}: its files' names spell different times with "
                f"datetime_from={getattr(spec, 'pattern', spec)!r}: "
                + ", ".join(f"{redact_url(h)} -> {t:%Y-%m-%d %H:%M:%S}" for h, t in times.items())
            )
        rec.datetime = next(iter(times.values()), None)


def _with_overrides(src: RasterSource, over: Mapping[str, float | None] | None) -> RasterSource:
    """Apply STAC ``raster:bands`` nodata/scale/offset, which win over the file's tags.

    As in odc-stac and stackstac: catalogues publish per-item values the files may
    not carry or may carry stale (Sentinel-2 L2A's offset from processing baseline
    04.00 on), so the item's word is taken where it gives one.
    """
    if not over:
        return src
    changes: dict[str, Any] = {
        k: over[k] for k in ("nodata", "scale", "offset") if over.get(k) is not None
    }
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
    datetime_from: str | re.Pattern[str] | None = None,
    base_href: str | None = None,
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
    reach = {"storage_options": storage_options, "backend": backend}
    kind, payload = await _load_source(source, base_href, reach)
    band_list = list(bands) if bands is not None else None
    if kind == "paths":
        records = _path_records(payload, group_by)
        if datetime_from is not None:
            _times_from_names(records, datetime_from)
    elif kind == "stac":
        records = _stac.records_from_items(payload, band_list)
    else:
        records = records_from_rows(payload, band_list)
    if kind != "paths" and (band_names, group_by, datetime_from) != (None, None, None):
        raise ValueError(
            "band_names, group_by and datetime_from apply to a list of COG paths only; STAC "
            "items and tables carry their own bands and times"
        )
    if kind == "paths" and base_href is not None:
        raise ValueError("base_href applies to STAC items only (it resolves their asset hrefs)")
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
        origins=_origins(records),
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


# Long for its docstring: the whole documented surface of build; the work is in
# build_async.
def build(
    source: Any,
    *,
    bands: Sequence[str] | None = None,
    band_names: Sequence[str] | None = None,
    group_by: Callable[[str], tuple[str, str]] | None = None,
    datetime_from: str | re.Pattern[str] | None = None,
    base_href: str | None = None,
    progress: bool = False,
    max_concurrent: int = 64,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
    name: str | None = None,
    output: str | os.PathLike[str] | None = None,
    batch_size: int = 4096,
) -> Collection:
    r"""Build a collection by parsing the COG headers of ``source``.

    Parameters
    ----------
    source
        One of:

        * a list of COG paths/URLs: one record per file (id: the file name
          without ``.tif``), bands ``band_1..N`` after the file's samples;
        * STAC items: item dicts, a FeatureCollection/ItemCollection dict,
          pystac objects, or paths/URLs (local, ``http(s)://``, ``s3://``) of
          files holding them: a JSON item, a JSON list of items
          (``json.dump(items)``), a FeatureCollection, or NDJSON with one item
          per line (``.ndjson``/``.jsonl``). Relative asset hrefs resolve
          against ``base_href``, else the item's ``self`` link, else its file;
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
    datetime_from
        Paths only: take each record's time from its file names, with a regex
        holding a named group ``date`` (``YYYYMMDD`` or ``YYYYDDD``) or
        ``datetime`` (parsed by pandas), e.g. ``r"_(?P<date>\d{8})_"``, or a
        strftime format of digits such as ``"%Y%m%d"`` (its first occurrence in
        the name). Times are UTC. A name that does not match raises, naming it.
        Without it, a path record's time is its TIFF DateTime tag, if any.
    base_href
        STAC items only: the folder or URL their relative asset hrefs resolve
        against (default: each item's ``self`` link, else the file it came from,
        else the working directory).
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
    NotATiffError, TruncatedFileError, UnsupportedTiffError
        Naming the file that failed.
    ObjectNotFoundError
        A file the source names is missing: the message names it, the record
        and band naming it, and for a relative href what it was resolved
        against.

    Examples
    --------
    >>> import xarray_rasteret as xr_rt
    >>> coll = xr_rt.build(sorted(glob.glob("chips/*.tif")))  # doctest: +SKIP
    >>> coll = xr_rt.build(  # doctest: +SKIP
    ...     glob.glob("S2*/*_B0[234].tif"),
    ...     group_by=lambda h: tuple(os.path.basename(h)[:-4].rsplit("_", 1)),
    ... )
    >>> coll = xr_rt.build("items.json", bands=["B04", "B08"])  # doctest: +SKIP
    >>> coll = xr_rt.build("https://example.com/items.ndjson")  # doctest: +SKIP
    >>> coll = xr_rt.build(glob.glob("*.tif"), datetime_from="%Y%m%d")  # doctest: +SKIP
    >>> coll.to_parquet("s2.parquet")  # doctest: +SKIP
    """
    return sync(
        build_async(
            source,
            bands=bands,
            band_names=band_names,
            group_by=group_by,
            datetime_from=datetime_from,
            base_href=base_href,
            progress=progress,
            max_concurrent=max_concurrent,
            storage_options=storage_options,
            backend=backend,
            name=name,
            output=output,
            batch_size=batch_size,
        )
    )
