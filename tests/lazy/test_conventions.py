"""Conventions shared with xarray, rioxarray and odc-geo (issue 23).

rioxarray's ``open_rasterio`` of the same file is the oracle: where our
Dataset and its DataArray differ only by the ``time``/``band`` dimension, every
rioxarray operation must give the same pixels.
"""

from __future__ import annotations

import warnings

import numpy as np
import odc.geo.xr  # noqa: F401  (registers the .odc accessor)
import pytest
import rasterio
import rioxarray
import shapely
import xarray as xr
from affine import Affine

import xarray_rasteret as xrr
from cogs import write_tiff

X0, Y0, RES = 500_000.0, 5_200_000.0, 10.0


def _tagged_tiff(path, when=None, **kw):
    """A uint16 COG with nodata 0 and holes, optionally a DateTime tag; its pixels."""
    kw.setdefault("crs", "EPSG:32633")
    kw.setdefault("transform", Affine(RES, 0, X0, 0, -RES, Y0))
    data = write_tiff(path, dtype="uint16", nodata=0, holes=True, compress="DEFLATE", **kw)
    if when is not None:
        with rasterio.open(path, "r+") as f:
            f.update_tags(TIFFTAG_DATETIME=when)
    return data


@pytest.fixture
def tif(tmp_path):
    path = tmp_path / "scene.tif"
    _tagged_tiff(path)
    return path


@pytest.fixture
def scaled_tif(tmp_path):
    """As ``tif``, with GDAL scale and offset, so masking also scales."""
    path = tmp_path / "scaled.tif"
    _tagged_tiff(path)
    with rasterio.open(path, "r+") as f:
        f.scales = (0.0001,)
        f.offsets = (-0.1,)
    return path


def _pair(path, mask_and_scale):
    """Our band and rioxarray's of the same file, both 2-D."""
    ours = xr.open_dataset(path, engine="rasteret", mask_and_scale=mask_and_scale)
    theirs = rioxarray.open_rasterio(path, mask_and_scale=mask_and_scale)
    return ours.band_1.isel(time=0, drop=True), theirs.isel(band=0, drop=True)


def _assert_same_raster(ours, theirs):
    np.testing.assert_array_equal(ours.values, theirs.values)
    assert ours.rio.transform() == theirs.rio.transform()
    assert ours.rio.crs == theirs.rio.crs


# ---------------------------------------------------------------- engine choice


def test_tiff_without_engine_goes_to_rioxarray(tif):
    assert xr.backends.plugins.guess_engine(str(tif)) == "rasterio"
    ds = xr.open_dataset(tif, decode_coords="all")
    assert "band_data" in ds.data_vars and ds.encoding["source"] == str(tif)
    # Asked by name, the engine still opens a GeoTIFF (xarray's default masks).
    ours = xr.open_dataset(tif, engine="rasteret", mask_and_scale=True)
    np.testing.assert_array_equal(ours.band_1.values[0], ds.band_data.values[0])


def test_collection_parquet_without_engine_is_ours(tif, tmp_path):
    path = tmp_path / "scenes.parquet"
    xrr.build([tif]).to_parquet(path)
    assert xr.backends.plugins.guess_engine(str(path)) == "rasteret"
    ds = xr.open_dataset(path)
    assert list(ds.data_vars) == ["band_1"]
    assert ds.attrs["title"] == xrr.load(path).name


# ---------------------------------------------------------------- decoder keywords


@pytest.mark.parametrize(
    "keyword",
    [
        {"decode_coords": "all"},
        {"decode_coords": "coordinates"},
        {"decode_coords": True},
        {"decode_times": True},
        {"decode_times": False},
        {"decode_timedelta": True},
        {"use_cftime": False},
        {"concat_characters": True},
        {"concat_characters": False},
    ],
    ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()),
)
def test_decoder_keywords_are_accepted(tif, keyword):
    ds = xr.open_dataset(tif, engine="rasteret", **keyword)
    # None of these changes what is opened: the grid mapping stays a
    # coordinate and the index's time stays datetime64.
    assert "spatial_ref" in ds.coords and ds.time.dtype == np.dtype("datetime64[ns]")
    assert ds.rio.crs == rasterio.crs.CRS.from_epsg(32633)


def test_decode_coords_all_works_like_rioxarray(tif):
    ours = xr.open_dataset(tif, engine="rasteret", decode_coords="all")
    theirs = xr.open_dataset(tif, engine="rasterio", decode_coords="all")
    assert "spatial_ref" in ours.coords and "spatial_ref" in theirs.coords
    assert ours.rio.crs == theirs.rio.crs
    assert ours.rio.transform() == theirs.rio.transform()


def test_decode_coords_false_leaves_the_grid_mapping_a_variable(tif):
    ds = xr.open_dataset(tif, engine="rasteret", decode_coords=False)
    assert "spatial_ref" in ds.data_vars and "spatial_ref" not in ds.coords


def test_decode_cf_false_turns_masking_off(tif):
    ds = xr.open_dataset(tif, engine="rasteret", decode_cf=False, mask_and_scale=True)
    assert ds.band_1.dtype == np.uint16 and ds.band_1.attrs["_FillValue"] == 0


def test_unknown_decode_coords_is_refused(tif):
    with pytest.raises(ValueError, match="decode_coords='some'"):
        xr.open_dataset(tif, engine="rasteret", decode_coords="some")


# ---------------------------------------------------------------- nodata placement


@pytest.mark.parametrize("mask_and_scale", [False, True])
def test_nodata_scale_offset_sit_where_rioxarray_puts_them(scaled_tif, mask_and_scale):
    ours, theirs = _pair(scaled_tif, mask_and_scale)
    for key in ("_FillValue", "scale_factor", "add_offset"):
        assert (key in ours.attrs) == (key in theirs.attrs), key
        assert (key in ours.encoding) == (key in theirs.encoding), key
        where = ours.attrs if key in ours.attrs else ours.encoding
        there = theirs.attrs if key in theirs.attrs else theirs.encoding
        assert where[key] == pytest.approx(there[key])
    if not mask_and_scale:
        assert ours.attrs["_FillValue"].dtype == theirs.attrs["_FillValue"].dtype
    np.testing.assert_allclose(ours.values, theirs.values, rtol=1e-6)


@pytest.mark.parametrize("mask_and_scale", [False, True])
def test_rio_nodata_and_encoded_nodata(tif, mask_and_scale):
    ours, theirs = _pair(tif, mask_and_scale)
    np.testing.assert_equal(ours.rio.nodata, theirs.rio.nodata)
    assert ours.rio.encoded_nodata == theirs.rio.encoded_nodata
    if mask_and_scale:
        assert np.isnan(ours.rio.nodata) and ours.rio.encoded_nodata == 0
    else:
        assert ours.rio.nodata == 0 and ours.rio.encoded_nodata is None


@pytest.mark.parametrize("mask_and_scale", [False, True])
def test_rio_clip_box(tif, mask_and_scale):
    ours, theirs = _pair(tif, mask_and_scale)
    box = (X0 + 205, Y0 - 1505, X0 + 1995, Y0 - 400)
    _assert_same_raster(ours.rio.clip_box(*box), theirs.rio.clip_box(*box))


@pytest.mark.parametrize("mask_and_scale", [False, True])
def test_rio_clip_polygon(tif, mask_and_scale):
    ours, theirs = _pair(tif, mask_and_scale)
    triangle = shapely.Polygon(
        [(X0 + 100, Y0 - 100), (X0 + 2500, Y0 - 300), (X0 + 900, Y0 - 1900)]
    )
    got = ours.rio.clip([triangle], crs="EPSG:32633")
    want = theirs.rio.clip([triangle], crs="EPSG:32633")
    _assert_same_raster(got, want)
    # Outside the triangle: the nodata the clip filled in, the same for both.
    np.testing.assert_equal(got.rio.nodata, want.rio.nodata)


@pytest.mark.parametrize("mask_and_scale", [False, True])
def test_rio_reproject(tif, mask_and_scale):
    ours, theirs = _pair(tif, mask_and_scale)
    got, want = ours.rio.reproject("EPSG:4326"), theirs.rio.reproject("EPSG:4326")
    assert got.rio.crs == want.rio.crs and got.shape == want.shape
    assert got.rio.transform().almost_equals(want.rio.transform())
    np.testing.assert_array_equal(got.values, want.values)


@pytest.mark.parametrize("mask_and_scale", [False, True])
def test_rio_write_nodata_then_to_raster(tif, tmp_path, mask_and_scale):
    ours, theirs = _pair(tif, mask_and_scale)
    encoded = mask_and_scale  # masked data keeps its nodata encoded (rioxarray's rule)
    ours.rio.write_nodata(7, encoded=encoded).rio.to_raster(tmp_path / "ours.tif")
    theirs.rio.write_nodata(7, encoded=encoded).rio.to_raster(tmp_path / "theirs.tif")
    with rasterio.open(tmp_path / "ours.tif") as a, rasterio.open(tmp_path / "theirs.tif") as b:
        assert a.nodata == b.nodata == 7 and a.dtypes == b.dtypes
        assert a.transform == b.transform and a.crs == b.crs
        np.testing.assert_array_equal(a.read(), b.read())


# odc-geo 0.5 multiplies Affines with ``*`` and calls ``shapely.ops.transform``,
# both deprecated by their newest releases: its warnings, not ours.
@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
@pytest.mark.filterwarnings("ignore:The 'shapely.ops.transform:DeprecationWarning")
@pytest.mark.parametrize("mask_and_scale", [False, True])
def test_odc_geobox_and_reproject(tif, mask_and_scale):
    ours, theirs = _pair(tif, mask_and_scale)
    assert ours.odc.geobox == theirs.odc.geobox
    got = ours.odc.reproject("EPSG:4326")
    want = theirs.odc.reproject("EPSG:4326")
    assert got.odc.geobox == want.odc.geobox
    np.testing.assert_array_equal(got.values, want.values)


# ---------------------------------------------------------------- chunks={} and writers


@pytest.mark.parametrize("mask_and_scale", [False, True])
def test_chunked_dataset_writes_to_netcdf_without_warnings(tif, tmp_path, mask_and_scale):
    ds = xr.open_dataset(tif, engine="rasteret", chunks={}, mask_and_scale=mask_and_scale)
    # The id column stays numpy under chunks={}: writers need not load a dask array.
    assert isinstance(ds.id.variable._data, np.ndarray)
    out = tmp_path / "out.nc"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.to_netcdf(out)
    with xr.open_dataset(out, mask_and_scale=mask_and_scale) as back:
        np.testing.assert_array_equal(back.band_1.values, ds.band_1.values)
        assert list(back.id.values) == ["scene"]


# ---------------------------------------------------------------- coordinate and Dataset attrs


@pytest.mark.parametrize(
    ("crs", "transform"),
    [
        ("EPSG:32633", Affine(RES, 0, X0, 0, -RES, Y0)),
        ("EPSG:4326", Affine(0.001, 0, 15.0, 0, -0.001, 45.0)),
    ],
)
def test_xy_attrs_are_rioxarrays_coordinate_system(tmp_path, crs, transform):
    path = tmp_path / "scene.tif"
    _tagged_tiff(path, crs=crs, transform=transform)
    ours = xr.open_dataset(path, engine="rasteret")
    theirs = rioxarray.open_rasterio(path).rio.write_coordinate_system()
    assert ours.x.attrs == theirs.x.attrs and ours.y.attrs == theirs.y.attrs
    assert ours.x.attrs["standard_name"] in ("projection_x_coordinate", "longitude")


def test_dataset_attrs_describe_the_source(tif):
    ds = xr.open_dataset(tif, engine="rasteret")
    assert ds.attrs["title"] == "scene"
    assert "xarray-rasteret" in ds.attrs["source"] and "band_1" in ds.attrs["source"]
    named = xrr.build([tif], name="my scenes")
    assert xr.open_dataset(named, engine="rasteret").attrs["title"] == "my scenes"


# ---------------------------------------------------------------- DateTime tag


def test_datetime_tag_is_the_time(tmp_path):
    path = tmp_path / "dated.tif"
    _tagged_tiff(path, "2024:05:03 10:20:30")
    ds = xr.open_dataset(path, engine="rasteret")
    assert ds.time.values[0] == np.datetime64("2024-05-03T10:20:30", "ns")


def test_malformed_datetime_tag_gives_nat(tmp_path):
    path = tmp_path / "odd.tif"
    _tagged_tiff(path, "sometime in May")
    ds = xr.open_dataset(path, engine="rasteret")
    assert np.isnat(ds.time.values[0])


def test_open_mfdataset_default_combine_equals_one_by_one(tmp_path):
    paths = []
    for i, when in enumerate(["2024:06:03 10:00:00", "2024:05:03 10:00:00"]):
        path = tmp_path / f"scene_{i}.tif"
        _tagged_tiff(path, when, seed=i)
        paths.append(path)
    combined = xr.open_mfdataset(paths, engine="rasteret")
    assert list(combined.time.values) == sorted(combined.time.values)
    singles = [xr.open_dataset(p, engine="rasteret") for p in reversed(paths)]
    xr.testing.assert_identical(combined.load(), xr.concat(singles, "time").load())
