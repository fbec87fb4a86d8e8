"""Decoding of ``{band}_metadata`` columns into RasterSources, vectorized over rows.

Reads the layout written by :mod:`.schema` and the older ones (rasteret 0.4's
four-coefficient transforms, planar bands holding only their own plane's tiles).

Every column is checked before it is trusted (:mod:`._checks` for sizes, tile
tables and transforms; encodings and nodata here, where they are decoded).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
from affine import Affine

from .._read.codecs import PREDICTED_CODECS
from .._read.decode import check_supported
from .._types import RasterSource, TileEncoding, TileLayout
from ..errors import UnsupportedTiffError
from ._checks import (
    MAX_SAMPLES,
    Levels,
    Rows,
    check_levels,
    check_overview_sizes,
    check_transforms,
)
from ._columns import Fields, overview_levels
from ._masks import with_masks

__all__ = ["sources_from_metadata", "transform_from"]

# A field only this package's schema has: a table without it is rasteret 0.4's, whose
# planar bands list only their own plane's tiles.
_OURS = "byte_order"


def transform_from(
    coeffs: np.ndarray, scale: np.ndarray | None, tie: np.ndarray | None
) -> Affine | None:
    """The affine of a row: 6 coefficients, rasteret's 4, or pixel scale + tie point."""
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
    one_plane: bool,
) -> TileLayout:
    if one_plane:
        per_plane = -(-w // tw) * -(-h // th)
        o = _full_planes(o, per_plane, planes, band)
        c = _full_planes(c, per_plane, planes, band)
    return TileLayout(w, h, tw, th, o, c, tiled)


def sources_from_metadata(
    md: pa.StructArray,
    hrefs: Sequence[str | None],
    crs: Sequence[str | None],
    *,
    band_index: np.ndarray | None = None,
    ids: Sequence[Any] | pa.ChunkedArray | None = None,
    band: str | None = None,
) -> list[RasterSource]:
    """Decode a ``{band}_metadata`` struct array into RasterSources (no null rows allowed).

    Parameters
    ----------
    md
        The band's metadata, one struct per record.
    hrefs, crs
        Per record: the band's href and the record's CRS.
    band_index
        Per record, the sample of the file the band is, where the assets say so.
    ids, band
        Record ids (a column is not converted unless a message needs one) and the
        band's name, for messages.

    Returns
    -------
    list of RasterSource
        One per record, in order.

    Raises
    ------
    MissingMetadataError
        If a record's metadata is missing, or inconsistent in a way no file can be
        (the message names the record, the field and the fix).
    """
    f = Fields(md)
    rows = Rows(hrefs, ids, band)
    cols = _validated_columns(f, rows, band_index)
    return with_masks(f.md, rows, _build_sources(f.n, cols, hrefs, crs), cols["size"])


def _validated_columns(f: Fields, rows: Rows, band_index: np.ndarray | None) -> dict[str, Any]:
    """Every column a RasterSource needs, checked; one pass of column reads."""
    n = f.n
    spp = f.scalar("samples_per_pixel", 1, np.int64)
    planar = f.scalar("planar_configuration", 1, np.int64) == 2
    rows.check((spp < 1) | (spp > MAX_SAMPLES), "samples_per_pixel is {v} (1 to 65535)", spp)
    if f.has("band_index"):
        bidx = f.scalar("band_index", 0, np.int64)
        if band_index is not None:  # rasteret keeps band_index in the assets
            bidx = np.where(f.valid("band_index"), bidx, band_index)
    else:
        bidx = band_index if band_index is not None else np.zeros(n, np.int64)
    rows.check(
        (bidx < 0) | (bidx >= spp),
        lambda i: f"band_index {bidx[i]} is not a sample of a file of {spp[i]} samples",
    )
    row_enc, enc_id = _row_encodings(f, rows, spp.tolist(), planar.tolist())
    uniq = list(dict.fromkeys(row_enc))
    itemsize = np.array([np.dtype(e.dtype).itemsize for e in uniq], np.int64)[enc_id]
    samples = np.where(planar, 1, spp)
    pixel_bytes = samples * itemsize
    tiled = f.scalar("tiled", True, bool)
    planes = np.where(planar, spp, 1)
    size = f.scalar("file_size", -1, np.int64)
    one_plane_ok = np.full(n, not f.has(_OURS))
    base = Levels(
        f.scalar("image_width", 0, np.int64),
        f.scalar("image_height", 0, np.int64),
        f.scalar("tile_width", -1, np.int64),
        f.scalar("tile_height", -1, np.int64),
        f.lists("tile_offsets", np.int64),
        f.lists("tile_byte_counts", np.int64),
    )
    one_plane = [check_levels(rows, base, tiled, planes, one_plane_ok, pixel_bytes, size)]
    ov = overview_levels(f.md) if f.has("overviews") else None
    if ov is not None:
        one_plane.append(check_levels(rows, ov[1], tiled, planes, one_plane_ok, pixel_bytes, size))
        check_overview_sizes(rows, ov[1], base)
    transforms, coeffs, lengths = _transforms(
        n,
        f.lists("transform", np.float64),
        f.lists("pixel_scale", np.float64),
        f.lists("tiepoint", np.float64),
    )
    check_transforms(rows, coeffs, lengths, base.width, base.height)
    nodata = _nodata(f, uniq, enc_id)
    return {
        "base": base, "ov": ov, "one_plane": one_plane, "spp": spp, "planar": planar,
        "tiled": tiled, "bidx": bidx, "nodata": nodata, "size": size, "enc": row_enc,
        "transforms": transforms, "scale": f.scalar("scale", 1.0, np.float64),
        "offset": f.scalar("offset", 0.0, np.float64),
        "etag": f.objects("etag") if f.has("etag") else [None] * n,
    }  # fmt: skip


def _nodata(f: Fields, uniq: list[TileEncoding], enc_id: np.ndarray) -> list[float | None]:
    """Per record, the nodata value as GDAL compares it, or None where it masks nothing.

    GDAL casts the value to the band's type: an integer band's is truncated (254.5
    masks 254) and ignored outside the type's range (-1 or 1e300 on uint16, NaN: a
    common real-world case); a float32 band's is rounded to float32 (a decimal
    ``-3.39999999999999996e+38`` masks the pixels at its rounding; beyond the range
    it becomes an infinity). Indexes built before build applied this rule get it
    here; so reads mask and fill as GDAL's do.
    """
    value = f.scalar("nodata", np.nan, np.float64)
    out = np.where(f.valid("nodata"), value, np.nan)
    keep = f.valid("nodata").copy()
    for k, enc in enumerate(uniq):
        rows = enc_id == k
        dt = np.dtype(enc.dtype)
        v = out[rows]
        if dt.kind in "iu":
            info = np.iinfo(dt)
            with np.errstate(invalid="ignore"):
                inside = np.isfinite(v) & (info.min <= v) & (v <= info.max)
            keep[rows] &= inside
            out[rows] = np.trunc(np.where(inside, v, 0))
        elif dt.kind == "f":
            with np.errstate(over="ignore"):
                out[rows] = v.astype(dt.newbyteorder("=")).astype(np.float64)
    return [v if ok else None for v, ok in zip(out.tolist(), keep.tolist(), strict=True)]


def _build_sources(
    n: int, cols: dict[str, Any], hrefs: Sequence[str | None], crs: Sequence[str | None]
) -> list[RasterSource]:
    """One loop over rows, on Python lists (they index far faster than NumPy scalars)."""
    base: Levels = cols["base"]
    assert base.offsets is not None and base.counts is not None  # checked
    off_v, cnt_v = base.offsets[1], base.counts[1]
    off_ol, cnt_ol = base.offsets[0].tolist(), base.counts[0].tolist()
    width_l, height_l = base.width.tolist(), base.height.tolist()
    tw_l, th_l = base.tile_width.tolist(), base.tile_height.tolist()
    one_l = cols["one_plane"][0].tolist()
    spp_l, planar_l = cols["spp"].tolist(), cols["planar"].tolist()
    tiled_l, bidx_l = cols["tiled"].tolist(), cols["bidx"].tolist()
    scale_l, offset_l = cols["scale"].tolist(), cols["offset"].tolist()
    size_l = [v if v >= 0 else None for v in cols["size"].tolist()]
    nodata_l, row_enc, etag_l = cols["nodata"], cols["enc"], cols["etag"]
    transforms = cols["transforms"]
    ov: tuple[np.ndarray, Levels] | None = cols["ov"]
    if ov is not None:
        o_offl = ov[0].tolist()
        o = ov[1]
        assert o.offsets is not None and o.counts is not None  # checked
        o_wl, o_hl = o.width.tolist(), o.height.tolist()
        o_twl, o_thl = o.tile_width.tolist(), o.tile_height.tolist()
        o_tol, o_tcl = o.offsets[0].tolist(), o.counts[0].tolist()
        o_tov, o_tcv = o.offsets[1], o.counts[1]
        o_one = cols["one_plane"][1].tolist()

    out: list[RasterSource] = []
    for i in range(n):
        planes = spp_l[i] if planar_l[i] else 1
        b = bidx_l[i]
        is_tiled = tiled_l[i]
        levels = [
            _layout(
                planes, b, is_tiled, width_l[i], height_l[i], tw_l[i], th_l[i],
                off_v[off_ol[i] : off_ol[i + 1]], cnt_v[cnt_ol[i] : cnt_ol[i + 1]], one_l[i],
            )
        ]  # fmt: skip
        if ov is not None:
            for j in range(o_offl[i], o_offl[i + 1]):
                levels.append(
                    _layout(
                        planes, b, is_tiled, o_wl[j], o_hl[j], o_twl[j], o_thl[j],
                        o_tov[o_tol[j] : o_tol[j + 1]], o_tcv[o_tcl[j] : o_tcl[j + 1]], o_one[j],
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
            )  # fmt: skip
        )
    return out


def _row_encodings(
    f: Fields, rows: Rows, spp_l: list[int], planar_l: list[bool]
) -> tuple[list[TileEncoding], np.ndarray]:
    """One TileEncoding per row, and each row's index among the distinct ones.

    Equal rows share one object (and one check).
    """
    n = f.n
    lerc = f.lists("lerc_parameters", np.int64)
    jpeg = f.objects("jpeg_tables") if f.has("jpeg_tables") else None
    lerc_l = (
        [tuple(lerc[1][lerc[0][i] : lerc[0][i + 1]].tolist()) or None for i in range(n)]
        if lerc
        else [None] * n
    )
    ycc = f.lists("ycbcr", np.float64)
    ycc_l = (
        [tuple(ycc[1][ycc[0][i] : ycc[0][i + 1]].tolist()) or None for i in range(n)]
        if ycc
        else [None] * n
    )
    keys = zip(
        f.scalar("compression", -1, np.int64).tolist(),
        f.scalar("predictor", -1, np.int64).tolist(),
        f.objects("dtype"),
        f.objects("byte_order"),
        spp_l,
        planar_l,
        f.scalar("photometric", 1, np.int64).tolist(),
        jpeg if jpeg is not None else [None] * n,
        lerc_l,
        f.scalar("bits_per_sample", 0, np.int64).tolist(),
        # Indexes written before FillOrder was recorded held only FillOrder 1 files.
        f.scalar("fill_order", 1, np.int64).tolist(),
        ycc_l,
        strict=True,
    )
    encodings: dict[tuple[Any, ...], tuple[TileEncoding, int]] = {}
    row_enc: list[TileEncoding] = []
    ids: list[int] = []
    for i, key in enumerate(keys):
        got = encodings.get(key)
        if got is None:
            got = encodings[key] = (_encoding(key, rows, i), len(encodings))
        row_enc.append(got[0])
        ids.append(got[1])
    return row_enc, np.array(ids, np.int64)


def _encoding(key: tuple[Any, ...], rows: Rows, i: int) -> TileEncoding:
    """The TileEncoding of one distinct key, its fields checked (``i``: a row that has it)."""
    comp, pred, name, order, spp_i, planar_i, photo, jpeg_i, lerc_i, bits_i, fill_i, ycc_i = key
    if name is None:
        raise rows.fail(i, "band metadata without a dtype")
    if order not in (None, "<", ">"):
        raise rows.fail(i, f"byte_order {order!r} is neither '<' nor '>'")
    try:
        dt, nbits = _dtype_str(name, order or "<")
    except (TypeError, ValueError) as exc:
        raise rows.fail(i, f"dtype {name!r} is not a NumPy dtype name") from exc
    if np.dtype(dt).kind not in "uifc":
        raise rows.fail(i, f"dtype {name!r} is not a numeric sample type")
    if comp == -1:
        raise rows.fail(i, "compression is missing")
    if pred == -1:
        # Build always records the predictor; a codec that ignores it reads the same
        # under any, but for one that applies it a guess could read wrong pixels.
        if comp in PREDICTED_CODECS:
            raise rows.fail(i, f"predictor is missing (compression {comp} applies one)")
        pred = 1
    if pred not in (1, 2, 3):
        raise rows.fail(i, f"predictor {pred} is unknown (TIFF defines 1, 2 and 3)")
    if fill_i not in (1, 2):
        raise rows.fail(i, f"fill_order {fill_i} is unknown (TIFF defines 1 and 2)")
    encoding = TileEncoding(
        comp, pred, dt, spp_i, planar_i, photo, jpeg_i, lerc_i,
        None if bits_i in (0, nbits) else bits_i, fill_i, ycc_i,
    )  # fmt: skip
    try:
        # Build refuses what cannot be decoded; an index saying otherwise was written
        # by another tool or edited, and fails here, naming the record, not at read.
        check_supported(encoding)
    except UnsupportedTiffError as exc:
        raise UnsupportedTiffError(f"{rows.name(i)}: {exc}") from None
    return encoding


def _transforms(
    n: int,
    tr: tuple[np.ndarray, np.ndarray] | None,
    ps: tuple[np.ndarray, np.ndarray] | None,
    tp: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[list[Affine | None], np.ndarray, np.ndarray | None]:
    """One Affine per row, the ``(n, 6)`` coefficients (NaN: none) and the list lengths.

    Identical rows share one Affine (scenes of a tile grid).
    """
    cache: dict[tuple[float, ...], Affine] = {}
    out: list[Affine | None] = []
    lengths = np.diff(tr[0]) if tr is not None else None
    if tr is not None and lengths is not None and (lengths == 6).all():
        coeffs = tr[1][tr[0][0] : tr[0][0] + 6 * n].reshape(n, 6)
        for row in coeffs.tolist():
            key = tuple(row)
            t = cache.get(key)
            if t is None:
                t = cache[key] = Affine(*row)
            out.append(t)
        return out, coeffs, lengths
    coeffs = np.full((n, 6), np.nan)
    for i in range(n):
        t = transform_from(
            tr[1][tr[0][i] : tr[0][i + 1]] if tr else np.zeros(0),
            ps[1][ps[0][i] : ps[0][i + 1]] if ps else None,
            tp[1][tp[0][i] : tp[0][i + 1]] if tp else None,
        )
        out.append(t)
        if t is not None:
            coeffs[i] = t[:6]
    return out, coeffs, lengths
