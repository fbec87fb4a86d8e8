"""The collection: a GeoParquet index of raster records, loaded, filtered and saved."""

from .schema import BAND_METADATA_TYPE, OVERVIEW_TYPE, band_metadata_array, make_table
from .table import Collection, load

__all__ = [
    "BAND_METADATA_TYPE",
    "OVERVIEW_TYPE",
    "Collection",
    "band_metadata_array",
    "load",
    "make_table",
]
