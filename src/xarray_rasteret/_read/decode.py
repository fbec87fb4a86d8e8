"""Decode one TIFF tile (or strip) into pixels: codecs, predictors, byte order, samples.

Pure CPU work on bytes already fetched; no I/O. The codecs are imagecodecs',
whose C code releases the GIL, so callers run :func:`decode_tile` in a thread
pool. The pixels match what GDAL (rasterio) returns for the same stored bytes,
including the parts GDAL/libtiff decide: JPEG tables merged into every tile,
YCbCr JPEG converted to RGB, predictors undone on values in the file's byte
order, LERC's extra deflate/zstd layer; and (in :mod:`._samples`) what GDAL
converts: packed 1..31-bit samples, half floats, CInt16, 8-bit CMYK as RGBA,
CCITT fax.

:func:`check_supported` rejects, before any I/O, every encoding this module
cannot decode exactly, with a message naming the feature and what to do.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from typing import Any

import imagecodecs
import numpy as np

from .._types import TileEncoding
from ..errors import RasteretError, TileDecodeError, UnsupportedTiffError
from ..storage import record_decode
from . import _samples
from ._inflate import check_stream_ends, inflate_prefix
from ._stream_sizes import declared_size, lerc_blob_problem
from .codecs import BYTE_CODECS, CODEC_NEEDS, PREDICTED_CODECS, codec_name

__all__ = [
    "MAX_TILE_BYTES",
    "TileDecodeError",
    "check_supported",
    "decode_tile",
    "decodes_into",
]


MAX_TILE_BYTES = 2**30
"""Largest decoded tile or strip: each is one allocation, so a header or index
claiming more is refused rather than trusted."""
# How far a decompressed stream may run past the tile before it is refused: libtiff
# ignores the excess, but the excess must not be an unbounded allocation.
_OVERRUN = 2**16
_LERC_EXTRA = {0: "none", 1: "deflate", 2: "zstd"}
_PHOTOMETRIC_YCBCR = 6
_JPEG_CS = imagecodecs.JPEG8.CS
# imagecodecs' type stubs are narrower than its codecs, which take any buffer
# (memoryview included) and NumPy arrays as ``out``.
_ic: Any = imagecodecs

_FIX = "Convert the file, e.g. `gdal_translate -co COMPRESS=DEFLATE -co TILED=YES in.tif out.tif`."


def _unsupported(encoding: TileEncoding, what: str, fix: str = _FIX) -> UnsupportedTiffError:
    return UnsupportedTiffError(
        f"cannot decode TIFF tiles: {what} "
        f"[compression {codec_name(encoding.compression)}, predictor {encoding.predictor}, "
        f"dtype {encoding.dtype}, samples {encoding.samples_per_pixel}, "
        f"photometric {encoding.photometric}]. {fix}"
    )


def check_supported(encoding: TileEncoding) -> None:
    """Raise if tiles of this encoding cannot be decoded exactly.

    Called when a source is opened, before any I/O, so an unreadable file
    fails early with a message that names the feature, instead of failing (or
    worse, returning wrong pixels) at read time.

    Parameters
    ----------
    encoding
        How the tiles of an image are encoded.

    Raises
    ------
    UnsupportedTiffError
        For a codec that is unknown or missing from the installed imagecodecs
        build, samples GDAL converts in a way not reproduced here (signed
        packed integers, 24-bit floats, planar 8-bit CMYK, packed samples in
        an image codec), an unknown predictor or one that does not fit the
        data type, or a codec/photometric combination GDAL would transform in
        a way not reproduced here (raw YCbCr, ...).

    Examples
    --------
    >>> check_supported(TileEncoding(compression=8, predictor=2, dtype="<u2"))
    >>> check_supported(TileEncoding(compression=6, predictor=1, dtype="|u1"))
    Traceback (most recent call last):
    ...
    xarray_rasteret.errors.UnsupportedTiffError: cannot decode TIFF tiles: ...
    """
    _check_codec(encoding)
    if encoding.fill_order not in (1, 2):
        raise _unsupported(encoding, f"FillOrder {encoding.fill_order} is not 1 or 2 (the file "
                           "is malformed; GDAL refuses it too)")
    dtype = _check_samples(encoding)
    _check_predictor(encoding, dtype)
    _check_codec_limits(encoding, dtype)


def _check_codec(encoding: TileEncoding) -> None:
    """The codec is known and built into the installed imagecodecs."""
    comp = encoding.compression
    if comp not in CODEC_NEEDS:
        raise _unsupported(encoding, f"compression {codec_name(comp)} is not supported")
    for codec in CODEC_NEEDS[comp]:
        if not getattr(imagecodecs, codec).available:
            raise _unsupported(
                encoding,
                f"the installed imagecodecs {imagecodecs.__version__} was built without "
                f"the {codec} codec needed for compression {codec_name(comp)}",
                "Install an imagecodecs build that includes it (the PyPI wheels do).",
            )


def _check_samples(encoding: TileEncoding) -> np.dtype:
    """The samples are a supported NumPy type of whole bytes; returns that dtype."""
    comp = encoding.compression
    try:
        dtype = np.dtype(encoding.dtype)
    except TypeError as exc:
        raise _unsupported(
            encoding, f"sample type {encoding.dtype!r} is not a NumPy dtype"
        ) from exc
    if dtype.kind not in "uifc" or (dtype.kind == "c" and comp not in BYTE_CODECS):
        raise _unsupported(encoding, f"sample type {dtype} is not supported")
    if encoding.samples_per_pixel < 1:
        raise _unsupported(encoding, "SamplesPerPixel must be at least 1")
    problem = _samples.problem(encoding, BYTE_CODECS)
    if problem is not None:
        raise _unsupported(
            encoding,
            f"{problem}: not supported",
            "GDAL reads it: convert it to whole-byte samples and a codec read here, e.g. "
            "`gdal_translate -ot UInt16 -co COMPRESS=DEFLATE -co TILED=YES in.tif out.tif`.",
        )
    return dtype


def _check_predictor(encoding: TileEncoding, dtype: np.dtype) -> None:
    """The predictor is one TIFF defines and fits the sample type."""
    comp = encoding.compression
    pred = encoding.predictor
    # Unknown values are refused whatever the codec: a file that has one is malformed,
    # and reading it as predictor 1 could return wrong pixels.
    if pred not in (1, 2, 3):
        raise _unsupported(encoding, f"predictor {pred} is unknown (TIFF defines 1, 2, 3)")
    if comp in PREDICTED_CODECS:
        if pred == 2 and dtype.kind == "c":
            raise _unsupported(encoding, "horizontal predictor (2) on complex samples")
        if pred == 3 and dtype.kind != "f":
            raise _unsupported(
                encoding,
                f"floating-point predictor (3) on non-float {dtype} samples",
                "The file is malformed; rewrite it with PREDICTOR=2 (integers).",
            )


def _check_codec_limits(encoding: TileEncoding, dtype: np.dtype) -> None:
    """What each codec can hold (JPEG: 8-bit, 1 or 3 samples; WebP: RGB(A); ...)."""
    comp = encoding.compression  # (YCbCr outside JPEG: see _samples.problem)
    samples = 1 if encoding.planar else encoding.samples_per_pixel
    if comp == 7:
        if dtype.itemsize != 1 or dtype.kind != "u":
            raise _unsupported(encoding, f"JPEG with {dtype} samples (only 8-bit JPEG)")
        if encoding.photometric not in (0, 1, 2, _samples.CMYK, _PHOTOMETRIC_YCBCR):
            raise _unsupported(
                encoding, f"JPEG with photometric {encoding.photometric} (e.g. CMYK, CIELab)"
            )
        if encoding.photometric == _PHOTOMETRIC_YCBCR and (encoding.planar or samples != 3):
            raise _unsupported(encoding, "YCbCr JPEG must be chunky with 3 samples")
        if samples == 4 and encoding.photometric not in (2, _samples.CMYK):
            raise _unsupported(encoding, "4-sample JPEG tiles other than RGBA or CMYK")
        if samples not in (1, 3, 4):
            raise _unsupported(encoding, f"JPEG tiles with {samples} samples (1, 3 or 4 only)")
    elif comp == 50001:
        if dtype != np.uint8 or encoding.planar or samples not in (3, 4):
            raise _unsupported(encoding, "WebP tiles must be chunky 8-bit RGB or RGBA")
    elif comp == 34887:
        params = encoding.lerc_parameters
        extra = params[1] if params is not None and len(params) > 1 else 0
        if extra not in _LERC_EXTRA:
            raise _unsupported(encoding, f"LERC additional compression {extra} is unknown")
        for codec in {1: ("DEFLATE",), 2: ("ZSTD",)}.get(extra, ()):
            if not getattr(imagecodecs, codec).available:
                raise _unsupported(
                    encoding,
                    f"imagecodecs lacks {codec}, needed for LERC+{_LERC_EXTRA[extra]}",
                    "Install an imagecodecs build that includes it (the PyPI wheels do).",
                )
    elif comp == 34712 and dtype.kind not in "ui":
        raise _unsupported(encoding, f"JPEG 2000 with {dtype} samples")


def decodes_into(encoding: TileEncoding) -> bool:
    """Whether :func:`decode_tile` decompresses straight into ``out`` (no copy) for ``encoding``."""
    return encoding.compression in BYTE_CODECS and not _samples.converts(encoding)


# Long for its docstring; the work is dispatched to one function per kind of codec.
def decode_tile(
    data: bytes | bytearray | memoryview,
    encoding: TileEncoding,
    rows: int,
    cols: int,
    *,
    out: np.ndarray | None = None,
    rows_needed: int | None = None,
    finish: tuple[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Decode the stored bytes of one tile or strip.

    Parameters
    ----------
    data
        The tile's bytes exactly as stored (``tile_byte_counts[i]`` bytes at
        ``tile_offsets[i]``).
    encoding
        How the tiles are encoded; should have passed :func:`check_supported`.
    rows, cols
        The tile size as stored: ``tile_height x tile_width`` (edge tiles are
        stored full size, padded); for the last strip of a striped file, the
        rows actually present.
    out
        Optional destination, C-contiguous, shape ``(rows, cols, samples)``,
        native-order dtype. Byte-stream codecs (none, deflate, LZW, PackBits,
        zstd, LZMA) decompress straight into it; others copy into it.
    rows_needed
        Only the first ``rows_needed`` rows are wanted. Deflate streams are then
        inflated only that far (plus a safety margin): a window in the top half
        of a tile costs half its decode. Rows after ``rows_needed`` are left
        unspecified. Other codecs decode the whole tile.
    finish
        ``(first, target)``: write rows ``first .. first + len(target)`` of
        the tile to ``target`` (shape ``(n, cols, 1)``, native dtype, any
        strides), undoing the horizontal predictor on the way, and return
        ``target``; ``out`` then holds intermediate bytes. For byte-stream
        codecs with predictor 2 only: the predictor pass replaces a copy.

    Returns
    -------
    numpy.ndarray
        Shape ``(rows, cols, samples)`` where ``samples`` is
        ``encoding.samples_per_pixel`` for chunky files (4 for 8-bit CMYK, read
        as RGBA) and 1 for planar files (each plane's tile is a separate tile); dtype
        ``np.dtype(encoding.dtype).newbyteorder("=")``; writable. ``out`` if given.

    Raises
    ------
    TileDecodeError
        If the bytes are corrupt or truncated, or decode to a different size
        than ``rows x cols x samples``.
    UnsupportedTiffError
        If the encoding cannot be decoded (see :func:`check_supported`).

    Examples
    --------
    >>> import zlib
    >>> enc = TileEncoding(compression=8, predictor=1, dtype="<u2")
    >>> raw = np.arange(6, dtype="<u2").tobytes()
    >>> decode_tile(zlib.compress(raw), enc, 2, 3)[..., 0]
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint16)
    """
    stored = np.dtype(encoding.dtype)
    native = stored.newbyteorder("=")
    converted = _samples.converts(encoding)
    # Converted encodings (e.g. 5-sample CMYK read as RGBA) may return other samples.
    samples = _samples.output_samples(encoding)
    shape = (rows, cols, samples)
    comp = encoding.compression
    if rows < 1 or cols < 1 or rows * cols * samples * native.itemsize > MAX_TILE_BYTES:
        raise _unsupported(
            encoding,
            f"a {rows} x {cols} x {samples} tile is empty or larger than the "
            f"{MAX_TILE_BYTES} bytes decoded at once",
            "Re-tile the file, e.g. `gdal_translate -co TILED=YES in.tif out.tif`.",
        )
    if out is not None:
        _check_out(out, shape, native)
    if encoding.fill_order == 2:
        # libtiff reverses the bits of every stored byte before the codec sees them
        # (fax and JBIG read the bits reversed instead: the same thing).
        data = _ic.bitorder_decode(bytes(data))
        encoding = replace(encoding, fill_order=1)

    if converted:
        if _samples.problem(encoding, BYTE_CODECS) is not None:
            check_supported(encoding)  # raises the explanatory error
        try:
            arr = _samples.decode_converted(data, encoding, rows, cols, rows_needed, decode_tile)
        except RasteretError:
            raise
        except Exception as exc:
            raise _decode_error(encoding, shape, f"{type(exc).__name__}: {exc}") from exc
        if arr.shape != shape:
            raise _decode_error(encoding, shape, f"it decodes to shape {arr.shape}")
        if out is None:
            return arr
        np.copyto(out, arr)
        return out
    if finish is not None and (comp not in BYTE_CODECS or encoding.predictor != 2):
        raise ValueError("finish= is for byte-stream codecs with the horizontal predictor")
    if comp in BYTE_CODECS:
        return _decode_byte_stream(data, encoding, shape, out, rows_needed, finish)
    return _decode_image(data, encoding, shape, out)


def _decode_byte_stream(
    data: bytes | bytearray | memoryview,
    encoding: TileEncoding,
    shape: tuple[int, int, int],
    out: np.ndarray | None,
    rows_needed: int | None,
    finish: tuple[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Decompress a byte-stream codec (none, deflate, LZW, ...) into place, then unpredict."""
    stored = np.dtype(encoding.dtype)
    native = stored.newbyteorder("=")
    comp = encoding.compression
    rows = shape[0]
    dest = out if out is not None else np.empty(shape, native)
    flat = dest.reshape(-1).view(np.uint8)
    prefix = None if rows_needed is None or comp not in (8, 32946) else inflate_prefix(
        data, flat, rows_needed * flat.size // rows
    )
    if prefix is not None:
        valid = dest[:rows_needed]  # the rows after it are left as they are
        record_decode(prefix, flat.size)
    else:
        _decompress_into(data, comp, flat, encoding, shape)
        valid = dest
        record_decode(flat.size, flat.size)
    predictor = encoding.predictor if comp in PREDICTED_CODECS else 1
    if finish is not None:
        first, target = finish
        if target.shape[1:] != dest.shape[1:] or target.dtype != native:
            raise ValueError(f"finish target {target.dtype} {target.shape} does not fit {shape}")
        part = valid[first : first + target.shape[0]]
        if stored != native:
            part.byteswap(inplace=True)
        unsigned = f"u{native.itemsize}"
        _ic.delta_decode(part.view(unsigned), axis=1, out=target.view(unsigned))
        return target
    # The bytes are in file order, except that the floating-point predictor's
    # output is byte-order independent (libtiff skips its swap for it).
    if stored != native and predictor != 3:
        valid.byteswap(inplace=True)
    if predictor != 1:
        _unpredict(valid, encoding)
    return dest


def _decode_image(
    data: bytes | bytearray | memoryview,
    encoding: TileEncoding,
    shape: tuple[int, int, int],
    out: np.ndarray | None,
) -> np.ndarray:
    """Decode an image codec (JPEG, WebP, LERC, JPEG 2000), checked against ``shape``."""
    stored = np.dtype(encoding.dtype)
    native = stored.newbyteorder("=")
    comp = encoding.compression
    rows, cols, samples = shape
    try:
        # Check the size the stream declares before the decoder allocates it.
        declared = declared_size(comp, data)
        if declared is not None and declared != (rows, cols):
            raise _decode_error(
                encoding, shape, f"its header declares shape {declared} (rows, columns)"
            )
        if comp == 7:
            arr = _decode_jpeg(data, encoding, samples)
        elif comp == 50001:
            arr = _ic.webp_decode(data, hasalpha=samples == 4)
        elif comp == 34887:
            arr = _decode_lerc(data, encoding, stored, shape)
        elif comp == 34712:
            arr = _ic.jpeg2k_decode(data)
        else:
            check_supported(encoding)  # raises the explanatory error
            raise _unsupported(encoding, "no decoder")  # pragma: no cover
    except RasteretError:
        raise
    except Exception as exc:
        raise _decode_error(encoding, shape, f"{type(exc).__name__}: {exc}") from exc
    arr = np.asarray(arr)
    if arr.size != rows * cols * samples or arr.shape[:2] != (rows, cols):
        raise _decode_error(encoding, shape, f"the decoder returned shape {arr.shape}")
    if arr.dtype != native:
        if arr.dtype.kind != native.kind or arr.dtype.itemsize != native.itemsize:
            raise _decode_error(encoding, shape, f"the decoder returned dtype {arr.dtype}")
        arr = arr.astype(native)
    arr = arr.reshape(shape)
    record_decode(arr.nbytes, arr.nbytes)
    if out is not None:
        np.copyto(out, arr)
        return out
    if not arr.flags.writeable:
        arr = arr.copy()
    return arr


def _check_out(out: np.ndarray, shape: tuple[int, int, int], dtype: np.dtype) -> None:
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(
            f"out must be a C-contiguous {dtype} array of shape {shape}, "
            f"got {out.dtype} {out.shape} (contiguous={out.flags.c_contiguous})"
        )
    if not out.flags.writeable:
        raise ValueError("out must be writable")


def _decode_error(encoding: TileEncoding, shape: tuple[int, int, int], why: str) -> TileDecodeError:
    rows, cols, samples = shape
    return TileDecodeError(
        f"corrupt or truncated {codec_name(encoding.compression)} tile: expected "
        f"{rows} x {cols} x {samples} samples of {encoding.dtype}, but {why}"
    )


def _decompress_into(
    data: bytes | bytearray | memoryview,
    comp: int,
    dest: np.ndarray,
    encoding: TileEncoding,
    shape: tuple[int, int, int],
) -> None:
    """Decompress a byte-stream codec into ``dest`` (uint8, exactly the tile's size)."""
    nbytes = dest.size
    if comp == 1:
        src = memoryview(data).cast("B")
        if src.nbytes < nbytes:
            raise _decode_error(
                encoding, shape, f"the tile has {src.nbytes} bytes, {nbytes} are needed"
            )
        dest[...] = np.frombuffer(src, np.uint8, nbytes)
        return
    if comp in (8, 32946):
        func = _ic.deflate_decode  # libdeflate: the fastest inflate available
    elif comp == 5:
        func = _ic.lzw_decode
    elif comp == 50000:
        func = _ic.zstd_decode
    elif comp == 32773:
        func = _ic.packbits_decode
    else:
        func = _ic.lzma_decode
    try:
        got = func(data, out=dest)
    except Exception as exc:
        if comp in (8, 32946) and "INSUFFICIENT_SPACE" not in str(exc):
            # A corrupt stream: zlib would decode its damaged part into bytes that
            # look like pixels, so it is refused, not decoded again.
            raise _decode_error(encoding, shape, f"{type(exc).__name__}: {exc}") from exc
        # libtiff ignores output beyond the tile's size, while libdeflate, zstd and
        # PackBits refuse to decode into a buffer that is too small: decode again,
        # bounded, so that a stream of endless zeros cannot allocate without limit.
        dest[...] = _decompress_bounded(data, comp, nbytes, encoding, shape, exc)
        return
    n = len(got)
    if n != nbytes:
        raise _decode_error(encoding, shape, f"it decompresses to {n} bytes, {nbytes} are needed")


def _decompress_bounded(
    data: bytes | bytearray | memoryview,
    comp: int,
    nbytes: int,
    encoding: TileEncoding,
    shape: tuple[int, int, int],
    first: Exception,
) -> np.ndarray:
    """The first ``nbytes`` of a stream that decompresses to more than that (uint8).

    Deflate stops at ``nbytes`` whatever follows (as libtiff); the other codecs may
    run at most ``nbytes + _OVERRUN`` bytes long, and are refused beyond.
    """
    if comp in (8, 32946):
        inflate = zlib.decompressobj()
        try:
            got = inflate.decompress(data, nbytes)
            check_stream_ends(inflate, 16 * nbytes + 2**20)
        except zlib.error as exc:
            raise _decode_error(encoding, shape, f"{type(first).__name__}: {first}") from exc
        except ValueError as exc:
            raise _decode_error(encoding, shape, str(exc)) from exc
        buf = np.frombuffer(got, np.uint8)
    else:
        buf = np.empty(nbytes + _OVERRUN, np.uint8)
        func = _ic.zstd_decode if comp == 50000 else _ic.packbits_decode
        try:
            buf = np.asarray(func(data, out=buf))
        except Exception as exc:
            raise _decode_error(
                encoding,
                shape,
                f"it is corrupt or decompresses to more than {nbytes + _OVERRUN} bytes "
                f"({type(first).__name__}: {first})",
            ) from exc
    if buf.size < nbytes:
        raise _decode_error(
            encoding, shape, f"it decompresses to {buf.size} bytes, {nbytes} are needed"
        )
    return buf[:nbytes]


def _unpredict(arr: np.ndarray, encoding: TileEncoding) -> None:
    """Undo the predictor in place on a native-order ``(rows, cols, samples)`` array."""
    if encoding.predictor == 2:
        # Horizontal differencing on the sample values (libtiff swaps to native
        # first), modulo 2**bits: accumulate on the unsigned view, per sample.
        u = arr.view(f"u{arr.dtype.itemsize}")
        _ic.delta_decode(u, axis=1, out=u)
    elif encoding.predictor == 3:
        # The floating-point predictor stores bytes most-significant first, shuffled
        # and differenced per row whatever the file's byte order, so it decodes
        # straight to native values.
        # It cannot work in place: decode to a temporary and copy back.
        arr[...] = _ic.floatpred_decode(arr, axis=1)
    else:  # pragma: no cover - check_supported rejects it
        raise _unsupported(encoding, f"predictor {encoding.predictor} is unknown")


def _decode_jpeg(
    data: bytes | bytearray | memoryview, encoding: TileEncoding, samples: int
) -> np.ndarray:
    # libjpeg fills what follows a premature end with its own guess and only warns:
    # a stream whose EOI marker is missing (padding zeros aside) is cut or damaged.
    if bytes(memoryview(data).cast("B")[-64:]).rstrip(b"\x00")[-2:] != b"\xff\xd9":
        raise ValueError("the JPEG stream ends without its EOI marker: truncated or corrupt")
    if samples == 1:
        colorspace = outcolorspace = _JPEG_CS.GRAYSCALE
    elif samples == 4:
        # RGBA or CMYK: libtiff writes the four components untransformed and reads
        # them back as such (libjpeg's CMYK colour space, no conversion).
        colorspace = outcolorspace = _JPEG_CS.CMYK
    elif encoding.photometric == _PHOTOMETRIC_YCBCR:
        # GDAL sets JPEGCOLORMODE=RGB: libjpeg upsamples and converts to RGB.
        colorspace, outcolorspace = _JPEG_CS.YCbCr, _JPEG_CS.RGB
    else:
        # Photometric RGB: the JPEG holds the RGB components untransformed.
        colorspace = outcolorspace = _JPEG_CS.RGB
    return _ic.jpeg8_decode(
        data,
        tables=encoding.jpeg_tables,
        colorspace=colorspace,
        outcolorspace=outcolorspace,
    )


def _decode_lerc(
    data: bytes | bytearray | memoryview,
    encoding: TileEncoding,
    stored: np.dtype,
    shape: tuple[int, int, int],
) -> np.ndarray:
    rows, cols, samples = shape
    params = encoding.lerc_parameters
    extra = params[1] if params is not None and len(params) > 1 else 0
    blob: bytes | bytearray | memoryview = data
    # A LERC blob holds at most every value (up to 8 bytes) and a mask bit per
    # pixel and sample, plus headers: more is refused, not inflated.
    limit = rows * cols * samples * 9 + _OVERRUN
    if extra == 1:
        inflate = zlib.decompressobj()
        blob = inflate.decompress(data, limit)
        if inflate.unconsumed_tail:
            raise _decode_error(encoding, shape, f"its LERC blob inflates past {limit} bytes")
    elif extra == 2:
        blob = _ic.zstd_decode(data, out=np.empty(limit, np.uint8))
    problem = lerc_blob_problem(blob, shape)
    if problem is not None:
        raise _decode_error(encoding, shape, problem)
    arr, mask = _ic.lerc_decode(blob, masks=True)
    arr = np.asarray(arr)
    if samples > 1 and arr.shape == (samples, rows, cols) and arr.shape != shape:
        # libtiff writes one LERC band per sample (each with its own mask) when the
        # samples of a pixel are not all valid or all invalid: make it chunky.
        arr = np.moveaxis(arr, 0, -1)
        if mask is not None:
            mask = np.moveaxis(np.asarray(mask), 0, -1)
    elif mask is not None and arr.ndim == 3:
        mask = np.asarray(mask)[..., np.newaxis]
    if mask is not None and arr.dtype.kind == "f":
        # libtiff fills pixels outside the LERC mask with NaN (integers keep LERC's value).
        arr = np.where(mask, arr, np.array(np.nan, arr.dtype))
    if not stored.isnative and arr.dtype.itemsize > 1:
        # libtiff swaps samples before encoding and after decoding every codec of a
        # byte-swapped file, LERC included: the LERC values are file-order bytes.
        arr = arr.byteswap()
    return arr
