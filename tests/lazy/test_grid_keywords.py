"""``geobox=`` and ``like=``: the output on a given grid (issue 23).

The oracle is odc-geo: the result's ``.odc.geobox`` must be the GeoBox asked
for, pixel for pixel; where the grid is the file's own lattice, the pixels are
rasterio's window read; elsewhere they equal the same open spelled out as
``crs=``/``resolution=``/``bbox=``/``align=``.
"""

from __future__ import annotations

import numpy as np
import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
import pytest
import rasterio
import rioxarray
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window

from cogs import write_tiff

# odc-geo's accessor multiplies affines with ``*`` (an upstream warning, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

TRANSFORM = Affine(10.0, 0, 500_000.0, 0, -10.0, 5_200_000.0)


@pytest.fixture
def scene(tmp_path):
    path = tmp_path / "scene.tif"
    write_tiff(path, dtype="uint16", nodata=0, crs="EPSG:32633", transform=TRANSFORM)
    return path


def _open(path, **kw):
    return xr.open_dataset(path, engine="rasteret", **kw)


def test_geobox_on_the_files_lattice_is_rasterios_window(scene):
    gbox = GeoBox((50, 70), Affine(10, 0, 500_300, 0, -10, 5_199_600), "EPSG:32633")
    ds = _open(scene, geobox=gbox)
    assert ds.odc.geobox == gbox
    with rasterio.open(scene) as f:
        expected = f.read(1, window=Window(30, 40, 70, 50))
    np.testing.assert_array_equal(ds.band_1.values[0], expected)


@pytest.mark.parametrize(
    "gbox",
    [
        # Coarser, off the default (0, 0) lattice.
        GeoBox((40, 60), Affine(25, 0, 500_013, 0, -25, 5_199_907), "EPSG:32633"),
        # Another CRS (longitude/latitude), non-square pixels.
        GeoBox((30, 45), Affine(0.0003, 0, 15.0005, 0, -0.0002, 46.9395), "EPSG:4326"),
    ],
    ids=["off-lattice", "geographic"],
)
def test_geobox_equals_the_grid_spelled_out(scene, gbox):
    ds = _open(scene, geobox=gbox, resampling="bilinear")
    assert ds.odc.geobox == gbox
    t = gbox.affine
    spelled = _open(
        scene, crs=str(gbox.crs), resolution=(t.a, -t.e),
        bbox=tuple(gbox.boundingbox), bbox_crs=str(gbox.crs), align=(t.c, t.f),
        resampling="bilinear",
    )
    assert spelled.odc.geobox == gbox
    np.testing.assert_array_equal(ds.band_1.values, spelled.band_1.values)
    assert np.count_nonzero(ds.band_1.values) > 0


def test_like_reuses_the_grid_of_a_rioxarray_array(scene, tmp_path):
    other = tmp_path / "other.tif"
    write_tiff(other, dtype="uint8", width=40, height=30, crs="EPSG:32633",
               transform=Affine(20, 0, 500_520, 0, -20, 5_199_480))
    like = rioxarray.open_rasterio(other)
    ds = _open(scene, like=like)
    assert ds.odc.geobox == like.odc.geobox
    # 20 m over the file's 10 m pixels, nearest: what GDAL's warper gives.
    expected = np.zeros((30, 40), dtype=np.uint16)
    with rasterio.open(scene) as f:
        reproject(rasterio.band(f, 1), expected, dst_transform=like.rio.transform(),
                  dst_crs="EPSG:32633", dst_nodata=0, resampling=Resampling.nearest)
    np.testing.assert_array_equal(ds.band_1.values[0], expected)
    # Our own Dataset (and a DataArray of it) works as like= too.
    again = _open(scene, like=ds.band_1)
    assert again.odc.geobox == like.odc.geobox
    assert again.x.equals(like.x) and again.y.equals(like.y)  # exactly, not to 1e-9


def test_like_of_a_single_row_uses_its_geotransform(scene):
    base = _open(scene, crs="EPSG:32633", resolution=20)
    row = base.isel(y=slice(3, 4))
    ds = _open(scene, like=row)
    assert ds.odc.geobox == row.odc.geobox


def test_geobox_with_crs_is_refused(scene):
    gbox = GeoBox((5, 5), Affine(10, 0, 500_000, 0, -10, 5_200_000), "EPSG:32633")
    with pytest.raises(ValueError, match=r"geobox= gives the whole output grid, so crs=, "
                                         r"resolution= cannot be given with it"):
        _open(scene, geobox=gbox, crs="EPSG:32633", resolution=10)
    with pytest.raises(ValueError, match="pass one of them"):
        _open(scene, geobox=gbox, like=_open(scene))


def test_like_that_is_not_a_georeferenced_xarray_object_is_refused(scene):
    with pytest.raises(TypeError, match=r"like=ndarray: expected an xarray Dataset.*geobox="):
        _open(scene, like=np.zeros((3, 3)))
    bare = xr.DataArray(np.zeros((3, 4)), dims=("y", "x"),
                        coords={"y": [3.0, 2.0, 1.0], "x": [0.0, 1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"like= has no CRS.*write_crs"):
        _open(scene, like=bare)
    with pytest.raises(TypeError, match=r"geobox=DataArray: expected an odc.geo GeoBox.*like="):
        _open(scene, geobox=bare)
    south_up = bare.assign_coords(y=[1.0, 2.0, 3.0]).rio.write_crs("EPSG:32633")
    with pytest.raises(ValueError, match="not north-up"):
        _open(scene, like=south_up)
