"""GDAL's internal per-dataset masks: the mask IFDs of a TIFF, as a RasterSource.

GDAL writes a dataset's mask (``GDAL_TIFF_INTERNAL_MASK=YES``, rasterio's
``write_mask``) as an IFD with NewSubfileType bit 2 (transparency mask),
PhotometricInterpretation 4 and one sample, usually 1-bit deflate; each
overview gets its own (NewSubfileType 5). A pixel whose mask value is 0 is
masked in every band of the file (GDAL's ``GMF_PER_DATASET``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from affine import Affine

from .._types import RasterSource, TileEncoding, TileLayout

__all__ = ["HeaderParts", "internal_mask"]


class HeaderParts(NamedTuple):
    """The header parser's own readers and checks, which a mask IFD goes through too."""

    dtype: Callable[[Any, bool, str], tuple[str, int]]
    layout: Callable[[Any], TileLayout]
    check_supported: Callable[[TileEncoding, str], None]
    check_tiles: Callable[[Sequence[TileLayout], int, str], None]

_MASK = 4
"""NewSubfileType bit of a transparency mask."""


def _is_mask(ifd: Any) -> bool:
    return bool((ifd.new_subfile_type or 0) & _MASK) or int(ifd.photometric_interpretation) == 4


def internal_mask(
    ifds: Sequence[Any],
    facts: Sequence[dict[int, int]],
    data: Sequence[Any],
    big_endian: bool,
    source: tuple[str, str, Affine, str | None, int | None, Any],
    parts: HeaderParts,
) -> RasterSource | None:
    """The file's per-dataset mask, levels paired with ``data``'s by size; None without one.

    Parameters
    ----------
    ifds, facts
        Every IFD of the file and, per IFD, the integer tags the IFD walk read.
    data
        The data IFDs, full resolution then each overview (the source's levels).
    big_endian
        The file's byte order.
    source
        ``(href, name, transform, crs, size, etag)`` of the data source (``name``
        is the redacted href messages show).
    parts
        The header parser's readers (its module imports this one).

    Raises
    ------
    UnsupportedTiffError, TruncatedFileError
        Naming the file, when the mask cannot be decoded or its tiles lie past its end.
    """
    href, name, transform, crs, size, etag = source
    masks = [
        (k, i) for k, i in enumerate(ifds)
        if _is_mask(i) and int(i.samples_per_pixel or 1) == 1 and i not in data
    ]  # fmt: skip
    by_size = {(int(i.image_width), int(i.image_height)): (k, i) for k, i in reversed(masks)}
    found = [by_size.get((int(d.image_width), int(d.image_height))) for d in data]
    first = found[0]
    if first is None:
        return None  # overview masks without a full-resolution one mask nothing in GDAL
    k, ifd = first
    tags = facts[k] if len(facts) == len(ifds) else {}
    dtype, bits = parts.dtype(ifd, big_endian, name)
    encoding = TileEncoding(
        compression=int(ifd.compression),
        predictor=int(ifd.predictor or 1),
        dtype=dtype,
        # Read as the plain 0/non-0 samples they are (GDAL: 0 masked, else valid).
        photometric=1,
        bits_per_sample=None if bits == 8 else bits,
        fill_order=int(tags.get(266, 1)),
    )
    parts.check_supported(encoding, f"{name} (internal mask)")
    levels: list[TileLayout] = []
    for got in found:
        if got is None:
            continue
        ifd = got[1]
        key = (int(ifd.compression), int(ifd.predictor or 1), parts.dtype(ifd, big_endian, name))
        if key != (encoding.compression, encoding.predictor, (dtype, bits)):
            # One encoding per source: a level coded otherwise is left out (it reads
            # unmasked) rather than decoded with the wrong codec.
            continue
        levels.append(parts.layout(ifd))
    if size is not None:
        parts.check_tiles(levels, size, f"{name} (internal mask)")
    return RasterSource(href, transform, crs, encoding, tuple(levels), size=size, etag=etag)
