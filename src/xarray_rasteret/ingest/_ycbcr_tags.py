"""The tags of YCbCr outside JPEG, which libtiff's RGBA path (and so GDAL) converts by."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import UnsupportedTiffError

__all__ = ["ycbcr_tags"]


def ycbcr_tags(ifd: Any, href: str) -> tuple[float, ...]:
    """The ``TileEncoding.ycbcr`` numbers of an IFD (libtiff's defaults for missing tags).

    YCbCrSubSampling (default 2 x 2), YCbCrCoefficients (default 0.299, 0.587,
    0.114) and ReferenceBlackWhite (default 0, 255, 128, 255, 128, 255, as libtiff
    supplies for YCbCr), as the float32 values libtiff holds.

    Raises
    ------
    UnsupportedTiffError
        A tag with the wrong number or kind of values, naming ``href``.
    """
    tags = ifd.other_tags or {}

    def floats(tag: int, default: tuple[float, ...]) -> tuple[float, ...]:
        value = tags.get(tag)
        if value is None:
            return default
        try:  # RATIONALs as (numerator, denominator), or numbers; libtiff holds float32
            out = tuple(float(np.float32(_number(v))) for v in value)
        except (TypeError, ValueError) as e:
            raise UnsupportedTiffError(
                f"{href}: YCbCr tag {tag} is malformed ({value!r} are not numbers); the file "
                "is malformed (write it again with a TIFF writer)"
            ) from e
        if len(out) != len(default):
            raise UnsupportedTiffError(
                f"{href}: YCbCr tag {tag} has {len(out)} values, not {len(default)}; the file "
                "is malformed (write it again with a TIFF writer)"
            )
        return out

    sub = tags.get(530, [2, 2])
    if not isinstance(sub, list | tuple) or len(sub) != 2:
        raise UnsupportedTiffError(f"{href}: YCbCrSubSampling {sub!r} is not two numbers")
    luma = floats(529, (0.299, 0.587, 0.114))
    black_white = floats(532, (0.0, 255.0, 128.0, 255.0, 128.0, 255.0))
    luma = tuple(float(np.float32(c)) for c in luma)
    return (float(sub[0]), float(sub[1]), *luma, *black_white)


def _number(v: Any) -> float:
    if isinstance(v, list | tuple):
        n, d = v
        return n / d if d else math.nan
    return float(v)
