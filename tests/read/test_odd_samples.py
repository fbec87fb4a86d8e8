"""Samples GDAL converts on read, compared with rasterio's read of the same file.

Each case is a small file written with rasterio: bit depths other than 8/16/32/64,
16-bit floats, complex samples, 8-bit CMYK, RGBA and CMYK JPEG, CCITT fax,
palette. The engine must return rasterio's pixels, dtype and shape (band count
included), or refuse by name what it does not convert.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin

from xarray_rasteret._read.decode import TileDecodeError, decode_tile
from xarray_rasteret._types import TileEncoding
from xarray_rasteret.errors import UnsupportedTiffError
from xarray_rasteret.ingest import build

H, W = 37, 45  # not multiples of the tile or of 8 pixels: edge tiles and row padding


def _write(path, data: np.ndarray, **options: Any) -> None:
    profile = {
        "driver": "GTiff", "width": data.shape[2], "height": data.shape[1],
        "count": data.shape[0], "dtype": options.pop("dtype", data.dtype),
        "transform": from_origin(500000, 4100000, 10, 10), "crs": "EPSG:32633",
    }  # fmt: skip
    with rasterio.open(path, "w", **profile, **options) as dst:
        dst.write(data)


def _ints(count: int, high: int, dtype: str, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, (count, H, W)).astype(dtype)


def _complex(count: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(1)
    re, im = (rng.integers(-3000, 3000, (count, H, W)) for _ in range(2))
    return (re + 1j * im).astype(dtype)


_TILED = {"tiled": True, "blockxsize": 16, "blockysize": 16}
CASES: dict[str, tuple[np.ndarray, dict[str, Any]]] = {
    "1bit_strips": (_ints(1, 2, "uint8"), {"nbits": 1}),
    "1bit_tiled_lzw": (_ints(1, 2, "uint8"), {"nbits": 1, "compress": "lzw", **_TILED}),
    "1bit_miniswhite": (_ints(1, 2, "uint8"), {"nbits": 1, "photometric": "MINISWHITE"}),
    "2bit_3samples_short_strips": (_ints(3, 4, "uint8"), {"nbits": 2, "blockysize": 5}),
    "4bit_planar_deflate": (
        _ints(3, 16, "uint8"), {"nbits": 4, "interleave": "band", "compress": "deflate"}
    ),
    "7bit": (_ints(1, 128, "uint8"), {"nbits": 7}),
    "12bit_big_endian": (_ints(2, 4096, "uint16"), {"nbits": 12, "endianness": "big"}),
    "12bit_tiled_zstd": (_ints(2, 4096, "uint16"), {"nbits": 12, "compress": "zstd", **_TILED}),
    "24bit": (_ints(2, 2**24, "uint32"), {"nbits": 24}),
    "24bit_big_endian": (_ints(2, 2**24, "uint32"), {"nbits": 24, "endianness": "big"}),
    "31bit_lzw": (_ints(1, 2**31, "uint32"), {"nbits": 31, "compress": "lzw"}),
    "half_float": (
        np.random.default_rng(2).normal(size=(2, H, W)).astype("float32"), {"nbits": 16}
    ),
    "half_float_be_predictor3": (
        np.random.default_rng(2).normal(size=(2, H, W)).astype("float32"),
        {"nbits": 16, "endianness": "big", "compress": "deflate", "predictor": 3},
    ),
    "half_float_predictor2": (
        np.random.default_rng(2).normal(size=(1, H, W)).astype("float32"),
        {"nbits": 16, "compress": "deflate", "predictor": 2},
    ),
    "cint16": (_complex(1, "complex64"), {"dtype": "complex_int16"}),
    "cint16_be_deflate": (
        _complex(2, "complex64"), {"dtype": "complex_int16", "endianness": "big",
                                   "compress": "deflate"}
    ),  # fmt: skip
    "cint16_planar_tiled": (
        _complex(2, "complex64"), {"dtype": "complex_int16", "interleave": "band", **_TILED}
    ),
    "cfloat32_be_lzw": (_complex(2, "complex64"), {"endianness": "big", "compress": "lzw"}),
    "cfloat64": (_complex(1, "complex128"), {}),
    "cmyk": (_ints(4, 256, "uint8"), {"photometric": "CMYK"}),
    "cmyk_tiled_predictor": (
        _ints(4, 256, "uint8"), {"photometric": "CMYK", "compress": "deflate", "predictor": 2,
                                 **_TILED}
    ),  # fmt: skip
    "cmyk_jpeg": (_ints(4, 256, "uint8"), {"photometric": "CMYK", "compress": "jpeg"}),
    "cmyk_5_samples_as_4_rgba": (_ints(5, 256, "uint8"), {"photometric": "CMYK"}),
    "cmyk_int8_tiled": (
        _ints(4, 127, "int8"), {"photometric": "CMYK", "compress": "lzw", **_TILED}
    ),
    "cmyk_planar": (_ints(4, 256, "uint8"), {"photometric": "CMYK", "interleave": "band"}),
    "cmyk_planar_tiled_deflate": (
        _ints(4, 256, "uint8"),
        {"photometric": "CMYK", "interleave": "band", "compress": "deflate", **_TILED},
    ),
    "cmyk_planar_int8_lzw_strips": (
        _ints(4, 127, "int8"),
        {"photometric": "CMYK", "interleave": "band", "compress": "lzw", "blockysize": 5},
    ),
    "cmyk_16bit_raw": (_ints(4, 65536, "uint16"), {"photometric": "CMYK"}),
    "rgba_jpeg": (_ints(4, 256, "uint8"), {"photometric": "RGB", "compress": "jpeg", **_TILED}),
    "ccitt_rle": (_ints(1, 2, "uint8"), {"nbits": 1, "compress": "ccittrle"}),
    "ccitt_g3": (_ints(1, 2, "uint8"), {"nbits": 1, "compress": "ccittfax3"}),
    "ccitt_g3_tiled_miniswhite": (
        _ints(1, 2, "uint8"),
        {"nbits": 1, "compress": "ccittfax3", "photometric": "MINISWHITE", **_TILED},
    ),
    "ccitt_g4": (_ints(1, 2, "uint8"), {"nbits": 1, "compress": "ccittfax4", "blockysize": 8}),
    "palette_4bit": (_ints(1, 16, "uint8"), {"nbits": 4, "photometric": "palette"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_rasterio(tmp_path, name: str) -> None:
    data, options = CASES[name]
    path = tmp_path / f"{name}.tif"
    _write(path, data, **dict(options))
    with rasterio.open(path) as src:
        expected = src.read()
    ds = xr.open_dataset(path, engine="rasteret")
    assert list(ds.data_vars) == [f"band_{i + 1}" for i in range(expected.shape[0])]
    got = np.stack([ds[f"band_{i + 1}"].values[0] for i in range(expected.shape[0])])
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    # A window inside one tile, off its origin, decodes the same.
    part = ds.band_1.isel(time=0, y=slice(3, 21), x=slice(9, 40)).values
    np.testing.assert_array_equal(part, expected[0, 3:21, 9:40])


def test_three_ink_separated_stays_raw(tmp_path) -> None:
    # libtiff's RGBA interface needs 4 inks: GDAL returns 3 raw samples, and so do we.
    data = _ints(3, 256, "uint8")
    path = tmp_path / "inks.tif"
    _write(path, data, photometric="CMYK")
    with rasterio.open(path) as src:
        expected = src.read()
    ds = xr.open_dataset(path, engine="rasteret")
    got = np.stack([ds[f"band_{i + 1}"].values[0] for i in range(3)])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, data)


@pytest.mark.filterwarnings("ignore:The specified chunks separate the stored chunks")
def test_planar_cmyk_windows_of_every_band(tmp_path) -> None:
    # Each RGBA band of a planar file is made of two stored planes (its ink and black):
    # windows across tile edges (dask chunks smaller than the image), on every band,
    # alpha included, equal rasterio's.
    data, options = CASES["cmyk_planar_tiled_deflate"]
    path = tmp_path / "cmykp.tif"
    _write(path, data, **dict(options))
    with rasterio.open(path) as src:
        expected = src.read()
    assert expected.shape[0] == 4 and (expected[3] == 255).all()
    ds = xr.open_dataset(path, engine="rasteret", chunks={"x": 32, "y": 16})
    for i in range(4):
        band = ds[f"band_{i + 1}"].isel(time=0)
        np.testing.assert_array_equal(band.values, expected[i])
        part = band.isel(y=slice(5, 30), x=slice(13, 44)).values
        np.testing.assert_array_equal(part, expected[i, 5:30, 13:44])


def test_planar_cmyk_of_5_samples_is_refused(tmp_path) -> None:
    # libtiff's RGBA interface reads planar CMYK of exactly 4 inks; GDAL fails on more.
    path = tmp_path / "cmyk5.tif"
    _write(path, _ints(5, 256, "uint8"), photometric="CMYK", interleave="band")
    with rasterio.open(path) as src, pytest.raises(rasterio.errors.RasterioIOError):
        src.read()
    with pytest.raises(UnsupportedTiffError, match=r"cmyk5\.tif.*planar 8-bit CMYK with 5"):
        xr.open_dataset(path, engine="rasteret")


@pytest.mark.parametrize(
    "name", ["12bit_big_endian", "cint16_be_deflate", "half_float", "cmyk_5_samples_as_4_rgba",
             "ccitt_g4", "24bit_big_endian", "cmyk_planar_int8_lzw_strips"],
)  # fmt: skip
def test_index_round_trip(tmp_path, name: str) -> None:
    # The index keeps what the decoder needs (dtype, byte order, bits, photometric).
    data, options = CASES[name]
    path = tmp_path / f"{name}.tif"
    _write(path, data, **dict(options))
    index = tmp_path / "index.parquet"
    build([str(path)]).to_parquet(index)
    with rasterio.open(path) as src:
        expected = src.read()
    ds = xr.open_dataset(index, engine="rasteret")
    got = np.stack([ds[f"band_{i + 1}"].values[0] for i in range(expected.shape[0])])
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        (TileEncoding(1, 1, "<u2", bits_per_sample=12), b"\x12\x34"),  # 2 of 12 bytes
        (TileEncoding(4, 1, "|u1", bits_per_sample=1), b"\0\0\0"),  # zeros: no G4 code
        (TileEncoding(1, 1, "<c8", bits_per_sample=32), b"\0" * 7),  # 7 of 16 bytes
    ],
    ids=["packed_short", "ccitt_garbage", "cint16_short"],
)
def test_bad_converted_tiles_raise(encoding: TileEncoding, data: bytes) -> None:
    with pytest.raises(TileDecodeError, match="corrupt or truncated"):
        decode_tile(data, encoding, 2, 4)
