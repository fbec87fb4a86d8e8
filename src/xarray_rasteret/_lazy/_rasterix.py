"""rasterix's ``RasterIndex`` whose x/y coordinates are never chunked (imports rasterix).

xarray chunks every variable that is not in memory when a Dataset is opened
with ``chunks=`` or ``.chunk()``ed, and lets only pandas index coordinates
through. A ``RasterIndex``'s coordinates are computed from the transform, so
they are chunked too, and a dask-wrapped one indexes wrong: ``ds.x[0]`` is a
0-d dask array that computes to shape ``(1,)``, and ``ds.rio.transform()``
fails on it. This subclass makes its coordinates :class:`IndexCoordinate`,
which stay lazy (as xarray keeps pandas index coordinates), also in the
indexes that ``isel``/``sel`` derive from it. Kept apart from
:mod:`.raster_index` so that rasterix is imported only for
``coords="raster_index"``; the class keeps rasterix's name for its repr.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import rasterix
import xarray as xr

__all__ = ["IndexCoordinate", "RasterIndex"]


class IndexCoordinate(xr.Variable):
    """A coordinate whose values its index computes: ``chunk`` leaves it as it is."""

    __slots__ = ()

    def chunk(self, *args: Any, **kwargs: Any) -> Any:
        """The variable itself: its values are computed from the transform."""
        return self


class RasterIndex(rasterix.RasterIndex):
    """``rasterix.RasterIndex`` with :class:`IndexCoordinate` x/y coordinates."""

    def create_variables(
        self, variables: Mapping[Any, xr.Variable] | None = None
    ) -> dict[Hashable, xr.Variable]:
        """The coordinate variables rasterix makes, as :class:`IndexCoordinate`."""
        made = super().create_variables(variables)
        return {
            name: IndexCoordinate(var.dims, var._data, var.attrs, var.encoding, fastpath=True)
            for name, var in made.items()
        }

    def isel(self, indexers: Mapping[Any, Any]) -> RasterIndex | None:
        """The ``isel`` of rasterix, giving this class (rasterix's gives its own)."""
        out = super().isel(indexers)
        if out is None:
            return None
        return type(self)(out._wrapped_indexes, crs=out.crs)
