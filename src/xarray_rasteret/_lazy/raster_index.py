"""``coords=``: x/y as explicit 1-D arrays (default) or through rasterix's ``RasterIndex``.

A ``RasterIndex`` holds the grid's affine transform instead of coordinate
arrays: ``x``/``y`` values are computed when asked for, ``isel`` with slices
and ``sel`` with label slices give a new index with the shifted transform, and
``ds.xindexes["x"].transform()`` is the grid's affine. rasterix is optional:
it is imported only when ``coords="raster_index"`` is asked for.
"""

from __future__ import annotations

from typing import Any, Literal

import xarray as xr

from ..geo.grid import RasterGrid

__all__ = ["COORDS", "Coords", "checked_coords", "with_raster_index"]

Coords = Literal["arrays", "raster_index"]
COORDS: tuple[Coords, ...] = ("arrays", "raster_index")
"""The accepted ``coords=`` values."""


def checked_coords(coords: Any) -> Coords:
    """``coords`` if it is one of :data:`COORDS`, else a ``ValueError`` naming them.

    Parameters
    ----------
    coords
        The ``coords=`` keyword as given (None means the default, ``"arrays"``).

    Returns
    -------
    str
        ``"arrays"`` or ``"raster_index"``.

    Raises
    ------
    ValueError
        For any other value.
    ImportError
        For ``"raster_index"`` without rasterix installed: before any I/O.
    """
    if coords is None:
        return "arrays"
    if not isinstance(coords, str) or coords not in COORDS:
        raise ValueError(
            f"coords={coords!r} is not a coordinate layout: pass coords='arrays' (the default: "
            f"explicit 1-D x/y coordinate arrays) or coords='raster_index' (x/y through "
            f"rasterix's RasterIndex)"
        )
    if coords == "raster_index":
        _raster_index_class()
    return coords


def _raster_index_class() -> Any:
    try:
        from ._rasterix import RasterIndex
    except ImportError as e:
        raise ImportError(
            "coords='raster_index' needs rasterix, which is not installed: "
            'pip install "xarray-rasteret[rasterix]" (or pip install rasterix); '
            "or leave coords= out for explicit x/y coordinate arrays"
        ) from e
    return RasterIndex


def with_raster_index(ds: xr.Dataset, grid: RasterGrid) -> xr.Dataset:
    """``ds`` with its ``x``/``y`` coordinates replaced by a ``RasterIndex`` of ``grid``.

    ``spatial_ref`` keeps its ``GeoTransform``, which rioxarray and odc-geo
    read; x/y carry rasterix's CF attributes of the CRS (as they do after any
    ``isel``, which makes them anew). The coordinates are never chunked
    (:mod:`._rasterix` says why).

    Parameters
    ----------
    ds
        A Dataset with dims ``y``, ``x`` on ``grid``.
    grid
        Its pixel grid (PixelIsArea corner transform).

    Returns
    -------
    xarray.Dataset
        ``ds`` with the same x/y values (to rounding), backed by the transform.

    Raises
    ------
    ImportError
        When rasterix is not installed, saying how to install it.
    """
    index = _raster_index_class().from_transform(
        grid.transform, width=grid.width, height=grid.height, x_dim="x", y_dim="y",
        crs=grid.crs,
    )
    return ds.drop_vars(["x", "y"]).assign_coords(xr.Coordinates.from_xindex(index))
