"""Every decode is bounded by the tile's size: bombs and lying headers fail fast and small."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import imagecodecs
import numpy as np
import pytest

from xarray_rasteret._read.decode import check_supported, decode_tile
from xarray_rasteret._types import TileEncoding
from xarray_rasteret.errors import TileDecodeError, UnsupportedTiffError

_MB = 2**20


@contextmanager
def bounded(seconds: float = 1.0, nbytes: int = 100 * _MB) -> Iterator[None]:
    """Assert the block runs within ``seconds`` and allocates (traced) under ``nbytes``."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < seconds and peak < nbytes, (elapsed, peak)


def _zeros_deflate(total: int) -> bytes:
    """A zlib stream of ``total`` zero bytes (a multiple of 1 MiB), built without them."""
    chunk = bytes(_MB)
    comp = zlib.compressobj(9)
    # After the first block, a block of zeros is all back-references: the same bytes.
    head = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    body = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush()
    checksum = 1
    for _ in range(total // _MB):
        checksum = zlib.adler32(chunk, checksum)
    return head + body * (total // _MB - 1) + tail[:-4] + struct.pack(">I", checksum)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = _zeros_deflate(4 * 2**30)
    assert len(data) < 20 * _MB  # 4 GiB of zeros in a few MB
    return data


@pytest.mark.parametrize("compression", [8, 32946])
@pytest.mark.parametrize("rows_needed", [None, 16])
def test_deflate_bomb_stops_at_the_tile(bomb: bytes, compression: int, rows_needed: int) -> None:
    enc = TileEncoding(compression=compression, predictor=1, dtype="<u2")
    with bounded():
        tile = decode_tile(bomb, enc, 256, 256, rows_needed=rows_needed)
    # libtiff ignores what follows the tile: its pixels are the stream's first bytes.
    assert tile.shape == (256, 256, 1) and not tile[: rows_needed or 256].any()


def test_zstd_and_packbits_overruns_are_refused() -> None:
    long = bytes(64 * _MB)
    # PackBits: header -127 repeats the next byte 128 times.
    cases = [(50000, imagecodecs.zstd_encode(long)), (32773, b"\x81\x00" * (len(long) // 128))]
    for compression, data in cases:
        enc = TileEncoding(compression=compression, predictor=1, dtype="|u1")
        with bounded(), pytest.raises(TileDecodeError, match="decompresses to more than"):
            decode_tile(data, enc, 16, 16)


def _patched(data: bytes, at: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, *values)
    return bytes(out)


def _jpeg_huge() -> bytes:
    data = bytes(imagecodecs.jpeg8_encode(np.zeros((64, 64), np.uint8)))
    sof = data.index(b"\xff\xc0")
    return _patched(data, sof + 5, ">HH", 65000, 65000)


def _lerc_huge() -> bytes:
    data = bytes(imagecodecs.lerc_encode(np.zeros((64, 64), np.float32)))
    return _patched(data, 14, "<ii", 16000, 16000)  # version 4: rows, cols after checksum


def _webp_huge() -> bytes:
    data = bytes(imagecodecs.webp_encode(np.zeros((64, 64, 3), np.uint8), lossless=True))
    assert data[12:16] == b"VP8L"
    return _patched(data, 21, "<I", 0x2F | (16000 << 0) | (16000 << 14))


def _jpeg2k_huge() -> bytes:
    data = bytes(imagecodecs.jpeg2k_encode(np.zeros((64, 64), np.uint8), codecformat="J2K"))
    return _patched(data, 8, ">II", 65000, 65000)


HUGE: list[tuple[str, TileEncoding, Callable[[], bytes], int]] = [
    ("jpeg", TileEncoding(7, 1, "|u1"), _jpeg_huge, 1),
    ("lerc", TileEncoding(34887, 1, "<f4", lerc_parameters=(4, 0)), _lerc_huge, 1),
    ("webp", TileEncoding(50001, 1, "|u1", samples_per_pixel=3, photometric=2), _webp_huge, 3),
    ("jpeg2k", TileEncoding(34712, 1, "|u1"), _jpeg2k_huge, 1),
]


@pytest.mark.parametrize(("enc", "make"), [c[1:3] for c in HUGE], ids=[c[0] for c in HUGE])
def test_header_claiming_a_huge_image_is_refused(
    enc: TileEncoding, make: Callable[[], bytes]
) -> None:
    data = make()
    check_supported(enc)
    with bounded(), pytest.raises(TileDecodeError, match=r"header declares"):
        decode_tile(data, enc, 64, 64)


def test_lerc_inside_a_deflate_bomb_is_refused(bomb: bytes) -> None:
    enc = TileEncoding(34887, 1, "<f4", lerc_parameters=(4, 1))
    with bounded(), pytest.raises(TileDecodeError, match="inflates past"):
        decode_tile(bomb, enc, 64, 64)


@pytest.mark.parametrize("predictor", [0, 5])
@pytest.mark.parametrize("compression", [8, 7])
def test_unknown_predictor_is_refused(predictor: int, compression: int) -> None:
    enc = TileEncoding(compression, predictor, "|u1")
    with pytest.raises(UnsupportedTiffError, match=f"predictor {predictor} is unknown"):
        check_supported(enc)


def test_a_tile_too_large_to_decode_is_refused_before_allocating() -> None:
    enc = TileEncoding(8, 1, "<f8", samples_per_pixel=4)
    with bounded(), pytest.raises(UnsupportedTiffError, match="larger than"):
        decode_tile(b"", enc, 65536, 65536)
