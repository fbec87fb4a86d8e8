"""How the members of one time step are merged: ``method=`` of a grouped open.

Every method sees only valid pixels (inside a member, not its nodata, not NaN):

=============================  ==============================================
``first`` (default), ``last``  the first (last) valid member in mosaic order
``min``, ``max``               the smallest (largest) valid value
``mean``, ``median``, ``std``  over the valid values (``std``: population, ddof 0)
``count``                      how many members are valid (``uint16``)
a callable                     ``f(stack, axis=0)`` on a float64 stack with NaN
                               where a member is not valid (e.g. ``np.nanpercentile``
                               with ``functools.partial(q=90)``)
=============================  ==============================================

``first`` and ``last`` read a group's members in waves and stop once every pixel
of the chunk is filled (:mod:`.early_exit`): the members after that are never
fetched, and the pixels are those of this merge over every member.

``first``, ``last``, ``min`` and ``max`` keep the band's dtype and nodata;
``mean``, ``median``, ``std`` and callables give floats (``float32`` for bands of
at most 16 bits, else ``float64``) with NaN where no member is valid; ``count``
gives 0 there. Scale and offset still apply to what they describe: a mean,
median, minimum... of stored values decodes like one, a standard deviation
scales without the offset, and a count is a count.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .._types import RasterSource
from .records import StepParams

__all__ = ["METHODS", "checked_method", "merge", "method_output", "method_params"]

METHODS = ("first", "last", "min", "max", "mean", "median", "std", "count")
_KEEPS_DTYPE = ("first", "last", "min", "max")
_REDUCERS: dict[str, Callable[..., np.ndarray]] = {
    "mean": np.nanmean, "median": np.nanmedian, "std": np.nanstd,
}  # fmt: skip

Method = str | Callable[..., Any]
Part = tuple[np.ndarray, np.ndarray, slice, slice]
"""One member's ``(values, valid, rows, cols)`` on the output of a step."""


def checked_method(method: Any, groupby: Any) -> Method:
    """``method`` if it is one of :data:`METHODS` or a callable; a clear error if not."""
    if method is None or method == "first":
        return "first"
    if groupby is None:
        raise ValueError(
            f"method={method!r} merges the records of a group: pass groupby= too "
            "(e.g. groupby='solar_day' or groupby='P1M')"
        )
    if callable(method) or method in METHODS:
        return method
    raise ValueError(
        f"method={method!r} is not a merge method: give one of {list(METHODS)} or a "
        "callable f(stack, axis=0) on a float stack with NaN where a member has no value"
    )


def method_output(method: Method, dtype: np.dtype, fill: float) -> tuple[np.dtype, float]:
    """The output dtype and fill value of ``method`` on a band of ``dtype``."""
    dtype = np.dtype(dtype)
    if method in _KEEPS_DTYPE:
        return dtype, fill
    if dtype.kind == "c":
        raise ValueError(f"method={method!r} is not defined for complex bands: use 'first'")
    if method == "count":
        return np.dtype(np.uint16), 0
    small = dtype.itemsize <= 2 or dtype == np.float32
    return np.dtype(np.float32 if small else np.float64), np.nan


def method_params(method: Method, first: RasterSource, params: StepParams) -> tuple[
    RasterSource, StepParams
]:
    """The record and per-step attributes that describe ``method``'s output values."""
    if method in _KEEPS_DTYPE:
        return first, params
    n = len(params.nodata)
    if method == "count":
        ones, zeros = np.ones(n), np.zeros(n)
        return replace(first, nodata=None, scale=1.0, offset=0.0), StepParams(
            ones, zeros, (None,) * n
        )
    nodata = (float("nan"),) * n
    if method == "std":  # a spread scales, but is not shifted
        src = replace(first, nodata=float("nan"), scale=abs(first.scale), offset=0.0)
        return src, StepParams(np.abs(params.scale), np.zeros(n), nodata)
    return replace(first, nodata=float("nan")), replace(params, nodata=nodata)


def merge(method: Method, out: np.ndarray, parts: Sequence[Part]) -> None:
    """Merge the members' ``parts`` of one time step into ``out``.

    ``out`` holds the fill value of :func:`method_output` already (the caller
    fills it while the tiles travel); pixels no member is valid in keep it.
    """
    if method in ("first", "last"):
        filled = np.zeros(out.shape, dtype=bool)
        for values, valid, rows, cols in parts if method == "first" else reversed(parts):
            take = valid & ~filled[rows, cols]
            np.copyto(out[rows, cols], values, where=take, casting="unsafe")
            filled[rows, cols] |= valid
        return
    if method in ("min", "max"):
        better = np.less if method == "min" else np.greater
        filled = np.zeros(out.shape, dtype=bool)
        for values, valid, rows, cols in parts:
            region, seen = out[rows, cols], filled[rows, cols]
            take = valid & (~seen | better(values, region))
            np.copyto(region, values, where=take, casting="unsafe")
            seen |= valid
        return
    if method == "count":
        for _, valid, rows, cols in parts:
            out[rows, cols] += valid
        return
    stack = np.full((len(parts), *out.shape), np.nan, dtype=np.float64)
    for layer, (values, valid, rows, cols) in zip(stack, parts, strict=True):
        np.copyto(layer[rows, cols], values, where=valid, casting="unsafe")
    reduce = _REDUCERS.get(method) if isinstance(method, str) else method
    assert reduce is not None
    with warnings.catch_warnings():
        # A pixel no member covers is NaN by design, not a warning.
        warnings.filterwarnings("ignore", r"(Mean of empty slice|All-NaN slice|Degrees of)")
        warnings.filterwarnings("ignore", category=RuntimeWarning, message="invalid value")
        result = np.asarray(reduce(stack, axis=0))
    if result.shape != out.shape:
        raise ValueError(
            f"method={method!r} returned shape {result.shape} for a stack of "
            f"{stack.shape}: it must reduce axis 0"
        )
    np.copyto(out, result, casting="unsafe")
