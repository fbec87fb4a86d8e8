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

import dataclasses
import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from .._sync import sync
from .._types import RasterSource
from ..collection import Collection, make_table
from ..geo.footprint import footprint_crs84
from ..geo.grid import same_crs
from ..storage import redact_url
from . import _parse, _search, _stac
from ._batches import build_to
from ._datetime_from import datetime_parser
from ._paths import expand_paths, is_table_folder
from ._rows import is_table_like, records_from_rows, rows_from_table

__all__ = ["build", "build_async"]

_TABLE_SUFFIXES = (".parquet", ".geoparquet", ".pq")

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


# Long for build's keywords, passed on one by one; each step is a call (search,
# records, headers, table), with the failure policy in _parse.
async def build_async(
    source: Any = None,
    *,
    stac_api: str | None = None,
    collections: str | Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
    datetime: Any = None,
    date_range: Sequence[Any] | None = None,
    query: Mapping[str, Any] | None = None,
    filter: Mapping[str, Any] | str | None = None,
    max_items: int | None = None,
    stac_options: Mapping[str, Any] | None = None,
    on_error: str = "raise",
    sign: Callable[[str], str] | None = None,
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
    on_error = _parse.checked_on_error(on_error)
    search = _search.plan(
        source,
        stac_api,
        dict(
            collections=collections,
            bbox=bbox,
            datetime=datetime,
            date_range=date_range,
            query=query,
            filter=filter,
            max_items=max_items,
            stac_options=stac_options,
        ),
    )
    band_list = list(bands) if bands is not None else None
    if search is None:
        reach = {"storage_options": storage_options, "backend": backend}
        kind, payload = await _load_source(source, base_href, reach)
    else:
        kind = "stac"
        payload, band_list = await _search.search_items_async(search, band_list, base_href)
        storage_options = search.storage_options(storage_options)
        sign = sign or search.signer()
    if sign is not None:
        # Headers are read through signed URLs; the index keeps the plain hrefs.
        from ..storage._signing import SigningStore

        backend = SigningStore(sign, storage_options=storage_options, backend=backend)
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
        origins=_parse.origins(records),
        max_concurrent=max_concurrent,
        progress=progress,
        storage_options=storage_options,
        backend=backend,
        on_error=on_error,
    )
    if output is None:
        parsed, failed = await _parse.parse_all(hrefs, **options)
        kept, skipped = _parse.drop_failed(records, failed)
        _parse.raise_if_nothing(len(kept), failed)
        table = _table_of(kept, parsed, kind, band_names, band_list)
        out = Collection(table, name=name)
    else:
        out, skipped = await build_to(
            output,
            records,
            lambda batch, parsed: _table_of(batch, parsed, kind, band_names, band_list),
            options,
            batch_size,
            name,
        )
    _parse.warn_skipped(skipped, len(records))
    out.skipped = skipped
    return out


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
    source: Any = None,
    *,
    stac_api: str | None = None,
    collections: str | Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
    datetime: Any = None,
    date_range: Sequence[Any] | None = None,
    query: Mapping[str, Any] | None = None,
    filter: Mapping[str, Any] | str | None = None,
    max_items: int | None = None,
    stac_options: Mapping[str, Any] | None = None,
    on_error: str = "raise",
    sign: Callable[[str], str] | None = None,
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
          too) or a (Geo)DataFrame;
        * a catalogue id (:mod:`xarray_rasteret.catalogues`, rasteret's ids:
          ``"earthsearch/sentinel-2-l2a"``, ``"pc/landsat-c2-l2"``, ...): a search
          of its STAC API and collection, bands named by its codes (``B04``);
        * nothing, with ``stac_api=``: a search of that STAC API.
    stac_api
        The root URL of a STAC API to search (through pystac-client, the
        ``stac`` extra), following its ``next`` links page by page. With a
        catalogue id it overrides the catalogue's URL; with another source it
        is an error. Relative asset hrefs resolve against each item's ``self``
        link (else the API's ``/search``).
    collections
        STAC collection ids to search (not with a catalogue id).
    bbox
        ``(west, south, east, north)`` in lon/lat: items intersecting it.
    datetime
        A time or interval as the STAC API takes it: ``"2024-06"``,
        ``"2024-06-01/2024-06-30"``, ``"2024-06-01/.."`` (open end), a
        datetime, or a ``(start, end)`` pair (None: open).
    date_range
        rasteret's form: ``(start, end)`` ISO dates, both ends included.
    query
        STAC query extension terms, ``{"eo:cloud_cover": {"lt": 20}}``.
    filter
        A CQL2-JSON filter dict (``{"op": "<", "args": [{"property":
        "eo:cloud_cover"}, 20]}``), or a CQL2-text string.
    max_items
        Stop after this many items (also read from ``query["max_items"]``, as rasteret does).
    stac_options
        pystac-client options: ``headers``, ``parameters``, ``modifier``,
        ``request_modifier``, ``timeout`` (``Client.open``; default 60 s); ``method``
        (``"POST"``, ``"GET"``), ``limit`` (items per page, default 250),
        ``sortby``, ``fields``, ``ids``, ``intersects`` (``Client.search``).
    on_error
        ``"raise"`` (default): a header that cannot be read fails the build,
        naming the file. ``"skip"``: records with an asset whose header cannot
        be read (missing, refused, corrupt, failing after the retries) are left
        out whole, the others kept; a ``RasteretWarning`` names them, and
        ``collection.skipped`` lists ``(record id, href, reason)`` (in memory
        only: not saved, not kept by ``filter``). If no record can be read, the
        first failure raises.
    sign
        ``sign(href) -> signed href`` for the header reads (a Planetary
        Computer SAS signer, presigned URLs); applied per request, never stored:
        the collection keeps the plain hrefs. A catalogue id's data source
        signs by default (Planetary Computer's).
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
    ImportError
        A search without pystac-client installed (``pip install "xarray-rasteret[stac]"``).
    KeyError
        An unknown catalogue id (the message lists the registered ids).
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
    >>> coll = xr_rt.build(  # doctest: +SKIP
    ...     "earthsearch/sentinel-2-l2a", bbox=(16.2, 45.0, 16.4, 45.2),
    ...     date_range=("2024-05-01", "2024-05-31"), query={"eo:cloud_cover": {"lt": 20}},
    ... )
    >>> coll = xr_rt.build(  # doctest: +SKIP
    ...     stac_api="https://stac.example.com/v1", collections=["s2"], max_items=100
    ... )
    >>> coll.to_parquet("s2.parquet")  # doctest: +SKIP
    """
    return sync(
        build_async(
            source,
            stac_api=stac_api,
            collections=collections,
            bbox=bbox,
            datetime=datetime,
            date_range=date_range,
            query=query,
            filter=filter,
            max_items=max_items,
            stac_options=stac_options,
            on_error=on_error,
            sign=sign,
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
