"""YCbCr outside JPEG (uncompressed, LZW, deflate), read as GDAL reads it: RGB.

GDAL cannot write these (it allows YCbCr only with JPEG), so each file is written
here, tag by tag, from random stored bytes: blocks of ``h x v`` luma samples then
Cb and Cr. rasterio (libtiff's RGBA path) is the oracle for pixels, dtype, shape.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
import xarray as xr

from xarray_rasteret._read.decode import check_supported
from xarray_rasteret._types import TileEncoding
from xarray_rasteret.errors import UnsupportedTiffError
from xarray_rasteret.ingest import build

H, W = 37, 45  # odd: partial blocks at the right and bottom edges, a short last strip


def _rationals(values: tuple[float, ...]) -> bytes:
    return b"".join(struct.pack("<II", round(v * 10000), 10000) for v in values)


def _write_ycbcr(
    path: Path,
    sub: tuple[int, int],
    compression: int = 1,
    rows_per_strip: int = 8,
    luma: tuple[float, ...] | None = None,
    black_white: tuple[float, ...] | None = None,
    seed: int = 0,
) -> None:
    """A little-endian striped 8-bit YCbCr TIFF of random stored samples."""
    h, v = sub
    rng = np.random.default_rng(seed)
    strips = []
    for top in range(0, H, rows_per_strip):
        rows = min(rows_per_strip, H - top)
        n = -(-rows // v) * -(-W // h) * (h * v + 2)
        raw = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        strips.append({1: raw, 5: imagecodecs.lzw_encode(raw), 8: zlib.compress(raw)}[compression])
    # The IFD first, then the strips, then the tag values that do not fit an entry.
    n_tags = 11 + (luma is not None) + (black_white is not None)
    data_at = 8 + 2 + 12 * n_tags + 4
    offsets = []
    for strip in strips:
        offsets.append(data_at)
        data_at += len(strip)
    # (tag, type, values): 3 SHORT, 4 LONG, 5 RATIONAL.
    entries: list[tuple[int, int, Any]] = [
        (256, 3, [W]), (257, 3, [H]), (258, 3, [8, 8, 8]), (259, 3, [compression]),
        (262, 3, [6]), (273, 4, offsets), (277, 3, [3]), (278, 3, [rows_per_strip]),
        (279, 4, [len(s) for s in strips]), (284, 3, [1]), (530, 3, [h, v]),
    ]  # fmt: skip
    if luma is not None:
        entries.append((529, 5, luma))
    if black_white is not None:
        entries.append((532, 5, black_white))
    entries.sort()
    ifd = bytearray(struct.pack("<H", len(entries)))
    tail = bytearray()
    for tag, typ, values in entries:
        if typ == 5:
            blob = _rationals(tuple(values))
        else:
            blob = b"".join(struct.pack("<H" if typ == 3 else "<I", x) for x in values)
        if len(blob) <= 4:
            ifd += struct.pack("<HHI", tag, typ, len(values)) + blob.ljust(4, b"\0")
        else:
            ifd += struct.pack("<HHII", tag, typ, len(values), data_at + len(tail))
            tail += blob
    ifd += b"\0\0\0\0"
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + bytes(ifd) + b"".join(strips) + tail)


def _same_as_rasterio(path: Path) -> xr.Dataset:
    with rasterio.open(path) as src:
        expected = src.read()
        assert src.tags(ns="IMAGE_STRUCTURE").get("SOURCE_COLOR_SPACE") == "YCbCr"
    with pytest.warns(UserWarning, match="no georeferencing"):  # (a TIFF, not a GeoTIFF)
        ds = xr.open_dataset(path, engine="rasteret")
    got = np.stack([ds[f"band_{i + 1}"].values[0] for i in range(expected.shape[0])])
    assert len(ds.data_vars) == 3 and got.dtype == expected.dtype == np.uint8
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    return ds


@pytest.mark.parametrize(
    ("sub", "compression", "luma", "black_white"),
    [
        ((2, 2), 5, None, None),
        ((2, 1), 1, None, None),
        ((1, 1), 8, None, None),
        ((4, 2), 5, (0.2126, 0.7152, 0.0722), (16.0, 235.0, 128.0, 240.0, 128.0, 240.0)),
        ((4, 4), 1, (0.299, 0.587, 0.114), (0.0, 255.0, 128.0, 255.0, 128.0, 255.0)),
    ],
    ids=["2x2_lzw", "2x1_raw", "1x1_deflate", "4x2_lzw_bt709_studio", "4x4_raw_tags_given"],
)
def test_ycbcr_reads_as_gdal(tmp_path: Path, sub, compression, luma, black_white) -> None:
    path = tmp_path / "ycbcr.tif"
    _write_ycbcr(path, sub, compression, luma=luma, black_white=black_white)
    _same_as_rasterio(path)


def test_ycbcr_through_an_index(tmp_path: Path) -> None:
    path = tmp_path / "ycbcr.tif"
    _write_ycbcr(path, (2, 2), 5, rows_per_strip=6, luma=(0.2989, 0.587, 0.114))
    index = tmp_path / "index.parquet"
    build([str(path)], output=str(index))
    table = pq.read_table(index)
    field = next(c for c in table.column_names if c.endswith("_metadata"))
    (stored,) = table.column(field).combine_chunks().field("ycbcr").to_pylist()
    assert stored[:2] == [2.0, 2.0] and stored[5:] == [0.0, 255.0, 128.0, 255.0, 128.0, 255.0]
    assert stored[2] == float(np.float32(0.2989))
    with rasterio.open(path) as src:
        expected = src.read()
    with pytest.warns(UserWarning, match="no georeferencing"):
        ds = xr.open_dataset(index, engine="rasteret")
    got = np.stack([ds[b].values[0] for b in ds.data_vars])
    np.testing.assert_array_equal(got, expected)


def test_ycbcr_without_its_tags_is_refused() -> None:
    # An index that lost the ycbcr field cannot say how to convert: refuse by name.
    enc = TileEncoding(compression=5, predictor=1, dtype="|u1", samples_per_pixel=3, photometric=6)
    with pytest.raises(UnsupportedTiffError, match="YCbCr without its YCbCrSubSampling"):
        check_supported(enc)
    with pytest.raises(UnsupportedTiffError, match="a predictor on YCbCr samples"):
        check_supported(
            TileEncoding(5, 2, "|u1", 3, photometric=6, ycbcr=(2, 2, 0.299, 0.587, 0.114,
                                                                0, 255, 128, 255, 128, 255))
        )  # fmt: skip
