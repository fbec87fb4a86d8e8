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
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from affine import Affine

from . import _stac
from ._types import RasterSource, TileEncoding, TileLayout
from .collection import Collection, footprint_crs84, make_table
from .errors import (
    NotATiffError,
    TruncatedFileError,
    UnsupportedTiffError,
)

__all__ = ["PREFETCH", "build", "build_async", "read_sources_async"]

PREFETCH = 65536
"""Bytes read with the first header request; a COG's header almost always fits."""

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_TABLE_SUFFIXES = (".parquet", ".geoparquet", ".pq")
_JSON_SUFFIXES = (".json", ".geojson")
# Columns of stac-geoparquet (and of our own schema) that are not user columns.
_BOOKKEEPING = frozenset(
    {"type", "stac_version", "stac_extensions", "links", "bbox", "proj:epsg", "crs"}
)


# ---------------------------------------------------------------------------
# One header
# ---------------------------------------------------------------------------


class _HeaderStore:
    """Wrap a store for async-tiff: count requests and remember what came back.

    What it records tells a non-TIFF (wrong magic bytes) from a truncated file
    (a read came back short) when async-tiff fails, and gives the store's own
    error (not found, denied) back to the caller unchanged.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.requests = 0
        self.magic: bytes | None = None
        self.eof: int | None = None
        self.error: BaseException | None = None
        self.error_start: int | None = None
        self.size: int | None = None
        self.etag: str | None = None

    def _seen(self, start: int, end: int, data: Any) -> Any:
        view = memoryview(data)
        if start == 0 and self.magic is None:
            self.magic = bytes(view[:4])
        if len(view) < end - start:
            self.eof = start + len(view)
        return data

    async def get_range_async(
        self, path: str, *, start: int, end: int | None = None, length: int | None = None
    ) -> Any:
        if end is None:
            assert length is not None
            end = start + length
        self.requests += 1
        try:
            # The object's size and ETag ride along on the first response.
            data, size, etag = await self.inner.get_range_info_async(path, start=start, end=end)
        except BaseException as e:
            self.error, self.error_start = e, start
            raise
        if size is not None:
            self.size, self.etag = size, etag
        return self._seen(start, end, data)

    async def get_ranges_async(
        self,
        path: str,
        *,
        starts: Sequence[int],
        ends: Sequence[int] | None = None,
        lengths: Sequence[int] | None = None,
    ) -> list[Any]:
        if ends is None:
            assert lengths is not None
            ends = [s + n for s, n in zip(starts, lengths, strict=True)]
        self.requests += len(starts)
        try:
            out = await self.inner.get_ranges_async(path, starts=list(starts), ends=list(ends))
        except BaseException as e:
            self.error, self.error_start = e, min(starts, default=None)
            raise
        return [self._seen(s, e, d) for s, e, d in zip(starts, ends, out, strict=True)]


def _parse_nodata(text: str | None) -> float | None:
    if text is None:
        return None
    s = text.strip().strip("\x00").strip()
    if not s:
        return None
    try:
        return float(s)  # handles 'nan', '-inf', '1e20', '-9999'
    except ValueError:
        return None


def _gdal_scale_offset(xml: str | None, samples: int) -> tuple[list[float], list[float]]:
    scale, offset = [1.0] * samples, [0.0] * samples
    if not xml:
        return scale, offset
    try:
        root = ET.fromstring(xml.strip().strip("\x00"))
    except ET.ParseError:
        return scale, offset
    for item in root.iter("Item"):
        role = (item.get("role") or item.get("name") or "").lower()
        sample = item.get("sample")
        if role not in ("scale", "offset") or sample is None or not item.text:
            continue
        try:
            i, v = int(sample), float(item.text.strip())
        except ValueError:
            continue
        if 0 <= i < samples:
            (scale if role == "scale" else offset)[i] = v
    return scale, offset


def _dtype(ifd: Any, big_endian: bool, href: str) -> tuple[str, int]:
    fmt = int(ifd.sample_format[0]) if ifd.sample_format else 1
    bits = int(ifd.bits_per_sample[0]) if ifd.bits_per_sample else 1
    kind = {1: "u", 2: "i", 3: "f", 4: "u"}.get(fmt)
    if kind is None:
        raise UnsupportedTiffError(f"{href}: SampleFormat {fmt} (complex data) is not supported")
    size = next((n for n in (1, 2, 4, 8) if bits <= 8 * n), None)
    if size is None or (kind == "f" and bits not in (16, 32, 64)):
        raise UnsupportedTiffError(f"{href}: {bits}-bit samples (SampleFormat {fmt})")
    return np.dtype(f"{'>' if big_endian else '<'}{kind}{size}").str, bits


def _layout(ifd: Any) -> TileLayout:
    width, height = int(ifd.image_width), int(ifd.image_height)
    if ifd.tile_width:
        return TileLayout(
            width,
            height,
            int(ifd.tile_width),
            int(ifd.tile_height),
            np.asarray(ifd.tile_offsets or [], np.int64),
            np.asarray(ifd.tile_byte_counts or [], np.int64),
            tiled=True,
        )
    rows = min(int(ifd.rows_per_strip or height), height) or height
    return TileLayout(
        width,
        height,
        width,
        rows,
        np.asarray(ifd.strip_offsets or [], np.int64),
        np.asarray(ifd.strip_byte_counts or [], np.int64),
        tiled=False,
    )


def _is_mask(ifd: Any) -> bool:
    return bool((ifd.new_subfile_type or 0) & 4) or int(ifd.photometric_interpretation) == 4


async def _object_meta(store: Any, path: str, href: str, local: bool) -> tuple[int | None, Any]:
    """Size and ETag of the object, where they come cheaply (stat, or the store's HEAD)."""
    if local:
        from .storage.local import local_path

        try:
            return (await asyncio.to_thread(os.stat, local_path(href))).st_size, None
        except OSError:
            return None, None  # the header read reports the real problem
    head = getattr(store, "head_async", None)
    if head is None:
        return None, None
    try:
        meta = await head(path)
    except Exception:  # noqa: BLE001 - size is optional; the header read names failures
        return None, None
    get = meta.get if isinstance(meta, Mapping) else lambda k: getattr(meta, k, None)
    size = get("size")
    return (int(size) if size is not None else None), get("e_tag") or get("etag")


def _classify(err: BaseException, rec: _HeaderStore, href: str) -> BaseException:
    if isinstance(rec.error, TruncatedFileError) and rec.error_start == 0:
        return NotATiffError(f"{href} is empty: not a TIFF file")
    if rec.error is not None:
        return rec.error
    if rec.magic is not None and rec.magic not in _TIFF_MAGIC:
        return NotATiffError(f"{href} is not a TIFF file (it starts with {rec.magic!r})")
    if rec.eof is not None:
        return TruncatedFileError(
            f"{href} is truncated: its TIFF header runs past the end of the file "
            f"({rec.eof} bytes) ({err})"
        )
    return NotATiffError(f"{href}: cannot parse the TIFF header ({err})")


def _check_tiles(levels: Sequence[TileLayout], size: int, href: str) -> None:
    for lv, layout in enumerate(levels):
        ends = layout.tile_offsets + layout.tile_byte_counts
        past = np.flatnonzero((layout.tile_byte_counts > 0) & (ends > size))
        if len(past):
            k = int(past[0])
            o, c = int(layout.tile_offsets[k]), int(layout.tile_byte_counts[k])
            where = "full resolution" if lv == 0 else f"overview {lv}"
            raise TruncatedFileError(
                f"{href} is truncated: tile {k} of the {where} image (bytes {o}..{o + c}) "
                f"lies past the end of the file ({size} bytes); {len(past)} tiles are missing"
            )


async def read_sources_async(
    href: str,
    *,
    store: Any = None,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
) -> list[RasterSource]:
    """Parse one TIFF header into one RasterSource per sample.

    Parameters
    ----------
    href
        Local path, ``file://``, ``http(s)://`` or ``s3://`` URL.
    store
        A store to read through (then ``href`` is the path asked of it).
    storage_options, backend
        Passed to :func:`xarray_rasteret.storage.resolve_store` when ``store`` is None.

    Returns
    -------
    list of RasterSource
        ``band_index`` 0..n-1. Levels are the full-resolution image and every
        overview (masks skipped), finest first. A file without georeferencing
        gets ``Affine.identity()`` (a pixel-index grid) and ``crs=None``.

    Raises
    ------
    NotATiffError, TruncatedFileError, UnsupportedTiffError
        Naming ``href``; store errors (not found, denied) pass through.

    Examples
    --------
    >>> srcs = await read_sources_async("s3://bucket/scene_B04.tif")  # doctest: +SKIP
    >>> srcs[0].levels[0].tile_width, srcs[0].crs  # doctest: +SKIP
    (1024, 'EPSG:32633')
    """
    from async_tiff import TIFF

    from .geo.geotiff import georeference_from_ifd, require_north_up

    local = store is None and backend is None and ("://" not in href or href.startswith("file://"))
    if store is None:
        from .storage import resolve_store

        store, path = resolve_store(href, storage_options=storage_options, backend=backend)
    else:
        path = href
    from .storage import CountingStore

    rec = _HeaderStore(CountingStore(store))
    try:
        tiff = await TIFF.open(path, store=rec, prefetch=PREFETCH)
    except Exception as e:
        raise _classify(e, rec, href) from e
    size, etag = rec.size, rec.etag
    if size is None:
        # Only stores that do not report sizes with their responses cost a HEAD.
        size, etag = await _object_meta(store, path, href, local)
    if size is None:
        size = rec.eof

    ifds = tiff.ifds
    main = next((i for i in ifds if not ((i.new_subfile_type or 0) & 5)), ifds[0])
    spp = int(main.samples_per_pixel or 1)
    overviews = [
        i
        for i in ifds
        if i is not main
        and (i.new_subfile_type or 0) & 1
        and not _is_mask(i)
        and int(i.samples_per_pixel or 1) == spp
    ]
    overviews.sort(key=lambda i: -int(i.image_width))
    levels = tuple(_layout(i) for i in [main, *overviews])
    if size is not None:
        _check_tiles(levels, size, href)

    dtype, bits = _dtype(main, int(tiff.endianness) == 1, href)
    lerc = main.lerc_parameters
    encoding = TileEncoding(
        compression=int(main.compression),
        predictor=int(main.predictor or 1),
        dtype=dtype,
        samples_per_pixel=spp,
        planar=int(main.planar_configuration) == 2,
        photometric=int(main.photometric_interpretation),
        jpeg_tables=bytes(main.jpeg_tables) if main.jpeg_tables else None,
        lerc_parameters=tuple(int(v) for v in lerc) if lerc else None,
        bits_per_sample=None if bits == np.dtype(dtype).itemsize * 8 else bits,
    )
    _check_supported(encoding, href)

    geo = georeference_from_ifd(main)
    require_north_up(geo.transform, href)
    transform, crs = geo.transform, geo.crs
    if transform is None:  # not georeferenced: pixel-index coordinates, no CRS
        transform, crs = Affine.identity(), None
    nodata = _parse_nodata(main.gdal_nodata)
    scale, offset = _gdal_scale_offset(main.gdal_metadata, spp)
    extra: dict[str, object] = {"header_requests": rec.requests}
    if main.extra_samples:
        extra["extra_samples"] = [int(v) for v in main.extra_samples]
    if geo.pixel_is_point:
        extra["pixel_is_point"] = True
    return [
        RasterSource(
            href=href,
            transform=transform,
            crs=crs,
            encoding=encoding,
            levels=levels,
            band_index=b,
            nodata=nodata,
            scale=scale[b],
            offset=offset[b],
            size=size,
            etag=etag,
            extra=dict(extra),
        )
        for b in range(spp)
    ]


def _check_supported(encoding: TileEncoding, href: str) -> None:
    try:
        from ._decode import check_supported
    except ImportError:  # pragma: no cover - decoding layer not installed yet
        return
    try:
        check_supported(encoding)
    except UnsupportedTiffError as e:
        raise UnsupportedTiffError(f"{href}: {e}") from e


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
    from tqdm import tqdm

    sem = asyncio.Semaphore(max(1, int(max_concurrent)))
    bar = tqdm(total=len(hrefs), disable=not progress, desc="COG headers", unit="file")

    async def one(href: str) -> tuple[str, list[RasterSource]]:
        async with sem:
            try:
                return href, await read_sources_async(
                    href, storage_options=storage_options, backend=backend
                )
            except Exception as e:
                if href not in str(e):
                    e.add_note(f"while reading the TIFF header of {href}")
                raise
            finally:
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
        if s.lower().endswith(_TABLE_SUFFIXES) or os.path.isdir(s):
            import pyarrow.parquet as pq

            return "rows", _rows_from_table(pq.read_table(s))
        if s.lower().endswith(_JSON_SUFFIXES):
            return "stac", _stac.read_items(s)
        return "paths", [s]
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
            return "paths", [os.fspath(h) for h in items]
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
                    f"{ref.href} has {len(srcs)} samples"
                )
            picks = [(key, ref.band_index)]
        elif key == "":  # a plain path: bands named after the samples
            names = list(band_names) if band_names is not None else None
            if names is not None and len(names) != len(srcs):
                raise ValueError(
                    f"band_names has {len(names)} names but {ref.href} has {len(srcs)} samples"
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


def _record_crs(record_id: str, srcs: Mapping[str, RasterSource]) -> str | None:
    from .geo.grid import same_crs

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
    parsed = await _parse_all(
        hrefs,
        max_concurrent=max_concurrent,
        progress=progress,
        storage_options=storage_options,
        backend=backend,
    )

    per_record = [_expand(rec, parsed, band_names) for rec in records]
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
    return Collection(table, name=name)


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
    from ._sync import sync

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
        )
    )
