"""Tiles finished straight in the output: no copy from the scratch buffer.

A tile wholly inside an output as wide as it is decoded into the output; rows
of a horizontal-predictor tile that cross the output whole are inflated into
the scratch buffer and their predictor undone into the output
(``_read/jobs.direct_target``). Every other tile is pasted from the scratch
buffer. Whichever way, the pixels equal rasterio's.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window as RioWindow

from xarray_rasteret._read import jobs
from xarray_rasteret._read.fetch import read_into
from xarray_rasteret._read.tasks import ReadTask
from xarray_rasteret._sync import sync
from xarray_rasteret._types import Window
from xarray_rasteret.ingest import build

H, W, T = 700, 600, 256  # edge tiles on both axes


@pytest.fixture(
    scope="module",
    params=[("tiled", 2, "deflate"), ("striped", 2, "deflate"), ("tiled", 1, "deflate"),
            ("tiled", 2, "lzw")],
    ids=lambda p: "-".join(map(str, p)),
)  # fmt: skip
def source(request, tmp_path_factory):
    kind, predictor, compress = request.param
    path = tmp_path_factory.mktemp("into") / f"{kind}-{predictor}-{compress}.tif"
    rng = np.random.default_rng(5)
    data = rng.integers(0, 60000, (H, W)).astype("uint16")
    layout = (
        {"tiled": True, "blockxsize": T, "blockysize": T}
        if kind == "tiled"
        else {"tiled": False, "blockysize": 64}
    )
    with rasterio.open(
        path, "w", driver="GTiff", width=W, height=H, count=1, dtype="uint16",
        compress=compress, predictor=predictor, transform=from_origin(0, 0, 1, 1),
        crs="EPSG:32633",
        **layout,
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    (src,) = build([str(path)]).sources("band_1")
    return src, str(path)


def _read(src, window: Window, direct: list, monkeypatch) -> np.ndarray:
    """Read ``window``; list per tile "whole", "rows" or None (pasted from scratch)."""
    real = jobs.direct_target

    def spy(job):
        plan = real(job)
        direct.append(None if plan is None else "whole" if plan.whole else "rows")
        return plan

    monkeypatch.setattr("xarray_rasteret._read.fetch.direct_target", spy)
    shape = (window.row_stop - window.row_start, window.col_stop - window.col_start)
    out = np.empty(shape, np.dtype(src.encoding.dtype).newbyteorder("="))
    sync(read_into([ReadTask(src, 0, window, out, fill=0)]))
    return out


def _rasterio(path: str, w: Window) -> np.ndarray:
    with rasterio.open(path) as ds:
        width, height = w.col_stop - w.col_start, w.row_stop - w.row_start
        win = RioWindow(w.col_start, w.row_start, width, height)
        return ds.read(1, window=win, boundless=True, fill_value=0)


@pytest.mark.parametrize(
    "window",
    [
        Window(0, H, 0, T),  # one column of tiles (of strips: not as wide as the image)
        Window(0, H, 0, W),  # the whole image: strips as wide as it
        Window(200, 600, T, 2 * T),  # part of a tile column: its middle tile only
        Window(0, H, 2 * T, 3 * T),  # the edge column (only partly inside the image)
        Window(-10, H + 10, 0, T),  # a window past the image
        Window(10, 300, 5, 5 + T),  # as wide as a tile, not on its columns
    ],
)
def test_pixels_equal_rasterio_either_way(source, window, monkeypatch) -> None:
    src, path = source
    direct: list[int] = []
    got = _read(src, window, direct, monkeypatch)
    np.testing.assert_array_equal(got, _rasterio(path, window))
    assert direct, "no tile was decoded"


def test_which_tiles_are_finished_in_the_output(source, monkeypatch) -> None:
    src, path = source
    layout = src.levels[0]
    predicted = src.encoding.predictor == 2
    th = layout.tile_height
    ntiles = -(-H // th)
    # As wide as the tiles (tiled: one column; striped: the image): decoded into it,
    # except the last tile or strip, cut short by the image's bottom.
    window = Window(0, H, 0, T) if layout.tiled else Window(0, H, 0, W)
    direct: list = []
    _read(src, window, direct, monkeypatch)
    last = "rows" if predicted else None
    want = ["whole"] * (ntiles - 1) + ([last] if layout.tiled else ["whole"])
    assert sorted(direct, key=str) == sorted(want, key=str)  # tiles decode in any order
    # Wider than the tiles: the predictor undone into the output for the tiles
    # it takes whole across; the edge column (cut by the image) is pasted.
    direct.clear()
    _read(src, Window(0, H, 0, W), direct, monkeypatch)
    if layout.tiled:
        assert direct.count(None) == (ntiles if predicted else len(direct))
        assert direct.count("rows") == (len(direct) - ntiles if predicted else 0)
    # Narrower than the tiles: every tile pasted.
    direct.clear()
    _read(src, Window(0, H, 0, T // 2), direct, monkeypatch)
    assert not any(direct)


@pytest.mark.parametrize("dtype", ["uint16", "int32", "float64"])
def test_big_endian_predicted_tiles_finished_in_the_output(dtype, tmp_path, monkeypatch) -> None:
    # The bytes are swapped before the predictor is undone into the output.
    path = tmp_path / f"big-{dtype}.tif"
    rng = np.random.default_rng(7)
    data = (rng.normal(0, 2000, (H, W))).astype(dtype)
    with rasterio.open(
        path, "w", driver="GTiff", width=W, height=H, count=1, dtype=dtype, tiled=True,
        blockxsize=T, blockysize=T, compress="deflate", predictor=2, endianness="big",
        transform=from_origin(0, 0, 1, 1), crs="EPSG:32633",
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    (src,) = build([str(path)]).sources("band_1")
    assert not np.dtype(src.encoding.dtype).isnative
    direct: list = []
    window = Window(3, H - 5, 0, W)
    out = _read(src, window, direct, monkeypatch)
    np.testing.assert_array_equal(out, _rasterio(str(path), window))
    assert "rows" in direct


def test_finish_is_refused_where_it_cannot_apply() -> None:
    import zlib

    from xarray_rasteret._read.decode import decode_tile
    from xarray_rasteret._types import TileEncoding

    tile = np.arange(64 * 64, dtype="<u2").reshape(64, 64)
    stream = zlib.compress(tile.tobytes())
    target = np.empty((8, 64, 1), "uint16")
    plain = TileEncoding(compression=8, predictor=1, dtype="<u2")
    with pytest.raises(ValueError, match="finish= is for byte-stream codecs with the horizontal"):
        decode_tile(stream, plain, 64, 64, finish=(0, target))
    predicted = TileEncoding(compression=8, predictor=2, dtype="<u2")
    narrow = np.empty((8, 32, 1), "uint16")
    with pytest.raises(ValueError, match=r"finish target uint16 \(8, 32, 1\) does not fit"):
        decode_tile(stream, predicted, 64, 64, finish=(0, narrow))
