"""The calls the rasteret 0.4 parity suite makes, written once for both libraries.

Each case is a function of a collection (rasteret's or ours: the helpers' names,
keywords and defaults are the same) returning what the call returns. The goldens
in ``tests/data/parity/goldens`` hold rasteret 0.4.1's results of these calls;
``tools/parity/make_goldens.py`` regenerates them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import shapely

__all__ = ["CASES", "ZONES_RECORDS"]

BOX = (16.28, 45.11, 16.30, 45.12)
TRIANGLE = shapely.Polygon([(16.28, 45.11), (16.30, 45.11), (16.29, 45.125)])
SQUARE = shapely.box(16.31, 45.12, 16.32, 45.13)
UTM_BOX = shapely.box(600700, 4996000, 601500, 4996800)  # EPSG:32633
POINTS = [shapely.Point(16.285, 45.115), shapely.Point(16.31, 45.13), shapely.Point(16.3, 45.14)]
OUTSIDE = [shapely.Point(16.285, 45.115), shapely.Point(10.0, 10.0)]
ACROSS_ZONES = (17.95, 45.08, 18.06, 45.12)
"""Covers both records of the ``zones`` collection, either side of 18 degrees east."""

BOWTIE = shapely.Polygon([(16.28, 45.11), (16.30, 45.12), (16.30, 45.11), (16.28, 45.12)])
"""Self-intersecting, as field boundaries often are: rasterized as given."""
LONLAT_TABLE = pa.table({"lon": [16.285, 16.31], "lat": [45.115, 45.13], "site": ["a", "b"]})
XY_TABLE = pa.table({"px": [16.285, 16.31], "py": [45.115, 45.13]})
# Points on the nodata block of the zones records (rows 0-39, cols 0-59, 30 m
# pixels from the record's corner), in each record's own CRS.
ON_NODATA = [shapely.Point(730000 + 57.5 * 30, 5000000 - 38.5 * 30),
             shapely.Point(730000 + 58.9 * 30, 5000000 - 20.3 * 30),
             shapely.Point(730000 + 10.2 * 30, 5000000 - 10.7 * 30)]

ZONES_RECORDS = [
    # id, CRS, upper-left corner, date: 256 x 256 int16 pixels of 30 m, nodata -9999.
    ("Z33_20240601", "EPSG:32633", (730000.0, 5000000.0), "2024-06-01T10:00:00Z"),
    ("Z34_20240602", "EPSG:32634", (262000.0, 5000000.0), "2024-06-02T10:00:00Z"),
]

Case = Callable[[Any], Any]

CASES: dict[str, tuple[str, Case]] = {
    "numpy_bbox": ("sample", lambda c: c.get_numpy(geometries=BOX, bands=["B04"])),
    "numpy_polygon_two_bands": (
        "sample", lambda c: c.get_numpy(geometries=TRIANGLE, bands=["B04", "B08"])
    ),
    "numpy_all_touched": (
        "sample", lambda c: c.get_numpy(geometries=TRIANGLE, bands=["B04"], all_touched=True)
    ),
    "numpy_cloud_cover_lt": (
        "sample", lambda c: c.get_numpy(geometries=BOX, bands=["B04"], cloud_cover_lt=30)
    ),
    "numpy_date_range": (
        "sample",
        lambda c: c.get_numpy(
            geometries=BOX, bands=["B08"], date_range=("2024-05-05", "2024-05-15")
        ),
    ),
    "numpy_utm_geometry": (
        "sample", lambda c: c.get_numpy(geometries=UTM_BOX, bands=["B08"], geometry_crs=32633)
    ),
    "numpy_target_crs": (
        "sample", lambda c: c.get_numpy(geometries=BOX, bands=["B04"], target_crs=4326)
    ),
    "xarray_bbox": ("sample", lambda c: c.get_xarray(geometries=BOX, bands=["B04", "B08"])),
    "xarray_two_geometries": (
        "sample", lambda c: c.get_xarray(geometries=[TRIANGLE, SQUARE], bands=["B04"])
    ),
    "xarray_target_crs": (
        "sample", lambda c: c.get_xarray(geometries=BOX, bands=["B04"], target_crs=32634)
    ),
    "gdf_two_geometries": (
        "sample", lambda c: c.get_gdf(geometries=[TRIANGLE, SQUARE], bands=["B04"])
    ),
    "points": ("sample", lambda c: c.sample_points(points=POINTS, bands=["B04", "B08"])),
    "points_outside": ("sample", lambda c: c.sample_points(points=OUTSIDE, bands=["B04"])),
    "zones_numpy": ("zones", lambda c: c.get_numpy(geometries=ACROSS_ZONES, bands=["elev"])),
    "zones_xarray_target_crs": (
        "zones",
        lambda c: c.get_xarray(geometries=ACROSS_ZONES, bands=["elev"], target_crs=32633),
    ),
    "zones_gdf": ("zones", lambda c: c.get_gdf(geometries=ACROSS_ZONES, bands=["elev"])),
    "zones_points": (
        "zones",
        lambda c: c.sample_points(
            points=[shapely.Point(17.97, 45.1), shapely.Point(18.04, 45.1)], bands=["elev"]
        ),
    ),
    "numpy_unknown_band": ("sample", lambda c: c.get_numpy(geometries=BOX, bands=["B99"])),
    "numpy_invalid_polygon": ("sample", lambda c: c.get_numpy(geometries=BOWTIE, bands=["B04"])),
    "points_lonlat_columns": (
        "sample",
        lambda c: c.sample_points(points=LONLAT_TABLE, bands=["B04"], geometry_crs=4326),
    ),
    "points_xy_columns": (
        "sample",
        lambda c: c.sample_points(
            points=XY_TABLE, bands=["B08"], x_column="px", y_column="py", geometry_crs=4326
        ),
    ),
    "zones_points_on_nodata": (
        "zones", lambda c: c.sample_points(points=ON_NODATA, bands=["elev"], geometry_crs=32633)
    ),
    "zones_points_nearest_valid": (
        "zones",
        lambda c: c.sample_points(
            points=ON_NODATA, bands=["elev"], geometry_crs=32633, max_distance_pixels=3
        ),
    ),
}  # fmt: skip
