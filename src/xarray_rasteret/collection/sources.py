"""Decoding of ``{band}_metadata`` columns into RasterSources, vectorized over rows.

Reads the layout written by :mod:`.schema` and the older ones (rasteret 0.4's
four-coefficient transforms, planar bands holding only their own plane's tiles).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from affine import Affine

from .._types import RasterSource, TileEncoding, TileLayout
from ..errors import MissingMetadataError

__all__ = ["sources_from_metadata", "transform_from"]


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
) -> TileLayout:
    tw = tw or w
    th = th or h
    per_plane = -(-w // tw) * -(-h // th)
    if planes > 1 and len(o) == per_plane:
        o = _full_planes(o, per_plane, planes, band)
        c = _full_planes(c, per_plane, planes, band)
    return TileLayout(w, h, tw, th, o, c, tiled)


# Long: one pass of column reads, then one loop over rows; split further, and each
# part would hand a dozen per-row lists to the next.
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
    spp = f.scalar("samples_per_pixel", 1, np.int64)
    planar = f.scalar("planar_configuration", 1, np.int64) == 2
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

    ov = _overview_columns(md) if f.has("overviews") else None

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
    row_enc = _row_encodings(f, spp_l, planar_l)
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


def _overview_columns(md: pa.StructArray) -> tuple[Any, ...] | None:
    """The ``overviews`` lists' offsets and their fields' columns (None if all null)."""
    ov_arr = pc.struct_field(md, "overviews")
    if pa.types.is_null(ov_arr.type):
        return None
    of = _Fields(ov_arr.values)
    return (
        ov_arr.offsets.to_numpy().astype(np.int64),
        of.scalar("image_width", 0, np.int64),
        of.scalar("image_height", 0, np.int64),
        of.scalar("tile_width", 0, np.int64),
        of.scalar("tile_height", 0, np.int64),
        of.lists("tile_offsets", np.int64),
        of.lists("tile_byte_counts", np.int64),
    )


def _row_encodings(f: _Fields, spp_l: list[int], planar_l: list[bool]) -> list[TileEncoding]:
    """One TileEncoding per row; equal rows share one object (and one support check)."""
    n = f.n
    lerc = f.lists("lerc_parameters", np.int64)
    jpeg = f.objects("jpeg_tables") if f.has("jpeg_tables") else None
    lerc_l = (
        [tuple(lerc[1][lerc[0][i] : lerc[0][i + 1]].tolist()) or None for i in range(n)]
        if lerc
        else [None] * n
    )
    keys = zip(
        f.scalar("compression", 1, np.int64).tolist(),
        f.scalar("predictor", 1, np.int64).tolist(),
        f.objects("dtype"),
        f.objects("byte_order"),
        spp_l,
        planar_l,
        f.scalar("photometric", 1, np.int64).tolist(),
        jpeg if jpeg is not None else [None] * n,
        lerc_l,
        f.scalar("bits_per_sample", 0, np.int64).tolist(),
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
    return row_enc


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
            transform_from(
                tr[1][tr[0][i] : tr[0][i + 1]] if tr else np.zeros(0),
                ps[1][ps[0][i] : ps[0][i + 1]] if ps else None,
                tp[1][tp[0][i] : tp[0][i + 1]] if tp else None,
            )
        )
    return out
