"""Samples not stored as the dtype a read returns: packed bits, half floats, CMYK, fax.

GDAL (rasterio) reads each of these (and complex integers) into another type
than the stored one; this module decodes the stored form through the ordinary
codecs, then converts it the way GDAL does:

- 1..31-bit unsigned samples (masks, 2/4-bit classes, 12-bit sensors) unpack
  into the smallest of uint8/16/32 that holds them (GDAL's ``NBITS`` bands),
  from an MSB-first bit stream (24-bit samples once libtiff has swapped them
  to the host's order);
- 16-bit floats become float32 (GDAL 3.10 has no Float16 type);
- CInt16 (two int16) becomes complex64, as rasterio's ``complex_int16`` reads;
- 8-bit CMYK (Photometric Separated, 4 inks or more, chunky) becomes 4 RGBA
  bands, as GDAL's RGBA interface (libtiff's ``TIFFRGBAImage``):
  ``R = (255 - K) * (255 - C) // 255``, alpha 255;
- CCITT RLE, Group 3 (1-D) and Group 4 decode to one uint8 (0 or 1) per pixel;
- 8-bit YCbCr outside JPEG (uncompressed, LZW, ...: blocks of subsampled
  samples) becomes RGB through libtiff's fixed-point tables (``tif_color.c``),
  each chroma sample replicated over its block, as GDAL's RGBA path reads it.

Which of these a :class:`~xarray_rasteret._types.TileEncoding` is follows from
its fields alone: ``bits_per_sample`` differing from the dtype's width (packed,
half, complex integer), Photometric 5 with 8-bit samples, a CCITT
compression, or Photometric 6 outside JPEG (whose tags ride in ``ycbcr``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import imagecodecs
import numpy as np

from .._types import TileEncoding

__all__ = ["CCITT", "CMYK", "YCBCR", "converts", "decode_converted", "output_samples", "problem"]

CCITT = frozenset({2, 3, 4})
"""CCITT RLE, Group 3 and Group 4 fax compressions."""
CMYK = 5
"""PhotometricInterpretation Separated (inks; CMYK with the default InkSet)."""
YCBCR = 6
"""PhotometricInterpretation YCbCr."""

_ic: Any = imagecodecs
RawDecode = Callable[..., np.ndarray]
"""``decode_tile(data, encoding, rows, cols, rows_needed=...)`` of :mod:`.decode`."""


def _kind(enc: TileEncoding) -> str | None:
    dtype = np.dtype(enc.dtype)
    bits = enc.bits_per_sample
    if enc.compression in CCITT:
        return "ccitt"
    if enc.photometric == YCBCR and enc.compression != 7:
        return "ycbcr"  # (JPEG converts its own YCbCr)
    if bits is not None and bits != dtype.itemsize * 8:
        if dtype.kind == "c":
            return "cint"
        if dtype.kind == "f":
            return "half"
        return "packed"
    if enc.photometric == CMYK and dtype == np.uint8 and enc.samples_per_pixel >= 4:
        if enc.planar and enc.samples_per_pixel == 4:
            return None  # each tile one raw ink plane, combined per window (._planar_cmyk)
        # (int8 inks are declared uint8 at ingest: GDAL's RGBA reads them as bytes.)
        # libtiff's RGBA interface (and so GDAL) refuses fewer inks: they stay raw.
        return "cmyk"
    return None


def converts(enc: TileEncoding) -> bool:
    """Whether tiles of ``enc`` are decoded to another form than the one stored."""
    return _kind(enc) is not None


def output_samples(enc: TileEncoding) -> int:
    """Samples per pixel of a decoded tile (1 for a plane of a planar file).

    4 for 8-bit CMYK, whatever the extra samples: GDAL reads it as RGBA.
    """
    if _kind(enc) == "cmyk" and not enc.planar:
        return 4
    return 1 if enc.planar else enc.samples_per_pixel


def problem(enc: TileEncoding, byte_codecs: frozenset[int]) -> str | None:
    """Why tiles of ``enc`` cannot be converted exactly (None: they can, or need not be)."""
    kind = _kind(enc)
    if kind is None:
        return None
    dtype = np.dtype(enc.dtype)
    bits = enc.bits_per_sample
    samples = output_samples(enc)
    if kind == "ccitt":
        if bits not in (None, 1) or dtype != np.uint8 or samples != 1:
            return "CCITT fax tiles must hold one 1-bit sample per pixel"
        return None
    if kind == "ycbcr":
        return _ycbcr_problem(enc, byte_codecs)
    if kind == "cmyk":
        if enc.planar:
            return (
                f"planar 8-bit CMYK with {enc.samples_per_pixel} samples (GDAL fails on it "
                "too: libtiff's RGBA interface reads planar CMYK of exactly 4 inks)"
            )
        if enc.compression == 7 and enc.samples_per_pixel != 4:
            return f"CMYK JPEG with {enc.samples_per_pixel} samples"
        ok = enc.compression in byte_codecs or enc.compression == 7
        return None if ok else "8-bit CMYK inside this codec"
    if enc.compression not in byte_codecs:
        return f"{bits}-bit {dtype} samples inside this codec"
    if kind == "half":
        ok = bits == 16 and (dtype.kind, dtype.itemsize) == ("f", 4)
        return None if ok else f"{bits}-bit floating point samples"
    if kind == "cint":
        if bits != 32 or dtype.itemsize != 8:
            return f"{bits}-bit complex integer samples (only CInt16 is read, as complex64)"
        if enc.predictor != 1:
            return "a predictor on complex samples"
        return None
    if dtype.kind != "u" or bits is None or not 1 <= bits <= 31:
        return f"{bits}-bit {dtype} samples (GDAL reads 1..31-bit unsigned ones)"
    if dtype.itemsize != next(n for n in (1, 2, 4) if bits <= 8 * n):
        return f"{bits}-bit samples declared as {dtype}"
    if enc.predictor != 1 and bits not in (8, 16, 32):
        return f"predictor {enc.predictor} on {bits}-bit samples (libtiff refuses it too)"
    return None


def decode_converted(
    data: bytes | bytearray | memoryview,
    enc: TileEncoding,
    rows: int,
    cols: int,
    rows_needed: int | None,
    raw: RawDecode,
) -> np.ndarray:
    """Decode one tile of a converted encoding (see :func:`converts`).

    ``raw`` decodes the stored form; the result has shape ``(rows, cols,
    output_samples(enc))`` and the native-order dtype of ``enc.dtype``.
    """
    kind = _kind(enc)
    samples = output_samples(enc)
    native = np.dtype(enc.dtype).newbyteorder("=")
    order = _file_order(np.dtype(enc.dtype))
    if kind == "ccitt":
        return _ccitt(data, enc, rows, cols)[..., np.newaxis]
    if kind == "ycbcr":
        return _ycbcr_to_rgb(data, enc, rows, cols, raw)
    if kind == "cmyk":
        # The inks as stored (a CMYK JPEG decodes to them untransformed), then RGBA.
        inks = raw(data, replace(enc, photometric=2), rows, cols, rows_needed=rows_needed)
        return _cmyk_to_rgba(inks)
    if kind == "half":
        inner = replace(enc, dtype=np.dtype(order + "f2").str, bits_per_sample=None)
        return raw(data, inner, rows, cols, rows_needed=rows_needed).astype(native)
    if kind == "cint":
        inner = replace(
            enc, dtype=np.dtype(order + "i2").str, samples_per_pixel=2 * samples,
            planar=False, bits_per_sample=None,
        )  # fmt: skip
        pairs = raw(data, inner, rows, cols, rows_needed=rows_needed)
        out = np.empty((rows, cols, samples), native)
        out.real = pairs[..., 0::2]
        out.imag = pairs[..., 1::2]
        return out
    bits = enc.bits_per_sample
    assert bits is not None  # packed
    row_bytes = -(-cols * samples * bits // 8)
    inner = replace(
        enc, dtype="|u1", samples_per_pixel=1, planar=False, bits_per_sample=None, photometric=1
    )
    packed = raw(data, inner, rows, row_bytes, rows_needed=rows_needed)
    if bits == 24 and order != _file_order(np.dtype("=u4")):
        # libtiff swaps each 3-byte sample of a file in the other byte order before
        # GDAL unpacks it, as it swaps 16- and 32-bit ones.
        packed = np.ascontiguousarray(packed.reshape(rows, cols * samples, 3)[..., ::-1])
    # One MSB-first bit stream per row, padded to a byte, whatever the file's byte
    # order (GDAL unpacks 24-bit samples the same way, once swapped).
    values = _ic.packints_decode(packed.reshape(-1), native, bits, runlen=cols * samples)
    return np.asarray(values).reshape(rows, cols, samples)


def _file_order(dtype: np.dtype) -> str:
    """``'<'`` or ``'>'``: the byte order of ``dtype`` (the host's for ``=`` and ``|``)."""
    if dtype.byteorder in ("<", ">"):
        return dtype.byteorder
    return "<" if np.little_endian else ">"


def _ccitt(data: bytes | bytearray | memoryview, enc: TileEncoding, rows: int, cols: int) -> Any:
    if enc.compression == 4:
        return _ic.ccittfax4_decode(data, rows, cols)
    if enc.compression == 3:
        # 1-D coding (other T4Options are refused when the file is opened). Decoding
        # as if EOLs had fill bits reads streams without them the same, as libtiff,
        # which finds EOLs after any run of zeros.
        return _ic.ccittfax3_decode(data, rows, cols, t4options=4)
    return _ic.ccittrle_decode(data, rows, cols)


def _cmyk_to_rgba(inks: np.ndarray) -> np.ndarray:
    """CMYK -> RGBA as libtiff: ``k = 255 - K; R = k * (255 - C) // 255``, alpha 255.

    Samples after the four inks (extra samples, alpha included) are not used:
    libtiff's CMYK conversion sets alpha to 255.
    """
    wide = inks[..., :4].astype(np.uint16)
    k = 255 - wide[..., 3:4]
    rgba = np.empty((*inks.shape[:2], 4), np.uint8)
    rgba[..., :3] = k * (255 - wide[..., :3]) // 255
    rgba[..., 3] = 255
    return rgba


def _ycbcr_problem(enc: TileEncoding, byte_codecs: frozenset[int]) -> str | None:
    if enc.compression not in byte_codecs:
        return "YCbCr inside this codec (only JPEG, none, LZW, deflate, ... are converted)"
    if np.dtype(enc.dtype) != np.uint8 or enc.samples_per_pixel != 3 or enc.planar:
        return "YCbCr other than chunky 8-bit with 3 samples"
    if enc.predictor != 1:
        return "a predictor on YCbCr samples"
    if enc.ycbcr is None or len(enc.ycbcr) != 11:
        return "YCbCr without its YCbCrSubSampling, YCbCrCoefficients and ReferenceBlackWhite"
    h, v = enc.ycbcr[:2]
    if h not in (1, 2, 4) or v not in (1, 2, 4) or v > h:
        return f"YCbCrSubSampling {h:g} x {v:g} (TIFF allows 1, 2, 4 with vertical <= horizontal)"
    if not all(np.isfinite(enc.ycbcr)) or enc.ycbcr[3] == 0:
        return "YCbCrCoefficients or ReferenceBlackWhite that are not finite (or green luma 0)"
    return None


def _ycbcr_to_rgb(
    data: bytes | bytearray | memoryview, enc: TileEncoding, rows: int, cols: int, raw: RawDecode
) -> np.ndarray:
    """Blocks of ``h x v`` luma then Cb, Cr (the stored form) -> RGB, as libtiff's RGBA path."""
    assert enc.ycbcr is not None
    h, v = int(enc.ycbcr[0]), int(enc.ycbcr[1])
    down, across = -(-rows // v), -(-cols // h)  # blocks cover the edge pixels too
    unit = h * v + 2
    inner = replace(enc, samples_per_pixel=1, photometric=1, ycbcr=None)
    flat = raw(data, inner, 1, down * across * unit, rows_needed=None).reshape(down, across, unit)
    y_tab, cr_r, cb_b, cr_g, cb_g = _ycbcr_tables(enc.ycbcr[2:5], enc.ycbcr[5:11])
    luma = flat[..., : h * v].reshape(down, across, v, h).transpose(0, 2, 1, 3)
    y = y_tab[luma.reshape(down * v, across * h)[:rows, :cols]]
    cb = np.repeat(np.repeat(flat[..., h * v], v, 0), h, 1)[:rows, :cols]
    cr = np.repeat(np.repeat(flat[..., h * v + 1], v, 0), h, 1)[:rows, :cols]
    rgb = np.stack([y + cr_r[cr], y + ((cb_g[cb] + cr_g[cr]) >> 16), y + cb_b[cb]], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _ycbcr_tables(luma: tuple[float, ...], black_white: tuple[float, ...]) -> tuple[Any, ...]:
    """The ``TIFFYCbCrToRGBInit`` tables of libtiff (float32 maths, 16-bit fixed point)."""
    f32 = np.float32
    red, green, blue = (f32(c) for c in luma)
    bw = [f32(c) for c in black_white]

    def fixed(x: np.float32) -> int:  # FIX(CLAMP(x, 0, 2))
        x = f32(2) if x > 2 else (x if x >= 0 else f32(0))
        return int(float(f32(x * f32(65536))) + 0.5)

    f1, f3 = f32(2) - f32(2) * red, f32(2) - f32(2) * blue
    d1, d2 = fixed(f1), -fixed(f32(f32(red * f1) / green))
    d3, d4 = fixed(f3), -fixed(f32(f32(blue * f3) / green))

    def code(x: np.ndarray, black: np.float32, white: np.float32, top: int) -> np.ndarray:
        # Code2V, then CLAMPw to +-4096 and truncation to int32, all as libtiff.
        span = f32(white - black)
        span = span if span != 0 else f32(1)
        value = ((x - int(black)).astype(f32) * f32(top)) / span
        return np.trunc(np.clip(value, f32(-4096), f32(4096))).astype(np.int64)

    x = np.arange(-128, 128)
    cr = code(x, bw[4] - f32(128), bw[5] - f32(128), 127)
    cb = code(x, bw[2] - f32(128), bw[3] - f32(128), 127)
    y_tab = code(x + 128, bw[0], bw[1], 255)
    return y_tab, (d1 * cr + 32768) >> 16, (d3 * cb + 32768) >> 16, d2 * cr, d4 * cb + 32768
