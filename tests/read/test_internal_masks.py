"""Internal TIFF masks (GDAL's per-dataset mask IFDs) against rasterio's ``read_masks``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import rasterio.warp
import xarray as xr
from rasterio.transform import from_origin

import xarray_rasteret as xrr
from servers import RangeHTTPServer
from xarray_rasteret.collection.schema import BAND_METADATA_TYPE
from xarray_rasteret.errors import MissingMetadataError

H, W = 300, 270


def write_masked(
    path: Path,
    *,
    tiled: bool = True,
    nodata: float | None = None,
    overviews: bool = True,
    dtype: str = "uint16",
    seed: int = 0,
    hole: tuple[slice, slice] = (slice(40, 120), slice(30, 200)),
    when: str = "2024:06:01 10:00:00",
) -> str:
    """A deflate GeoTIFF with an internal mask (0 in ``hole`` and a corner) written by GDAL."""
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 1000, (H, W)).astype(dtype)
    if nodata is not None:
        data[5:9, 5:200] = nodata  # nodata under a valid mask
    mask = np.full((H, W), 255, np.uint8)
    mask[hole] = 0
    mask[200:, :50] = 0
    profile: dict = dict(
        driver="GTiff", width=W, height=H, count=1, dtype=dtype, crs="EPSG:32633",
        transform=from_origin(500000, 4000000, 10, 10), compress="deflate", nodata=nodata,
    )  # fmt: skip
    if tiled:
        profile.update(tiled=True, blockxsize=64, blockysize=64)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(data, 1)
            ds.write_mask(mask)
            ds.update_tags(TIFFTAG_DATETIME=when)
        if overviews:
            with rasterio.open(path, "r+") as ds:
                ds.build_overviews([2, 4], rasterio.enums.Resampling.nearest)
    return str(path)


def expected(path: str, level: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """rasterio's values and where they are missing: mask 0, or nodata (as CF decoding)."""
    with rasterio.open(path, overview_level=None if level == 0 else level - 1) as src:
        values = src.read(1, masked=True)
        missing = src.read_masks(1) == 0
        assert np.array_equal(missing, np.ma.getmaskarray(values))
        if src.nodata is not None:
            missing |= values.data == src.nodata
    return values.data, missing


def assert_as_rasterio(got: np.ndarray, path: str, level: int = 0, window=np.s_[:, :]) -> None:
    data, missing = expected(path, level)
    data, missing = data[window], missing[window]
    assert missing.any() and (~missing).any()
    np.testing.assert_array_equal(np.isnan(got), missing)
    np.testing.assert_array_equal(got[~missing], data[~missing])


CASES = {
    "tiled": dict(),
    "tiled-nodata": dict(nodata=0),
    "float-nodata": dict(dtype="float32", nodata=-1.0),
    # A striped file's overviews are tiled, which the index cannot say yet: none here.
    "striped": dict(tiled=False, overviews=False),
}


@pytest.fixture(scope="module", params=list(CASES))
def masked_file(request, tmp_path_factory) -> tuple[str, xrr.Collection]:
    d = tmp_path_factory.mktemp(f"mask-{request.param}")
    path = write_masked(d / "a.tif", **CASES[request.param])
    return path, xrr.build([path], output=d / "a.parquet")


def _open(col, **kw) -> xr.Dataset:
    return xr.open_dataset(col, engine="rasteret", **kw)


def test_full_reads_and_overviews_mask_as_rasterio(masked_file) -> None:
    path, col = masked_file
    levels = len(col.sources("band_1")[0].levels)
    assert col.sources("band_1")[0].mask is not None
    for level in range(levels):
        got = _open(col, mask_and_scale=True, overview_level=level).band_1.values[0]
        assert got.dtype.kind == "f"
        assert_as_rasterio(got, path, level)


def test_windows_and_dask_chunks_mask_as_rasterio(masked_file) -> None:
    path, col = masked_file
    window = np.s_[30:250, 20:210]
    ds = _open(col, mask_and_scale=True)
    assert_as_rasterio(ds.band_1[0][window].values, path, window=window)
    chunked = _open(col, mask_and_scale=True, chunks={})
    assert chunked.band_1.chunks is not None
    assert_as_rasterio(chunked.band_1.values[0], path)
    assert_as_rasterio(chunked.band_1[0][window].values, path, window=window)


def test_without_mask_and_scale_values_are_raw(masked_file) -> None:
    path, col = masked_file
    got = _open(col, mask_and_scale=False).band_1.values[0]
    with rasterio.open(path) as src:
        raw = src.read(1)
    assert got.dtype == raw.dtype
    np.testing.assert_array_equal(got, raw)


class _RecordingServer(RangeHTTPServer):
    """Records the byte range of every request."""

    def __init__(self, directory) -> None:
        super().__init__(directory)
        self.ranges: list[tuple[int, int]] = []

    def admit(self, handler):
        spec = handler.headers.get("Range", "")
        if spec.startswith("bytes="):
            a, _, b = spec[6:].partition("-")
            with self.lock:
                self.ranges.append((int(a), int(b) + 1))
        return super().admit(handler)


def test_mask_tiles_are_fetched_only_with_mask_and_scale(tmp_path) -> None:
    path = write_masked(tmp_path / "a.tif", nodata=0)
    with _RecordingServer(tmp_path) as server:
        col = xrr.build([server.url("a.tif")])
        mask = col.sources("band_1")[0].mask
        assert mask is not None
        lv = mask.levels[0]
        tiles = [(o, o + c) for o, c in zip(lv.tile_offsets, lv.tile_byte_counts, strict=True)
                 if c]

        def mask_bytes() -> int:
            return sum(max(0, min(b, t1) - max(a, t0)) for a, b in server.ranges
                       for t0, t1 in tiles)

        server.ranges.clear()
        with xrr.track() as raw:
            _open(col, mask_and_scale=False).band_1.values
        assert server.ranges and mask_bytes() == 0
        server.ranges.clear()
        with xrr.track() as masked:
            got = _open(col, mask_and_scale=True).band_1.values[0]
        assert mask_bytes() == sum(t1 - t0 for t0, t1 in tiles)  # each mask tile, once
        assert masked.bytes > raw.bytes
    assert_as_rasterio(got, path)


def test_grouped_methods_skip_masked_pixels(tmp_path) -> None:
    # Two records of one day, masked in different places: a masked pixel of the
    # first must not hide the second's, nor count in a mean.
    a = write_masked(tmp_path / "a.tif", seed=1, hole=np.s_[40:120, 30:200])
    b = write_masked(tmp_path / "b.tif", seed=2, hole=np.s_[100:160, 0:120],
                     when="2024:06:01 10:00:01")
    col = xrr.build([a, b])
    (va, ma), (vb, mb) = expected(a), expected(b)
    fa, fb = np.where(ma, np.nan, va), np.where(mb, np.nan, vb)
    first = np.where(ma, fb, fa)
    count = (~ma).astype(int) + (~mb)
    with np.errstate(invalid="ignore"):
        mean = np.where(ma, 0, va).astype(float) + np.where(mb, 0, vb)
        mean = np.where(count > 0, mean / count, np.nan)
    assert (count == 0).any() and (count == 1).any()
    for chunks in (None, {}):
        got = _open(col, mask_and_scale=True, groupby="solar_day", chunks=chunks)
        np.testing.assert_array_equal(got.band_1.values[0], first)
        got = _open(col, mask_and_scale=True, groupby="solar_day", method="mean", chunks=chunks)
        np.testing.assert_allclose(got.band_1.values[0], mean)
    # Unmasked, the first record's stored values win everywhere.
    raw = _open(col, mask_and_scale=False, groupby="solar_day").band_1.values[0]
    np.testing.assert_array_equal(raw, va)


def test_a_target_grid_resamples_masked_pixels_as_missing(masked_file) -> None:
    path, col = masked_file
    # The same lattice (pasted), then one shifted by half a pixel (warped, nearest).
    same = _open(col, mask_and_scale=True, crs="EPSG:32633", resolution=10)
    assert_as_rasterio(same.band_1.values[0], path)
    # Shifted by 0.3 pixel (warped, nearest): missing where GDAL's warper puts the mask's
    # 0 or the nodata (it honours the mask only without nodata; we honour both).
    shifted = _open(col, mask_and_scale=True, crs="EPSG:32633", resolution=10, align=(3, 3))
    got = shifted.band_1.values[0]
    gt = [float(v) for v in shifted.spatial_ref.attrs["GeoTransform"].split()]
    exp, kept = np.full(got.shape, np.nan), np.zeros(got.shape, np.uint8)
    with rasterio.open(path) as src:
        for values, out, nodata in ((src.read(1), exp, src.nodata), (src.read_masks(1), kept, 0)):
            rasterio.warp.reproject(
                values, out, src_transform=src.transform, src_crs=src.crs, src_nodata=nodata,
                dst_transform=rasterio.Affine.from_gdal(*gt), dst_crs=src.crs,
                dst_nodata=np.nan if out is exp else 0,
                resampling=rasterio.enums.Resampling.nearest,
            )
        if src.nodata is not None:
            exp[exp == src.nodata] = np.nan
    exp[kept == 0] = np.nan
    assert np.isnan(exp).any() and (~np.isnan(exp)).any()
    np.testing.assert_array_equal(got, exp)
    with rasterio.open(path) as src:
        has_nodata = src.nodata is not None
    if not has_nodata:
        with rasterio.open(path) as src:  # without nodata: as the warper on the dataset
            direct = np.full(got.shape, np.nan)
            rasterio.warp.reproject(
                rasterio.band(src, 1), direct, dst_transform=rasterio.Affine.from_gdal(*gt),
                dst_crs=src.crs, dst_nodata=np.nan, resampling=rasterio.enums.Resampling.nearest,
            )
        np.testing.assert_array_equal(got, direct)


def test_an_index_without_mask_fields_reads_as_before(masked_file) -> None:
    path, col = masked_file
    md = col.table.column("band_1_metadata").combine_chunks()
    kept = [f for f in md.type if f.name != "mask"]
    old = pa.StructArray.from_arrays([md.field(f.name) for f in kept], fields=kept,
                                     mask=md.is_null())
    table = col.table.set_column(col.table.schema.get_field_index("band_1_metadata"),
                                 "band_1_metadata", old)
    legacy = xrr.Collection(table)
    assert legacy.sources("band_1")[0].mask is None
    with rasterio.open(path) as src:
        raw, nodata = src.read(1), src.nodata
    np.testing.assert_array_equal(_open(legacy).band_1.values[0], raw)
    got = _open(legacy, mask_and_scale=True).band_1.values[0]
    exp = raw.astype(got.dtype)
    if nodata is not None:
        exp[raw == nodata] = np.nan
    np.testing.assert_array_equal(got, exp)
    assert "mask" in BAND_METADATA_TYPE.names


def _tampered(col: xrr.Collection, edit) -> xrr.Collection:
    rows = col.table.column("band_1_metadata").to_pylist()
    edit(rows[0]["mask"]["levels"][0])
    column = pa.array(rows, col.table.schema.field("band_1_metadata").type)
    return xrr.Collection(col.table.set_column(
        col.table.schema.get_field_index("band_1_metadata"), "band_1_metadata", column))


EDITS = {
    "count": (lambda lv: lv.update(tile_offsets=[1, 2]), "internal mask: 2 tile_offsets but"),
    "size": (lambda lv: lv.update(image_height=100), " x 100 image in "),
    "none": (lambda lv: lv.update(tile_offsets=None, tile_byte_counts=None),
             "internal mask: 0 tile_offsets, but"),
    "negative": (lambda lv: lv["tile_offsets"].__setitem__(0, -5), "tile offset -5 is impossible"),
    "huge": (lambda lv: lv["tile_byte_counts"].__setitem__(0, 10**9), "far more than"),
    "past-end": (lambda lv: lv["tile_offsets"].__setitem__(0, 10**8), "past the file's"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_tampered_mask_is_refused_naming_record_band_and_href(masked_file, edit) -> None:
    _, col = masked_file
    change, problem = EDITS[edit]
    bad = _tampered(col, change)
    with pytest.raises(MissingMetadataError, match="record 'a' band 'band_1'") as info:
        bad.sources("band_1")
    assert problem in str(info.value)
    assert "a.tif" in str(info.value)


def test_a_mask_level_of_no_band_level_size_is_refused(masked_file) -> None:
    _, col = masked_file

    def shrink(lv: dict) -> None:
        # One row fewer, and a tile table that still fits it: only the size is wrong.
        lv["image_height"] -= lv["tile_height"] if lv["tile_height"] < lv["image_height"] else 0
        tiles = -(-lv["image_width"] // lv["tile_width"]) * -(-lv["image_height"] //
                                                             lv["tile_height"])
        lv["tile_offsets"], lv["tile_byte_counts"] = lv["tile_offsets"][:tiles], \
            lv["tile_byte_counts"][:tiles]

    with pytest.raises(MissingMetadataError, match="size of no level of the band"):
        _tampered(col, shrink).sources("band_1")


def test_an_undecodable_mask_encoding_is_refused(masked_file) -> None:
    _, col = masked_file
    rows = col.table.column("band_1_metadata").to_pylist()
    rows[0]["mask"]["bits_per_sample"] = 12
    column = pa.array(rows, col.table.schema.field("band_1_metadata").type)
    bad = xrr.Collection(col.table.set_column(
        col.table.schema.get_field_index("band_1_metadata"), "band_1_metadata", column))
    with pytest.raises(MissingMetadataError, match="internal mask has 12 bits per sample"):
        bad.sources("band_1")


def test_a_pickled_dataset_still_masks(masked_file) -> None:
    # dask distributed ships the arrays pickled, with lean sources (their masks too).
    import pickle

    path, col = masked_file
    ds = pickle.loads(pickle.dumps(_open(col, mask_and_scale=True, chunks={})))
    assert_as_rasterio(ds.band_1.values[0], path)
