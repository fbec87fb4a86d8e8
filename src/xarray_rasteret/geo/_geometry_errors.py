"""Errors for unusable ``geometries=`` inputs, below both :mod:`.aoi` and :mod:`._inputs`.

They are public as :mod:`xarray_rasteret.geo.aoi`'s names; they live here so
that the input parsers (:mod:`._inputs`) can raise them without importing
:mod:`.aoi`, which imports the parsers.
"""

from __future__ import annotations

from xarray_rasteret.errors import RasteretError

__all__ = [
    "EmptyGeometryError",
    "GeometryInputError",
    "InvalidGeometryError",
    "InvalidGeometryWarning",
    "UnsupportedGeometryInputError",
]


class GeometryInputError(RasteretError, ValueError):
    """The ``geometries`` argument cannot be used (base of the specific errors)."""


class InvalidGeometryError(GeometryInputError):
    """A geometry is invalid (the message names its index and GEOS's reason)."""


class EmptyGeometryError(GeometryInputError):
    """A geometry is empty or null (the message names its index)."""


class UnsupportedGeometryInputError(RasteretError, TypeError):
    """The ``geometries`` argument is of a type that is not accepted."""


class InvalidGeometryWarning(UserWarning):
    """A geometry is invalid (self-intersecting, ...): it is used as given, as GDAL does."""
