"""Scale, offset and nodata that differ between the records of one band.

A band's records need not share them: Sentinel-2 L2A products of processing
baseline 04.00 (from 2022-01-25) carry an offset of -1000 DN that older ones
lack, and STAC ``raster:bands`` give them per item. One ``scale_factor`` /
``add_offset`` / ``_FillValue`` attribute cannot describe such a variable, so:

- with ``mask_and_scale=True`` each time step is decoded with its own record's
  values (:class:`DecodedArray`, lazily, per read);
- with ``mask_and_scale=False`` the values stay native, the CF attributes that
  differ are left out, and the per-record values are coordinates along
  ``time`` (``<band>_scale_factor``, ``<band>_add_offset``, ``<band>_nodata``),
  with a warning saying so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from .._types import RasterSource
from .native import _vindex_arrays

__all__ = ["DecodedArray", "StepParams", "decoded_dtype", "step_params"]


def _nodata_key(nodata: float | None) -> Any:
    # NaN != NaN: compare NaN nodata values as equal.
    if nodata is not None and math.isnan(nodata):
        return "nan"
    return nodata


@dataclass(frozen=True)
class StepParams:
    """Per output time step: the scale, offset and nodata of its record(s)."""

    scale: np.ndarray
    """float64, one per time step."""
    offset: np.ndarray
    """float64, one per time step."""
    nodata: tuple[float | None, ...]
    """One per time step."""

    @property
    def same_scale(self) -> bool:
        """Whether every step has the same scale and offset."""
        return bool(np.all(self.scale == self.scale[0]) and np.all(self.offset == self.offset[0]))

    @property
    def same_nodata(self) -> bool:
        """Whether every step has the same nodata."""
        return len({_nodata_key(v) for v in self.nodata}) <= 1

    @property
    def uniform(self) -> bool:
        """Whether one set of CF attributes describes every step."""
        return self.same_scale and self.same_nodata

    def take(self, start: int, stop: int) -> StepParams:
        """The parameters of steps ``[start, stop)``."""
        return StepParams(
            self.scale[start:stop], self.offset[start:stop], self.nodata[start:stop]
        )

    def nodata_array(self) -> np.ndarray:
        """Nodata per step as float64, NaN where a record has none."""
        return np.array([np.nan if v is None else v for v in self.nodata], dtype=np.float64)


def step_params(band: str, steps: Sequence[Sequence[RasterSource]]) -> StepParams:
    """The scale, offset and nodata of each time step of ``band``.

    Parameters
    ----------
    band
        Band name (for messages).
    steps
        Per output time step, the sources mosaicked into it.

    Returns
    -------
    StepParams

    Raises
    ------
    ValueError
        When records mosaicked into one time step (``groupby=``) differ: their
        pixels cannot be merged before each is decoded.
    """
    scale, offset, nodata = [], [], []
    for i, step in enumerate(steps):
        kinds = {(s.scale, s.offset, _nodata_key(s.nodata)) for s in step}
        if len(kinds) > 1:
            found = sorted({(s.scale, s.offset, s.nodata) for s in step}, key=repr)
            hrefs = [s.href for s in step][:3]
            raise ValueError(
                f"band {band!r}: the records grouped into time step {i} ({hrefs}) have "
                f"different (scale, offset, nodata) {found}, so their pixels cannot be "
                f"mosaicked into one value; open them without groupby=, or select records "
                f"that agree with filters={{...}}"
            )
        first = step[0]
        scale.append(first.scale)
        offset.append(first.offset)
        nodata.append(first.nodata)
    return StepParams(
        np.asarray(scale, dtype=np.float64), np.asarray(offset, dtype=np.float64), tuple(nodata)
    )


def decoded_dtype(native: np.dtype, params: StepParams) -> np.dtype:
    """The dtype ``xr.decode_cf`` gives a band with these attributes (kept the same here)."""
    native = np.dtype(native)
    trivial = bool(np.all(params.scale == 1.0) and np.all(params.offset == 0.0))
    if native.kind == "c":
        return native if trivial else np.dtype(np.complex128)
    if not trivial:
        return np.dtype(np.float64)  # Python-float scale_factor/add_offset decode to float64
    if native.kind == "f":
        return native
    return np.dtype(np.float32 if native.itemsize <= 2 else np.float64)


class DecodedArray(BackendArray):
    """A lazy array decoding each time step of ``base`` with its own record's values.

    ``value * scale + offset``, and NaN where the value is the record's nodata
    (the CF rule ``xr.decode_cf`` applies with one set of attributes). For
    complex bands a value is nodata when its real part is (GDAL's rule, which
    rasterio's masks and rioxarray follow; ``xr.decode_cf`` would compare
    the whole value with ``nodata + 0j``); it becomes ``nan+nanj``.

    Parameters
    ----------
    base
        The native lazy array (:class:`~.native.RasteretArray` or
        :class:`~.mosaic.MosaicArray`).
    params
        Per time step of ``base``.
    dtype
        Output dtype (float).
    """

    def __init__(self, base: Any, params: StepParams, dtype: np.dtype) -> None:
        self.base = base
        self.params = params
        self.shape = base.shape
        self.dtype = np.dtype(dtype)

    def shard(self, start: int, stop: int) -> DecodedArray:
        """The array of time steps ``[start, stop)`` only (what one dask task carries)."""
        return DecodedArray(
            self.base.shard(start, stop), self.params.take(start, stop), self.dtype
        )

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return self._decode(key, np.asarray(self.base[key]))

    async def async_getitem(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        """Read and decode ``key`` on the caller's event loop (xarray's ``load_async``)."""
        return self._decode(key, np.asarray(await self.base.async_getitem(key)))

    def _steps(self, key: indexing.ExplicitIndexer, ndim: int) -> np.ndarray | int:
        """The time step of each value of a read of ``key``, broadcastable to it."""
        if isinstance(key, indexing.VectorizedIndexer):
            tt, _, _ = _vindex_arrays(key.tuple, self.shape)
            return tt
        times = np.arange(self.shape[0])[key.tuple[0]]
        if np.ndim(times) == 0:
            return int(times)
        return times.reshape((-1,) + (1,) * (ndim - 1))

    def _decode(self, key: indexing.ExplicitIndexer, native: np.ndarray) -> np.ndarray:
        steps = self._steps(key, native.ndim)
        nodata = self.params.nodata_array()[steps]
        out = native.astype(self.dtype)
        # Records without nodata have NaN here, which matches no stored value;
        # NaN stored values stay NaN through the arithmetic.
        missing = (native.real if native.dtype.kind == "c" else native) == nodata
        out *= self.params.scale[steps].astype(self.dtype)
        out += self.params.offset[steps].astype(self.dtype)
        out[np.broadcast_to(missing, out.shape)] = (
            complex(np.nan, np.nan) if self.dtype.kind == "c" else np.nan
        )
        return out


def per_record_coords(band: str, params: StepParams) -> dict[str, Any]:
    """Coordinates along ``time`` for the values that differ between records."""
    coords: dict[str, Any] = {}
    if not params.same_scale:
        coords[f"{band}_scale_factor"] = ("time", params.scale.copy())
        coords[f"{band}_add_offset"] = ("time", params.offset.copy())
    if not params.same_nodata:
        coords[f"{band}_nodata"] = ("time", params.nodata_array())
    return coords
