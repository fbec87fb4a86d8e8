"""The GeoParquet collection: schema, round trips, readers, filters, rasteret 0.4 tables."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely
from affine import Affine

import xarray_rasteret.collection.sources as sources
from cogs import write_tiff
from xarray_rasteret._types import RasterSource
from xarray_rasteret.collection import BAND_METADATA_TYPE, Collection, load, make_table
from xarray_rasteret.errors import BandNotFoundError, MissingMetadataError, ObjectNotFoundError
from xarray_rasteret.ingest import build


def assert_sources_equal(a: RasterSource, b: RasterSource) -> None:
    assert (a.href, a.crs, a.band_index, a.size, a.etag) == (
        b.href,
        b.crs,
        b.band_index,
        b.size,
        b.etag,
    )
    assert a.transform.almost_equals(b.transform)
    assert a.encoding == b.encoding
    for x in ("nodata", "scale", "offset"):
        va, vb = getattr(a, x), getattr(b, x)
        assert va == vb or (va is not None and vb is not None and math.isnan(va) and math.isnan(vb))
    assert len(a.levels) == len(b.levels)
    for la, lb in zip(a.levels, b.levels, strict=True):
        assert (la.width, la.height, la.tile_width, la.tile_height, la.tiled) == (
            lb.width,
            lb.height,
            lb.tile_width,
            lb.tile_height,
            lb.tiled,
        )
        np.testing.assert_array_equal(la.tile_offsets, lb.tile_offsets)
        np.testing.assert_array_equal(la.tile_byte_counts, lb.tile_byte_counts)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("coll")
    out = {}
    kw: dict[str, Any] = dict(width=256, height=256, blockxsize=128, blockysize=128)
    out["a"] = d / "a.tif"
    write_tiff(
        out["a"], dtype="uint16", compress="DEFLATE", predictor=2, nodata=0, overviews=(2, 4), **kw
    )
    out["b"] = d / "b.tif"  # same grid, other place (EPSG:32634)
    write_tiff(
        out["b"],
        dtype="uint16",
        compress="DEFLATE",
        predictor=2,
        nodata=0,
        crs="EPSG:32634",
        overviews=(2,),
        **kw,
    )
    out["planar"] = d / "planar.tif"
    write_tiff(out["planar"], dtype="uint8", count=3, interleave="band", compress="ZSTD", **kw)
    out["big"] = d / "big.tif"
    write_tiff(out["big"], dtype="float32", endianness="BIG", nodata=float("nan"), **kw)
    out["striped"] = d / "striped.tif"
    write_tiff(out["striped"], dtype="int16", tiled=False, blockysize=32, width=100, height=90)
    return {k: str(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def coll(files: dict[str, str]) -> Collection:
    """Four records over three months with user columns, built from a table."""
    when = [dt.datetime(2024, m, 15, tzinfo=dt.UTC) for m in (1, 2, 3)] + [
        dt.datetime(2024, 3, 31, 23, 0, tzinfo=dt.UTC)
    ]
    table = pa.table(
        {
            "id": ["a", "b", "planar", "big"],
            "datetime": pa.array(when, pa.timestamp("us", tz="UTC")),
            "assets": [
                {"img": {"href": files[k], "band_index": 1 if k == "planar" else None}}
                for k in ("a", "b", "planar", "big")
            ],
            "split": ["train", "train", "val", "test"],
            "cloud_cover": [5.0, 50.0, 15.0, None],
        }
    )
    return build(table, bands=["img"], name="four")


# --------------------------------------------------------------------------- round trip


def test_roundtrip_parquet(files: dict[str, str], tmp_path: Path) -> None:
    c = build([files[k] for k in ("a", "b", "planar", "big", "striped")])
    path = tmp_path / "c.parquet"
    c.to_parquet(path)
    back = load(path)
    assert back.ids == c.ids and back.bands == c.bands == ["band_1", "band_2", "band_3"]
    for a, b in zip(c.sources("band_1"), back.sources("band_1"), strict=True):
        assert_sources_equal(a, b)
    plan = back.filter(id="planar")
    for a, b in zip(c.filter(id="planar").sources("band_3"), plan.sources("band_3"), strict=True):
        assert_sources_equal(a, b)
    assert plan.sources("band_3")[0].band_index == 2
    big = back.filter(id="big").sources("band_1")[0]
    assert big.encoding.dtype == ">f4" and math.isnan(big.nodata)  # type: ignore[arg-type]
    a = back.sources("band_1")[0]
    assert [lv.width for lv in a.levels] == [256, 128, 64]
    assert back.crs == ["EPSG:32633", "EPSG:32634", "EPSG:32633", "EPSG:32633", "EPSG:32633"]


def test_load_reads_only_the_bands_asked_for(files: dict[str, str], tmp_path: Path) -> None:
    c = build([files[k] for k in ("a", "b", "planar")])
    path = tmp_path / "c.parquet"
    c.to_parquet(path)
    one = load(path, bands=["band_3"])
    assert one.bands == ["band_3"]
    assert [n for n in one.table.column_names if n.endswith("_metadata")] == ["band_3_metadata"]
    assert one.ids == c.ids and one.crs == c.crs
    (want,) = c.filter(id="planar").sources("band_3")
    (got,) = one.filter(id="planar").sources("band_3")
    assert_sources_equal(want, got)
    # An unknown band reads every band, so its error lists them all.
    every = load(path, bands=["band_3", "nir"])
    assert every.bands == c.bands
    with pytest.raises(BandNotFoundError, match=r"'nir'.*\['band_1', 'band_2', 'band_3'\]"):
        every.sources("nir")


def test_geopandas_reads_it(coll: Collection, tmp_path: Path) -> None:
    import geopandas as gpd

    path = tmp_path / "c.parquet"
    coll.to_parquet(path)
    gdf = gpd.read_parquet(path)
    assert gdf.crs.equals("OGC:CRS84")
    assert list(gdf["id"]) == coll.ids
    for g, h in zip(gdf.geometry, coll.geometries, strict=True):
        assert g.equals(h)
    geo = json.loads(pq.read_schema(path).metadata[b"geo"])
    col = geo["columns"]["geometry"]
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    assert col["encoding"] == "WKB" and col["geometry_types"] == ["Polygon"]
    assert col["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    assert col["bbox"][0] <= col["bbox"][2]


def test_duckdb_reads_it(coll: Collection, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "c.parquet"
    coll.to_parquet(path, compact_tiles=False)  # the offsets themselves, for other tools
    rows = duckdb.sql(
        f"SELECT id, img_metadata.image_width AS w, len(img_metadata.tile_offsets) AS n, "
        f"assets.img.href AS href, bbox.xmin < bbox.xmax AS ok "
        f"FROM read_parquet('{path}') WHERE split = 'train' ORDER BY id"
    ).fetchall()
    assert rows == [
        ("a", 256, 4, coll.sources("img")[0].href, True),
        ("b", 256, 4, coll.sources("img")[1].href, True),
    ]


# --------------------------------------------------------------------------- views


def test_views(coll: Collection) -> None:
    assert len(coll) == 4
    assert coll.bands == ["img"]
    assert coll.user_columns() == ["split", "cloud_cover"]
    assert coll.datetimes.dtype == np.dtype("datetime64[ns]")
    assert coll.datetimes[0] == np.datetime64("2024-01-15T00:00:00", "ns")
    assert coll.crs[1] == "EPSG:32634"
    text = repr(coll)
    assert "4 records" in text and "img" in text and "EPSG:32634 (1)" in text
    assert "2024-01-15" in text and "'four'" in text


# --------------------------------------------------------------------------- filters


def test_filter_time(coll: Collection) -> None:
    assert coll.filter(time=("2024-02-01", "2024-03-15")).ids == ["b", "planar"]
    # A date-only end includes its whole day / month.
    assert coll.filter(time=("2024-03-31", "2024-03-31")).ids == ["big"]
    assert coll.filter(time="2024-03").ids == ["planar", "big"]
    assert coll.filter(time=(dt.datetime(2024, 1, 15), None)).ids == ["a", "b", "planar", "big"]
    aware = dt.datetime(2024, 2, 15, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert coll.filter(time=(aware, aware)).ids == ["b"]
    assert coll.filter(datetime=("2024-02-01", "2024-03-15")).ids == ["b", "planar"]


def test_filter_bbox(coll: Collection) -> None:
    a = coll.geometries[0]
    x, y = a.centroid.x, a.centroid.y
    assert coll.filter(bbox=(x - 0.001, y - 0.001, x + 0.001, y + 0.001)).ids == [
        "a",
        "planar",
        "big",
    ]
    assert coll.filter(bbox=(0, 0, 1, 1)).ids == []
    src = coll.sources("img")[1]  # b is in UTM 34N
    t = src.transform
    cx, cy = t.c + 128 * t.a, t.f + 128 * t.e
    near_b = coll.filter(bbox=(cx - 10, cy - 10, cx + 10, cy + 10), bbox_crs="EPSG:32634")
    assert near_b.ids == ["b"]


def test_filter_columns(coll: Collection) -> None:
    assert coll.filter(split="train").ids == ["a", "b"]
    assert coll.filter(split=["val", "test"]).ids == ["planar", "big"]
    assert coll.filter(cloud_cover_lt=20).ids == ["a", "planar"]
    assert coll.filter(cloud_cover_ge=15, split="train").ids == ["b"]
    assert coll.filter(id="b").sources("img")[0].crs == "EPSG:32634"
    assert coll.filter(**{"proj:epsg": 32634}).ids == ["b"]
    with pytest.raises(ValueError, match=r"unknown column 'cloudcover_lt'.*cloud_cover"):
        coll.filter(cloudcover_lt=3)


# --------------------------------------------------------------------------- errors


def test_unknown_band(coll: Collection) -> None:
    with pytest.raises(BandNotFoundError, match=r"no band 'B04'.*\['img'\]"):
        coll.sources("B04")
    with pytest.raises(KeyError):
        coll.sources("B04")


def test_missing_metadata(coll: Collection) -> None:
    stripped = Collection(coll.table.drop_columns(["img_metadata"]))
    assert stripped.bands == ["img"]
    with pytest.raises(MissingMetadataError, match=r"record 'a'.*xarray_rasteret.build"):
        stripped.sources("img")
    t = coll.table
    i = t.column_names.index("img_metadata")
    md = t.column(i).combine_chunks()
    nulled = pa.array([None if k == 2 else md[k].as_py() for k in range(len(md))], md.type)
    broken = Collection(t.set_column(i, "img_metadata", nulled))
    with pytest.raises(MissingMetadataError, match=r"record 'planar'.*'img_metadata'"):
        broken.sources("img")
    # Rebuilding from the broken table fixes it.
    assert len(build(broken.table).sources("img")) == 4


def test_map_assets_and_string_hrefs(coll: Collection) -> None:
    t = coll.table
    hrefs = [s.href for s in coll.sources("img")]
    as_map = pa.array(
        [[("img", {"href": h})] for h in hrefs],
        pa.map_(pa.string(), pa.struct([("href", pa.string())])),
    )
    c = Collection(t.set_column(t.column_names.index("assets"), "assets", as_map))
    assert [s.href for s in c.sources("img")] == hrefs
    as_str = pa.StructArray.from_arrays([pa.array(hrefs)], names=["img"])
    c = Collection(t.set_column(t.column_names.index("assets"), "assets", as_str))
    assert [s.href for s in c.sources("img")] == hrefs


# --------------------------------------------------------------------------- rasteret 0.4


RASTERET_STRUCT = pa.struct(
    [
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("tile_width", pa.int32()),
        ("tile_height", pa.int32()),
        ("dtype", pa.string()),
        ("transform", pa.list_(pa.float64())),
        ("predictor", pa.int32()),
        ("compression", pa.int32()),
        ("tile_offsets", pa.list_(pa.int64())),
        ("tile_byte_counts", pa.list_(pa.int64())),
        ("pixel_scale", pa.list_(pa.float64())),
        ("tiepoint", pa.list_(pa.float64())),
        ("nodata", pa.float64()),
        ("samples_per_pixel", pa.int32()),
        ("planar_configuration", pa.int32()),
        ("photometric", pa.int32()),
        ("extra_samples", pa.list_(pa.int32())),
    ]
)


def rasteret_metadata(src: RasterSource, band_index: int) -> dict[str, Any]:
    """What rasteret 0.4 writes for one band: 4-value transform, dtype name, own plane only."""
    lv, t = src.levels[0], src.transform
    offs, counts = lv.tile_offsets, lv.tile_byte_counts
    if src.encoding.planar:
        n = lv.tiles_across * lv.tiles_down
        offs = offs[band_index * n : (band_index + 1) * n]
        counts = counts[band_index * n : (band_index + 1) * n]
    return {
        "image_width": lv.width,
        "image_height": lv.height,
        "tile_width": lv.tile_width,
        "tile_height": lv.tile_height,
        "dtype": np.dtype(src.encoding.dtype).name,
        "transform": [t.a, t.c, t.e, t.f],
        "predictor": src.encoding.predictor,
        "compression": src.encoding.compression,
        "tile_offsets": offs.tolist(),
        "tile_byte_counts": counts.tolist(),
        "pixel_scale": [t.a, -t.e, 0.0],
        "tiepoint": [0.0, 0.0, 0.0, t.c, t.f, 0.0],
        "nodata": src.nodata,
        "samples_per_pixel": src.encoding.samples_per_pixel,
        "planar_configuration": 2 if src.encoding.planar else 1,
        "photometric": src.encoding.photometric,
        "extra_samples": None,
    }


def test_rasteret_04_table_loads(files: dict[str, str], tmp_path: Path) -> None:
    ours = build([files["a"], files["planar"]])
    a = ours.sources("band_1")[0]
    green = ours.filter(id="planar").sources("band_2")[0]
    table = pa.table(
        {
            "id": ["scene-1"],
            "datetime": pa.array([dt.datetime(2024, 1, 3, 10, 30)], pa.timestamp("us")),
            "geometry": shapely.to_wkb([ours.geometries[0]]),
            "assets": pa.array(
                [
                    {
                        "B04": {"href": files["a"], "type": "image/tiff", "roles": ["data"]},
                        "green": {
                            "href": files["planar"],
                            "type": "image/tiff",
                            "roles": None,
                            "band_index": 1,
                        },
                    }
                ]
            ),
            "bbox": pa.array(
                [
                    dict(
                        zip(
                            ("xmin", "ymin", "xmax", "ymax"), ours.geometries[0].bounds, strict=True
                        )
                    )
                ]
            ),
            "proj:epsg": pa.array([32633], pa.int32()),
            "crs": ["EPSG:32633"],
            "eo:cloud_cover": [3.5],
            "B04_metadata": pa.array([rasteret_metadata(a, 0)], RASTERET_STRUCT),
            "green_metadata": pa.array([rasteret_metadata(green, 1)], RASTERET_STRUCT),
        }
    )
    # rasteret writes hive partitions by year and month.
    part = tmp_path / "coll" / "year=2024" / "month=1"
    part.mkdir(parents=True)
    pq.write_table(table, part / "part-0.parquet")
    coll = load(tmp_path / "coll")
    assert coll.ids == ["scene-1"] and coll.bands == ["B04", "green"]
    assert coll.datetimes[0] == np.datetime64("2024-01-03T10:30:00", "ns")  # naive = UTC
    assert "eo:cloud_cover" in coll.user_columns() and "year" in coll.user_columns()
    (b04,) = coll.sources("B04")
    assert b04.transform == a.transform and b04.crs == "EPSG:32633"
    assert b04.encoding == a.encoding and b04.nodata == 0.0
    assert len(b04.levels) == 1  # rasteret keeps no overviews
    np.testing.assert_array_equal(b04.levels[0].tile_offsets, a.levels[0].tile_offsets)
    (g,) = coll.sources("green")
    assert g.band_index == 1 and g.encoding == green.encoding
    n = g.levels[0].tiles_across * g.levels[0].tiles_down
    # The band's own plane sits where the read path looks for it.
    np.testing.assert_array_equal(
        g.levels[0].tile_offsets[n : 2 * n], green.levels[0].tile_offsets[n : 2 * n]
    )
    assert not g.levels[0].tile_offsets[:n].any()
    assert coll.filter(time=("2024-01-03", "2024-01-03")).ids == ["scene-1"]
    only = load(tmp_path / "coll", bands=["green"])
    assert only.bands == ["green"] and "year" in only.user_columns()
    assert only.sources("green")[0].encoding == green.encoding


def test_transform_variants() -> None:
    f = sources.transform_from
    assert f(np.array([10.0, 0, 5e5, 0, -10, 4e6]), None, None) == Affine(10, 0, 5e5, 0, -10, 4e6)
    assert f(np.array([10.0, 5e5, -10, 4e6]), None, None) == Affine(10, 0, 5e5, 0, -10, 4e6)
    tie = np.array([0.0, 0, 0, 5e5, 4e6, 0])
    assert f(np.zeros(0), np.array([10.0, 10, 0]), tie) == Affine(10, 0, 5e5, 0, -10, 4e6)
    assert f(np.zeros(0), None, None) is None


# --------------------------------------------------------------------------- speed


def test_sources_for_10k_rows_is_fast(files: dict[str, str]) -> None:
    one = build([files["a"]]).sources("band_1")[0]
    n = 10_000
    t0 = time.perf_counter()
    table = make_table(
        ids=[f"r{i}" for i in range(n)],
        datetimes=[None] * n,
        geometries=[shapely.box(0, 0, 1, 1)] * n,
        crs=["EPSG:32633"] * n,
        assets={"img": [(one.href, 0)] * n},
        sources={"img": [one] * n},
    )
    t_encode = time.perf_counter() - t0
    assert table.schema.field("img_metadata").type == BAND_METADATA_TYPE
    c = Collection(table)
    t0 = time.perf_counter()
    srcs = c.sources("img")
    t_decode = time.perf_counter() - t0
    assert len(srcs) == n
    assert_sources_equal(srcs[-1], one)
    print(f"\n10k rows: encode {t_encode * 1e3:.0f} ms, sources() {t_decode * 1e3:.0f} ms")
    assert t_decode < 2.0 and t_encode < 5.0


def test_load_of_a_missing_path_says_to_build_first(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.parquet")
    with pytest.raises(ObjectNotFoundError, match=r"no collection at '.*nope.parquet': no such "
                                                  r"file or folder. Build one first, e\.g\. "
                                                  r"xarray_rasteret\.build\(items\)"):
        load(missing)
