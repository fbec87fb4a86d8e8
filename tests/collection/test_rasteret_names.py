"""rasteret 0.4's Collection names and call shapes: subset, select_split, head, bounds, epsg,
positional geometries and bands, and its filter keywords."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
import shapely

from cogs import write_tiff
from xarray_rasteret.collection import Collection
from xarray_rasteret.errors import BandNotFoundError
from xarray_rasteret.ingest import build


@pytest.fixture(scope="module")
def coll(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    """Three records of one grid with eo:cloud_cover and a split under another name."""
    d = tmp_path_factory.mktemp("rasteret-names")
    hrefs = []
    for i in range(3):
        path = d / f"r{i}.tif"
        write_tiff(path, width=64, height=64, blockxsize=32, blockysize=32, dtype="uint16",
                   nodata=0, seed=i)
        hrefs.append(str(path))
    table = pa.table({
        "id": ["r0", "r1", "r2"],
        "datetime": pa.array([dt.datetime(2024, m, 10, tzinfo=dt.UTC) for m in (1, 2, 3)],
                             pa.timestamp("us", tz="UTC")),
        "assets": [{"B04": {"href": h}} for h in hrefs],
        "eo:cloud_cover": [5.0, 40.0, 12.0],
        "fold": ["train", "val", "train"],
    })
    return build(table, bands=["B04"])


def test_subset_with_rasteret_keywords(coll: Collection) -> None:
    assert coll.subset(cloud_cover_lt=20).ids == ["r0", "r2"]
    assert coll.subset(date_range=("2024-02-01", "2024-03-31")).ids == ["r1", "r2"]
    assert coll.subset(split="train", split_column="fold").ids == ["r0", "r2"]
    assert coll.select_split(["val"], split_column="fold").ids == ["r1"]
    assert coll.subset(cloud_cover_lt=20, date_range=("2024-03-01", "2024-03-31")).ids == ["r2"]


def test_filter_takes_rasteret_keywords_too(coll: Collection) -> None:
    assert coll.filter(cloud_cover_lt=20).ids == ["r0", "r2"]
    assert coll.filter(date_range=("2024-01-01", "2024-01-31")).ids == ["r0"]
    assert coll.filter(split="val", split_column="fold").ids == ["r1"]


def test_geometries_filter_keeps_records_whose_footprint_they_touch(coll: Collection) -> None:
    c = coll.geometries[0].centroid
    inside = shapely.box(c.x - 1e-4, c.y - 1e-4, c.x + 1e-4, c.y + 1e-4)
    assert coll.subset(geometries=inside).ids == ["r0", "r1", "r2"]
    assert coll.subset(geometries=(0.0, 0.0, 0.1, 0.1)).ids == []


def test_unknown_option_is_named_with_the_options_there_are(coll: Collection) -> None:
    with pytest.raises(ValueError, match=r"unsupported option or unknown column 'match'") as err:
        coll.filter(match="intersects")
    assert "cloud_cover_lt" in str(err.value) and "date_range" in str(err.value)
    assert "'fold'" in str(err.value)


def test_views_head_to_table_bounds_epsg(coll: Collection) -> None:
    head = coll.head(2, columns=["id", "fold"])
    assert head.column_names == ["id", "fold"] and head.column("id").to_pylist() == ["r0", "r1"]
    assert coll.to_table().num_rows == 3
    with pytest.raises(ValueError, match="n >= 0"):
        coll.head(-1)
    x0, y0, x1, y1 = coll.bounds
    expected = shapely.total_bounds(list(coll.geometries))
    np.testing.assert_allclose((x0, y0, x1, y1), expected)
    assert coll.epsg == [int(coll.crs[0].split(":")[1])]


def test_methods_take_geometries_and_bands_positionally(coll: Collection) -> None:
    c = coll.geometries[0].centroid
    aoi = (c.x - 2e-4, c.y - 2e-4, c.x + 2e-4, c.y + 2e-4)
    by_position = coll.get_numpy(aoi, ["B04"])
    by_keyword = coll.get_numpy(geometries=aoi, bands=["B04"])
    np.testing.assert_array_equal(by_position, by_keyword)
    points = pa.table({"geometry": shapely.to_wkb([shapely.Point(c.x, c.y)])})
    a = coll.sample_points(points, ["B04"], geometry_crs="OGC:CRS84")
    b = coll.sample_points(points=points, bands=["B04"], geometry_crs="OGC:CRS84")
    assert a.equals(b)


def test_unknown_band_is_a_value_error_as_in_rasteret(coll: Collection) -> None:
    with pytest.raises(ValueError, match="no band 'B99'"):
        coll.sources("B99")
    with pytest.raises(KeyError):
        coll.sources("B99")
    assert issubclass(BandNotFoundError, ValueError)


def test_where_batches_reader_and_constructors(coll: Collection, tmp_path) -> None:
    import pyarrow.dataset as ds

    cloudy = coll.where(ds.field("eo:cloud_cover") >= 20)
    expected = [i for i, c in zip(coll.ids, coll.table.column("eo:cloud_cover").to_pylist(),
                                  strict=True) if c >= 20]
    assert cloudy.ids == expected and isinstance(cloudy, Collection)
    batches = list(coll.to_batches(columns=["id"]))
    assert sum(b.num_rows for b in batches) == len(coll) and batches[0].schema.names == ["id"]
    assert coll.to_reader(columns=["id"]).read_all().column("id").to_pylist() == coll.ids
    again = Collection.from_arrow(coll.table)
    assert again.ids == coll.ids
    path = tmp_path / "c.parquet"
    coll.to_parquet(path)
    assert Collection.from_parquet(path, name="mine").name == "mine"


def test_export_writes_year_month_partitions_that_load_back(coll: Collection, tmp_path) -> None:
    from xarray_rasteret.collection import load

    out = tmp_path / "exported"
    coll.export(out)
    assert sorted(p.name for p in out.iterdir()) == ["year=2024"]
    back = load(out)
    assert sorted(back.ids) == sorted(coll.ids)
    with pytest.raises(ValueError, match=r"cannot partition by \['tile'\]: the collection has no"):
        coll.export(tmp_path / "other", partition_by=("tile",))


def test_footprints_and_native_res(coll: Collection) -> None:
    fp = coll.footprints()
    assert list(fp["id"]) == coll.ids and fp.crs.to_string() == "OGC:CRS84"
    assert fp.geometry.iloc[0].equals(coll.geometries[0])
    utm = coll.footprints(crs=32633)
    assert utm.crs.to_epsg() == 32633
    src = coll.sources(coll.bands[0])[0]
    assert coll.native_res() == (abs(src.transform.a), abs(src.transform.e))
