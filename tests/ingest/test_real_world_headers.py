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
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin
from tiff_edit import add_to_first_ifd, edit_first_ifd

from xarray_rasteret.errors import UnsupportedTiffError
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
        ({}, {266: 2}, r"FillOrder 2 \(bits stored least significant first\)"),
        ({"nbits": 1, "compress": "ccittfax3"}, {292: 1}, r"Group 3 with T4Options 1 \(2-D"),
        ({"count": 4, "photometric": "CMYK"}, {332: 2}, r"InkSet 2 \(inks other than CMYK\)"),
        ({"count": 3, "photometric": "RGB"}, {262: 8}, r"CIELab photometric.*RGBA"),
        ({"dtype": "float64"}, {339: 5}, r"CInt32 samples \(SampleFormat 5\)"),
        ({"compress": "deflate", "predictor": 2}, {317: 9}, r"Predictor 9 is unknown"),
        ({}, {284: 3}, r"PlanarConfiguration 3 is invalid"),
    ],
    ids=["fill_order", "g3_2d", "inkset", "cielab", "cint32", "predictor", "planar"],
)
def test_refused_by_name(tmp_path: Path, options, tags, match) -> None:
    path = tmp_path / "odd.tif"
    _write(path, **options)
    add_to_first_ifd(path, shorts=tags)
    with pytest.raises(UnsupportedTiffError, match=r"odd\.tif: .*" + match):
        asyncio.run(read_sources_async(str(path)))


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
