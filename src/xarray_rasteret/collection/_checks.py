"""Checks of a collection's band metadata, column-wise, before any of it is trusted.

Sizes, tile tables and transforms are validated against each other and against
the limits the read path allocates for, so that a tampered or corrupt index
fails at load with a :class:`MissingMetadataError` naming the record, the field
and the fix, instead of reading wrong pixels, crashing in the planner or
allocating without bound at read time. Each check takes whole columns and raises
for the first record that fails it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .._read.decode import MAX_TILE_BYTES
from ..errors import MissingMetadataError
from ..storage import redact_url

__all__ = [
    "FIX",
    "MAX_SAMPLES",
    "Levels",
    "Rows",
    "check_geometry",
    "check_levels",
    "check_overview_sizes",
    "check_tiles",
    "check_transforms",
]

_MAX_SIDE = 2**31 - 1
"""Largest image side in pixels (GDAL's limit)."""


_MAX_TILE_SIDE = 65536
"""Largest tile side in pixels (strips may be as wide as the image)."""


MAX_SAMPLES = 65535
"""SamplesPerPixel is a TIFF SHORT."""


_MAX_BYTE = 2**53
"""Offsets and counts stay below this, so ``offset + count`` is exact in int64 and float64."""


_COUNT_SLACK = 2**20
"""A stored tile may exceed its decoded size (incompressible data, headers), but not by
more than 4x plus this: a larger byte count would be one unbounded fetch."""


FIX = (
    "the index is corrupt or was edited: rebuild it from the files with xarray_rasteret.build(...)"
)


class Rows:
    """Names records in messages and raises for the first one that fails a check."""

    def __init__(
        self,
        hrefs: Sequence[str | None],
        ids: Sequence[Any] | pa.ChunkedArray | None,
        band: str | None,
    ) -> None:
        self.hrefs, self.ids, self.band = hrefs, ids, band

    def name(self, i: int) -> str:
        """``record 'id' band 'b' (href)``, the href redacted."""
        if self.ids is None:
            who = f"record #{i}"
        else:
            rid = self.ids[i]
            who = f"record {rid.as_py() if isinstance(rid, pa.Scalar) else rid!r}"
        if self.band is not None:
            who += f" band {self.band!r}"
        href = self.hrefs[i]
        return who + (f" ({redact_url(str(href))})" if href else "")

    def fail(self, i: int, problem: str, count: int = 1) -> MissingMetadataError:
        more = f" ({count} entries fail this check)" if count > 1 else ""
        return MissingMetadataError(f"{self.name(i)}: {problem}{more}; {FIX}")

    def check(
        self,
        bad: np.ndarray,
        problem: str | Callable[[int], str],
        values: np.ndarray | None = None,
        at: Callable[[int], int] | None = None,
    ) -> None:
        """Raise for the first True of ``bad``.

        ``problem`` is a format string of ``{v}`` (``values`` at that entry) or a
        function of the entry; ``at`` maps the entry to its record (identity).
        """
        if not bad.any():
            return
        k = int(np.argmax(bad))
        if callable(problem):
            text = problem(k)
        else:
            text = problem.format(v=values[k] if values is not None else None)
        raise self.fail(at(k) if at is not None else k, text, int(bad.sum()))


@dataclass
class Levels:
    """Image levels (full resolution, or every overview of every row), column-wise."""

    width: np.ndarray
    height: np.ndarray
    tile_width: np.ndarray
    """-1 where the field is null: the image width, as for strips."""
    tile_height: np.ndarray
    offsets: tuple[np.ndarray, np.ndarray] | None
    counts: tuple[np.ndarray, np.ndarray] | None
    row: np.ndarray | None = None
    """The record of each level (None: level ``i`` is record ``i``)."""
    where: str = ""
    """How messages name the level."""

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """A per-record array, one entry per level."""
        return values if self.row is None else values[self.row]

    def record(self, k: int) -> int:
        return k if self.row is None else int(self.row[k])


def check_geometry(rows: Rows, lv: Levels, tiled: np.ndarray, tile_bytes: np.ndarray) -> None:
    """Image and tile sizes in range; strips as wide as the image; tiles of bounded size.

    Resolves null tile sizes to the image's in place. ``tile_bytes`` is the bytes of
    one decoded pixel of each level.
    """
    w, h, where, at = lv.width, lv.height, lv.where, lv.record
    for name, v in (("image_width", w), ("image_height", h)):
        bad = (v < 1) | (v > _MAX_SIDE)
        rows.check(bad, f"{where}{name} is {{v}} (must be 1 to 2**31-1)", v, at)
    lv.tile_width = tw = np.where(lv.tile_width == -1, w, lv.tile_width)
    lv.tile_height = th = np.where(lv.tile_height == -1, h, lv.tile_height)
    for name, v in (("tile_width", tw), ("tile_height", th)):
        bad = tiled & ((v < 1) | (v > _MAX_TILE_SIDE))
        rows.check(bad, f"{where}{name} is {{v}} (tiles are 1 to 65536 pixels a side)", v, at)
    rows.check(~tiled & (tw != w), f"{where}strip width {{v}} is not the image width", tw, at)
    bad = ~tiled & ((th < 1) | (th > h))
    rows.check(bad, f"{where}rows per strip is {{v}} (must be 1 to the image height)", th, at)
    nbytes = tw.astype(np.float64) * th * tile_bytes
    rows.check(
        nbytes > MAX_TILE_BYTES,
        f"{where}one decoded tile would take {{v:.0f}} bytes (at most 2**30 are read at once)",
        nbytes,
        at,
    )


def check_tiles(
    rows: Rows,
    lv: Levels,
    planes: np.ndarray,
    one_plane_ok: np.ndarray,
    limit: np.ndarray,
    size: np.ndarray,
) -> np.ndarray:
    """Tile tables of the right length, with offsets and counts that can be read.

    Returns, per level, whether it lists one plane of a planar file (rasteret 0.4's
    form, allowed where ``one_plane_ok``). ``limit`` is the largest byte count of a
    tile, ``size`` the file size (-1: unknown), per level.
    """
    where, at = lv.where, lv.record
    if lv.offsets is None or lv.counts is None:
        raise rows.fail(0, f"{where}band metadata has no tile_offsets/tile_byte_counts")
    (off_o, off_v), (cnt_o, cnt_v) = lv.offsets, lv.counts
    n_off, n_cnt = np.diff(off_o), np.diff(cnt_o)
    rows.check(
        n_off != n_cnt,
        lambda k: f"{where}{n_off[k]} tile_offsets but {n_cnt[k]} tile_byte_counts",
        at=at,
    )
    w, h, tw, th = lv.width, lv.height, lv.tile_width, lv.tile_height
    per_plane = (-(-w // tw) * -(-h // th)).astype(np.float64)
    one_plane = one_plane_ok & (planes > 1) & (n_off == per_plane)
    expected = per_plane * planes

    def wrong_count(k: int) -> str:
        text = (
            f"{where}{n_off[k]} tile_offsets, but a {w[k]} x {h[k]} image in {tw[k]} x {th[k]} "
            f"tiles with {planes[k]} plane(s) has {expected[k]:.0f}"
        )
        if planes[k] > 1 and n_off[k] == per_plane[k]:
            text += " (one plane's tiles: only rasteret 0.4 indexes store that form)"
        return text

    rows.check(~one_plane & (n_off != expected), wrong_count, at=at)
    offs, counts = off_v[off_o[0] : off_o[-1]], cnt_v[cnt_o[0] : cnt_o[-1]]
    rep = np.repeat(np.arange(len(n_off)), n_off)  # the level of each tile entry

    def level_of(k: int) -> int:
        return at(int(rep[k]))

    bad = (offs < 0) | (offs >= _MAX_BYTE)
    rows.check(bad, f"{where}tile offset {{v}} is impossible", offs, level_of)
    rows.check(counts < 0, f"{where}tile byte count {{v}} is negative", counts, level_of)
    rows.check(
        (offs == 0) & (counts != 0),
        f"{where}a tile at offset 0 has {{v}} bytes (offset 0 marks a sparse tile, with 0 bytes)",
        counts,
        level_of,
    )
    rows.check(
        counts > limit[rep],
        f"{where}tile byte count {{v}} is far more than the tile's decoded size",
        counts,
        level_of,
    )
    known = size[rep]
    rows.check(
        (known >= 0) & (counts > 0) & (offs + counts > known),
        lambda k: (
            f"{where}a tile ends at byte {offs[k] + counts[k]}, past the file's {known[k]} bytes"
        ),
        at=level_of,
    )
    return one_plane


def check_transforms(
    rows: Rows, coeffs: np.ndarray, lengths: np.ndarray | None, w: np.ndarray, h: np.ndarray
) -> None:
    """Transform coefficients finite and invertible, the image's far corner finite."""
    if lengths is not None:
        bad = (lengths != 0) & (lengths != 4) & (lengths != 6)
        rows.check(bad, "transform has {v} coefficients (6, or rasteret's 4)", lengths)
    a, b, c, d, e, f = coeffs.T
    georef = ~np.isnan(coeffs).all(axis=1)  # rows without a transform: pixel grid
    with np.errstate(all="ignore"):  # inf and NaN are what is being looked for
        det = a * e - b * d
        x1, y1 = c + a * w + b * h, f + d * w + e * h
        ok = np.isfinite(coeffs).all(axis=1) & np.isfinite(det) & (det != 0)
        ok &= np.isfinite(x1) & np.isfinite(y1)
    rows.check(
        georef & ~ok,
        lambda k: (
            f"transform {tuple(coeffs[k].tolist())} is not finite and invertible "
            f"over the {w[k]} x {h[k]} image"
        ),
    )


def check_levels(
    rows: Rows,
    lv: Levels,
    tiled: np.ndarray,
    planes: np.ndarray,
    one_plane_ok: np.ndarray,
    pixel_bytes: np.ndarray,
    size: np.ndarray,
) -> np.ndarray:
    """Check one set of levels (geometry, then tile tables); its one-plane flags."""
    tiled_l = lv.per_row(tiled)
    check_geometry(rows, lv, tiled_l, lv.per_row(pixel_bytes))
    decoded = lv.tile_width * lv.tile_height * lv.per_row(pixel_bytes)
    limit = 4 * decoded + _COUNT_SLACK
    return check_tiles(
        rows, lv, lv.per_row(planes), lv.per_row(one_plane_ok), limit, lv.per_row(size)
    )


def check_overview_sizes(rows: Rows, ov: Levels, base: Levels) -> None:
    """Each overview no larger than the image, its shape the image's within 2 pixels.

    Overviews decimate both axes by one factor, so a size that fits the tile table
    but not the image (a height cut to 17 of 100) is an edit, not an overview.
    """
    bw, bh = ov.per_row(base.width), ov.per_row(base.height)
    w, h = ov.width, ov.height
    with np.errstate(all="ignore"):  # zero sizes are reported below, by check_geometry
        off = np.maximum(np.abs(h - bh * w / bw), np.abs(w - bw * h / bh))
    rows.check(
        (w > bw) | (h > bh) | (off > 2),
        lambda k: (
            f"overview of {w[k]} x {h[k]} pixels does not decimate the {bw[k]} x {bh[k]} image"
        ),
        at=ov.record,
    )
