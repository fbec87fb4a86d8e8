"""The native grids of a collection, as the groups of ``xr.open_datatree``.

A collection whose bands come at several resolutions (Sentinel-2's 10, 20 and
60 m) or whose records lie in several CRSs (the UTM zones of a large area)
has no single native grid: ``open_dataset`` then needs a target grid and
resamples. ``open_datatree`` instead gives one group per native grid, each the
dataset ``open_dataset`` gives for that group's records and bands, with nothing
resampled:

* bands are grouped by their pixel size (each record's full-resolution grid);
* records by CRS, when there are several: a group ``/EPSG_32633/r10m`` holds
  the 10 m bands of the zone 33 records.

Group names follow xarray-eopf's (``r10m``, ``r20m``): ``r`` and the pixel size
in the CRS's unit (``m``, ``deg``; ``r20x10m`` where x and y differ).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from .._types import RasterSource
from ..collection.schema import epsg_of
from ..geo.crs import unit_abbreviation

__all__ = ["native_groups"]


def _resolution_name(source: RasterSource) -> str:
    rx, ry = abs(source.transform.a), abs(source.transform.e)
    size = f"{rx:g}" if np.isclose(rx, ry, rtol=1e-9) else f"{rx:g}x{ry:g}"
    unit = "px" if source.crs is None else unit_abbreviation(source.crs)
    return f"r{size}{unit if unit in ('m', 'deg', 'px') else ''}"


def _crs_name(crs: str | None) -> str:
    if crs is None:
        return "no_crs"
    code = epsg_of(crs)
    if code:
        return f"EPSG_{code}"
    # A digest, not hash(): str hashes differ between processes, group paths may not.
    return "crs_" + hashlib.sha1(crs.encode()).hexdigest()[:8]


def native_groups(
    per_band: dict[str, list[RasterSource]], ids: Sequence[object]
) -> dict[str, tuple[list[int], list[str]]]:
    """Group paths -> ``(record rows, bands)`` of each native grid.

    Parameters
    ----------
    per_band
        Each band's sources, one per record (in the collection's row order).
    ids
        The records' ids, to name one in an error.

    Returns
    -------
    dict
        ``{"r10m": ([0, 1, ...], ["B02", "B03"]), ...}``; with several CRSs the
        paths are ``"EPSG_32633/r10m"``. Ordered by CRS, then by pixel size
        (finest first).

    Raises
    ------
    ValueError
        If the records of one CRS hold a band at different pixel sizes (there is
        then no native grid for the band: open it with a target grid).
    """
    first = next(iter(per_band.values()), [])
    by_crs: dict[str | None, list[int]] = {}
    for row, src in enumerate(first):
        key = next((c for c in by_crs if _same(c, src.crs)), src.crs)
        by_crs.setdefault(key, []).append(row)
    groups: dict[str, tuple[list[int], list[str]]] = {}
    for crs, rows in by_crs.items():
        sizes: dict[tuple[float, float], list[str]] = {}
        for band, sources in per_band.items():
            pixel = {(abs(sources[r].transform.a), abs(sources[r].transform.e)) for r in rows}
            if len(pixel) > 1:
                odd = next(r for r in rows if (abs(sources[r].transform.a),
                                               abs(sources[r].transform.e)) != min(pixel))
                raise ValueError(
                    f"band {band!r} comes at several pixel sizes ({sorted(pixel)}) in the "
                    f"records of one CRS (e.g. record {ids[odd]!r}): it has no native grid; "
                    "open it with xr.open_dataset(..., crs=..., resolution=...)"
                )
            sizes.setdefault(pixel.pop(), []).append(band)
        for size in sorted(sizes, key=lambda p: p[0] * p[1]):
            name = _resolution_name(per_band[sizes[size][0]][rows[0]])
            path = name if len(by_crs) == 1 else f"{_crs_name(crs)}/{name}"
            groups[path] = (rows, sizes[size])
    return groups


def _same(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    from ..geo.grid import same_crs

    return same_crs(a, b)
