"""sample_points' coordinate columns and nearest-valid search (rasteret 0.4's options).

The values themselves are compared with rasteret 0.4.1's in test_rasteret_parity.py
(``points_*_columns``, ``zones_points_nearest_valid``); here, the spellings,
the neighbourhood rule against a brute-force search, and the errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import rasterio
import shapely
from affine import Affine

import xarray_rasteret as xrr
from cogs import write_tiff
from xarray_rasteret.helpers._nearest import ring_offsets


@pytest.fixture(scope="module")
def holey(tmp_path_factory: pytest.TempPathFactory) -> tuple[xrr.Collection, Path]:
    """One 200 x 200 int16 record with nodata holes; 10 m pixels in EPSG:32633."""
    path = tmp_path_factory.mktemp("holey") / "r0_B01.tif"
    write_tiff(path, dtype="int16", width=200, height=200, crs="EPSG:32633",
               transform=Affine(10, 0, 500000, 0, -10, 5000000), nodata=-1, holes=True,
               compress="DEFLATE", blockxsize=64, blockysize=64, seed=5)
    return xrr.build([str(path)]), path


def test_coordinate_columns_in_every_table_form(sample_folder: Path) -> None:
    col = xrr.load(sample_folder / "s2.parquet")
    pts = [shapely.Point(16.285, 45.115), shapely.Point(16.31, 45.13)]
    ref = xrr.sample_points(col, points=pts, bands=["B04"])
    lon, lat = [p.x for p in pts], [p.y for p in pts]
    forms = [
        pa.table({"lon": lon, "lat": lat}),
        pd.DataFrame({"longitude": lon, "latitude": lat, "site": ["a", "b"]}),
        pd.DataFrame({"E": lon, "N": lat}),
    ]
    got = [
        xrr.sample_points(col, points=forms[0], bands=["B04"]),
        xrr.sample_points(col, points=forms[1], bands=["B04"]),
        xrr.sample_points(col, points=forms[2], bands=["B04"], x_column="E", y_column="N"),
    ]
    for table in got:
        assert table.column("value").to_pylist() == ref.column("value").to_pylist()
        assert table.column("point_index").to_pylist() == ref.column("point_index").to_pylist()
    # The table's own columns come along, as the user's columns.
    assert set(got[1].column("site").to_pylist()) == {"a", "b"}


def test_coordinate_column_slips_are_named(sample_folder: Path) -> None:
    col = xrr.load(sample_folder / "s2.parquet")
    table = pa.table({"E": [16.3], "N": [45.12]})
    with pytest.raises(ValueError, match=r"x_column='E', y_column=None: give both"):
        xrr.sample_points(col, points=table, bands=["B04"], x_column="E")
    with pytest.raises(ValueError, match=r"no point coordinate columns \['Y'\]; the columns"):
        xrr.sample_points(col, points=table, bands=["B04"], x_column="E", y_column="Y")
    with pytest.raises(TypeError, match=r"x_column/y_column take a table of points"):
        xrr.sample_points(col, points=[shapely.Point(16.3, 45.12)], bands=["B04"],
                          x_column="E", y_column="N")
    with pytest.raises(ValueError, match=r"max_distance_pixels=-1: it must be an integer >= 0"):
        xrr.sample_points(col, points=table, bands=["B04"], x_column="E", y_column="N",
                          max_distance_pixels=-1)


def test_ring_order_is_rasterets() -> None:
    ring = ring_offsets(1)
    # top row left to right, bottom row, then the left and right columns
    assert ring[:, 1:].tolist() == [[-1, -1], [-1, 0], [-1, 1], [1, -1], [1, 0], [1, 1],
                                     [0, -1], [0, 1]]
    assert (ring[:, 0] == 1).all() and len(ring_offsets(3)) == 8 + 16 + 24


def _brute_force(data: np.ndarray, nodata: float, row_f: float, col_f: float, radius: int):
    """The nearest valid pixel by rasteret's rule, one candidate at a time."""
    r0, c0 = int(np.floor(row_f)), int(np.floor(col_f))
    if data[r0, c0] != nodata:
        return data[r0, c0]
    for ring in range(1, radius + 1):
        best, best_d = None, np.inf
        for dr, dc in ring_offsets(ring)[ring_offsets(ring)[:, 0] == ring][:, 1:]:
            r, c = r0 + dr, c0 + dc
            if not (0 <= r < data.shape[0] and 0 <= c < data.shape[1]) or data[r, c] == nodata:
                continue
            dy = max(r - row_f, row_f - (r + 1), 0) * 10
            dx = max(c - col_f, col_f - (c + 1), 0) * 10
            if dx * dx + dy * dy < best_d:
                best, best_d = data[r, c], dx * dx + dy * dy
        if best is not None:
            return best
    return nodata


def test_nearest_valid_equals_a_brute_force_search(holey) -> None:
    col, path = holey
    with rasterio.open(path) as src:
        data = src.read(1)
    rows, cols = np.nonzero(data == -1)
    assert rows.size > 50
    rng = np.random.default_rng(1)
    pick = rng.choice(rows.size, 60, replace=False)
    frac = rng.uniform(0.05, 0.95, (60, 2))
    row_f, col_f = rows[pick] + frac[:, 0], cols[pick] + frac[:, 1]
    pts = [shapely.Point(500000 + c * 10, 5000000 - r * 10) for r, c in zip(row_f, col_f,
                                                                          strict=True)]
    table = xrr.sample_points(col, points=pts, bands=["band_1"], geometry_crs=32633,
                              max_distance_pixels=2)
    got = dict(zip(table.column("point_index").to_pylist(), table.column("value").to_pylist(),
                   strict=True))
    expected = [_brute_force(data, -1, r, c, 2) for r, c in zip(row_f, col_f, strict=True)]
    assert [got[i] for i in range(60)] == expected
    assert sum(v != -1 for v in expected) > 10  # the search found something to compare
    flags = table.column("nodata").to_pylist()
    assert flags == [v == -1 for v in table.column("value").to_pylist()]


def test_user_columns_keep_their_types(sample_folder: Path) -> None:
    col = xrr.load(sample_folder / "s2.parquet")
    table = pa.table({
        "lon": [16.285, 16.31], "lat": [45.115, 45.13],
        "plot": pa.array([7, 8], pa.int32()), "area": pa.array([1.5, 2.5], pa.float32()),
    })
    points = xrr.sample_points(col, points=table, bands=["B04"])
    assert points.schema.field("plot").type == pa.int32()
    assert points.schema.field("area").type == pa.float32()
    boxes = pa.table({
        "geometry": shapely.to_wkb([shapely.Point(16.285, 45.115).buffer(0.002)]),
        "plot": pa.array([7], pa.int32()),
    })
    gdf = xrr.get_gdf(col, geometries=boxes, bands=["B04"], geometry_crs=4326)
    assert gdf["plot"].dtype == np.int32 and set(gdf["plot"]) == {7}


def test_densify_follows_a_long_lonlat_edge(sample_folder: Path) -> None:
    """By default a lon/lat polygon's vertices are projected (rasterio.mask's mask);
    densify=True follows a long edge as the curve it is in UTM."""
    import pyproj
    import rasterio.mask

    col = xrr.load(sample_folder / "s2.parquet")
    rid = col.ids[0]
    href = col.sources("B04")[col.ids.index(rid)].href
    # 12 degrees wide: its north edge, a parallel through the scene, bows by km in UTM.
    box = shapely.box(10.0, 45.0, 22.0, 45.125)
    to_utm = pyproj.Transformer.from_crs(4326, 32633, always_xy=True)

    def rasterio_mask(geom: shapely.Geometry) -> np.ndarray:
        utm = shapely.transform(geom, lambda xy: np.column_stack(to_utm.transform(*xy.T)))
        with rasterio.open(href) as src:
            data, _ = rasterio.mask.mask(src, [utm], crop=True, filled=True)
        return data[0]

    plain = xrr.get_numpy(col, geometries=box, bands=["B04"], id=rid)[0]
    dense = xrr.get_numpy(col, geometries=box, bands=["B04"], id=rid, densify=True)[0]
    np.testing.assert_array_equal(plain, rasterio_mask(box))
    np.testing.assert_array_equal(dense, rasterio_mask(shapely.segmentize(box, 12.0 / 64)))
    # The south edge's chord runs north of its parallel here: it cuts the scene's last
    # rows off, which the curve keeps.
    assert dense.shape[0] > plain.shape[0]
