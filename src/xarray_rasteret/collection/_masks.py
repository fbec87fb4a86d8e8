"""Decoding of the ``mask`` field of ``{band}_metadata``: a file's internal mask.

The field (:data:`~.schema.MASK_TYPE`) is optional: indexes written before it
existed, and rows of files without a mask, read exactly as before. Where it is
set, its encoding and its levels' tile tables are checked as the band's own are
(:mod:`._checks`) before the read path trusts them, and each level must have the
size of one of the band's levels, the one it masks.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._read.decode import check_supported
from .._types import RasterSource, TileEncoding, TileLayout
from ..errors import UnsupportedTiffError
from ._checks import Levels, Rows, check_levels
from ._columns import Fields, overview_levels

__all__ = ["with_masks"]


def with_masks(
    md: pa.StructArray, rows: Rows, sources: list[RasterSource], size: np.ndarray
) -> list[RasterSource]:
    """``sources`` with the internal mask their row's ``mask`` field describes, checked.

    Parameters
    ----------
    md
        The band's ``{band}_metadata`` column.
    rows
        Names records in messages.
    sources
        The band's sources, one per row of ``md``.
    size
        Per row, the file's size (-1: unknown).

    Raises
    ------
    MissingMetadataError, UnsupportedTiffError
        Naming the record, band and href, if the mask's facts cannot be those of a file.
    """
    if "mask" not in md.type.names:
        return sources
    arr = pc.struct_field(md, "mask")
    if pa.types.is_null(arr.type) or arr.null_count == len(arr):
        return sources
    have = arr.is_valid().to_numpy(zero_copy_only=False)
    f = Fields(arr)
    got = overview_levels(arr, "levels", "internal mask: ") if f.has("levels") else None
    if got is None:
        raise rows.fail(int(np.argmax(have)), "the internal mask has no levels")
    offsets, levels = got
    counts = np.diff(offsets)
    rows.check(have & (counts == 0), "the internal mask has no levels")
    tiled = f.scalar("tiled", True, bool)
    ones = np.ones(len(arr), np.int64)
    # One byte per decoded mask pixel bounds a tile's stored size (1-bit ones are smaller).
    check_levels(rows, levels, tiled, ones, np.zeros(len(arr), bool), ones, size)
    encodings = _encodings(f, rows, have)
    return _attached(sources, have, offsets, levels, tiled, encodings, rows)


def _encodings(f: Fields, rows: Rows, have: np.ndarray) -> list[TileEncoding | None]:
    """Per row, the mask's TileEncoding (None without a mask); equal ones shared."""
    keys = zip(
        f.scalar("compression", -1, np.int64).tolist(),
        f.scalar("predictor", 1, np.int64).tolist(),
        f.scalar("bits_per_sample", 8, np.int64).tolist(),
        f.scalar("fill_order", 1, np.int64).tolist(),
        strict=True,
    )
    made: dict[tuple[int, ...], TileEncoding] = {}
    out: list[TileEncoding | None] = []
    for i, key in enumerate(keys):
        if not have[i]:
            out.append(None)
            continue
        if key not in made:
            made[key] = _encoding(key, rows, i)
        out.append(made[key])
    return out


def _encoding(key: tuple[int, ...], rows: Rows, i: int) -> TileEncoding:
    comp, pred, bits, fill = key
    if comp == -1:
        raise rows.fail(i, "the internal mask's compression is missing")
    if not 1 <= bits <= 8:
        raise rows.fail(i, f"the internal mask has {bits} bits per sample (1 to 8)")
    if pred not in (1, 2, 3) or fill not in (1, 2):
        raise rows.fail(i, f"the internal mask's predictor {pred} or fill_order {fill} is unknown")
    encoding = TileEncoding(comp, pred, "|u1", bits_per_sample=None if bits == 8 else bits,
                            fill_order=fill)
    try:
        check_supported(encoding)
    except UnsupportedTiffError as exc:
        raise UnsupportedTiffError(f"{rows.name(i)}: internal mask: {exc}") from None
    return encoding


def _attached(
    sources: list[RasterSource],
    have: np.ndarray,
    offsets: np.ndarray,
    lv: Levels,
    tiled: np.ndarray,
    encodings: list[TileEncoding | None],
    rows: Rows,
) -> list[RasterSource]:
    """Each source with its mask, whose levels each have the size of one of its levels."""
    assert lv.offsets is not None and lv.counts is not None  # checked
    (oo, ov), (co, cv) = lv.offsets, lv.counts
    out = []
    for i, src in enumerate(sources):
        enc = encodings[i]
        if enc is None:
            out.append(src)
            continue
        sizes = {(level.width, level.height) for level in src.levels}
        levels = []
        for j in range(int(offsets[i]), int(offsets[i + 1])):
            w, h = int(lv.width[j]), int(lv.height[j])
            if (w, h) not in sizes or (j == offsets[i] and (w, h) != sizes_of(src)):
                raise rows.fail(
                    i, f"an internal mask level of {w} x {h} pixels is the size of no level "
                    f"of the band (full resolution {src.levels[0].width} x {src.levels[0].height})"
                )
            levels.append(TileLayout(
                w, h, int(lv.tile_width[j]), int(lv.tile_height[j]),
                ov[oo[j]:oo[j + 1]], cv[co[j]:co[j + 1]], bool(tiled[i]),
            ))  # fmt: skip
        mask = RasterSource(src.href, src.transform, src.crs, enc, tuple(levels),
                            size=src.size, etag=src.etag)
        out.append(replace(src, mask=mask))
    return out


def sizes_of(src: RasterSource) -> tuple[int, int]:
    """The full-resolution size of ``src``: the first mask level must have it."""
    return src.levels[0].width, src.levels[0].height
