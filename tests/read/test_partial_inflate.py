"""A read of the top rows of deflate tiles inflates only those rows, counted.

GDAL inflates every tile it touches whole; here a window in the top rows of
its tiles stops inflating just past its last row (``_read/_inflate.py``). The
decoders' output is counted in ``track()`` (``decoded_bytes`` against
``tile_bytes``), and the pixels equal rasterio's whatever was skipped.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin
from rasterio.windows import Window as RioWindow

import xarray_rasteret as xrr
from xarray_rasteret.ingest import build

SIDE, TILE = 2048, 1024


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    folder = tmp_path_factory.mktemp("partial")
    path = folder / "noise.tif"
    rng = np.random.default_rng(3)
    # Noise compresses little, so the inflate work tracks the pixels.
    data = rng.integers(0, 4000, (SIDE, SIDE)).astype("uint16")
    with rasterio.open(
        path, "w", driver="GTiff", width=SIDE, height=SIDE, count=1, dtype="uint16",
        tiled=True, blockxsize=TILE, blockysize=TILE, compress="deflate", predictor=2,
        transform=from_origin(500000, 4100000, 10, 10), crs="EPSG:32633", nodata=0,
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    out = folder / "coll.parquet"
    build([str(path)]).to_parquet(str(out))
    return str(out), str(path)


def _read(coll: str, rows: slice, cols: slice) -> tuple[np.ndarray, xrr.ReadStats]:
    ds = xr.open_dataset(coll, engine="rasteret", mask_and_scale=False)
    with xrr.track() as stats:
        got = ds["band_1"].isel(time=0, y=rows, x=cols).values
    return got, stats


def _rasterio(path: str, rows: slice, cols: slice) -> np.ndarray:
    with rasterio.open(path) as src:
        win = RioWindow(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        return src.read(1, window=win)


def test_top_rows_inflate_a_fraction_of_the_tiles(collection) -> None:
    coll, path = collection
    # 64 rows at the top of the two tiles of the first tile row.
    rows, cols = slice(0, 64), slice(512, 1536)
    got, stats = _read(coll, rows, cols)
    np.testing.assert_array_equal(got, _rasterio(path, rows, cols))
    assert stats.tiles_decoded == 2
    assert stats.tile_bytes == 2 * TILE * TILE * 2
    # 64 of 1024 rows plus the margin (66 KiB a tile): about 9% of the tiles' bytes.
    assert stats.decoded_bytes < 0.1 * stats.tile_bytes, stats


def test_half_a_tile_inflates_about_half(collection) -> None:
    coll, path = collection
    rows, cols = slice(1024 + 100, 1024 + 512), slice(1200, 1300)
    got, stats = _read(coll, rows, cols)
    np.testing.assert_array_equal(got, _rasterio(path, rows, cols))
    assert stats.tiles_decoded == 1
    assert 0.5 * stats.tile_bytes <= stats.decoded_bytes < 0.55 * stats.tile_bytes, stats


def test_bottom_rows_inflate_the_whole_tile(collection) -> None:
    coll, path = collection
    rows, cols = slice(1000, 1024), slice(0, 2048)
    got, stats = _read(coll, rows, cols)
    np.testing.assert_array_equal(got, _rasterio(path, rows, cols))
    assert stats.tiles_decoded == 2
    assert stats.decoded_bytes == stats.tile_bytes


def test_whole_image_equal_to_rasterio(collection) -> None:
    coll, path = collection
    rows, cols = slice(0, SIDE), slice(0, SIDE)
    got, stats = _read(coll, rows, cols)
    np.testing.assert_array_equal(got, _rasterio(path, rows, cols))
    assert (stats.tiles_decoded, stats.decoded_bytes) == (4, stats.tile_bytes)
