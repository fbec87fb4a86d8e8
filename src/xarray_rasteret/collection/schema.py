"""The GeoParquet schema of a collection, and its conversion to and from RasterSources.

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

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
from affine import Affine

from .._types import RasterSource, TileLayout
from ..geo.crs import epsg_code

__all__ = [
    "BAND_METADATA_TYPE",
    "MASK_TYPE",
    "OVERVIEW_TYPE",
    "SCHEMA_COLUMNS",
    "band_metadata_array",
    "epsg_of",
    "make_table",
]

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

MASK_TYPE = pa.struct(
    [
        ("compression", pa.int32()),
        ("predictor", pa.int32()),
        ("bits_per_sample", pa.int32()),
        ("fill_order", pa.int32()),
        ("tiled", pa.bool_()),
        ("levels", pa.list_(OVERVIEW_TYPE)),
    ]
)
"""The file's internal per-dataset mask (GDAL's mask IFDs): its encoding (one unsigned
sample) and its levels, those of the band's levels that have one, finest first."""

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
        ("fill_order", pa.int32()),
        ("ycbcr", pa.list_(pa.float64())),
        ("mask", MASK_TYPE),
    ]
)
"""Type of a ``{band}_metadata`` column.

``dtype`` is the NumPy name without byte order (``'uint16'``), ``byte_order``
``'<'`` or ``'>'`` (missing: little endian). ``transform`` holds the six
coefficients ``(a, b, c, d, e, f)`` of the PixelIsArea affine (rasterio order:
``x = a*col + b*row + c``, ``y = d*col + e*row + f``); four values
``(a, c, e, f)`` as rasteret writes them are read too. ``tile_offsets`` of a
planar file hold every plane, one after the other (a rasteret table holding only
the band's own plane is read too). ``fill_order`` is the TIFF FillOrder (missing,
as in indexes written before it was recorded: 1); ``ycbcr`` the 11 numbers of
``TileEncoding.ycbcr`` for YCbCr outside JPEG (null otherwise). ``mask`` is the
internal mask (:data:`MASK_TYPE`; null, or absent in older indexes: none).
"""

METADATA_SUFFIX = "_metadata"
SCHEMA_COLUMNS = ("id", "datetime", "geometry", "bbox", "assets", "proj:epsg", "crs")
_BBOX_TYPE = pa.struct([(k, pa.float64()) for k in ("xmin", "ymin", "xmax", "ymax")])
_ASSET_TYPE = pa.struct([("href", pa.string()), ("band_index", pa.int32())])
_TIME_TYPE = pa.timestamp("us", tz="UTC")


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


# Long because it lists one column per field of BAND_METADATA_TYPE, in one place.
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
    ok = [s for s in sources if s is not None]

    def col(fn: Any, typ: pa.DataType) -> pa.Array:
        return pa.array([None if s is None else fn(s) for s in sources], type=typ)

    def lst(fn: Any, typ: pa.DataType) -> pa.Array:
        return _list_array([None if s is None else fn(s) for s in sources], typ)

    overviews = levels_array([None if s is None else s.levels[1:] for s in sources])

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
        "fill_order": col(lambda s: s.encoding.fill_order, pa.int32()),
        "ycbcr": lst(lambda s: s.encoding.ycbcr, pa.float64()),
        "mask": _mask_array([None if s is None else s.mask for s in sources]),
    }
    del ok
    return pa.StructArray.from_arrays(
        [arrays[f.name] for f in BAND_METADATA_TYPE],
        fields=list(BAND_METADATA_TYPE),
        mask=pa.array([s is None for s in sources], pa.bool_()),
    )


def levels_array(rows: Sequence[Sequence[TileLayout] | None]) -> pa.ListArray:
    """Image levels per row (None: null) as a list array of :data:`OVERVIEW_TYPE`."""
    # Flatten every level of every row, then nest.
    flat = [lv for row in rows if row for lv in row]
    struct = pa.StructArray.from_arrays(
        [
            pa.array([lv.width for lv in flat], pa.int32()),
            pa.array([lv.height for lv in flat], pa.int32()),
            pa.array([lv.tile_width for lv in flat], pa.int32()),
            pa.array([lv.tile_height for lv in flat], pa.int32()),
            _list_array([lv.tile_offsets for lv in flat], pa.int64()),
            _list_array([lv.tile_byte_counts for lv in flat], pa.int64()),
        ],
        fields=list(OVERVIEW_TYPE),
    )
    offsets = np.zeros(len(rows) + 1, np.int32)
    np.cumsum([0 if r is None else len(r) for r in rows], out=offsets[1:])
    return pa.ListArray.from_arrays(
        pa.array(offsets), struct, mask=pa.array([r is None for r in rows], pa.bool_())
    )


def _mask_array(masks: Sequence[RasterSource | None]) -> pa.StructArray:
    """The ``mask`` field: each row's internal mask (None: null)."""

    def col(fn: Any, typ: pa.DataType) -> pa.Array:
        return pa.array([None if m is None else fn(m) for m in masks], type=typ)

    return pa.StructArray.from_arrays(
        [
            col(lambda m: m.encoding.compression, pa.int32()),
            col(lambda m: m.encoding.predictor, pa.int32()),
            col(lambda m: m.encoding.bits_per_sample or 8, pa.int32()),
            col(lambda m: m.encoding.fill_order, pa.int32()),
            col(lambda m: m.levels[0].tiled, pa.bool_()),
            levels_array([None if m is None else m.levels for m in masks]),
        ],
        fields=list(MASK_TYPE),
        mask=pa.array([m is None for m in masks], pa.bool_()),
    )


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
        return epsg_code(crs)
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
        geometries shapely geometries in OGC:CRS84 (or None; None for a record whose
        sources have no transform tags, whatever is given).
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
    for band_sources in sources.values():
        # A file with a CRS but no transform tags: its outline in pixel indices is no
        # place in that CRS (ingest warned, naming the file).
        for i, s in enumerate(band_sources):
            if s is not None and s.extra.get("no_transform"):
                geoms[i] = None
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
        if name in cols or name.endswith(METADATA_SUFFIX):
            continue
        cols[name] = _user_array(list(values))
    for band, srcs in sources.items():
        cols[band + METADATA_SUFFIX] = band_metadata_array(srcs)
    return pa.table(cols)
