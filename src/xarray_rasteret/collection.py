"""The collection: a GeoParquet index of raster records, and its schema.

One row is one record (a scene, a tile, a chip); each band of a record is one
:class:`~xarray_rasteret._types.RasterSource`, stored as a ``{band}_metadata``
struct column. Converting between the two is vectorized over the columns so
that tens of thousands of rows convert in a fraction of a second.

Schema (GeoParquet 1.1)
-----------------------
``id`` string
    Record identifier.
``datetime`` timestamp[us, tz=UTC]
    Acquisition time; tz-naive timestamps (as rasteret 0.4 writes) are read as UTC.
``geometry`` binary (WKB)
    Footprint in OGC:CRS84 (``geo`` metadata, bbox covering column).
``bbox`` struct<xmin, ymin, xmax, ymax: double>
    Bounds of ``geometry``.
``assets`` struct<{band}: struct<href: string, band_index: int32>>
    Where each band's file is; a map column or plain ``href`` strings are read too.
``proj:epsg`` int32, ``crs`` string
    The record's CRS as EPSG code (when it has one) and as an authority code or WKT.
``{band}_metadata`` struct
    See :data:`BAND_METADATA_TYPE`.

Any other scalar column (split, label, cloud cover, ...) passes through.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from affine import Affine

from ._types import RasterSource, TileEncoding, TileLayout
from .errors import BandNotFoundError, MissingMetadataError

__all__ = ["BAND_METADATA_TYPE", "OVERVIEW_TYPE", "Collection", "load"]

OVERVIEW_TYPE = pa.struct(
    [
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("tile_width", pa.int32()),
        ("tile_height", pa.int32()),
        ("tile_offsets", pa.list_(pa.int64())),
        ("tile_byte_counts", pa.list_(pa.int64())),
    ]
)
"""One overview level: its size, tile grid and where its tiles are."""

BAND_METADATA_TYPE = pa.struct(
    [
        # The rasteret 0.4 fields, same names and types.
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("tile_width", pa.int32()),
        ("tile_height", pa.int32()),
        ("dtype", pa.string()),
        ("transform", pa.list_(pa.float64())),
        ("predictor", pa.int32()),
        ("compression", pa.int32()),
        ("tile_offsets", pa.list_(pa.int64())),
        ("tile_byte_counts", pa.list_(pa.int64())),
        ("pixel_scale", pa.list_(pa.float64())),
        ("tiepoint", pa.list_(pa.float64())),
        ("nodata", pa.float64()),
        ("samples_per_pixel", pa.int32()),
        ("planar_configuration", pa.int32()),
        ("photometric", pa.int32()),
        ("extra_samples", pa.list_(pa.int32())),
        # Ours.
        ("byte_order", pa.string()),
        ("bits_per_sample", pa.int32()),
        ("jpeg_tables", pa.binary()),
        ("lerc_parameters", pa.list_(pa.int32())),
        ("scale", pa.float64()),
        ("offset", pa.float64()),
        ("band_index", pa.int32()),
        ("tiled", pa.bool_()),
        ("overviews", pa.list_(OVERVIEW_TYPE)),
        ("file_size", pa.int64()),
        ("etag", pa.string()),
    ]
)
"""Type of a ``{band}_metadata`` column.

``dtype`` is the NumPy name without byte order (``'uint16'``), ``byte_order``
``'<'`` or ``'>'`` (missing: little endian). ``transform`` holds the six
coefficients ``(a, b, c, d, e, f)`` of the PixelIsArea affine (rasterio order:
``x = a*col + b*row + c``, ``y = d*col + e*row + f``); four values
``(a, c, e, f)`` as rasteret writes them are read too. ``tile_offsets`` of a
planar file hold every plane, one after the other (a rasteret table holding only
the band's own plane is read too).
"""

_METADATA_SUFFIX = "_metadata"
SCHEMA_COLUMNS = ("id", "datetime", "geometry", "bbox", "assets", "proj:epsg", "crs")
_BBOX_TYPE = pa.struct([(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])
_ASSET_TYPE = pa.struct([("href", pa.string()), ("band_index", pa.int32())])
_TIME_TYPE = pa.timestamp("us", tz="UTC")
_CMP = {"_lt": pc.less, "_le": pc.less_equal, "_gt": pc.greater, "_ge": pc.greater_equal}


# ---------------------------------------------------------------------------
# RasterSource <-> {band}_metadata
# ---------------------------------------------------------------------------


def _list_array(chunks: Sequence[Any], value_type: pa.DataType) -> pa.ListArray:
    """Build a list array from per-row sequences (None: null) without per-element Python work."""
    np_type = value_type.to_pandas_dtype()
    lengths = np.fromiter((0 if c is None else len(c) for c in chunks), np.int64, len(chunks))
    offsets = np.zeros(len(chunks) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    parts = [np.asarray(c, dtype=np_type) for c in chunks if c is not None and len(c)]
    values = np.concatenate(parts) if parts else np.zeros(0, np_type)
    mask = pa.array([c is None for c in chunks], pa.bool_())
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, value_type), mask=mask)


def _transform_coeffs(t: Affine) -> list[float]:
    return [t.a, t.b, t.c, t.d, t.e, t.f]


def band_metadata_array(sources: Sequence[RasterSource | None]) -> pa.StructArray:
    """Encode one band of many records as a ``{band}_metadata`` struct array (None -> null).

    Parameters
    ----------
    sources
        One RasterSource (or None where the record lacks the band) per row.

    Returns
    -------
    pyarrow.StructArray
        Of type :data:`BAND_METADATA_TYPE`.
    """
    n = len(sources)
    ok = [s for s in sources if s is not None]

    def col(fn: Any, typ: pa.DataType) -> pa.Array:
        return pa.array([None if s is None else fn(s) for s in sources], type=typ)

    def lst(fn: Any, typ: pa.DataType) -> pa.Array:
        return _list_array([None if s is None else fn(s) for s in sources], typ)

    def ovs(s: RasterSource) -> list[dict[str, Any]]:
        return [
            {
                "image_width": lv.width,
                "image_height": lv.height,
                "tile_width": lv.tile_width,
                "tile_height": lv.tile_height,
                "tile_offsets": lv.tile_offsets,
                "tile_byte_counts": lv.tile_byte_counts,
            }
            for lv in s.levels[1:]
        ]

    # Overviews: flatten every level of every row, then nest.
    ov_rows = [None if s is None else ovs(s) for s in sources]
    flat = [o for row in ov_rows if row for o in row]
    ov_struct = pa.StructArray.from_arrays(
        [
            pa.array([o["image_width"] for o in flat], pa.int32()),
            pa.array([o["image_height"] for o in flat], pa.int32()),
            pa.array([o["tile_width"] for o in flat], pa.int32()),
            pa.array([o["tile_height"] for o in flat], pa.int32()),
            _list_array([o["tile_offsets"] for o in flat], pa.int64()),
            _list_array([o["tile_byte_counts"] for o in flat], pa.int64()),
        ],
        fields=list(OVERVIEW_TYPE),
    )
    ov_offsets = np.zeros(n + 1, np.int32)
    np.cumsum([0 if r is None else len(r) for r in ov_rows], out=ov_offsets[1:])
    overviews = pa.ListArray.from_arrays(
        pa.array(ov_offsets), ov_struct, mask=pa.array([r is None for r in ov_rows], pa.bool_())
    )

    def nodata(s: RasterSource) -> float | None:
        return None if s.nodata is None else float(s.nodata)

    arrays = {
        "image_width": col(lambda s: s.levels[0].width, pa.int32()),
        "image_height": col(lambda s: s.levels[0].height, pa.int32()),
        "tile_width": col(lambda s: s.levels[0].tile_width, pa.int32()),
        "tile_height": col(lambda s: s.levels[0].tile_height, pa.int32()),
        "dtype": col(lambda s: np.dtype(s.encoding.dtype).name, pa.string()),
        "transform": lst(lambda s: _transform_coeffs(s.transform), pa.float64()),
        "predictor": col(lambda s: s.encoding.predictor, pa.int32()),
        "compression": col(lambda s: s.encoding.compression, pa.int32()),
        "tile_offsets": lst(lambda s: s.levels[0].tile_offsets, pa.int64()),
        "tile_byte_counts": lst(lambda s: s.levels[0].tile_byte_counts, pa.int64()),
        # GeoTIFF-style scale and tiepoint equivalent to the (north-up) transform.
        "pixel_scale": lst(lambda s: [s.transform.a, -s.transform.e, 0.0], pa.float64()),
        "tiepoint": lst(lambda s: [0.0, 0.0, 0.0, s.transform.c, s.transform.f, 0.0], pa.float64()),
        "nodata": col(nodata, pa.float64()),
        "samples_per_pixel": col(lambda s: s.encoding.samples_per_pixel, pa.int32()),
        "planar_configuration": col(lambda s: 2 if s.encoding.planar else 1, pa.int32()),
        "photometric": col(lambda s: s.encoding.photometric, pa.int32()),
        "extra_samples": lst(lambda s: s.extra.get("extra_samples"), pa.int32()),
        "byte_order": col(
            lambda s: ">" if np.dtype(s.encoding.dtype).byteorder == ">" else "<", pa.string()
        ),
        "bits_per_sample": col(
            lambda s: s.encoding.bits_per_sample or np.dtype(s.encoding.dtype).itemsize * 8,
            pa.int32(),
        ),
        "jpeg_tables": col(lambda s: s.encoding.jpeg_tables, pa.binary()),
        "lerc_parameters": lst(lambda s: s.encoding.lerc_parameters, pa.int32()),
        "scale": col(lambda s: s.scale, pa.float64()),
        "offset": col(lambda s: s.offset, pa.float64()),
        "band_index": col(lambda s: s.band_index, pa.int32()),
        "tiled": col(lambda s: s.levels[0].tiled, pa.bool_()),
        "overviews": overviews,
        "file_size": col(lambda s: s.size, pa.int64()),
        "etag": col(lambda s: s.etag, pa.string()),
    }
    del ok
    return pa.StructArray.from_arrays(
        [arrays[f.name] for f in BAND_METADATA_TYPE],
        fields=list(BAND_METADATA_TYPE),
        mask=pa.array([s is None for s in sources], pa.bool_()),
    )


class _Fields:
    """Column-wise access to a ``{band}_metadata`` struct array, tolerant of missing fields."""

    def __init__(self, md: pa.StructArray) -> None:
        self.md = md
        self.n = len(md)
        self.names = set(md.type.names)

    def has(self, name: str) -> bool:
        return name in self.names

    def scalar(self, name: str, default: Any, dtype: Any) -> np.ndarray:
        if name not in self.names:
            return np.full(self.n, default, dtype=dtype)
        arr = pc.struct_field(self.md, name)
        if pa.types.is_null(arr.type):
            return np.full(self.n, default, dtype=dtype)
        return np.asarray(arr.fill_null(default).to_numpy(zero_copy_only=False), dtype=dtype)

    def valid(self, name: str) -> np.ndarray:
        if name not in self.names:
            return np.zeros(self.n, bool)
        return pc.struct_field(self.md, name).is_valid().to_numpy(zero_copy_only=False)

    def objects(self, name: str) -> list[Any]:
        if name not in self.names:
            return [None] * self.n
        return pc.struct_field(self.md, name).to_pylist()

    def lists(self, name: str, dtype: Any) -> tuple[np.ndarray, np.ndarray] | None:
        """``(offsets, values)``: row ``i`` is ``values[offsets[i]:offsets[i + 1]]``."""
        if name not in self.names:
            return None
        arr = pc.struct_field(self.md, name)
        return _split_list(arr, dtype)


def _split_list(arr: pa.Array, dtype: Any) -> tuple[np.ndarray, np.ndarray] | None:
    if pa.types.is_null(arr.type):
        return None
    offsets = arr.offsets.to_numpy().astype(np.int64, copy=False)
    values = np.asarray(arr.values.to_numpy(zero_copy_only=False), dtype=dtype)
    return offsets, values


def _transform_from(
    coeffs: np.ndarray, scale: np.ndarray | None, tie: np.ndarray | None
) -> Affine | None:
    if len(coeffs) == 6:
        return Affine(*(float(v) for v in coeffs))
    if len(coeffs) == 4:  # rasteret: (scale_x, translate_x, scale_y, translate_y)
        sx, tx, sy, ty = (float(v) for v in coeffs)
        return Affine(sx, 0.0, tx, 0.0, sy, ty)
    if scale is not None and tie is not None and len(scale) >= 2 and len(tie) >= 6:
        sx, sy = float(scale[0]), -float(scale[1])
        return Affine(sx, 0.0, tie[3] - tie[0] * sx, 0.0, sy, tie[4] - tie[1] * sy)
    return None


@lru_cache(maxsize=1024)
def _dtype_str(name: str, byte_order: str) -> tuple[str, int]:
    dt = np.dtype(name).newbyteorder(">" if byte_order == ">" else "<")
    return dt.str, dt.itemsize * 8


def _full_planes(values: np.ndarray, tiles_per_plane: int, planes: int, index: int) -> np.ndarray:
    """Expand one plane's tile table (as rasteret stores planar bands) to every plane."""
    out = np.zeros(tiles_per_plane * planes, np.int64)
    out[index * tiles_per_plane : (index + 1) * tiles_per_plane] = values
    return out


def _layout(
    planes: int,
    band: int,
    tiled: bool,
    w: int,
    h: int,
    tw: int,
    th: int,
    o: np.ndarray,
    c: np.ndarray,
) -> TileLayout:
    tw = tw or w
    th = th or h
    per_plane = -(-w // tw) * -(-h // th)
    if planes > 1 and len(o) == per_plane:
        o = _full_planes(o, per_plane, planes, band)
        c = _full_planes(c, per_plane, planes, band)
    return TileLayout(w, h, tw, th, o, c, tiled)


def sources_from_metadata(
    md: pa.StructArray,
    hrefs: Sequence[str | None],
    crs: Sequence[str | None],
    *,
    band_index: np.ndarray | None = None,
) -> list[RasterSource]:
    """Decode a ``{band}_metadata`` struct array into RasterSources (no null rows allowed)."""
    f = _Fields(md)
    n = f.n
    width = f.scalar("image_width", 0, np.int64)
    height = f.scalar("image_height", 0, np.int64)
    tw = f.scalar("tile_width", 0, np.int64)
    th = f.scalar("tile_height", 0, np.int64)
    tiled = f.scalar("tiled", True, bool)
    predictor = f.scalar("predictor", 1, np.int64)
    compression = f.scalar("compression", 1, np.int64)
    spp = f.scalar("samples_per_pixel", 1, np.int64)
    planar = f.scalar("planar_configuration", 1, np.int64) == 2
    photometric = f.scalar("photometric", 1, np.int64)
    bits = f.scalar("bits_per_sample", 0, np.int64)
    dtypes = f.objects("dtype")
    orders = f.objects("byte_order")
    jpeg = f.objects("jpeg_tables") if f.has("jpeg_tables") else None
    lerc = f.lists("lerc_parameters", np.int64)
    nodata = f.scalar("nodata", np.nan, np.float64)
    has_nodata = f.valid("nodata")
    scale = f.scalar("scale", 1.0, np.float64)
    offset = f.scalar("offset", 0.0, np.float64)
    if f.has("band_index"):
        bidx = f.scalar("band_index", 0, np.int64)
        if band_index is not None:  # rasteret keeps band_index in the assets
            bidx = np.where(f.valid("band_index"), bidx, band_index)
    else:
        bidx = band_index if band_index is not None else np.zeros(n, np.int64)
    size = f.scalar("file_size", -1, np.int64)
    etags = f.objects("etag") if f.has("etag") else None
    offs = f.lists("tile_offsets", np.int64)
    counts = f.lists("tile_byte_counts", np.int64)
    tr = f.lists("transform", np.float64)
    ps = f.lists("pixel_scale", np.float64)
    tp = f.lists("tiepoint", np.float64)
    if offs is None or counts is None:
        raise MissingMetadataError("band metadata has no tile_offsets/tile_byte_counts")
    off_o, off_v = offs
    cnt_o, cnt_v = counts

    ov = None
    if f.has("overviews"):
        ov_arr = pc.struct_field(md, "overviews")
        if not pa.types.is_null(ov_arr.type):
            ov_o = ov_arr.offsets.to_numpy().astype(np.int64)
            ov_vals = ov_arr.values
            of = _Fields(ov_vals)
            ov = (
                ov_o,
                of.scalar("image_width", 0, np.int64),
                of.scalar("image_height", 0, np.int64),
                of.scalar("tile_width", 0, np.int64),
                of.scalar("tile_height", 0, np.int64),
                of.lists("tile_offsets", np.int64),
                of.lists("tile_byte_counts", np.int64),
            )

    transforms = _transforms(n, tr, ps, tp)
    # Python lists index far faster than NumPy scalars in the per-row loop.
    width_l, height_l, tw_l, th_l = width.tolist(), height.tolist(), tw.tolist(), th.tolist()
    off_ol, cnt_ol = off_o.tolist(), cnt_o.tolist()
    spp_l, planar_l, tiled_l, bidx_l = spp.tolist(), planar.tolist(), tiled.tolist(), bidx.tolist()
    nodata_l = [
        v if ok else None for v, ok in zip(nodata.tolist(), has_nodata.tolist(), strict=True)
    ]
    scale_l, offset_l = scale.tolist(), offset.tolist()
    size_l = [v if v >= 0 else None for v in size.tolist()]
    etag_l = etags if etags is not None else [None] * n
    lerc_l = (
        [tuple(lerc[1][lerc[0][i] : lerc[0][i + 1]].tolist()) or None for i in range(n)]
        if lerc
        else [None] * n
    )
    keys = zip(
        compression.tolist(),
        predictor.tolist(),
        dtypes,
        orders,
        spp_l,
        planar_l,
        photometric.tolist(),
        jpeg if jpeg is not None else [None] * n,
        lerc_l,
        bits.tolist(),
        strict=True,
    )
    encodings: dict[tuple[Any, ...], TileEncoding] = {}
    row_enc: list[TileEncoding] = []
    for key in keys:
        enc = encodings.get(key)
        if enc is None:
            comp, pred, name, order, spp_i, planar_i, photo, jpeg_i, lerc_i, bits_i = key
            if name is None:
                raise MissingMetadataError("band metadata without a dtype")
            dt, nbits = _dtype_str(name, order or "<")
            enc = encodings[key] = TileEncoding(
                comp, pred, dt, spp_i, planar_i, photo, jpeg_i, lerc_i,
                None if bits_i in (0, nbits) else bits_i,
            )  # fmt: skip
        row_enc.append(enc)
    if ov is not None:
        o_off, o_w, o_h, o_tw, o_th, o_to, o_tc = ov
        assert o_to is not None and o_tc is not None
        o_offl, o_wl, o_hl = o_off.tolist(), o_w.tolist(), o_h.tolist()
        o_twl, o_thl, o_tol, o_tcl = (
            o_tw.tolist(),
            o_th.tolist(),
            o_to[0].tolist(),
            o_tc[0].tolist(),
        )
        o_tov, o_tcv = o_to[1], o_tc[1]

    out: list[RasterSource] = []
    for i in range(n):
        planes = spp_l[i] if planar_l[i] else 1
        b = bidx_l[i]
        is_tiled = tiled_l[i]
        levels = [
            _layout(
                planes, b, is_tiled, width_l[i], height_l[i], tw_l[i], th_l[i],
                off_v[off_ol[i] : off_ol[i + 1]], cnt_v[cnt_ol[i] : cnt_ol[i + 1]],
            )
        ]  # fmt: skip
        if ov is not None:
            for j in range(o_offl[i], o_offl[i + 1]):
                levels.append(
                    _layout(
                        planes, b, is_tiled, o_wl[j], o_hl[j], o_twl[j], o_thl[j],
                        o_tov[o_tol[j] : o_tol[j + 1]], o_tcv[o_tcl[j] : o_tcl[j + 1]],
                    )
                )  # fmt: skip
        transform = transforms[i]
        crs_i = crs[i]
        if transform is None:  # not georeferenced: pixel-index grid
            transform, crs_i = Affine.identity(), None
        out.append(
            RasterSource(
                hrefs[i],  # type: ignore[arg-type]
                transform,
                crs_i,
                row_enc[i],
                tuple(levels),
                b,
                nodata_l[i],
                scale_l[i],
                offset_l[i],
                size_l[i],
                etag_l[i],
            )
        )
    return out


def _transforms(
    n: int,
    tr: tuple[np.ndarray, np.ndarray] | None,
    ps: tuple[np.ndarray, np.ndarray] | None,
    tp: tuple[np.ndarray, np.ndarray] | None,
) -> list[Affine | None]:
    """One Affine per row; identical rows share one object (scenes of a tile grid)."""
    cache: dict[tuple[float, ...], Affine] = {}
    out: list[Affine | None] = []
    if tr is not None and len(tr[1]) == 6 * n and (np.diff(tr[0]) == 6).all():
        for row in tr[1].reshape(n, 6).tolist():
            key = tuple(row)
            t = cache.get(key)
            if t is None:
                t = cache[key] = Affine(*row)
            out.append(t)
        return out
    for i in range(n):
        out.append(
            _transform_from(
                tr[1][tr[0][i] : tr[0][i + 1]] if tr else np.zeros(0),
                ps[1][ps[0][i] : ps[0][i + 1]] if ps else None,
                tp[1][tp[0][i] : tp[0][i + 1]] if tp else None,
            )
        )
    return out


# ---------------------------------------------------------------------------
# Building tables
# ---------------------------------------------------------------------------


@lru_cache(maxsize=256)
def epsg_of(crs: str | None) -> int | None:
    """EPSG code of a CRS string, if it has one."""
    if not crs:
        return None
    m = re.fullmatch(r"\s*EPSG:(\d+)\s*", crs, flags=re.IGNORECASE)
    if m:
        return int(m.group(1))
    try:
        from pyproj import CRS

        return CRS.from_user_input(crs).to_epsg()
    except Exception:  # noqa: BLE001 - an unparseable CRS just has no code
        return None


def _user_array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def make_table(
    *,
    ids: Sequence[str],
    datetimes: Sequence[Any],
    geometries: Sequence[Any],
    crs: Sequence[str | None],
    assets: Mapping[str, Sequence[tuple[str, int] | None]],
    sources: Mapping[str, Sequence[RasterSource | None]],
    user: Mapping[str, Sequence[Any]] | None = None,
) -> pa.Table:
    """Assemble a collection table in the schema of this module.

    Parameters
    ----------
    ids, datetimes, geometries, crs
        One per record; datetimes are aware or UTC-naive datetimes (or None),
        geometries shapely geometries in OGC:CRS84 (or None).
    assets
        Per band, one ``(href, band_index)`` (or None) per record.
    sources
        Per band, one RasterSource (or None) per record.
    user
        Extra scalar columns.

    Returns
    -------
    pyarrow.Table
    """
    import shapely

    geoms = np.array(list(geometries), dtype=object)
    wkb = shapely.to_wkb(geoms)
    bounds = shapely.bounds(geoms)  # NaN rows for None
    bbox_valid = ~np.isnan(bounds[:, 0]) if len(geoms) else np.zeros(0, bool)
    bbox = pa.StructArray.from_arrays(
        [pa.array(bounds[:, k], pa.float64()) for k in range(4)],
        fields=list(_BBOX_TYPE),
        mask=pa.array(~bbox_valid, pa.bool_()),
    )
    asset_cols = []
    for refs in assets.values():
        asset_cols.append(
            pa.StructArray.from_arrays(
                [
                    pa.array([r[0] if r else None for r in refs], pa.string()),
                    pa.array([r[1] if r else None for r in refs], pa.int32()),
                ],
                fields=list(_ASSET_TYPE),
                mask=pa.array([r is None for r in refs], pa.bool_()),
            )
        )
    if asset_cols:
        assets_arr = pa.StructArray.from_arrays(asset_cols, names=list(assets))
    else:
        assets_arr = pa.array([{}] * len(ids), pa.struct([]))
    cols: dict[str, pa.Array] = {
        "id": pa.array(list(ids), pa.string()),
        "datetime": pa.array(list(datetimes), _TIME_TYPE),
        "geometry": pa.array(list(wkb), pa.binary()),
        "bbox": bbox,
        "assets": assets_arr,
        "proj:epsg": pa.array([epsg_of(c) for c in crs], pa.int32()),
        "crs": pa.array(list(crs), pa.string()),
    }
    for name, values in (user or {}).items():
        if name in cols or name.endswith(_METADATA_SUFFIX):
            continue
        cols[name] = _user_array(list(values))
    for band, srcs in sources.items():
        cols[band + _METADATA_SUFFIX] = band_metadata_array(srcs)
    return pa.table(cols)


# ---------------------------------------------------------------------------
# The collection
# ---------------------------------------------------------------------------


def _combined(col: pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


class Collection:
    """A GeoParquet-backed index of raster records.

    Parameters
    ----------
    table
        A table in the collection schema (see the module docstring); tables written
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
            c[: -len(_METADATA_SUFFIX)]
            for c in self.table.column_names
            if c.endswith(_METADATA_SUFFIX) and pa.types.is_struct(self.table.schema.field(c).type)
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
            if f.name in SCHEMA_COLUMNS or f.name.endswith(_METADATA_SUFFIX):
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
        column = band + _METADATA_SUFFIX
        fix = "rebuild the collection with xarray_rasteret.build(...) to parse the COG headers"
        if column not in self.table.column_names:
            first = self.ids[0] if len(self) else "?"
            raise MissingMetadataError(
                f"record {first!r} has no {column!r} (no header metadata for band {band!r}); {fix}"
            )
        md = _combined(self.table.column(column))
        missing = md.is_null().to_numpy(zero_copy_only=False)
        hrefs_arr = self._asset_field(band, "href")
        if hrefs_arr is None:
            missing_href = np.ones(len(self), bool)
            hrefs: list[str | None] = [None] * len(self)
        else:
            missing_href = hrefs_arr.is_null().to_numpy(zero_copy_only=False)
            hrefs = hrefs_arr.to_pylist()
        bad = missing | missing_href
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
        return sources_from_metadata(md, hrefs, self.crs, band_index=band_index)

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
        mask = np.ones(len(self), bool)
        when = equals.get("datetime")
        if isinstance(when, tuple) and len(when) == 2:  # datetime=(start, end) means time=
            del equals["datetime"]
            mask &= self._time_mask(when)
        if bbox is not None:
            mask &= self._bbox_mask(bbox, bbox_crs)
        if time is not None:
            mask &= self._time_mask(time)
        names = self.table.column_names
        for key, value in equals.items():
            op = None
            column = key
            if key not in names and key[-3:] in _CMP and key[:-3] in names:
                column, op = key[:-3], _CMP[key[-3:]]
            if column not in names:
                raise ValueError(
                    f"unknown column {key!r} in filter; the columns are {names} "
                    "(suffix _lt/_le/_gt/_ge to compare)"
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
        if not _is_crs84(bbox_crs):
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

    def get_numpy(self, **kwargs: Any) -> np.ndarray:
        """Pixels inside geometries as one array; see :func:`xarray_rasteret.get_numpy`."""
        from .helpers import get_numpy

        return get_numpy(self, **kwargs)

    def get_gdf(self, **kwargs: Any) -> Any:
        """One row per (geometry, record); see :func:`xarray_rasteret.get_gdf`."""
        from .helpers import get_gdf

        return get_gdf(self, **kwargs)

    def get_xarray(self, **kwargs: Any) -> Any:
        """Pixels inside geometries as a Dataset; see :func:`xarray_rasteret.get_xarray`."""
        from .helpers import get_xarray

        return get_xarray(self, **kwargs)

    def sample_points(self, **kwargs: Any) -> pa.Table:
        """Values at points; see :func:`xarray_rasteret.sample_points`."""
        from .helpers import sample_points

        return sample_points(self, **kwargs)

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

        import pyarrow.parquet as pq

        table = self.table
        meta = dict(table.schema.metadata or {})
        meta[b"geo"] = json.dumps(self._geo_metadata()).encode()
        table = table.replace_schema_metadata(meta)
        target = os.fspath(path)
        if "://" in target and not target.startswith("file://"):
            from ._sync import sync
            from .storage import resolve_store

            store, key = resolve_store(target, storage_options=storage_options)
            put = getattr(store, "put_async", None)
            if put is None:
                raise NotImplementedError(f"the store for {target!r} cannot write; write locally")
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="zstd")
            sync(put(key, sink.getvalue().to_pybytes()))
            return
        from .storage.local import local_path

        pq.write_table(table, local_path(target), compression="zstd")

    def _geo_metadata(self) -> dict[str, Any]:
        import shapely
        from pyproj import CRS

        geoms = self.geometries
        valid = np.array([g is not None for g in geoms], bool)
        kinds = sorted({shapely.get_type_id(g) for g in geoms[valid]}) if valid.any() else []
        names = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint",
                 5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}  # fmt: skip
        column: dict[str, Any] = {
            "encoding": "WKB",
            "geometry_types": [names[k] for k in kinds if k in names],
            "crs": CRS.from_user_input("OGC:CRS84").to_json_dict(),
        }
        if valid.any():
            b = shapely.total_bounds(geoms[valid])
            column["bbox"] = [float(v) for v in b]
        if "bbox" in self.table.column_names:
            column["covering"] = {
                "bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}
            }
        return {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        lines = [f"<xarray_rasteret.Collection{label}: {len(self)} records>"]
        lines.append(f"  bands: {', '.join(self.bands) or '-'}")
        t = self.datetimes
        t = t[~np.isnat(t)]
        if len(t):
            lines.append(f"  time:  {t.min()} .. {t.max()}")
        counts: dict[str, int] = {}
        for c in self.crs:
            key = _short_crs(c)
            counts[key] = counts.get(key, 0) + 1
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


def _is_crs84(crs: str) -> bool:
    return crs.upper().replace(" ", "") in ("OGC:CRS84", "CRS84", "EPSG:4326", "WGS84")


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


@lru_cache(maxsize=64)
def _to_crs84(crs: str) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs(crs, "OGC:CRS84", always_xy=True)


def footprint_crs84(
    transform: Affine, width: int, height: int, crs: str | None, densify: int = 21
) -> Any:
    """Outline an image, densified and transformed to OGC:CRS84 (None without a CRS).

    Parameters
    ----------
    transform
        Pixel-corner affine of the image.
    width, height
        Image size in pixels.
    crs
        The image CRS.
    densify
        Points per edge.

    Returns
    -------
    shapely.Polygon or None
    """
    import shapely

    if crs is None:
        return None
    s = np.linspace(0.0, 1.0, densify)
    cols = np.concatenate([s * width, np.full(densify, width), (1 - s) * width, np.zeros(densify)])
    rows = np.concatenate(
        [np.zeros(densify), s * height, np.full(densify, height), (1 - s) * height]
    )
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    xs, ys = a * cols + b * rows + c, d * cols + e * rows + f
    if not _is_crs84(crs):
        xs, ys = _to_crs84(crs).transform(xs, ys)
    poly = shapely.Polygon(np.column_stack([xs, ys]))
    if not poly.is_valid:
        poly = shapely.make_valid(poly)
    if not all(math.isfinite(v) for v in poly.bounds):
        return None
    return shapely.normalize(poly)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load(
    path: str | os.PathLike[str],
    *,
    storage_options: dict[str, Any] | None = None,
    backend: Any = None,
) -> Collection:
    """Open a collection written by :meth:`Collection.to_parquet` (or by rasteret 0.4).

    Parameters
    ----------
    path
        A Parquet file or a directory of them (hive-partitioned, as rasteret
        writes), a ``file://`` URL, or an ``http(s)://``/``s3://`` URL of one file.
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
    """
    import pyarrow.parquet as pq

    target = os.fspath(path)
    name = os.path.basename(target.rstrip("/")) or None
    if backend is None and ("://" not in target or target.startswith("file://")):
        from .storage.local import local_path

        local = local_path(target)
        if os.path.isdir(local):  # a partitioned dataset (rasteret writes year=/month=)
            return Collection(pq.read_table(local), name=name)
        # One file: ParquetFile skips loading pyarrow's dataset machinery (~50 ms cold).
        return Collection(pq.ParquetFile(local).read(), name=name)
    from ._sync import sync

    data = sync(_read_object(target, storage_options, backend))
    return Collection(pq.ParquetFile(pa.BufferReader(data)).read(), name=name)


async def _read_object(href: str, storage_options: dict[str, Any] | None, backend: Any) -> bytes:
    """Read the whole object at ``href`` through its store."""
    from .storage import resolve_store

    store, key = resolve_store(href, storage_options=storage_options, backend=backend)
    get = getattr(store, "get_async", None)
    if get is not None:  # obspec GetAsync
        result = await get(key)
        return bytes(await result.bytes_async())
    head = getattr(store, "head_async", None)
    if head is None:
        raise NotImplementedError(
            f"cannot find the size of {href!r}: its store has no head_async/get_async"
        )
    meta = await head(key)
    size = int(meta["size"] if isinstance(meta, Mapping) else meta.size)
    return bytes(memoryview(await store.get_range_async(key, start=0, end=size)))
