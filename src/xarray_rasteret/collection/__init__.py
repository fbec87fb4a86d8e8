"""The collection: a GeoParquet index of raster records, loaded, filtered and saved."""

from .append import append
from .parquet import write_manifest, write_partitioned
from .parquet import write_table as write_collection
from .schema import BAND_METADATA_TYPE, OVERVIEW_TYPE, band_metadata_array, make_table
from .table import Collection, load

__all__ = [
    "BAND_METADATA_TYPE",
    "OVERVIEW_TYPE",
    "Collection",
    "append",
    "band_metadata_array",
    "load",
    "make_table",
    "write_collection",
    "write_manifest",
    "write_partitioned",
]
