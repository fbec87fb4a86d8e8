"""Tile decoding against rasterio: every stored tile of every case, pixel for pixel."""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window as RioWindow

from cogs import CASES, Case, read_tile_bytes, tiff_structure, tile_windows, write_tiff
from xarray_rasteret._read.decode import TileDecodeError, check_supported, decode_tile
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
                got_bhw = np.moveaxis(got[:h, :w], -1, 0)
                msg = f"{case.name} level {level} tile {ref.index} {ref.window}"
                if case.max_abs_diff:
                    _assert_ycbcr_close(got_bhw, want, case.max_abs_diff, msg)
                else:
                    np.testing.assert_array_equal(got_bhw, want, err_msg=msg)
            if src is not ds:
                src.close()


def _assert_ycbcr_close(got: np.ndarray, want: np.ndarray, tol: int, msg: str) -> None:
    """YCbCr JPEG: both decode the same bytes, but not with the same libjpeg.

    The rasterio wheel links IJG libjpeg 9, whose "fancy" chroma upsampling of
    4:2:0 data is a DCT-domain scaling; imagecodecs links libjpeg-turbo, which
    upsamples with a triangle filter (as GDAL built on libjpeg-turbo does).
    Measured here: max |diff| 5-7, mean |diff| 0.32-0.36, unbiased (mean diff
    < 0.001), ~24% of samples differ. Gray and RGB JPEG (no chroma upsampling)
    match exactly.
    """
    diff = got.astype(np.int16) - want.astype(np.int16)
    assert np.abs(diff).max() <= tol, msg
    assert np.abs(diff).mean() < 0.6, msg
    assert abs(diff.mean()) < 0.05, msg


# --------------------------------------------------------------------------- unsupported


def _enc(**kw) -> TileEncoding:
    base = {"compression": 8, "predictor": 1, "dtype": "<u2"}
    return TileEncoding(**{**base, **kw})


@pytest.mark.parametrize(
    ("encoding", "words"),
    [
        (_enc(compression=4, dtype="<u2", bits_per_sample=1), ["CCITT Group 4 fax (4)", "1-bit"]),
        (_enc(compression=3, dtype="|u1", samples_per_pixel=3), ["CCITT", "gdal_translate"]),
        (_enc(compression=6, dtype="|u1"), ["old-style JPEG (6)", "not supported"]),
        (_enc(compression=50002, dtype="|u1"), ["JPEG XL (50002)"]),
        (_enc(compression=12345), ["unknown (12345)"]),
        (_enc(dtype="|i1", bits_per_sample=4), ["4-bit int8 samples", "unsigned"]),
        (_enc(dtype="<u2", bits_per_sample=4), ["4-bit samples declared as uint16"]),
        (_enc(dtype="<u2", bits_per_sample=12, predictor=2), ["predictor 2 on 12-bit"]),
        (_enc(compression=7, dtype="<u2", bits_per_sample=12), ["12-bit", "codec"]),
        (_enc(dtype="<f4", bits_per_sample=24), ["24-bit floating point"]),
        (_enc(dtype="<c8", bits_per_sample=32, predictor=2), ["predictor on complex"]),
        (
            _enc(dtype="|u1", samples_per_pixel=5, photometric=5, planar=True),
            ["planar 8-bit CMYK with 5 samples"],
        ),
        (
            _enc(compression=7, dtype="|u1", samples_per_pixel=5, photometric=5),
            ["CMYK JPEG with 5 samples"],
        ),
        (_enc(predictor=3, dtype="<i4"), ["floating-point predictor (3)", "int32"]),
        (_enc(predictor=7), ["predictor 7 is unknown"]),
        (_enc(compression=5, predictor=2, dtype="<c8"), ["predictor (2) on complex"]),
        (_enc(photometric=6, dtype="|u1", samples_per_pixel=3), ["YCbCr"]),
        (_enc(compression=7, dtype="<u2"), ["JPEG with uint16", "8-bit"]),
        (_enc(compression=7, dtype="|u1", samples_per_pixel=4, photometric=1), ["RGBA or CMYK"]),
        (_enc(compression=7, dtype="|u1", samples_per_pixel=5, photometric=2), ["5 samples"]),
        (_enc(compression=50001, dtype="|u1", samples_per_pixel=3, planar=True), ["WebP"]),
        (_enc(compression=34887, lerc_parameters=(4, 3)), ["LERC additional compression 3"]),
        (_enc(compression=34712, dtype="<f4"), ["JPEG 2000 with float32"]),
        (_enc(dtype="<U4"), ["sample type"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_check_supported_rejects(encoding: TileEncoding, words: list[str]) -> None:
    with pytest.raises(UnsupportedTiffError) as info:
        check_supported(encoding)
    text = str(info.value)
    for word in words:
        assert word in text
    assert f"compression {encoding.compression}" in text.replace("(", "").replace(")", "") or (
        f"({encoding.compression})" in text
    )
    assert isinstance(info.value, NotImplementedError)
    # decode_tile refuses too rather than guessing
    if encoding.compression not in (1, 5, 8, 34887, 34712, 7, 50001):
        with pytest.raises(UnsupportedTiffError):
            decode_tile(b"\0" * 64, encoding, 4, 4)


def test_missing_imagecodecs_codec(monkeypatch) -> None:
    monkeypatch.setattr(imagecodecs.LZMA, "available", False)
    with pytest.raises(UnsupportedTiffError, match=r"built without the LZMA codec.*LZMA \(34925\)"):
        check_supported(_enc(compression=34925))
    monkeypatch.setattr(imagecodecs.ZSTD, "available", False)
    with pytest.raises(UnsupportedTiffError, match="LERC\\+zstd"):
        check_supported(_enc(compression=34887, lerc_parameters=(4, 2)))


@pytest.mark.parametrize(
    ("compress", "options", "words"),
    [
        ("JPEG", {"NBITS": 12, "dtype": "uint16"}, ["12-bit", "JPEG (7)"]),
    ],
)
def test_unsupported_real_files(tmp_path, compress, options, words) -> None:
    # What GDAL reads but this package does not is refused by name (the rest of
    # the bit depths, CCITT and CMYK, planar too, are compared with rasterio in
    # test_odd_samples).
    path = tmp_path / "x.tif"
    count = 4 if "photometric" in options else 1
    options = {"dtype": "uint8", **options}
    data = (np.arange(count * 64 * 64).reshape(count, 64, 64) % 2).astype(options["dtype"])
    write_tiff(
        path, count=count, data=data, compress=compress, blockxsize=64, blockysize=64,
        width=64, height=64, **options,
    )  # fmt: skip
    with pytest.raises(UnsupportedTiffError) as info:
        check_supported(tiff_structure(path).encoding)
    for word in words:
        assert word in str(info.value)


def test_predictor_ignored_where_libtiff_ignores_it() -> None:
    # libtiff only applies Predictor to LZW, deflate, zstd and LZMA.
    raw = np.arange(12, dtype="<u2")
    got = decode_tile(raw.tobytes(), _enc(compression=1, predictor=2), 3, 4)
    np.testing.assert_array_equal(got[..., 0], raw.reshape(3, 4))
    got = decode_tile(
        imagecodecs.packbits_encode(raw.tobytes()), _enc(compression=32773, predictor=2), 3, 4
    )
    np.testing.assert_array_equal(got[..., 0], raw.reshape(3, 4))


# --------------------------------------------------------------------------- corrupt data


def _deflate_tile() -> tuple[np.ndarray, bytes]:
    data = np.arange(64 * 32, dtype="<u2").reshape(32, 64)
    return data, zlib.compress(data.tobytes())


@pytest.mark.parametrize(
    ("compression", "encode"),
    [
        (8, zlib.compress),
        (32946, zlib.compress),
        (5, imagecodecs.lzw_encode),
        (32773, imagecodecs.packbits_encode),
        (50000, imagecodecs.zstd_encode),
        (34925, imagecodecs.lzma_encode),
        (1, bytes),
    ],
)
def test_truncated_tile_raises(compression, encode) -> None:
    data = (np.arange(64 * 32) * 7919 % 65521).astype("<u2").reshape(32, 64)
    stream = encode(data.tobytes())
    enc = _enc(compression=compression)
    np.testing.assert_array_equal(decode_tile(stream, enc, 32, 64)[..., 0], data)
    with pytest.raises(TileDecodeError) as info:
        decode_tile(stream[: len(stream) // 2], enc, 32, 64)
    assert "32 x 64 x 1" in str(info.value)
    assert isinstance(info.value, RasteretError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "encoding",
    [
        _enc(compression=8),
        _enc(compression=50000),
        _enc(compression=32773),
        _enc(compression=7, dtype="|u1"),
        _enc(compression=50001, dtype="|u1", samples_per_pixel=3),
        _enc(compression=34887),
        _enc(compression=34887, lerc_parameters=(4, 1)),
        _enc(compression=34887, lerc_parameters=(4, 2)),
        _enc(compression=34712),
    ],
    ids=lambda e: str(e.compression) + (f"+{e.lerc_parameters[1]}" if e.lerc_parameters else ""),
)
def test_garbage_raises(encoding) -> None:
    garbage = np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8).tobytes()
    with pytest.raises(TileDecodeError, match="corrupt or truncated"):
        decode_tile(garbage, encoding, 32, 64)


def test_wrong_size_raises() -> None:
    data, stream = _deflate_tile()
    with pytest.raises(TileDecodeError, match="4096 bytes, 4224 are needed"):
        decode_tile(stream, _enc(), 33, 64)
    jpeg = imagecodecs.jpeg8_encode(np.zeros((32, 64), np.uint8))
    with pytest.raises(TileDecodeError, match=r"shape \(32, 64\)"):
        decode_tile(jpeg, _enc(compression=7, dtype="|u1"), 64, 64)


def test_excess_decompressed_bytes_ignored_like_libtiff() -> None:
    data, stream = _deflate_tile()
    got = decode_tile(stream, _enc(), 16, 64)  # the stream holds 32 rows
    np.testing.assert_array_equal(got[..., 0], data[:16])


# --------------------------------------------------------------------------- API details


def test_out_and_memoryview() -> None:
    data, stream = _deflate_tile()
    out = np.full((32, 64, 1), 7, np.uint16)
    res = decode_tile(memoryview(stream), _enc(predictor=1), 32, 64, out=out)
    assert res is out
    np.testing.assert_array_equal(out[..., 0], data)
    with pytest.raises(ValueError, match="C-contiguous"):
        decode_tile(stream, _enc(), 32, 64, out=np.empty((32, 64, 1), np.int16))
    with pytest.raises(ValueError, match="C-contiguous"):
        decode_tile(stream, _enc(), 32, 64, out=np.empty((32, 128, 1), np.uint16)[:, ::2])


def test_out_with_image_codec_and_predictors() -> None:
    rgb = (np.arange(32 * 64 * 3) % 251).astype(np.uint8).reshape(32, 64, 3)
    out = np.empty_like(rgb)
    enc = _enc(compression=50001, dtype="|u1", samples_per_pixel=3, photometric=2)
    res = decode_tile(imagecodecs.webp_encode(rgb, lossless=True), enc, 32, 64, out=out)
    assert res is out
    np.testing.assert_array_equal(out, rgb)


def test_result_is_writable_and_native() -> None:
    data = np.arange(12, dtype=">i2").reshape(3, 4)
    got = decode_tile(data.tobytes(), _enc(compression=1, dtype=">i2"), 3, 4)
    assert got.flags.writeable and got.dtype == np.dtype("int16") and got.dtype.isnative
    np.testing.assert_array_equal(got[..., 0], data)


@pytest.mark.parametrize(
    ("dtype", "samples"), [("uint8", 1), ("uint16", 1), ("uint8", 3), ("int16", 1)]
)
def test_jpeg2000(dtype, samples) -> None:
    # GDAL cannot read or write JPEG 2000 in TIFF (libtiff has no such codec), so
    # rasterio is no oracle: round-trip lossless JPEG 2000 tiles through imagecodecs.
    data = (
        np.moveaxis(
            np.stack([np.arange(48 * 80).reshape(48, 80) * (b + 1) for b in range(samples)]),
            0,
            -1,
        )
        % np.iinfo(dtype).max
    ).astype(dtype)
    stream = imagecodecs.jpeg2k_encode(data if samples > 1 else data[..., 0], level=0)
    enc = _enc(
        compression=34712,
        dtype=np.dtype(dtype).newbyteorder("<").str,
        samples_per_pixel=samples,
        photometric=2 if samples == 3 else 1,
    )
    check_supported(enc)
    np.testing.assert_array_equal(decode_tile(stream, enc, 48, 80), data.reshape(48, 80, samples))


def test_decode_in_threads(written) -> None:
    from concurrent.futures import ThreadPoolExecutor

    case = next(c for c in CASES if c.name == "deflate-p2-uint16")
    path = written(case)
    st = tiff_structure(path)
    refs = list(tile_windows(st.levels[0], st.encoding))
    raws = [read_tile_bytes(path, st.levels[0], r.index) for r in refs]
    serial = [decode_tile(b, st.encoding, r.rows, r.cols) for b, r in zip(raws, refs, strict=True)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(
            pool.map(
                lambda br: decode_tile(br[0], st.encoding, br[1].rows, br[1].cols),
                zip(raws * 4, refs * 4, strict=True),
            )
        )
    for a, b in zip(serial * 4, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


def test_check_supported_accepts_every_case(written) -> None:
    for case in CASES[:3]:
        check_supported(tiff_structure(written(case)).encoding)
    check_supported(replace(_enc(), compression=32946, predictor=2))


# --------------------------------------------------------------------------- partial decode


def _contents(rows: int, cols: int) -> dict[str, np.ndarray]:
    """Smooth, noisy (deflate stores it raw) and half-and-half uint16 tiles."""
    rng = np.random.default_rng(7)
    smooth = np.cumsum(rng.integers(-3, 4, (rows, cols)), axis=1) + 30000
    noise = rng.integers(0, 2**16, (rows, cols))
    mixed = np.where(np.arange(rows)[:, None] % 64 < 32, noise, 0)
    return {
        name: a.astype(np.uint16) for name, a in [("smooth", smooth), ("noise", noise),
                                                   ("mixed", mixed)]
    }


@pytest.mark.parametrize("encoder", ["zlib-1", "zlib-9", "libdeflate"])
@pytest.mark.parametrize("content", ["smooth", "noise", "mixed"])
@pytest.mark.parametrize(("dtype", "predictor"), [("<u2", 1), ("<u2", 2), (">u2", 2), ("<f4", 3)])
def test_rows_needed_decodes_exact_prefix(encoder, content, dtype, predictor) -> None:
    rows, cols = 512, 512
    values = _contents(rows, cols)[content]
    data = values.astype(dtype) if dtype != "<f4" else (values / 7).astype(dtype)
    enc = _enc(dtype=dtype, predictor=predictor)
    if predictor == 2:  # what the file stores: row differences in the file's byte order
        stored = np.diff(data.astype(data.dtype.newbyteorder("=")), axis=1, prepend=0)
        stored = stored.astype(data.dtype)
    elif predictor == 3:
        stored = np.frombuffer(imagecodecs.floatpred_encode(data, axis=1), data.dtype)
    else:
        stored = data
    raw = np.ascontiguousarray(stored).tobytes()
    stream = (
        imagecodecs.deflate_encode(raw)
        if encoder == "libdeflate"
        else zlib.compress(raw, int(encoder.split("-")[1]))
    )
    full = decode_tile(stream, enc, rows, cols)[..., 0]
    np.testing.assert_array_equal(full, data.astype(data.dtype.newbyteorder("=")))
    sentinel = np.array(12345, full.dtype)
    for k in (1, 17, 100, 255, 380, 511, 512):
        out = np.full((rows, cols, 1), sentinel)
        got = decode_tile(stream, enc, rows, cols, out=out, rows_needed=k)[..., 0]
        np.testing.assert_array_equal(got[:k], full[:k], err_msg=f"rows_needed={k}")
        if k <= 100:  # far from the end: the decoder stopped early
            assert (got[-1] == sentinel).all()


def test_rows_needed_keeps_errors() -> None:
    data = np.cumsum(np.ones((512, 512), np.uint16), axis=1, dtype=np.uint16)
    garbage = np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8).tobytes()
    with pytest.raises(TileDecodeError, match="corrupt or truncated"):
        decode_tile(garbage, _enc(), 512, 512, rows_needed=10)
    # A stream that ends before its tile does: reported when a needed row is missing
    # (those are the only rows whose pixels are returned; the others are unspecified).
    short = zlib.compress(data[:100].tobytes())
    with pytest.raises(TileDecodeError, match="are needed"):
        decode_tile(short, _enc(), 512, 512, rows_needed=200)
    np.testing.assert_array_equal(
        decode_tile(short, _enc(), 512, 512, rows_needed=10)[:10, :, 0], data[:10]
    )
    # Codecs other than deflate decode the whole tile.
    zstd = imagecodecs.zstd_encode(data.tobytes())
    got = decode_tile(zstd, _enc(compression=50000), 512, 512, rows_needed=10)
    np.testing.assert_array_equal(got[..., 0], data)
