"""TIFF Compression tag values: their names, and what decoding each one takes."""

from __future__ import annotations

__all__ = ["BYTE_CODECS", "CODEC_NEEDS", "COMPRESSION_NAMES", "PREDICTED_CODECS", "codec_name"]

COMPRESSION_NAMES: dict[int, str] = {
    1: "none",
    2: "CCITT modified Huffman RLE",
    3: "CCITT Group 3 fax",
    4: "CCITT Group 4 fax",
    5: "LZW",
    6: "old-style JPEG",
    7: "JPEG",
    8: "deflate",
    32766: "NeXT 2-bit RLE",
    32771: "CCITT RLEW",
    32773: "PackBits",
    32809: "ThunderScan",
    32908: "PixarFilm",
    32909: "PixarLog",
    32946: "deflate (Adobe)",
    32947: "Kodak DCS",
    33003: "Aperio JPEG 2000 YCbCr",
    33005: "Aperio JPEG 2000 RGB",
    34661: "JBIG",
    34676: "SGILog",
    34677: "SGILog24",
    34712: "JPEG 2000",
    34887: "LERC",
    34925: "LZMA",
    50000: "zstd",
    50001: "WebP",
    50002: "JPEG XL",
    52546: "JPEG XL (DNG)",
}
"""Names of TIFF Compression tag values, for messages."""

CODEC_NEEDS: dict[int, tuple[str, ...]] = {
    1: (),
    2: ("CCITTRLE",),
    3: ("CCITTFAX3",),
    4: ("CCITTFAX4",),
    5: ("LZW",),
    7: ("JPEG8",),
    8: ("DEFLATE",),
    32946: ("DEFLATE",),
    32773: ("PACKBITS",),
    34712: ("JPEG2K",),
    34887: ("LERC",),
    34925: ("LZMA",),
    50000: ("ZSTD",),
    50001: ("WEBP",),
}
"""Compression -> the imagecodecs codec classes that must be available to decode it."""

BYTE_CODECS = frozenset({1, 5, 8, 32946, 32773, 34925, 50000})
"""Byte-stream codecs: they return the tile's bytes in the file's byte order."""
PREDICTED_CODECS = frozenset({5, 8, 32946, 34925, 50000})
"""Compressions whose tiles the Predictor tag applies to; libtiff ignores it for the
others (none, PackBits, JPEG, LERC, WebP), and so do we."""


def codec_name(compression: int) -> str:
    """``"deflate (8)"``: a Compression value's name and number, for messages."""
    return f"{COMPRESSION_NAMES.get(compression, 'unknown')} ({compression})"
