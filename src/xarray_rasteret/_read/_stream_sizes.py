"""The sizes compressed tile streams declare, read before a decoder allocates for them.

JPEG, WebP and JPEG 2000 decoders allocate the image their stream's header
declares, and a LERC blob declares its own size too: a tampered tile could ask
for gigabytes. :func:`declared_size` and :func:`lerc_blob_problem` read those
headers so that the decoder is called only on a stream that matches its tile.
"""

from __future__ import annotations

import struct

__all__ = ["declared_size", "lerc_blob_problem"]

# Every header below fits in this many bytes at the start of the stream (the JPEG
# frame header follows the tile's own tables, which are small: the shared ones
# live in JPEGTables).
_HEADER_BYTES = 2**16
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(head: bytes) -> tuple[int, int]:
    """``(rows, cols)`` of a JPEG stream's frame header (SOFn), walking its segments."""
    if head[:2] != b"\xff\xd8":
        raise ValueError("the JPEG stream does not start with SOI")
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            raise ValueError(f"no JPEG marker at byte {pos}")
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # segments without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            break
        if marker in _JPEG_SOF and pos + 9 <= len(head):
            rows, cols = struct.unpack_from(">HH", head, pos + 5)
            return rows, cols
        pos += 2 + struct.unpack_from(">H", head, pos + 2)[0]
    raise ValueError("no JPEG frame header (SOFn) before the scan")


def _webp_size(head: bytes) -> tuple[int, int]:
    """``(rows, cols)`` of a WebP stream: the VP8X canvas, or the VP8/VP8L frame."""
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        raise ValueError("not a RIFF WebP stream")
    chunk = head[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
    elif chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        w, h = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8 ":
        w, h = (v & 0x3FFF for v in struct.unpack_from("<HH", head, 26))
    else:
        raise ValueError(f"unknown WebP chunk {chunk!r}")
    return h, w


def _jpeg2k_size(head: bytes) -> tuple[int, int]:
    """``(rows, cols)`` of a JPEG 2000 codestream (SIZ) or JP2 file (ihdr box)."""
    if head[:4] == b"\xff\x4f\xff\x51" and len(head) >= 24:
        x, y, x0, y0 = struct.unpack_from(">IIII", head, 8)
        return y - y0, x - x0
    at = head.find(b"ihdr")
    if head[4:8] == b"jP  " and at > 0 and at + 12 <= len(head):
        rows, cols = struct.unpack_from(">II", head, at + 4)
        return rows, cols
    raise ValueError("no JPEG 2000 image header (SIZ marker or ihdr box)")


_PARSERS = {7: _jpeg_size, 50001: _webp_size, 34712: _jpeg2k_size}


def declared_size(compression: int, data: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """``(rows, cols)`` a JPEG, WebP or JPEG 2000 stream declares; None for other codecs.

    Raises ValueError if the stream's header cannot be parsed.
    """
    parse = _PARSERS.get(compression)
    return None if parse is None else parse(bytes(data[:_HEADER_BYTES]))


def lerc_blob_problem(
    blob: bytes | bytearray | memoryview, shape: tuple[int, int, int]
) -> str | None:
    """What is wrong with a tile's LERC2 blobs (one, or one per sample), or None.

    Each must declare the tile's size, and together they must hold its samples.

    LERC2 header: ``"Lerc2 "``, version, a checksum from version 3, then int32
    rows, columns, values per pixel (from version 4), valid pixels, micro block
    size and the blob's size.
    """
    rows, cols, samples = shape
    view = memoryview(blob).cast("B")
    pos, dims = 0, 0
    while pos < len(view) and dims < samples:
        head = bytes(view[pos : pos + 48])
        if head[:6] != b"Lerc2 " or len(head) < 40:
            return f"no LERC2 header at byte {pos} of its blob"
        version = struct.unpack_from("<i", head, 6)[0]
        at = 14 if version >= 3 else 10
        n_rows, n_cols = struct.unpack_from("<ii", head, at)
        n_dim = struct.unpack_from("<i", head, at + 8)[0] if version >= 4 else 1
        size = struct.unpack_from("<i", head, at + (20 if version >= 4 else 16))[0]
        if (n_rows, n_cols) != (rows, cols) or not 1 <= n_dim <= samples - dims or size < 40:
            return f"its LERC2 header declares {n_rows} x {n_cols} x {n_dim} values of {size} bytes"
        pos, dims = pos + size, dims + n_dim
    if bytes(view[pos : pos + 6]) == b"Lerc2 ":  # the decoder would decode it too
        return f"its LERC blob holds more than {samples} bands"
    return None
