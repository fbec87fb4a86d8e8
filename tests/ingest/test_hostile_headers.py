"""Hostile TIFF headers give a clear error naming the file, never a crash or a hang.

Each minimal test writes a valid file with rasterio, breaks one thing in its
header (located by :class:`hostile_fuzz.TiffMap`, independent of the code under
test) and checks the error type and that the message names the file and the
problem. The fuzz test runs every generated mutation in a child process with a
deadline and a memory limit, so a regression that kills or hangs the process
shows up as a count rather than taking pytest down with it.
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr
from hostile_fuzz import (
    GEO_KEYS,
    PHOTOMETRIC,
    SAMPLES_PER_PIXEL,
    TILE_OFFSETS,
    TiffMap,
    chain_ifds,
    generate_cases,
    make_bases,
    run_cases,
    table,
)

import xarray_rasteret
from cogs import write_tiff
from xarray_rasteret.errors import (
    NotATiffError,
    RasteretError,
    TruncatedFileError,
    UnsupportedTiffError,
)
from xarray_rasteret.ingest import build
from xarray_rasteret.ingest._header import read_sources_async
from xarray_rasteret.ingest._ifd import MAX_IFDS, MAX_SAMPLES


@pytest.fixture
def valid(tmp_path: Path) -> bytes:
    """Bytes of a tiled, deflated uint16 GeoTIFF with two overviews (three IFDs)."""
    path = tmp_path / "valid.tif"
    write_tiff(path, dtype="uint16", compress="DEFLATE", overviews=(2, 4))
    return path.read_bytes()


def _build_error(tmp_path: Path, data: bytes, expected: type[RasteretError]) -> str:
    """Build a collection from ``data`` and return the message of the error it must raise."""
    path = tmp_path / "hostile.tif"
    path.write_bytes(data)
    with pytest.raises(expected) as info:
        xarray_rasteret.build([str(path)])
    text = str(info.value)
    assert str(path) in text
    return text


def _put(data: bytes, pos: int, fmt: str, value: int) -> bytes:
    """``data`` with ``value`` written at ``pos`` (``fmt`` a struct code) in its byte order."""
    out = bytearray(data)
    TiffMap.parse(data).put(out, pos, fmt, value)
    return bytes(out)


@pytest.mark.parametrize("last", [False, True], ids=["IFD0->IFD0", "IFD2->IFD0"])
def test_ifd_loop(tmp_path: Path, valid: bytes, last: bool) -> None:
    m = TiffMap.parse(valid)
    looped = _put(valid, m.ifds[-1 if last else 0].next_pos, m.word, m.ifds[0].offset)
    text = _build_error(tmp_path, looped, NotATiffError)
    assert "IFD chain loops" in text


@pytest.mark.parametrize("tag", [TILE_OFFSETS, GEO_KEYS])
def test_huge_count(tmp_path: Path, valid: bytes, tag: int) -> None:
    m = TiffMap.parse(valid)
    entry = m.entry(tag)
    assert entry is not None
    out = bytearray(valid)
    m.set_count(out, entry, 2**31)
    text = _build_error(tmp_path, bytes(out), NotATiffError)
    assert f"tag {tag}" in text and "2147483648 values" in text


def test_too_many_ifds(tmp_path: Path, valid: bytes) -> None:
    hostile = chain_ifds(valid, TiffMap.parse(valid), MAX_IFDS)
    text = _build_error(tmp_path, hostile, UnsupportedTiffError)
    assert f"longer than {MAX_IFDS} IFDs" in text


def test_samples_per_pixel_cap(tmp_path: Path, valid: bytes) -> None:
    m = TiffMap.parse(valid)
    entry = m.entry(SAMPLES_PER_PIXEL)
    assert entry is not None
    text = _build_error(tmp_path, _put(valid, m.value_pos(entry), "H", 65535), UnsupportedTiffError)
    assert "SamplesPerPixel 65535" in text and str(MAX_SAMPLES) in text


def test_unknown_field_type_is_left_out_as_gdal_does(tmp_path: Path, valid: bytes) -> None:
    """The TIFF spec says readers skip tags of unknown types; GDAL reads the file without
    the tag (here the GeoKeys: no CRS), and so do we, warning which tag was left out."""
    m = TiffMap.parse(valid)
    entry = m.entry(GEO_KEYS)
    assert entry is not None
    path = tmp_path / "odd.tif"
    path.write_bytes(_put(valid, entry.pos + 2, "H", 14))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = xr.open_dataset(path, engine="rasteret")
        ours = ds.band_1.values[0]
    texts = [str(w.message) for w in caught]
    assert any(
        "tag 34735 (GeoKeyDirectory) of IFD 0 has field type 14, which is not a TIFF type; "
        "it is left out" in t
        for t in texts
    ), texts
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(ours, src.read(1))
        assert src.crs is None and "crs_wkt" not in ds.spatial_ref.attrs


@pytest.mark.parametrize("tag", [PHOTOMETRIC, SAMPLES_PER_PIXEL])
def test_missing_defaulted_tag_is_supplied(tmp_path: Path, valid: bytes, tag: int) -> None:
    # async-tiff panics without these tags; libtiff/GDAL read the file (SamplesPerPixel
    # defaults to 1), so the walk serves it an IFD with the tag supplied.
    m = TiffMap.parse(valid)
    entry = m.entry(tag)
    assert entry is not None
    # Renumber the tag to an unused private one: the entry stays, the tag is gone.
    path = tmp_path / "missing.tif"
    path.write_bytes(_put(valid, entry.pos, "H", 65000))
    srcs = asyncio.run(read_sources_async(str(path)))
    assert len(srcs) == 1 and srcs[0].encoding.samples_per_pixel == 1
    assert len(srcs[0].levels) == 3  # the overviews' IFDs, patched or not, are all read
    with rasterio.open(path) as src:
        expected = src.read(1)
    got = xr.open_dataset(path, engine="rasteret").band_1.values[0]
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_tile_table_must_match_grid(tmp_path: Path, valid: bytes) -> None:
    m = TiffMap.parse(valid)
    entry = m.entry(TILE_OFFSETS)
    assert entry is not None
    out = bytearray(valid)
    m.set_count(out, entry, entry.count - 1)
    text = _build_error(tmp_path, bytes(out), NotATiffError)
    assert f"has {entry.count - 1} TileOffsets entries" in text and f"needs {entry.count}" in text


def test_short_file_is_not_truncated(tmp_path: Path) -> None:
    # Smaller than the first header read, and complete: it builds.
    path = tmp_path / "small.tif"
    write_tiff(path, dtype="uint8", width=40, height=30)
    assert path.stat().st_size < 65536
    coll = xarray_rasteret.build([str(path)])
    assert len(coll) == 1


@pytest.mark.parametrize("cut", [7, 200])
def test_truncated_header(tmp_path: Path, valid: bytes, cut: int) -> None:
    text = _build_error(tmp_path, valid[:cut], TruncatedFileError)
    assert f"the file ({cut} bytes)" in text


@pytest.mark.parametrize(
    ("pos", "byte", "expected", "words"),
    [
        (0, 0x00, NotATiffError, "is not a TIFF file"),
        (7, 0x7F, TruncatedFileError, "IFD 0"),  # IFD0's offset moved past the end
        (9, 0x40, NotATiffError, "entries"),  # IFD0 claims 16384+ entries
    ],
)
def test_flipped_bytes(
    tmp_path: Path, valid: bytes, pos: int, byte: int, expected: type[RasteretError], words: str
) -> None:
    out = bytearray(valid)
    out[pos] = byte
    assert words in _build_error(tmp_path, bytes(out), expected)


def test_signed_url_is_redacted(http_server: Any, valid: bytes) -> None:
    Path(http_server.root, "x.tif").write_bytes(valid[:200])
    url = http_server.url("x.tif") + "?X-Amz-Signature=SECRET&token=SECRET2"
    with pytest.raises(TruncatedFileError) as info:
        asyncio.run(read_sources_async(url))
    shown = "\n".join([str(info.value), *getattr(info.value, "__notes__", [])])
    assert "x.tif" in shown and "SECRET" not in shown
    # build() adds a note naming the file: redacted too.
    with pytest.raises(TruncatedFileError) as info:
        build([url])
    shown = "\n".join([str(info.value), *getattr(info.value, "__notes__", [])])
    assert "x.tif" in shown and "SECRET" not in shown


@pytest.mark.slow
def test_fuzzed_headers(tmp_path: Path) -> None:
    cases = generate_cases(make_bases(tmp_path), seed=21)
    assert len(cases) >= 150
    results = run_cases(cases, tmp_path, timeout=10.0, mem=2 << 30, workers=3)
    bad = [r for r in results if r.outcome not in ("ok", "clear")]
    report = table(results) + "".join(
        f"\n{r.outcome} {r.case.label}: {r.detail[:200]}" for r in bad
    )
    assert not bad, report
