"""Parse the header of one TIFF (async-tiff) into RasterSources, one per sample.

The header is normally read with a single request (:data:`PREFETCH` bytes);
failures are classified into not-a-TIFF, truncated and unsupported files, each
naming the file.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import math
import os
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import numpy as np
from affine import Affine
from async_tiff import TIFF

from .._hrefs import is_local
from .._read._planar_cmyk import is_planar_cmyk
from .._read._samples import output_samples
from .._read.decode import check_supported
from .._types import RasterSource, TileEncoding, TileLayout
from ..errors import (
    NotATiffError,
    TruncatedFileError,
    UnsupportedTiffError,
)
from ..geo.footprint import FootprintWarning
from ..geo.geotiff import georeference_from_ifd, require_north_up
from ..storage import CountingStore, object_info, redact_url, resolve_store
from ..storage.local import local_path
from ._ifd import Chain, walk_and_complete
from ._mask_ifd import HeaderParts, internal_mask
from ._ycbcr_tags import ycbcr_tags

__all__ = ["PREFETCH", "read_sources_async"]

PREFETCH = 65536
"""Bytes read with the first header request; a COG's header almost always fits."""

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class _HeaderStore:
    """Wrap a store for async-tiff: count requests and remember what came back.

    What it records tells a non-TIFF (wrong magic bytes) from a truncated file
    (a read came back short) when async-tiff fails, and gives the store's own
    error (not found, denied) back to the caller unchanged. Ranges already read
    (by :meth:`read`, for the IFD walk) are served again from memory, so the
    walk costs no request that async-tiff would not make anyway.
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
        self._cache: list[tuple[int, bytes]] = []
        self.chain: Chain | None = None
        """Set after the IFD walk: tags it supplied are served to async-tiff from here."""

    def _seen(self, start: int, end: int, data: Any) -> Any:
        view = memoryview(data)
        if start == 0 and self.magic is None:
            self.magic = bytes(view[:4])
        if len(view) < end - start:
            self.eof = start + len(view)
        return data

    def _cached(self, start: int, end: int) -> bytes | None:
        for at, data in self._cache:
            # A short segment ends at the end of the file: what it lacks does not exist.
            if at <= start and (end <= at + len(data) or self.eof == at + len(data)):
                return data[start - at : end - at]
        return None

    async def read(self, path: str, start: int, end: int) -> bytes:
        """Bytes ``start..end`` (short at the end of the file), from memory if read before.

        A miss reads at least :data:`PREFETCH` bytes, so a walk over IFDs
        past the first read costs few requests.
        """
        hit = self._cached(start, end)
        if hit is not None:
            return hit
        data = bytes(await self.get_range_async(path, start=start, end=max(end, start + PREFETCH)))
        self._cache.append((start, data))
        return data[: end - start]

    def _completed(self, start: int, end: int, data: Any) -> Any:
        """``data`` (bytes ``start..``) with the walk's patches applied (see Chain)."""
        chain = self.chain
        if chain is None or not (chain.patches or chain.virtual):
            return data
        buf = bytearray(data)
        for at, patch in chain.patches.items():
            lo, hi = max(at, start), min(at + len(patch), start + len(buf))
            if lo < hi:
                buf[lo - start : hi - start] = patch[lo - at : hi - at]
        return bytes(buf)

    async def get_range_async(
        self, path: str, *, start: int, end: int | None = None, length: int | None = None
    ) -> Any:
        if end is None:
            assert length is not None
            end = start + length
        chain = self.chain
        if chain is None or not chain.virtual or end <= chain.virtual_start:
            return self._completed(start, end, await self._get_range(path, start, end))
        # The file as async-tiff sees it goes on past its end with the rewritten
        # IFDs (after a pad byte to a word boundary): serve both parts of a read.
        vs = chain.virtual_start
        real = b""
        if start < vs:
            got = await self._get_range(path, start, vs)
            real = bytes(self._completed(start, vs, got)).ljust(vs - start, b"\0")
        return real + chain.virtual[max(start, vs) - vs : end - vs]

    async def _get_range(self, path: str, start: int, end: int) -> Any:
        hit = self._cached(start, end)
        if hit is not None:
            return hit
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
        if self.chain is not None and (self.chain.patches or self.chain.virtual):
            return [
                await self.get_range_async(path, start=s, end=e)
                for s, e in zip(starts, ends, strict=True)
            ]
        hits = [self._cached(s, e) for s, e in zip(starts, ends, strict=True)]
        if all(h is not None for h in hits):
            return hits
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


def _tiff_datetime(text: str | None) -> str | None:
    """TIFF tag 306 ``"YYYY:MM:DD HH:MM:SS"`` as ISO 8601, or None when absent or malformed.

    GDAL writes its ``TIFFTAG_DATETIME`` metadata item to this tag. A malformed
    value (the tag is free text in practice) gives None: a file with a bad
    timestamp still opens, with NaT, as it did before the tag was read.
    """
    if not text:
        return None
    try:
        parsed = _dt.datetime.strptime(text.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    return parsed.isoformat()


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
    """The dtype reads return (as GDAL's band type) and the stored bits of one sample.

    They differ where GDAL converts: 1..31-bit unsigned samples unpack into the
    smallest unsigned type holding them, 16-bit floats read as float32, CInt16
    as complex64 (rasterio's ``complex_int16`` reads).
    """
    fmt = int(ifd.sample_format[0]) if ifd.sample_format else 1
    bits = int(ifd.bits_per_sample[0]) if ifd.bits_per_sample else 1
    order = ">" if big_endian else "<"
    fix = "convert it, e.g. `gdal_translate -ot Float32 in.tif out.tif`"
    per_sample = (("BitsPerSample", ifd.bits_per_sample), ("SampleFormat", ifd.sample_format))
    for tag, values in per_sample:
        if values and len({int(v) for v in values}) > 1:
            # One dtype per image: e.g. RGB565 (5, 6, 5) cannot be read as one.
            raise UnsupportedTiffError(
                f"{href}: samples of different types ({tag} {[int(v) for v in values]}) "
                f"are not supported; {fix.replace('Float32', 'Byte')}"
            )
    if fmt in (5, 6):
        name = {(6, 64): "c8", (6, 128): "c16", (5, 32): "c8"}.get((fmt, bits))
        if name is None:
            what = "CInt32" if (fmt, bits) == (5, 64) else f"{bits}-bit complex"
            raise UnsupportedTiffError(
                f"{href}: {what} samples (SampleFormat {fmt}) are not supported "
                f"(complex64 would lose their precision); {fix}"
            )
        return np.dtype(order + name).str, bits
    kind = {1: "u", 2: "i", 3: "f", 4: "u"}.get(fmt)
    if kind is None:
        raise UnsupportedTiffError(f"{href}: SampleFormat {fmt} is unknown; {fix}")
    size = next((n for n in (1, 2, 4, 8) if bits <= 8 * n), None)
    if kind == "f":
        size = {16: 4, 32: 4, 64: 8}.get(bits)  # GDAL reads half floats as float32
    elif kind == "u" and size == 8 and bits != 64:
        size = None
    if size is None or bits < 1:
        raise UnsupportedTiffError(
            f"{href}: {bits}-bit samples (SampleFormat {fmt}) are not supported; {fix}"
        )
    return np.dtype(f"{order}{kind}{size}").str, bits


def _nodata_for(value: float | None, dtype: str) -> float | None:
    """GDAL_NODATA as GDAL compares it: rounded to the band's type, or None if it cannot hold it.

    A float32 band's nodata written as ``-3.39999999999999996e+38`` masks the
    pixels equal to its float32 rounding (``-3.4028236e+38`` rounds to -inf, as in
    GDAL); an integer band's is truncated (254.5 masks 254 on uint8); -10000, -0.5
    or NaN on uint8 mask nothing.
    """
    if value is None:
        return None
    dt = np.dtype(dtype)
    if dt.kind == "c":
        return value
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if not (math.isfinite(value) and info.min <= value <= info.max):
            return None
        # GDAL casts it to the band's type (254.5 masks 254, -1.5 masks -1).
        return float(math.trunc(value))
    with np.errstate(over="ignore"):
        # As GDAL: a value past float32's range becomes an infinity, not "no nodata".
        return float(np.asarray(value).astype(dt))


def _layout(ifd: Any) -> TileLayout:
    width, height = int(ifd.image_width), int(ifd.image_height)
    if ifd.tile_width:
        return TileLayout(
            width,
            height,
            int(ifd.tile_width),
            int(ifd.tile_height),
            # libtiff accepts tile offsets written to the strip tags (as some writers do).
            np.asarray(ifd.tile_offsets or ifd.strip_offsets or [], np.int64),
            np.asarray(ifd.tile_byte_counts or ifd.strip_byte_counts or [], np.int64),
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
        try:
            return (await asyncio.to_thread(os.stat, local_path(href))).st_size, None
        except OSError:
            return None, None  # the header read reports the real problem
    try:
        info = await object_info(store, path)
    except Exception:  # noqa: BLE001 - size is optional; the header read names failures
        return None, None
    return info.size, info.etag


def _classify(err: BaseException, rec: _HeaderStore, name: str) -> BaseException:
    """The error to raise for a failed header read of ``name`` (a redacted href)."""
    if isinstance(rec.error, TruncatedFileError) and rec.error_start == 0:
        return NotATiffError(f"{name} is empty: not a TIFF file")
    if rec.error is not None:
        return rec.error
    if rec.magic is not None and rec.magic not in _TIFF_MAGIC:
        return NotATiffError(f"{name} is not a TIFF file (it starts with {rec.magic!r})")
    # No "truncated" here: the IFD walk has checked every IFD and tag value
    # against the end of the file, and a file shorter than the first read is normal.
    if type(err).__name__ == "PanicException" or "panicked" in str(err):
        # The walk has passed, so the structure is sound: async-tiff hit a
        # value it does not handle rather than a short or hostile file.
        return UnsupportedTiffError(
            f"{name}: the TIFF header parser (async-tiff) cannot read this file "
            f"(internal error: {err}); rewrite it (e.g. gdal_translate -of COG)"
        )
    return NotATiffError(f"{name}: cannot parse the TIFF header ({err})")


async def _prefetch(
    rec: _HeaderStore, store: Any, path: str, href: str, local: bool
) -> tuple[int | None, Any]:
    """Make the first header read; return the object's size and ETag where known."""
    try:
        await rec.read(path, 0, PREFETCH)
    except Exception as e:
        raise _classify(e, rec, redact_url(href)) from e
    size, etag = rec.size, rec.etag
    if size is None:
        # Only stores that do not report sizes with their responses cost a HEAD.
        size, etag = await _object_meta(store, path, href, local)
    return (rec.eof if size is None else size), etag


async def _open_tiff(
    rec: _HeaderStore, path: str, name: str, size: int | None
) -> tuple[TIFF, list[dict[int, int]]]:
    """Walk the IFD chain with bounded reads, then hand the file to async-tiff.

    Returns the parsed file and, per IFD, the integer tags the walk read.
    """
    rec.chain = await walk_and_complete(
        lambda start, end: rec.read(path, start, end), size, name
    )
    for index, tag, field_type in rec.chain.skipped:
        warnings.warn(
            f"{name}: {tag} of IFD {index} has field type {field_type}, which is not a TIFF "
            "type; it is left out, as the TIFF spec says readers do (libtiff warns too)",
            UserWarning,
            stacklevel=2,
        )
    facts = rec.chain.tags
    try:
        return await TIFF.open(path, store=rec, prefetch=PREFETCH), facts
    except Exception as e:
        raise _classify(e, rec, name) from e
    except BaseException as e:
        # pyo3 raises a Rust panic as PanicException, a BaseException.
        if type(e).__name__ != "PanicException":
            raise
        raise _classify(e, rec, name) from e


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


# Long because one header's facts (layout, encoding, georeference, metadata) are
# gathered in one pass over the parsed IFDs, in the order later checks need them.
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
        overview (GDAL's per-dataset mask is ``mask``), finest first. A file without georeferencing
        gets ``Affine.identity()`` (a pixel-index grid) and ``crs=None``; one
        whose GeoKeys give a CRS but which has no transform tags keeps that CRS
        with the identity transform, as GDAL (a FootprintWarning names it).

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
    local = store is None and backend is None and is_local(href)
    if store is None:
        store, path = resolve_store(href, storage_options=storage_options, backend=backend)
    else:
        path = href

    name = redact_url(href)  # every message and note shows this, never the raw href
    rec = _HeaderStore(CountingStore(store))
    size, etag = await _prefetch(rec, store, path, href, local)
    tiff, facts = await _open_tiff(rec, path, name, size)

    ifds = tiff.ifds
    main = next((i for i in ifds if not ((i.new_subfile_type or 0) & 5)), ifds[0])
    main_facts = facts[ifds.index(main)] if len(facts) == len(ifds) else {}
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
        _check_tiles(levels, size, name)

    dtype, bits = _dtype(main, int(tiff.endianness) == 1, name)
    photometric = int(main.photometric_interpretation)
    if photometric == 5 and bits == 8 and spp >= 4 and dtype == "|i1":
        dtype = "|u1"  # GDAL's RGBA interface reads int8 inks as bytes: uint8 RGBA
    lerc = main.lerc_parameters
    encoding = TileEncoding(
        compression=int(main.compression),
        predictor=int(main.predictor or 1),
        dtype=dtype,
        samples_per_pixel=spp,
        planar=int(main.planar_configuration) == 2,
        photometric=photometric,
        jpeg_tables=bytes(main.jpeg_tables) if main.jpeg_tables else None,
        lerc_parameters=tuple(int(v) for v in lerc) if lerc else None,
        bits_per_sample=None if bits == np.dtype(dtype).itemsize * 8 else bits,
        fill_order=int(main_facts.get(266, 1)),
        ycbcr=ycbcr_tags(main, name) if photometric == 6 and int(main.compression) != 7 else None,
    )
    _check_supported(encoding, name)
    _check_unreported(encoding, main_facts, name)

    # The header bytes: key 3096 (Hotine's azimuth) and others async-tiff drops.
    geo = georeference_from_ifd(main, header=rec._cached(0, PREFETCH))
    require_north_up(geo.transform, name)
    transform, crs = geo.transform, geo.crs
    if transform is None:  # no transform tags, or GCPs: pixel-index coordinates
        transform = Affine.identity()
        if main.model_tiepoint:
            crs = None  # GCPs (tiepoints, no scale): GDAL gives their CRS to them only
        if crs is not None:
            # GDAL keeps the GeoKeys' CRS with its identity transform; the outline in
            # pixel indices is no place on that CRS, so no footprint can be made.
            warnings.warn(
                f"{name}: the GeoKeys give a CRS ({crs}) but no transform tags "
                "(ModelPixelScale/ModelTiepoint/ModelTransformation): the CRS is kept and "
                "coordinates are pixel indices, as GDAL reads it; the footprint is unknown "
                "(none in the index)",
                FootprintWarning,
                stacklevel=2,
            )
    nodata = _nodata_for(_parse_nodata(main.gdal_nodata), dtype)
    # The bands GDAL exposes: the samples, except 8-bit CMYK (4 RGBA bands).
    bands = 4 if is_planar_cmyk(encoding) else spp if encoding.planar else output_samples(encoding)
    scale, offset = _gdal_scale_offset(main.gdal_metadata, spp)
    extra: dict[str, object] = {"header_requests": rec.requests}
    if main.extra_samples:
        extra["extra_samples"] = [int(v) for v in main.extra_samples]
    if geo.pixel_is_point:
        extra["pixel_is_point"] = True
    if geo.transform is None and crs is not None:
        extra["no_transform"] = True  # make_table writes no footprint for it
    when = _tiff_datetime(main.date_time)
    about = (href, name, transform, crs, size, etag)
    parts = HeaderParts(_dtype, _layout, _check_supported, _check_tiles)
    mask = internal_mask(ifds, facts, [main, *overviews], int(tiff.endianness) == 1, about, parts)
    if when is not None:
        extra["datetime"] = when
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
            mask=mask,
        )
        for b in range(bands)
    ]


def _check_supported(encoding: TileEncoding, href: str) -> None:
    try:
        check_supported(encoding)
    except UnsupportedTiffError as e:
        raise UnsupportedTiffError(f"{href}: {e}") from e


def _check_unreported(encoding: TileEncoding, facts: dict[int, int], href: str) -> None:
    """Refuse what a TileEncoding cannot carry but changes the pixels GDAL returns."""
    fix = "convert it, e.g. `gdal_translate -co COMPRESS=DEFLATE in.tif out.tif`"
    predictor = facts.get(317, encoding.predictor)
    if predictor != encoding.predictor:
        # async-tiff drops a predictor it does not know; reading without undoing
        # it would return the differences (libtiff and GDAL refuse the file).
        raise UnsupportedTiffError(
            f"{href}: Predictor {predictor} is unknown (TIFF defines 1, 2, 3): the file "
            f"is malformed (GDAL refuses it too); write it again with a TIFF writer"
        )
    if facts.get(284, 1) not in (1, 2):
        raise UnsupportedTiffError(
            f"{href}: PlanarConfiguration {facts[284]} is invalid (TIFF defines 1, 2): the "
            f"file is malformed (GDAL refuses it too); write it again with a TIFF writer"
        )
    t4 = facts.get(292, 0)
    if encoding.compression == 3 and t4 & 3:
        raise UnsupportedTiffError(
            f"{href}: CCITT Group 3 with T4Options {t4} (2-D coding or uncompressed "
            f"mode) is not supported, only 1-D coding; {fix}"
        )
    if encoding.photometric == 5 and facts.get(332, 1) != 1:
        raise UnsupportedTiffError(
            f"{href}: Separated photometric with InkSet {facts[332]} (inks other than "
            f"CMYK) is not supported; {fix}"
        )
    if encoding.photometric == 8:
        # GDAL converts CIELab to RGB(A) through libtiff; the raw L*a*b* values would
        # be another meaning under the same band names.
        raise UnsupportedTiffError(
            f"{href}: CIELab photometric is not supported (GDAL converts it to RGBA); "
            f"{fix.replace('in.tif', '-co PHOTOMETRIC=RGB in.tif')}"
        )
