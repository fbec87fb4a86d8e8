"""Tile decoding against rasterio: every stored tile of every case, pixel for pixel."""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import rasterio
from cogs import CASES, Case, read_tile_bytes, tiff_structure, tile_windows, write_tiff
from rasterio.windows import Window as RioWindow

from xarray_rasteret._decode import TileDecodeError, check_supported, decode_tile
from xarray_rasteret._types import TileEncoding
from xarray_rasteret.errors import RasteretError, UnsupportedTiffError


def _rio_window(w):
    return RioWindow(w.col_start, w.row_start, w.width, w.height)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Write each case once per module run (several tests share the files)."""
    root = tmp_path_factory.mktemp("cases")
    cache: dict[str, Path] = {}

    def get(case: Case) -> Path:
        if case.name not in cache:
            path = root / f"{case.name}.tif"
            case.write(path)
            cache[case.name] = path
        return cache[case.name]

    return get


@pytest.mark.parametrize("case", CASES, ids=str)
def test_tiles_match_rasterio(case: Case, written) -> None:
    path = written(case)
    st = tiff_structure(path)
    enc = st.encoding
    check_supported(enc)
    with rasterio.open(path) as ds:
        for level, layout in enumerate(st.levels):
            if level == 0:
                src = ds
            else:
                factor = st.levels[0].width / layout.width
                src = None
                ov = rasterio.open(path, overview_level=level - 1)
                assert abs(ov.width - layout.width) == 0, factor
                src = ov
            for ref in tile_windows(layout, enc):
                raw = read_tile_bytes(path, layout, ref.index)
                got = decode_tile(raw, enc, ref.rows, ref.cols)
                samples = 1 if enc.planar else enc.samples_per_pixel
                assert got.shape == (ref.rows, ref.cols, samples)
                assert got.dtype == np.dtype(enc.dtype).newbyteorder("=")
                assert got.dtype.isnative
                bands = [ref.plane + 1] if enc.planar else list(range(1, samples + 1))
                want = src.read(bands, window=_rio_window(ref.window))  # (b, h, w)
                h, w = ref.window.shape
                np.testing.assert_array_equal(
                    np.moveaxis(got[:h, :w], -1, 0),
                    want,
                    err_msg=f"{case.name} level {level} tile {ref.index} {ref.window}",
                )
            if src is not ds:
                src.close()
