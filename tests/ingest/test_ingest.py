"""Header parsing and collection building, checked against rasterio (GDAL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import rasterio.shutil
import shapely
from affine import Affine
from pyproj import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds

import xarray_rasteret.ingest._header as header
from cogs import write_tiff
from xarray_rasteret.collection import load
from xarray_rasteret.errors import (
    NotATiffError,
    ObjectNotFoundError,
    RasteretError,
    TruncatedFileError,
    UnsupportedTiffError,
)
from xarray_rasteret.ingest import build
from xarray_rasteret.ingest._header import read_sources_async
from xarray_rasteret.storage import LocalStore

UTM = from_origin(500_000, 4_000_000, 10, 10)


def write_scaled_cog(path: Path) -> np.ndarray:
    """uint16 deflate predictor 2, 256x256, 128x128 tiles, overviews 2 and 4, scale/offset."""
    data = (np.arange(256 * 256, dtype="uint32") % 60000).astype("uint16").reshape(256, 256)
    src = str(path) + ".src.tif"
    profile = dict(
        driver="GTiff",
        width=256,
        height=256,
        count=1,
        dtype="uint16",
        crs="EPSG:32633",
        transform=UTM,
        nodata=0,
    )
    with rasterio.open(src, "w", **profile) as ds:
        ds.write(data, 1)
        ds.scales = (0.5,)
        ds.offsets = (1.0,)
    rasterio.shutil.copy(
        src, path, driver="COG", compress="DEFLATE", predictor=2, blocksize=128, overview_count=2
    )
    os.remove(src)
    return data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("corpus")
    files = {
        "cog": d / "cog.tif",
        "striped": d / "striped.tif",
        "rgb": d / "rgb.tif",
        "planar": d / "planar.tif",
        "big": d / "big.tif",
        "noref": d / "noref.tif",
        "mask": d / "mask.tif",
    }
    write_scaled_cog(files["cog"])
    kw: dict[str, Any] = dict(width=200, height=150)
    write_tiff(files["striped"], dtype="int16", compress="LZW", tiled=False, blockysize=16, **kw)
    write_tiff(
        files["rgb"],
        dtype="uint8",
        count=3,
        blockxsize=64,
        blockysize=64,
        photometric="RGB",
        compress="DEFLATE",
        **kw,
    )
    write_tiff(
        files["planar"],
        dtype="uint8",
        count=3,
        interleave="band",
        blockxsize=64,
        blockysize=64,
        compress="ZSTD",
        overviews=(2,),
        **kw,
    )
    write_tiff(
        files["big"],
        dtype="float32",
        endianness="BIG",
        nodata=float("nan"),
        compress="DEFLATE",
        predictor=3,
        blockxsize=64,
        blockysize=64,
        **kw,
    )
    write_tiff(files["noref"], dtype="uint8", crs=None, transform=None, **kw)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(
            files["mask"],
            "w",
            driver="GTiff",
            width=128,
            height=128,
            count=1,
            dtype="uint8",
            tiled=True,
            blockxsize=64,
            blockysize=64,
            crs="EPSG:4326",
            transform=from_origin(10, 50, 0.01, 0.01),
        ) as ds:
            ds.write(np.ones((128, 128), "uint8"), 1)
            ds.write_mask(np.ones((128, 128), bool))
    return {k: str(v) for k, v in files.items()}


def parse(href: str, **kw: Any) -> list[Any]:
    return asyncio.run(read_sources_async(href, **kw))


def block_offsets(path: str, bidx: int, ovr: int | None = None) -> tuple[list[int], list[int]]:
    """Tile offsets/byte counts in row-major order as GDAL reports them."""
    with rasterio.open(path) as ds:
        if ovr is None:
            h, w = ds.height, ds.width
        else:
            with rasterio.open(path, overview_level=ovr) as o:
                h, w = o.height, o.width
        bh, bw = ds.block_shapes[bidx - 1]
        if ovr is not None:
            bh, bw = min(bh, 128), min(bw, 128)
        offs, counts = [], []
        for y in range(math.ceil(h / bh)):
            for x in range(math.ceil(w / bw)):
                offs.append(int(ds.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx, ovr)))
                counts.append(int(ds.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx, ovr)))
    return offs, counts


class CountingStore:
    def __init__(self) -> None:
        self.inner = LocalStore()
        self.calls = 0

    async def get_range_async(self, path: str, **kw: Any) -> bytes:
        self.calls += 1
        return await self.inner.get_range_async(path, **kw)

    async def get_ranges_async(self, path: str, **kw: Any) -> list[bytes]:
        self.calls += len(kw["starts"])
        return await self.inner.get_ranges_async(path, **kw)


# --------------------------------------------------------------------------- one header


def test_cog_matches_rasterio(corpus: dict[str, str]) -> None:
    path = corpus["cog"]
    (src,) = parse(path)
    with rasterio.open(path) as ds:
        assert src.transform == ds.transform
        assert CRS.from_user_input(src.crs) == CRS.from_user_input(ds.crs.to_wkt())
        assert src.dtype == np.dtype(ds.dtypes[0])
        assert src.encoding.dtype == "<u2"
        assert src.encoding.compression == 8 and src.encoding.predictor == 2
        assert src.nodata == ds.nodata == 0
        assert (src.scale, src.offset) == (ds.scales[0], ds.offsets[0]) == (0.5, 1.0)
        assert src.size == os.path.getsize(path)
        factors = ds.overviews(1)
    assert factors == [2, 4]
    assert len(src.levels) == 3
    for i, level in enumerate(src.levels):
        with rasterio.open(path, overview_level=i - 1 if i else None) as o:
            assert (level.width, level.height) == (o.width, o.height)
            assert (level.tile_height, level.tile_width) == o.block_shapes[0] == (128, 128)
        offs, counts = block_offsets(path, 1, i - 1 if i else None)
        np.testing.assert_array_equal(level.tile_offsets, offs)
        np.testing.assert_array_equal(level.tile_byte_counts, counts)
        assert level.tile_offsets.dtype == np.int64 and level.tiled
    assert src.level_transform(1) == src.transform @ Affine.scale(2)


def test_cog_header_is_one_request(corpus: dict[str, str]) -> None:
    store = CountingStore()
    (src,) = parse(corpus["cog"], store=store)
    assert store.calls == 1
    assert src.extra["header_requests"] == 1


def test_striped(corpus: dict[str, str]) -> None:
    path = corpus["striped"]
    (src,) = parse(path)
    (level,) = src.levels
    assert not level.tiled
    assert (level.tile_width, level.tile_height) == (200, 16)
    assert level.tiles_down == 10 == len(level.tile_offsets)
    offs, counts = block_offsets(path, 1)
    np.testing.assert_array_equal(level.tile_offsets, offs)
    np.testing.assert_array_equal(level.tile_byte_counts, counts)
    assert src.encoding.dtype == "<i2" and src.encoding.compression == 5


def test_rgb_chunky(corpus: dict[str, str]) -> None:
    srcs = parse(corpus["rgb"])
    assert [s.band_index for s in srcs] == [0, 1, 2]
    enc = srcs[0].encoding
    assert (enc.samples_per_pixel, enc.planar, enc.photometric) == (3, False, 2)
    assert all(s.encoding is enc and s.levels is srcs[0].levels for s in srcs)
    offs, _ = block_offsets(corpus["rgb"], 2)
    np.testing.assert_array_equal(srcs[1].levels[0].tile_offsets, offs)


def test_planar(corpus: dict[str, str]) -> None:
    path = corpus["planar"]
    srcs = parse(path)
    assert len(srcs) == 3 and srcs[0].encoding.planar
    level = srcs[0].levels[0]
    per_plane = level.tiles_across * level.tiles_down
    assert len(level.tile_offsets) == 3 * per_plane
    for b in (1, 2, 3):
        offs, counts = block_offsets(path, b)
        np.testing.assert_array_equal(level.tile_offsets[(b - 1) * per_plane : b * per_plane], offs)
        np.testing.assert_array_equal(
            level.tile_byte_counts[(b - 1) * per_plane : b * per_plane], counts
        )
    assert len(srcs[0].levels) == 2
    assert len(srcs[0].levels[1].tile_offsets) == 3 * 4  # 100x75 in 64x64 tiles, 3 planes


def test_big_endian_float(corpus: dict[str, str]) -> None:
    (src,) = parse(corpus["big"])
    assert src.encoding.dtype == ">f4"
    assert src.dtype == np.dtype("float32")
    assert src.encoding.predictor == 3
    assert src.nodata is not None and math.isnan(src.nodata)


def test_not_georeferenced(corpus: dict[str, str]) -> None:
    (src,) = parse(corpus["noref"])
    assert src.crs is None
    assert src.transform == Affine.identity()


def test_mask_ifds_are_skipped(corpus: dict[str, str]) -> None:
    (src,) = parse(corpus["mask"])
    assert len(src.levels) == 1
    assert src.crs == "EPSG:4326"
    assert src.encoding.photometric == 1


def test_nodata_parsing() -> None:
    p = header._parse_nodata
    assert p("-9999") == -9999.0
    assert math.isnan(p("nan"))  # type: ignore[arg-type]
    assert p("-inf") == -math.inf
    assert p("1e+20\x00") == 1e20
    assert p("") is None and p(None) is None


def test_gdal_metadata_scale_offset() -> None:
    xml = (
        "<GDALMetadata>"
        '<Item name="SCALE" sample="1" role="scale">0.0001</Item>'
        '<Item name="OFFSET" sample="1" role="offset">-0.1</Item>'
        '<Item name="DESCRIPTION" sample="0" role="description">red</Item>'
        "</GDALMetadata>"
    )
    assert header._gdal_scale_offset(xml, 2) == ([1.0, 0.0001], [0.0, -0.1])
    assert header._gdal_scale_offset("<broken", 1) == ([1.0], [0.0])


# --------------------------------------------------------------------------- errors


def test_not_a_tiff(tmp_path: Path) -> None:
    bad = tmp_path / "page.tif"
    bad.write_bytes(b"<html>not found</html>" * 10)
    with pytest.raises(NotATiffError, match="page.tif"):
        parse(str(bad))
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    with pytest.raises(NotATiffError, match="empty.tif"):
        parse(str(empty))


def test_truncated_header(corpus: dict[str, str], tmp_path: Path) -> None:
    cut = tmp_path / "cut.tif"
    cut.write_bytes(Path(corpus["cog"]).read_bytes()[:300])
    with pytest.raises(TruncatedFileError, match="cut.tif"):
        parse(str(cut))


def test_truncated_tiles(corpus: dict[str, str], tmp_path: Path) -> None:
    data = Path(corpus["cog"]).read_bytes()
    cut = tmp_path / "short.tif"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(TruncatedFileError, match=r"short\.tif.*tile 3 of the full resolution"):
        parse(str(cut))


def test_unsupported_encoding_fails_at_build(tmp_path: Path) -> None:
    # Planar 8-bit CMYK of 5 inks: libtiff reads planar CMYK as RGBA only with 4 (GDAL fails too).
    path = tmp_path / "cmyk.tif"
    write_tiff(
        path, dtype="uint8", count=5, data=np.ones((5, 64, 64), "uint8"),
        photometric="CMYK", interleave="band",
    )  # fmt: skip
    with pytest.raises(UnsupportedTiffError, match=r"cmyk\.tif.*CMYK.*planar"):
        build([str(path)])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFoundError, match="nope.tif"):
        parse(str(tmp_path / "nope.tif"))


def test_build_names_the_failing_href(corpus: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"GIF89a" + b"\0" * 100)
    with pytest.raises(NotATiffError, match="bad.tif"):
        build([corpus["cog"], str(bad)])
    assert issubclass(NotATiffError, RasteretError)


# --------------------------------------------------------------------------- from paths


def test_build_from_paths(corpus: dict[str, str]) -> None:
    hrefs = [corpus["cog"], corpus["rgb"], corpus["striped"]]
    coll = build(hrefs, name="t")
    assert len(coll) == 3
    assert coll.ids == ["cog", "rgb", "striped"]
    assert coll.bands == ["band_1", "band_2", "band_3"]
    assert coll.table.column("datetime").null_count == 3
    srcs = coll.sources("band_1")
    assert [s.href for s in srcs] == hrefs
    assert all(s.crs == "EPSG:32633" for s in srcs)
    assert coll.table.column("proj:epsg").to_pylist() == [32633] * 3
    # The footprint is the raster outline in OGC:CRS84.
    for s, geom in zip(srcs, coll.geometries, strict=True):
        with rasterio.open(s.href) as ds:
            expect = transform_bounds(ds.crs, "OGC:CRS84", *ds.bounds, densify_pts=21)
        np.testing.assert_allclose(geom.bounds, expect, atol=1e-9)
    # Only the RGB file has three bands.
    with pytest.raises(Exception, match="record 'cog'.*band_2"):
        coll.sources("band_2")
    rgb = coll.filter(id="rgb")
    assert [s.band_index for b in ("band_1", "band_2", "band_3") for s in rgb.sources(b)] == [
        0,
        1,
        2,
    ]


def test_build_band_names_and_bands(corpus: dict[str, str]) -> None:
    coll = build([corpus["rgb"]], band_names=["red", "green", "blue"], bands=["red", "blue"])
    assert coll.bands == ["red", "blue"]
    assert coll.sources("blue")[0].band_index == 2
    with pytest.raises(ValueError, match="band_names has 2 names"):
        build([corpus["rgb"]], band_names=["a", "b"])
    with pytest.raises(ValueError, match="bands \\['nir'\\] not found"):
        build([corpus["rgb"]], bands=["nir"])


def test_build_grouped(corpus: dict[str, str], tmp_path: Path) -> None:
    hrefs = []
    for scene in ("S2A_T33TUL_20240101", "S2B_T33TUL_20240111"):
        for band in ("B04", "B08"):
            p = tmp_path / f"{scene}_{band}.tif"
            shutil.copy(corpus["cog"], p)
            hrefs.append(str(p))

    def group(href: str) -> tuple[str, str]:
        scene, band = os.path.basename(href)[:-4].rsplit("_", 1)
        return scene, band

    coll = build(hrefs, group_by=group, progress=True)
    assert coll.ids == ["S2A_T33TUL_20240101", "S2B_T33TUL_20240111"]
    assert coll.bands == ["B04", "B08"]
    assert coll.sources("B08")[1].href == hrefs[3]
    with pytest.raises(ValueError, match="twice"):
        build(hrefs, group_by=lambda h: ("one", "B04"))


# --------------------------------------------------------------------------- from STAC


def stac_item(item_id: str, when: str, assets: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[15, 36], [15.1, 36], [15.1, 36.1], [15, 36.1], [15, 36]]],
        },
        "bbox": [15, 36, 15.1, 36.1],
        "properties": {"datetime": when, **props},
        "links": [],
        "assets": assets,
        "collection": "demo",
    }


COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


@pytest.fixture
def stac_dir(corpus: dict[str, str], tmp_path: Path) -> Path:
    data = tmp_path / "catalog" / "data"
    data.mkdir(parents=True)
    shutil.copy(corpus["cog"], data / "a_red.tif")
    shutil.copy(corpus["striped"], data / "a_nir.tif")
    shutil.copy(corpus["rgb"], data / "a_visual.tif")
    (data / "thumb.png").write_bytes(b"\x89PNG")
    items = [
        stac_item(
            "item-a",
            "2024-01-05T10:00:00Z",
            {
                "red": {"href": "data/a_red.tif", "type": COG_TYPE, "roles": ["data"]},
                "nir": {
                    "href": "./data/a_nir.tif",
                    "type": COG_TYPE,
                    "roles": ["data"],
                    "raster:bands": [{"nodata": -1, "scale": 0.001, "offset": -0.1}],
                },
                "visual": {"href": "data/a_visual.tif", "type": COG_TYPE, "roles": ["visual"]},
                "thumbnail": {
                    "href": "data/thumb.png",
                    "type": "image/png",
                    "roles": ["thumbnail"],
                },
            },
            **{"eo:cloud_cover": 12.5, "platform": "sentinel-2a", "instruments": ["msi"]},
        ),
        stac_item(
            "item-b",
            "2024-02-05T10:00:00+01:00",
            {"red": {"href": "data/a_red.tif", "type": COG_TYPE}},
            **{"eo:cloud_cover": 80.0, "platform": "sentinel-2b"},
        ),
    ]
    (tmp_path / "catalog" / "items.json").write_text(
        json.dumps({"type": "FeatureCollection", "features": items})
    )
    for it in items:
        (tmp_path / "catalog" / f"{it['id']}.json").write_text(json.dumps(it))
    return tmp_path / "catalog"


def test_build_from_stac_feature_collection_file(stac_dir: Path) -> None:
    coll = build(str(stac_dir / "items.json"))
    assert coll.ids == ["item-a", "item-b"]
    assert coll.bands == ["red", "nir", "visual_1", "visual_2", "visual_3"]
    red = coll.sources("red")
    assert red[0].href == str(stac_dir / "data" / "a_red.tif")
    assert (red[0].scale, red[0].offset, red[0].nodata) == (0.5, 1.0, 0.0)  # from the file
    np.testing.assert_array_equal(
        coll.datetimes,
        np.array(["2024-01-05T10:00:00", "2024-02-05T09:00:00"], "datetime64[ns]"),
    )
    # Geometry comes from the item, not from the raster.
    assert coll.geometries[0].equals(shapely.box(15, 36, 15.1, 36.1))
    assert set(coll.user_columns()) == {"eo:cloud_cover", "platform", "collection"}
    assert coll.table.column("eo:cloud_cover").to_pylist() == [12.5, 80.0]
    # Item b has no nir: the record's band is null.
    with pytest.raises(Exception, match="record 'item-b'"):
        coll.sources("nir")
    nir = coll.filter(id="item-a").sources("nir")[0]
    # The file has no nodata/scale: STAC raster:bands fill them in.
    assert (nir.nodata, nir.scale, nir.offset) == (-1.0, 0.001, -0.1)


def test_stac_raster_bands_win_over_the_files_tags(stac_dir: Path) -> None:
    """As in odc-stac and stackstac: the item's nodata/scale/offset override the file's."""
    item = json.loads((stac_dir / "item-a.json").read_text())
    item["links"] = [{"rel": "self", "href": str(stac_dir / "item-a.json")}]
    item["assets"]["red"]["raster:bands"] = [{"nodata": 7, "scale": 1e-4, "offset": -0.1}]
    (red,) = build([item], bands=["red"]).sources("red")
    assert (red.nodata, red.scale, red.offset) == (7.0, 1e-4, -0.1)  # the file says 0, 0.5, 1.0
    plain = json.loads((stac_dir / "item-a.json").read_text())
    plain["links"] = item["links"]
    (kept,) = build([plain], bands=["red"]).sources("red")
    assert (kept.nodata, kept.scale, kept.offset) == (0.0, 0.5, 1.0)  # no raster:bands: the file


def test_build_from_stac_item_files_and_dicts(stac_dir: Path) -> None:
    files = [str(stac_dir / "item-a.json"), str(stac_dir / "item-b.json")]
    coll = build(files, bands=["red"])
    assert coll.bands == ["red"]
    assert coll.sources("red")[1].href == str(stac_dir / "data" / "a_red.tif")
    # In-memory dicts with absolute hrefs; a self link resolves relative ones.
    item = json.loads((stac_dir / "item-a.json").read_text())
    item["links"] = [{"rel": "self", "href": str(stac_dir / "item-a.json")}]
    coll2 = build([item], bands=["red", "nir"])
    assert coll2.sources("nir")[0].href == str(stac_dir / "data" / "a_nir.tif")
    fc = json.loads((stac_dir / "items.json").read_text())
    for it in fc["features"]:
        for a in it["assets"].values():
            a["href"] = str(stac_dir / a["href"])
    assert build(fc, bands=["red"]).ids == ["item-a", "item-b"]
    with pytest.raises(ValueError, match=r"bands \['B99'\] are in the assets of none"):
        build(fc, bands=["red", "B99"])


# --------------------------------------------------------------------------- from tables


def test_build_from_arrow_table_stac_geoparquet_layout(corpus: dict[str, str]) -> None:
    table = pa.table(
        {
            "id": ["r1", "r2"],
            "datetime": pa.array(
                [dt.datetime(2024, 3, 1, tzinfo=dt.UTC), dt.datetime(2024, 3, 2, tzinfo=dt.UTC)],
                pa.timestamp("us", tz="UTC"),
            ),
            "geometry": shapely.to_wkb([shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)]),
            "assets": [
                {"B04": {"href": corpus["cog"], "type": COG_TYPE}, "B08": None},
                {
                    "B04": {"href": corpus["cog"], "type": COG_TYPE},
                    "B08": {"href": corpus["striped"], "type": COG_TYPE},
                },
            ],
            "split": ["train", "val"],
            "stac_version": ["1.0.0", "1.0.0"],
        }
    )
    coll = build(table)
    assert coll.bands == ["B04", "B08"]
    assert coll.user_columns() == ["split"]
    assert coll.geometries[1].equals(shapely.box(1, 1, 2, 2))
    assert coll.sources("B04")[1].href == corpus["cog"]
    assert coll.filter(id="r2").sources("B08")[0].levels[0].tiled is False


def test_build_from_parquet_path_and_geodataframe(corpus: dict[str, str], tmp_path: Path) -> None:
    import geopandas as gpd
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": ["x"],
            "datetime": ["2024-05-01T12:00:00Z"],
            "assets": [{"img": {"href": corpus["cog"]}}],
            "label": [3],
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    coll = build(str(tmp_path / "t.parquet"))
    assert coll.bands == ["img"] and coll.user_columns() == ["label"]
    assert coll.datetimes[0] == np.datetime64("2024-05-01T12:00:00", "ns")
    assert coll.geometries[0] is not None  # computed from the raster

    gdf = gpd.GeoDataFrame(
        {"id": ["g"], "datetime": ["2024-05-01"], "assets": [{"img": {"href": corpus["cog"]}}]},
        geometry=[shapely.box(1_669_792, 4_300_621, 1_780_000, 4_400_000)],
        crs="EPSG:3857",
    )
    coll = build(gdf)
    x0, y0, x1, y1 = coll.geometries[0].bounds
    assert 14.9 < x0 < 15.1 and 35 < y0 < 37  # back in lon/lat
    assert coll.sources("img")[0].levels[0].width == 256


def test_build_rejects_unknown_sources() -> None:
    with pytest.raises(TypeError, match="build\\(\\) takes"):
        build(42)
    with pytest.raises(ValueError, match="empty"):
        build([])


# --------------------------------------------------------------------------- over HTTP


def test_build_over_http(corpus: dict[str, str], http_server: Any, tmp_path: Path) -> None:
    root = Path(http_server.root)
    for name in ("cog", "planar", "striped"):
        shutil.copy(corpus[name], root / f"{name}.tif")
    urls = [http_server.url(f"{n}.tif") for n in ("cog", "planar", "striped")]
    http_server.reset()
    coll = build(urls)
    # One ranged GET per file: the header, with size and ETag from its response.
    assert http_server.stats.requests == len(urls)  # header only; size and ETag ride along
    (src,) = coll.filter(id="cog").sources("band_1")
    local = parse(corpus["cog"])[0]
    assert src.href == urls[0] and src.size == local.size and src.etag
    np.testing.assert_array_equal(src.levels[2].tile_offsets, local.levels[2].tile_offsets)
    # The collection itself can be read back over HTTP.
    coll.to_parquet(root / "index.parquet")
    back = load(http_server.url("index.parquet"))
    assert back.ids == coll.ids and back.sources("band_1")[0].href == urls[0]
    assert back.sources("band_1")[0].etag == src.etag


def test_truncated_and_missing_over_http(corpus: dict[str, str], http_server: Any) -> None:
    root = Path(http_server.root)
    (root / "cut.tif").write_bytes(Path(corpus["cog"]).read_bytes()[:300])
    with pytest.raises(TruncatedFileError, match="cut.tif"):
        build([http_server.url("cut.tif")])
    with pytest.raises(ObjectNotFoundError, match="gone.tif"):
        build([http_server.url("gone.tif")])
