"""get_numpy / get_gdf / get_xarray / sample_points against rasterio on a multi-CRS collection."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyproj
import pytest
import rasterio
import rasterio.mask
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely
from affine import Affine

import xarray_rasteret as xrr
from cogs import with_datetimes, write_tiff
from xarray_rasteret._read.plan import tiles_for_window
from xarray_rasteret.errors import AOIOutsideDataError, BandNotFoundError
from xarray_rasteret.geo.aoi import InvalidGeometryWarning
from xarray_rasteret.geo.grid import RasterGrid
from xarray_rasteret.helpers import get_gdf, get_numpy, get_xarray, sample_points

# Two UTM zones meeting at 18 E; the scenes overlap around (18.0, 45.0).
ZONES = {
    32633: (pyproj.Transformer.from_crs(4326, 32633, always_xy=True), 10.0),
    32634: (pyproj.Transformer.from_crs(4326, 32634, always_xy=True), 20.0),
}
CENTRE = (18.0, 45.0)


def shp_transform(fn, geom):
    """Apply a pyproj ``transform(x, y)`` to a shapely geometry's coordinates."""
    return shapely.transform(geom, lambda xy: np.column_stack(fn(xy[:, 0], xy[:, 1])))


def _scene(tmp_path, rid, epsg, band, seed, nodata=0, size=(400, 400)):
    fwd, res = ZONES[epsg]
    cx, cy = fwd.transform(*CENTRE)
    x0 = np.floor((cx - size[1] * res / 2) / res) * res + (seed % 3) * res
    y0 = np.floor((cy + size[0] * res / 2) / res) * res
    path = tmp_path / f"{rid}_{band}.tif"
    write_tiff(
        path, dtype="uint16", width=size[1], height=size[0], crs=f"EPSG:{epsg}",
        transform=Affine(res, 0, x0, 0, -res, y0), nodata=nodata, compress="DEFLATE",
        predictor=2, blockxsize=64, blockysize=64, seed=seed, holes=True,
    )
    return path


@pytest.fixture(scope="module")
def multi_crs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("helpers")
    paths = []
    for i, epsg in enumerate([32633, 32633, 32634]):
        for b, band in enumerate(("B04", "B08")):
            paths.append(_scene(tmp, f"s{i}", epsg, band, seed=10 * i + b))
    col = xrr.build(
        [str(p) for p in paths],
        group_by=lambda h: tuple(h.rsplit("/", 1)[-1].removesuffix(".tif").split("_")),
    )
    when = {"s0": "2024-03-01", "s1": "2024-03-11", "s2": "2024-03-06"}
    return xrr.Collection(with_datetimes(col.table, when))


def _aois(n=6, seed=0, radius=0.004, spread=0.01):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = CENTRE[0] + rng.uniform(-spread, spread)
        y = CENTRE[1] + rng.uniform(-spread, spread)
        # Irregular polygons with a hole, so masks are not trivial.
        ring = shapely.Point(x, y).buffer(radius * rng.uniform(0.5, 1.5), quad_segs=3)
        out.append(ring.difference(shapely.Point(x, y).buffer(radius * 0.2)))
    return out


def _rasterio_masked(path, geom_4326, all_touched):
    with rasterio.open(path) as src:
        to = pyproj.Transformer.from_crs(4326, src.crs, always_xy=True)
        geom = shp_transform(to.transform, geom_4326)  # vertices, as transform_geom
        data, transform = rasterio.mask.mask(
            src, [geom], crop=True, all_touched=all_touched, filled=True
        )
    return data[0], transform


@pytest.mark.parametrize("all_touched", [False, True])
def test_get_gdf_equals_rasterio_mask(multi_crs, all_touched):
    aois = _aois()
    gdf = get_gdf(multi_crs, geometries=aois, bands=["B04", "B08"], all_touched=all_touched)
    assert len(gdf) == len(aois) * 3 * 2  # every AOI is in every scene; a row per band
    hrefs = {(s.href.rsplit("/", 1)[-1]): s.href for s in multi_crs.sources("B04")}
    hrefs.update({s.href.rsplit("/", 1)[-1]: s.href for s in multi_crs.sources("B08")})
    compared = 0
    for row in gdf.itertuples():
        expected, transform = _rasterio_masked(
            hrefs[f"{row.record_id}_{row.band}.tif"], aois[row.geometry_id - 1], all_touched
        )
        assert row.data.dtype == np.uint16
        np.testing.assert_array_equal(row.data, expected)
        compared += expected.size
        assert isinstance(row.transform, Affine) and row.transform.almost_equals(transform)
    assert compared > 10_000
    assert set(gdf.crs_1 if "crs_1" in gdf else gdf["crs"]) == {"EPSG:32633", "EPSG:32634"}
    assert gdf.crs.to_epsg() == 4326


@pytest.mark.parametrize("all_touched", [False, True])
def test_boxes_with_fractional_pixel_edges_mask_like_rasterio(multi_crs, all_touched):
    """Boxes in one records' CRS: edge pixels are kept or masked by their centres (or touch)."""
    from xarray_rasteret.helpers import _pairs

    t = next(s for s in multi_crs.sources("B04") if s.crs == "EPSG:32633").transform
    cx, cy = ZONES[32633][0].transform(*CENTRE)
    cx, cy = t.c + round((cx - t.c) / t.a) * t.a, t.f + round((cy - t.f) / t.e) * t.e
    # Edges 0.05 to 0.9 pixel past pixel edges (not on them: the round trip through
    # degrees of the reference moves an edge on a pixel edge to either side).
    boxes = [shapely.box(cx + f * t.a, cy - 20 * t.a - f * t.a, cx + (30 + f) * t.a, cy + f * t.a)
             for f in (0.05, 0.1, 0.2, 0.3, 0.6, 0.9)]
    masks = []
    mask = _pairs.geometry_mask

    def counting(*args, **kw):
        masks.append(1)
        return mask(*args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_pairs, "geometry_mask", counting)
        gdf = get_gdf(multi_crs, geometries=boxes, bands=["B04"], geometry_crs="EPSG:32633",
                      all_touched=all_touched)
    hrefs = {s.href.rsplit("/", 1)[-1]: s.href for s in multi_crs.sources("B04")}
    to_4326 = pyproj.Transformer.from_crs(32633, 4326, always_xy=True)
    utm33 = {s.href.rsplit("/", 1)[-1].split("_")[0] for s in multi_crs.sources("B04")
             if s.crs == "EPSG:32633"}
    for row in gdf.itertuples():
        if row.record_id not in utm33:
            continue  # not a box in that CRS: test_get_gdf_equals_rasterio_mask's case
        box = boxes[row.geometry_id - 1]
        # In degrees: _rasterio_masked brings it back to the file's CRS.
        geom = shp_transform(to_4326.transform, box)
        expected, _ = _rasterio_masked(hrefs[f"{row.record_id}_B04.tif"], geom, all_touched)
        np.testing.assert_array_equal(row.data, expected)
    assert len(gdf) == len(boxes) * 3
    # Boxes covering their window but for under a quarter pixel skip the mask
    # (f = 0.05, 0.1, 0.2 on the two scenes of a grid).
    assert len(masks) < len(gdf)


def test_get_numpy_shapes_and_ragged_error(multi_crs):
    aoi = _aois(1)[0]
    one = get_numpy(multi_crs, geometries=aoi, bands=["B04"], id="s0")
    assert one.ndim == 3 and one.shape[0] == 1
    two = get_numpy(multi_crs, geometries=aoi, bands=["B04", "B08"], id="s0")
    assert two.shape == (1, 2, *one.shape[1:])
    np.testing.assert_array_equal(two[:, 0], one)
    with pytest.raises(ValueError, match="different shapes.*get_xarray or get_gdf"):
        get_numpy(multi_crs, geometries=aoi, bands=["B04"])


def test_get_xarray_combines_and_keeps_dtype(multi_crs):
    aois = _aois(3)
    utm33 = {"proj:epsg": 32633}
    ds = get_xarray(multi_crs, geometries=aois, bands=["B04"], **utm33)
    assert ds.B04.dtype == np.uint16 and ds.B04.dims == ("time", "geometry", "y", "x")
    assert ds.geometry.values.tolist() == [1, 2, 3]
    assert ds.rio.crs.to_epsg() == 32633
    gdf = get_gdf(multi_crs, geometries=aois, bands=["B04"], **utm33)
    assert set(gdf.record_id) == {"s0", "s1"}
    # Every gdf window sits in the combined Dataset, and its inside pixels match.
    for row in gdf.itertuples():
        t = row.transform
        h, w = row.data.shape
        xs = t.c + t.a * (np.arange(w) + 0.5)
        ys = t.f + t.e * (np.arange(h) + 0.5)
        part = ds.B04.sel(time=row.datetime, geometry=row.geometry_id, x=xs, y=ys).values
        inside = row.data != 0
        np.testing.assert_array_equal(part[inside], row.data[inside])
    with pytest.raises(ValueError, match="xr_combine"):
        get_xarray(multi_crs, geometries=aois, bands=["B04"], xr_combine="stack")
    with pytest.raises(xrr.errors.ReprojectionRequiredError, match="target_crs"):
        get_xarray(multi_crs, geometries=aois, bands=["B04"])


def test_sample_points_equals_rasterio_sample(multi_crs):
    rng = np.random.default_rng(3)
    pts = [shapely.Point(CENTRE[0] + dx, CENTRE[1] + dy)
           for dx, dy in rng.uniform(-0.03, 0.03, (40, 2))]
    pts.append(shapely.Point(100.0, 0.0))  # in no footprint
    labels = pa.table({"geometry": shapely.to_wkb(pts), "label": [f"p{i}" for i in range(41)]})
    table = sample_points(multi_crs, points=labels, bands=["B04"], geometry_column="geometry")
    df = table.to_pandas()
    # rasteret 0.4's columns, in its order and types, then ours.
    rasteret = ["point_index", "point_x", "point_y", "point_crs", "record_id", "datetime",
                "collection", "band", "value", "raster_crs"]
    assert table.column_names[:10] == rasteret
    assert table.schema.field("point_crs").type == pa.int32()
    assert table.schema.field("raster_crs").type == pa.int32()
    assert {"point_crs_wkt", "raster_crs_wkt", "outside", "nodata", "label"} <= set(df.columns)
    assert not (df.point_index == 40).any()  # in no footprint: no row, as in rasteret
    # Rows by record, then band, then point (rasteret's order).
    order = [multi_crs.ids.index(r) for r in df.record_id]
    pairs = list(zip(order, df.point_index, strict=True))
    assert pairs == sorted(pairs)
    assert (df.point_crs == 4326).all() and df.point_crs_wkt.isna().all()
    hrefs = {s.href.rsplit("/", 1)[-1]: s.href for s in multi_crs.sources("B04")}
    checked = 0
    for row in df[df.point_index < 40].itertuples():
        if row.record_id is None:
            assert row.outside  # in no footprint
            continue
        with rasterio.open(hrefs[f"{row.record_id}_B04.tif"]) as src:
            to = pyproj.Transformer.from_crs(4326, src.crs, always_xy=True)
            x, y = to.transform(row.point_x, row.point_y)
            r, c = src.index(x, y)
            if not (0 <= r < src.height and 0 <= c < src.width):
                assert row.outside
                continue
            expected = next(src.sample([(x, y)]))[0]
        assert not row.outside and row.value == expected
        assert row.band == "B04" and row.raster_crs == src.crs.to_epsg()
        assert row.nodata == (expected == 0)
        assert row.label == f"p{row.point_index}"
        checked += 1
    assert checked >= 60


def _equal_reads(col, forms, **kw):
    ref = get_numpy(col, geometries=forms[0], bands=["B04"], id="s0", **kw)
    for form in forms[1:]:
        np.testing.assert_array_equal(
            get_numpy(col, geometries=form, bands=["B04"], id="s0", **kw), ref
        )


def test_every_geometry_form_reads_the_same(multi_crs):
    aoi = _aois(1, radius=0.003)[0]
    feature = {"type": "Feature", "properties": {"k": 1}, "geometry": shapely.geometry.mapping(aoi)}
    forms = [
        aoi,
        [aoi],
        shapely.to_wkb(aoi),
        [shapely.to_wkb(aoi)],
        shapely.geometry.mapping(aoi),
        feature,
        {"type": "FeatureCollection", "features": [feature]},
        json.loads(json.dumps(feature)),
        pa.array([shapely.to_wkb(aoi)]),
        pa.chunked_array([pa.array([shapely.to_wkb(aoi)])]),
        gpd.GeoDataFrame({"k": [1]}, geometry=[aoi], crs=4326),
    ]
    _equal_reads(multi_crs, forms)
    # bbox tuple equals its box polygon
    box = (17.99, 44.99, 18.0, 45.0)
    _equal_reads(multi_crs, [box, shapely.box(*box)])


def test_crs_from_metadata_drives_auto(multi_crs):
    aoi = _aois(1, radius=0.003)[0]
    to_utm = pyproj.Transformer.from_crs(4326, 32633, always_xy=True)
    utm = shp_transform(to_utm.transform, shapely.segmentize(aoi, 1e-5))
    ext = {"crs": pyproj.CRS(32633).to_json_dict()}
    field = pa.field("geom", pa.binary(), metadata={
        b"ARROW:extension:name": b"geoarrow.wkb",
        b"ARROW:extension:metadata": json.dumps(ext).encode(),
    })
    table = pa.table({"geom": pa.array([shapely.to_wkb(utm)])}, schema=pa.schema([field]))
    a = get_gdf(multi_crs, geometries=table, bands=["B04"], geometry_column="geom", id="s0")
    b = get_gdf(multi_crs, geometries=utm, bands=["B04"], geometry_crs=32633, id="s0")
    gdf_form = gpd.GeoDataFrame(geometry=[utm], crs=32633)
    c = get_gdf(multi_crs, geometries=gdf_form, bands=["B04"], id="s0")
    assert a.crs.to_epsg() == b.crs.to_epsg() == c.crs.to_epsg() == 32633
    np.testing.assert_array_equal(a.data.iloc[0], b.data.iloc[0])
    np.testing.assert_array_equal(a.data.iloc[0], c.data.iloc[0])


def test_user_columns_kept_and_clash_suffixed(multi_crs):
    aois = _aois(2)
    gdf_in = gpd.GeoDataFrame(
        {"plot": ["a", "b"], "record_id": ["mine1", "mine2"]}, geometry=aois, crs=4326
    )
    out = get_gdf(multi_crs, geometries=gdf_in, bands=["B04"])
    assert set(out["plot"]) == {"a", "b"}
    assert set(out.record_id_user) == {"mine1", "mine2"}
    assert set(out.record_id) == {"s0", "s1", "s2"}


def test_filters_and_errors(multi_crs):
    aoi = _aois(1)[0]
    assert len(get_gdf(multi_crs, geometries=aoi, bands=["B04"], id="s2")) == 1
    with pytest.raises(ValueError, match="nonexistent"):
        get_gdf(multi_crs, geometries=aoi, bands=["B04"], nonexistent=3)
    with pytest.raises(BandNotFoundError, match=r"B99.*B04"):
        get_numpy(multi_crs, geometries=aoi, bands=["B99"])
    with pytest.raises(AOIOutsideDataError, match="intersects"):
        get_numpy(multi_crs, geometries=(100.0, 0.0, 100.1, 0.1), bands=["B04"])
    with pytest.raises(ValueError, match="empty"):
        get_numpy(multi_crs, geometries=shapely.Polygon(), bands=["B04"])
    bowtie = shapely.Polygon([(18, 45), (18.01, 45.01), (18.01, 45), (18, 45.01)])
    with pytest.warns(InvalidGeometryWarning, match="geometry 0 .* rasterized as given"):
        gdf = get_gdf(multi_crs, geometries=bowtie, bands=["B04"], id="s0")
    href = multi_crs.sources("B04")[multi_crs.ids.index("s0")].href
    expected, _ = _rasterio_masked(href, bowtie, False)  # GDAL burns the rings as given
    np.testing.assert_array_equal(gdf.data.iloc[0], expected)


def test_data_source_band_codes(multi_crs):
    from xarray_rasteret.data_sources import DataSource, register

    register(DataSource("test-codes", band_map={"red": "B04"}), replace=True)
    aoi = _aois(1)[0]
    a = get_numpy(multi_crs, geometries=aoi, bands=["red"], data_source="test-codes", id="s0")
    b = get_numpy(multi_crs, geometries=aoi, bands=["B04"], id="s0")
    np.testing.assert_array_equal(a, b)
    with pytest.raises(KeyError, match="registered"):
        get_numpy(multi_crs, geometries=aoi, bands=["B04"], data_source="nope")


def test_many_aois_one_concurrent_read_no_tile_twice(tmp_path):
    # 12 records x 2 bands on one grid; 50 AOIs, many sharing tiles.
    paths = []
    for i in range(12):
        for b, band in enumerate(("B04", "B08")):
            paths.append(_scene(tmp_path, f"r{i:02d}", 32633, band, seed=3 * i + b,
                                size=(256, 256)))
    col = xrr.build(
        [str(p) for p in paths],
        group_by=lambda h: tuple(h.rsplit("/", 1)[-1].removesuffix(".tif").split("_")),
    )
    aois = _aois(50, seed=7, radius=0.002, spread=0.008)
    with xrr.track() as stats:
        gdf = get_gdf(col, geometries=aois, bands=["B04", "B08"])
    assert len(gdf) == 50 * 12 * 2
    # The unique tiles the 600 (AOI, record) windows touch, per band.
    unique: dict[tuple[str, int], int] = {}
    for band in ("B04", "B08"):
        for src in col.sources(band):
            grid = RasterGrid(src.crs, src.transform, src.levels[0].width, src.levels[0].height)
            to = pyproj.Transformer.from_crs(4326, src.crs, always_xy=True)
            for aoi in aois:
                geom = shp_transform(to.transform, shapely.segmentize(aoi, 1e-5))
                window = grid.clip(grid.window_for_bounds(geom.bounds))
                if window is None:
                    continue
                for t in tiles_for_window(src.levels[0], window):
                    unique[(src.href, t.start)] = t.end - t.start
    tile_bytes = sum(unique.values())
    assert tile_bytes <= stats.bytes <= tile_bytes + 16 * len(unique)
    assert stats.requests <= len(unique)
    assert stats.max_in_flight > 4  # requests of all records/bands overlap


def test_helpers_as_collection_methods_and_from_a_dataset(multi_crs, tmp_path):
    import xarray as xr

    aoi = _aois(1)[0]
    direct = xrr.get_numpy(multi_crs, geometries=aoi, bands=["B04"], id="s0")
    method = multi_crs.get_numpy(geometries=aoi, bands=["B04"], id="s0")
    np.testing.assert_array_equal(direct, method)
    path = tmp_path / "c.parquet"
    multi_crs.to_parquet(path)
    from_path = xrr.get_numpy(str(path), geometries=aoi, bands=["B04"], id="s0")
    np.testing.assert_array_equal(direct, from_path)
    ds = xr.open_dataset(path, engine="rasteret", filters={"id": "s0"})
    from_ds = xrr.get_numpy(ds, geometries=aoi, bands=["B04"])
    np.testing.assert_array_equal(direct, from_ds)
    assert len(multi_crs.sample_points(points=[aoi.centroid], bands=["B04"])) == 3


def test_target_crs_resamples_like_gdal(multi_crs):
    from rasterio.warp import Resampling, reproject

    aois = _aois(3)
    gdf = get_gdf(multi_crs, geometries=aois, bands=["B04"], target_crs=32634)
    assert set(gdf["crs"]) == {"EPSG:32634"} and len(gdf) == 9
    assert gdf.crs.to_epsg() == 32634  # the geometries too, as rasteret
    hrefs = {s.href.rsplit("/", 1)[-1]: s.href for s in multi_crs.sources("B04")}
    equal = total = 0
    for row in gdf.itertuples():
        ours = row.data
        expected = np.zeros_like(ours)
        with rasterio.open(hrefs[f"{row.record_id}_B04.tif"]) as src:
            reproject(rasterio.band(src, 1), expected, dst_transform=row.transform,
                      dst_crs="EPSG:32634", dst_nodata=0, resampling=Resampling.nearest)
        inside = ours != 0  # outside the polygon both are nodata; compare inside
        equal += int((ours[inside] == expected[inside]).sum())
        total += int(inside.sum())
    assert total > 5000
    print(f"target_crs nearest agreement: {equal}/{total} = {equal / total:.4%}")
    assert equal / total >= 0.995, f"nearest agreement {equal / total:.4%}"
    ds = get_xarray(multi_crs, geometries=aois, bands=["B04"], target_crs=32634)
    assert ds.rio.crs.to_epsg() == 32634 and ds.B04.dtype == np.uint16
    assert ds.sizes["time"] == 3


def test_bad_inputs_name_the_fix(multi_crs):
    with pytest.raises(ValueError, match="sample_points takes points.*get_gdf"):
        sample_points(multi_crs, points=_aois(1), bands=["B04"])
    with pytest.raises(TypeError, match="Collection, or the path/URL.*got int"):
        get_numpy(42, geometries=_aois(1)[0], bands=["B04"])


def test_target_crs_reads_records_on_its_lattice_without_resampling(multi_crs, monkeypatch):
    """Records already on the target grid's lattice are read straight into the output."""
    from xarray_rasteret._lazy import mosaic as _mosaic

    aois = _aois(3)
    native = get_gdf(multi_crs, geometries=aois, bands=["B04", "B08"], id=["s0", "s1"])
    planned = []
    plan = _mosaic.MosaicArray.plan
    monkeypatch.setattr(_mosaic.MosaicArray, "plan",
                        lambda self, key: planned.append(key) or plan(self, key))
    on_grid = get_gdf(multi_crs, geometries=aois, bands=["B04", "B08"], id=["s0", "s1"],
                      target_crs=32633)
    assert planned == []  # nothing resampled
    assert len(on_grid) == len(native) == 12
    for mine, ref in zip(on_grid.itertuples(), native.itertuples(), strict=True):
        assert tuple(mine.transform) == tuple(ref.transform) and mine.band == ref.band
        np.testing.assert_array_equal(mine.data, ref.data)


@pytest.mark.parametrize("target_crs", [None, 32633])
def test_bands_of_different_dtypes_stack_converted(tmp_path, target_crs):
    """A uint8 mask band and a float32 band stack as float32, with the pixels rasterio reads."""
    fwd, res = ZONES[32633]
    cx, cy = fwd.transform(*CENTRE)
    x0, y0 = np.floor(cx / res) * res - 200 * res, np.floor(cy / res) * res + 200 * res
    transform = Affine(res, 0, x0, 0, -res, y0)
    paths = []
    for band, dtype in (("MASK", "uint8"), ("NDVI", "float32")):
        path = tmp_path / f"r0_{band}.tif"
        write_tiff(path, dtype=dtype, width=400, height=400, crs="EPSG:32633",
                   transform=transform, compress="DEFLATE", blockxsize=64, blockysize=64,
                   seed=3 if dtype == "uint8" else 4)
        paths.append(path)
    col = xrr.build([str(p) for p in paths], group_by=lambda h: tuple(
        h.rsplit("/", 1)[-1].removesuffix(".tif").split("_")))
    box = shapely.box(x0 + 50 * res, y0 - 150 * res, x0 + 130 * res, y0 - 90 * res)
    arr = get_numpy(col, geometries=box, bands=["MASK", "NDVI"], geometry_crs=32633,
                    target_crs=target_crs)
    assert arr.shape == (1, 2, 60, 80) and arr.dtype == np.float32
    for j, path in enumerate(paths):
        with rasterio.open(path) as src:
            expected = src.read(1, window=rasterio.windows.Window(50, 90, 80, 60))
        np.testing.assert_array_equal(arr[0, j], expected.astype(np.float32))


def test_plan_gives_each_window_a_slice_of_one_array_per_shape(multi_crs):
    from collections import defaultdict

    from xarray_rasteret.geo.aoi import normalize_geometries
    from xarray_rasteret.helpers import _pairs

    aois = normalize_geometries(_aois(6), geometry_crs="EPSG:4326")
    assets, source = _pairs.resolve_bands(multi_crs, ["B04", "B08"], None)
    pairs = _pairs.plan_pairs(multi_crs, aois, assets, source)
    reads = [r for p in pairs for r in p.bands.values()]
    by_spec = defaultdict(list)
    for r in reads:
        by_spec[(r.data.shape, r.data.dtype)].append(r.data)
    assert len(reads) == 2 * len(pairs) > 2 * len(by_spec)
    for arrays in by_spec.values():
        assert {id(a.base) for a in arrays} == {id(arrays[0].base)}
        assert arrays[0].base.shape[0] == len(arrays)
    for i, r in enumerate(reads):  # no two windows share memory
        r.data[...] = i
    assert all((r.data == i).all() for i, r in enumerate(reads))
    for p in pairs:  # each window is its grid's window of the geometry, as before
        for r in p.bands.values():
            s = r.source
            grid = RasterGrid(s.crs, s.transform, s.levels[0].width, s.levels[0].height)
            assert r.window == grid.clip(grid.window_for_bounds(p.geometry.bounds))
            assert r.transform == grid.crop(r.window).transform


def test_get_numpy_is_record_major_as_rasteret(multi_crs):
    # Two boxes of equal pixel size, on the two records of one UTM grid (s0, s1).
    c = shapely.Point(*CENTRE)
    boxes = [shapely.box(c.x - 0.002 + dx, c.y - 0.001, c.x + 0.002 + dx, c.y + 0.001)
             for dx in (0.0, 0.003)]
    utm = multi_crs.filter(id=["s0", "s1"])
    out = get_numpy(utm, geometries=boxes, bands=["B04"], all_touched=True)
    assert out.shape[0] == 4
    one_by_one = [
        get_numpy(utm, geometries=boxes[g], bands=["B04"], id=rid, all_touched=True)[0]
        for rid in ("s0", "s1") for g in (0, 1)
    ]  # rasteret's order: each record, then each geometry within it
    for i, expected in enumerate(one_by_one):
        np.testing.assert_array_equal(out[i], expected)
