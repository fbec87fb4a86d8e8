"""Headers other writers produce, compared with what rasterio (GDAL) makes of them.

Each test writes a small file with rasterio, then edits its first IFD the way
other software leaves files (tiff_edit): tile offsets in the strip tags,
defaulted tags missing, photometrics and options the header parser does not
know, nodata strings GDAL rounds or ignores. Each file is read as rasterio
reads it, or refused with an error naming the file and the problem.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pyproj
import pytest
import rasterio
import xarray as xr
from imagecodecs import bitorder_decode
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.transform import from_origin
from tiff_edit import add_to_first_ifd, edit_first_ifd

from xarray_rasteret.errors import UnsupportedTiffError
from xarray_rasteret.geo.footprint import FootprintWarning
from xarray_rasteret.ingest import build
from xarray_rasteret.ingest._header import read_sources_async

H, W = 40, 50


def _write(path: Path, count: int = 1, dtype: str = "uint8", **options) -> np.ndarray:
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "f":
        data = rng.normal(size=(count, H, W)).astype(dtype)
    else:
        data = rng.integers(0, 200, (count, H, W)).astype(dtype)
    profile = {
        "driver": "GTiff", "width": W, "height": H, "count": count, "dtype": dtype,
        "transform": from_origin(0, H, 1, 1), "crs": "EPSG:32633",
    }  # fmt: skip
    with rasterio.open(path, "w", **profile, **options) as dst:
        dst.write(data)
    return data


def _same_as_rasterio(path: Path) -> None:
    with rasterio.open(path) as src:
        expected = src.read()
    ds = xr.open_dataset(path, engine="rasteret")
    got = np.stack([ds[f"band_{i + 1}"].values[0] for i in range(expected.shape[0])])
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_tile_offsets_in_strip_tags(tmp_path: Path) -> None:
    path = tmp_path / "tiles_as_strips.tif"
    _write(path, tiled=True, blockxsize=16, blockysize=16)
    edit_first_ifd(path, renumber={324: 273, 325: 279})
    (src,) = asyncio.run(read_sources_async(str(path)))
    assert src.levels[0].tiled and len(src.levels[0].tile_offsets) == 4 * 3
    _same_as_rasterio(path)


@pytest.mark.parametrize(
    ("drop", "count", "options"),
    [
        ((277,), 1, {}),
        ((262,), 1, {}),
        ((277, 262), 1, {"tiled": True, "blockxsize": 16, "blockysize": 16}),
        ((262,), 3, {"photometric": "RGB", "compress": "jpeg"}),
    ],
    ids=["no_samples_per_pixel", "no_photometric", "neither_tiled", "no_photometric_jpeg"],
)
def test_missing_defaulted_tags(tmp_path: Path, drop, count, options) -> None:
    # async-tiff panics without them; libtiff defaults SamplesPerPixel to 1.
    path = tmp_path / "missing.tif"
    _write(path, count=count, **options)
    edit_first_ifd(path, drop=drop)
    _same_as_rasterio(path)


@pytest.mark.parametrize(
    ("value", "name"), [(32844, "LogL"), (32845, "LogLuv"), (9, "ICCLab"), (99, "unknown")]
)
def test_photometric_the_parser_does_not_know(tmp_path: Path, value: int, name: str) -> None:
    path = tmp_path / "photometric.tif"
    _write(path)
    edit_first_ifd(path, short={262: value})
    with pytest.raises(
        UnsupportedTiffError,
        match=rf"photometric\.tif: IFD 0 has PhotometricInterpretation {value} \({name}\)",
    ):
        asyncio.run(read_sources_async(str(path)))
    # Refused before async-tiff saw it: its runtime still works (a panic poisons it).
    ok = tmp_path / "ok.tif"
    _write(ok)
    _same_as_rasterio(ok)


@pytest.mark.parametrize(
    ("options", "tags", "match"),
    [
        ({}, {266: 3}, r"FillOrder 3 is not 1 or 2"),
        ({"nbits": 1, "compress": "ccittfax3"}, {292: 1}, r"Group 3 with T4Options 1 \(2-D"),
        ({"count": 4, "photometric": "CMYK"}, {332: 2}, r"InkSet 2 \(inks other than CMYK\)"),
        ({"count": 3, "photometric": "RGB"}, {262: 8}, r"CIELab photometric.*RGBA"),
        ({"dtype": "float64"}, {339: 5}, r"CInt32 samples \(SampleFormat 5\)"),
        ({"compress": "deflate", "predictor": 2}, {317: 9}, r"Predictor 9 is unknown"),
        ({}, {284: 3}, r"PlanarConfiguration 3 is invalid"),
    ],
    ids=["fill_order_3", "g3_2d", "inkset", "cielab", "cint32", "predictor", "planar"],
)
def test_refused_by_name(tmp_path: Path, options, tags, match) -> None:
    path = tmp_path / "odd.tif"
    _write(path, **options)
    add_to_first_ifd(path, shorts=tags)
    with pytest.raises(UnsupportedTiffError, match=r"odd\.tif: .*" + match):
        asyncio.run(read_sources_async(str(path)))


def _reverse_bits_of_tiles(path: Path) -> None:
    """Store every tile's bytes least significant bit first and say so (FillOrder 2)."""
    level = asyncio.run(read_sources_async(str(path)))[0].levels[0]
    buf = bytearray(path.read_bytes())
    for at, n in zip(level.tile_offsets.tolist(), level.tile_byte_counts.tolist(), strict=True):
        buf[at : at + n] = bitorder_decode(bytes(buf[at : at + n]))
    path.write_bytes(bytes(buf))
    add_to_first_ifd(path, shorts={266: 2})


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"compress": "lzw", "tiled": True, "blockxsize": 16, "blockysize": 16},
        {"count": 3, "dtype": "uint16", "compress": "deflate", "predictor": 2},
        {"nbits": 1, "compress": "ccittfax4"},
        {"nbits": 1, "compress": "ccittfax3"},
        {"nbits": 4},
    ],
    ids=["raw", "lzw_tiled", "deflate_predictor", "g4", "g3", "4bit"],
)
def test_fill_order_2_is_read_as_gdal(tmp_path: Path, options) -> None:
    # libtiff reverses the bits of each stored byte before decoding, whatever the codec.
    path = tmp_path / "lsb.tif"
    _write(path, **options)
    with rasterio.open(path) as ds:
        data = ds.read()  # GDAL clips the values to NBITS
    _reverse_bits_of_tiles(path)
    assert asyncio.run(read_sources_async(str(path)))[0].encoding.fill_order == 2
    with rasterio.open(path) as ds:  # the oracle reads the reversed file as written
        np.testing.assert_array_equal(ds.read(), data)
    _same_as_rasterio(path)


def test_fill_order_2_through_an_index(tmp_path: Path) -> None:
    path = tmp_path / "lsb.tif"
    _write(path, nbits=1, compress="ccittfax4")
    _reverse_bits_of_tiles(path)
    index = tmp_path / "index.parquet"
    build([str(path)], output=str(index))
    table = pq.read_table(index)
    field = next(c for c in table.column_names if c.endswith("_metadata"))
    assert table.column(field).combine_chunks().field("fill_order").to_pylist() == [2]
    with rasterio.open(path) as ds:
        expected = ds.read(1)
    got = xr.open_dataset(index, engine="rasteret")
    values = got[next(iter(got.data_vars))].values[0]
    assert values.dtype == expected.dtype
    np.testing.assert_array_equal(values, expected)


def test_g3_fill_bits_option_is_read(tmp_path: Path) -> None:
    # T4Options 4 (fill bits before EOL codes) changes nothing for a 1-D decoder.
    path = tmp_path / "g3.tif"
    _write(path, nbits=1, compress="ccittfax3")
    with rasterio.open(path) as src:
        before = src.read()
    add_to_first_ifd(path, longs={292: 4})
    _same_as_rasterio(path)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), before)


@pytest.mark.parametrize(
    "text",
    ["-3.39999999999999996e+38", "-3.4028235e+38", "-3.4028236e+38", "1e39", "0.1", "-9999"],
)
def test_float32_nodata_is_rounded_as_gdal(tmp_path: Path, text: str) -> None:
    # The pixels hold float32 values; the tag holds a decimal of another double,
    # which GDAL rounds to float32 (overflowing to an infinity) before comparing.
    path = tmp_path / "nodata.tif"
    data = _write(path, dtype="float32")
    with np.errstate(over="ignore"):
        data[0, :4] = np.float32(float(text))
    with rasterio.open(path, "r+") as dst:
        dst.write(data)
    add_to_first_ifd(path, ascii={42113: text})
    (src,) = asyncio.run(read_sources_async(str(path)))
    with rasterio.open(path) as rio:
        assert src.nodata == rio.nodata
        rio_masked = rio.read_masks(1) == 0
    assert rio_masked.sum() == 4 * W
    ds = xr.open_dataset(path, engine="rasteret", mask_and_scale=True)
    np.testing.assert_array_equal(np.isnan(ds.band_1.values[0]), rio_masked)


@pytest.mark.parametrize("text", ["-10000", "nan", "300", "1e300", "inf", "-0.5", "255.5"])
def test_nodata_the_dtype_cannot_hold_is_ignored(tmp_path: Path, text: str) -> None:
    path = tmp_path / "nodata.tif"
    _write(path)
    add_to_first_ifd(path, ascii={42113: text})
    (src,) = asyncio.run(read_sources_async(str(path)))
    assert src.nodata is None
    with rasterio.open(path) as rio:
        assert (rio.read_masks(1) == 255).all()  # GDAL masks nothing either
    ds = xr.open_dataset(path, engine="rasteret", mask_and_scale=True)
    assert not np.isnan(ds.band_1.values).any()


def test_samples_of_different_bit_depths_are_refused(tmp_path: Path) -> None:
    # RGB565-like (BitsPerSample 5, 6, 5): one dtype cannot hold the image as stored.
    path = tmp_path / "rgb565.tif"
    _write(path, count=3, photometric="RGB")
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    at = struct.unpack_from("<I", buf, 4)[0]
    n = struct.unpack_from("<H", buf, at)[0]
    for k in range(n):
        tag, _, count, value = struct.unpack_from("<HHII", buf, at + 2 + 12 * k)
        if tag == 258:
            assert count == 3
            struct.pack_into("<HHH", buf, value, 5, 6, 5)
    path.write_bytes(bytes(buf))
    with pytest.raises(UnsupportedTiffError, match=r"rgb565\.tif: .*BitsPerSample \[5, 6, 5\]"):
        asyncio.run(read_sources_async(str(path)))


@pytest.mark.parametrize(
    ("dtype", "text"), [("uint8", "254.5"), ("int16", "-1.5"), ("int16", "1.9")]
)
def test_integer_nodata_is_truncated_as_gdal(tmp_path: Path, dtype: str, text: str) -> None:
    # GDAL casts a fractional nodata to the band's type before comparing.
    path = tmp_path / "nodata.tif"
    data = _write(path, dtype=dtype)
    data[0, :3] = int(float(text))
    with rasterio.open(path, "r+") as dst:
        dst.write(data)
    add_to_first_ifd(path, ascii={42113: text})
    (src,) = asyncio.run(read_sources_async(str(path)))
    assert src.nodata == int(float(text))
    with rasterio.open(path) as rio:
        rio_masked = rio.read_masks(1) == 0
    assert rio_masked[:3].all()
    ds = xr.open_dataset(path, engine="rasteret", mask_and_scale=True)
    np.testing.assert_array_equal(np.isnan(ds.band_1.values[0]), rio_masked)


@pytest.mark.parametrize("epsg", [4269, 32633])
def test_geokeys_without_transform_keep_the_crs(tmp_path: Path, epsg: int) -> None:
    # GDAL keeps the GeoKeys' CRS with an identity transform (pixel-index coordinates);
    # that outline is no place in the CRS, so the index gets no footprint.
    path = tmp_path / "no_transform.tif"
    data = np.arange(H * W, dtype="uint8").reshape(1, H, W)
    profile = {"driver": "GTiff", "width": W, "height": H, "count": 1, "dtype": "uint8"}
    with rasterio.open(path, "w", **profile, crs=f"EPSG:{epsg}") as dst:
        dst.write(data)
    with rasterio.open(path) as src:
        crs, transform, expected = src.crs, src.transform, src.read()
    assert transform.is_identity and crs.to_epsg() == epsg  # no transform tags, CRS kept
    index = tmp_path / "index.parquet"
    with pytest.warns(FootprintWarning, match=r"no_transform\.tif: the GeoKeys give a CRS"):
        build([str(path)], output=str(index))
    table = pq.read_table(index)
    assert table.column("geometry").to_pylist() == [None]
    assert table.column("bbox").to_pylist() == [None]
    ds = xr.open_dataset(index, engine="rasteret")
    assert pyproj.CRS(ds.spatial_ref.attrs["crs_wkt"]) == pyproj.CRS(crs.to_wkt())
    np.testing.assert_array_equal(ds.x.values, np.arange(W) + 0.5)
    np.testing.assert_array_equal(ds.y.values, np.arange(H) + 0.5)
    values = ds[next(iter(ds.data_vars))].values
    assert values.dtype == expected.dtype and values.shape == expected.shape
    np.testing.assert_array_equal(values, expected)


def test_gcps_keep_no_crs(tmp_path: Path) -> None:
    # Tiepoints without a pixel scale are GCPs: GDAL gives the GeoKeys' CRS to them,
    # not to the dataset, whose CRS is then none (and so is ours).
    path = tmp_path / "gcps.tif"
    gcps = [
        GroundControlPoint(row=r, col=c, x=10 + c / 100, y=50 - r / 100)
        for r, c in ((0, 0), (0, W), (H, 0), (H, W))
    ]
    profile = {"driver": "GTiff", "width": W, "height": H, "count": 1, "dtype": "uint8"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.gcps = (gcps, CRS.from_epsg(4326))
        dst.write(np.ones((1, H, W), "uint8"))
    with rasterio.open(path) as src:
        assert src.crs is None and len(src.gcps[0]) == 4
    (source,) = asyncio.run(read_sources_async(str(path)))
    assert source.crs is None and source.transform.is_identity
    assert "no_transform" not in source.extra
