"""Internal TIFF masks (GDAL's per-dataset mask IFDs) honoured with ``mask_and_scale=True``.

A file written with an internal mask (``GDAL_TIFF_INTERNAL_MASK=YES``,
rasterio's ``write_mask``) marks pixels of every band invalid where the mask is 0,
as GDAL's ``GMF_PER_DATASET`` mask band (rasterio's ``read_masks`` /
``read(masked=True)``). With ``mask_and_scale=True`` such a band is read as
float with NaN there, and the masked pixels never contribute to a mosaic or a
composite; its mask tiles are read by the same read as its pixels (one more
:class:`~xarray_rasteret._read.tasks.ReadTask` per window, same batching).
With ``mask_and_scale=False`` the mask is dropped before anything is planned:
no mask tile is fetched and the values are the stored ones.

A level (overview) without its own mask reads unmasked, as GDAL opens it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .._read.tasks import ReadTask
from .._types import RasterSource, Window

__all__ = ["has_masks", "honoured", "lean_mask", "mask_task", "masked_values"]


def has_masks(sources: Sequence[RasterSource]) -> bool:
    """Whether any of ``sources`` has an internal mask."""
    return any(s.mask is not None for s in sources)


def honoured(sources: list[RasterSource], mask_and_scale: bool) -> list[RasterSource]:
    """``sources``, their internal masks dropped unless ``mask_and_scale``."""
    if mask_and_scale or not has_masks(sources):
        return sources
    return [s if s.mask is None else replace(s, mask=None) for s in sources]


def mask_task(source: RasterSource, level: int, window: Window) -> ReadTask | None:
    """The read of ``source``'s internal mask over ``window`` of ``level`` (None: no mask).

    Its buffer (``task.out``, uint8) is 0 where the pixel is masked: also outside the
    image and in sparse mask tiles, which GDAL reads as 0.
    """
    at = source.mask_level(level)
    if at is None:
        return None
    assert source.mask is not None
    buffer = np.empty(window.shape, dtype=np.uint8)
    return ReadTask(source.mask, at, window, buffer, fill=0)


def masked_values(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values`` as float64 (complex128) with NaN where ``mask`` is 0, to resample.

    NaN never contributes to a resampled pixel, so masked pixels are left out of
    the kernel as GDAL's warper leaves out invalid source pixels.
    """
    kind = np.complex128 if values.dtype.kind == "c" else np.float64
    out = values.astype(kind)
    out[mask == 0] = np.nan
    return out


def lean_mask(source: RasterSource, level: int, lean: Any) -> RasterSource | None:
    """``source``'s mask made lean by ``lean(mask, mask_level)`` for a read of ``level``."""
    at = source.mask_level(level)
    if source.mask is None or at is None:
        return None
    return lean(source.mask, at)
