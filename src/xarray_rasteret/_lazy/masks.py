"""Per-pixel masks from a band of the same records: ``open_dataset(mask=...)``.

A mask names a band of the collection (a class map such as Sentinel-2's
``SCL``, or a bit field such as Landsat's ``QA_PIXEL``) and which of its values
drop a pixel. Each record's mask band is read on the output grid (nearest
neighbour, whatever the data's resampling: classes are not averaged) and
applied to that record's other bands before its pixels are merged into a
mosaic or a composite, so a cloudy pixel of one record never hides a clear
pixel of the next. Pixels where the mask band itself has no value (outside
it, or its nodata) are dropped too: an unclassified pixel is not a clear one.

=====================================  =======================================
``{"band": "SCL", "drop": [3, 8, 9]}``  drop these class values
``{"band": "SCL", "keep": [4, 5, 6]}``  keep only these class values
``{"band": "QA_PIXEL", "bits": [1, 3]}``  drop where any of these bits is set
``{"band": "SCL", "where": f}``          drop where ``f(values)`` is True
=====================================  =======================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MaskRule", "checked_mask"]

_FORMS = "{'band': name, and one of 'drop': [values], 'keep': [values], 'bits': [bits], " \
         "'where': callable}"


@dataclass(frozen=True)
class MaskRule:
    """Which pixels of a mask band drop the pixels of the record's other bands."""

    band: str
    """The mask band (a band name or code of the collection)."""
    drop: tuple[float, ...] | None = None
    keep: tuple[float, ...] | None = None
    bits: tuple[int, ...] | None = None
    where: Callable[[np.ndarray], Any] | None = None

    def drops(self, values: np.ndarray) -> np.ndarray:
        """True where a mask band pixel of ``values`` drops the data pixel."""
        if self.drop is not None:
            return np.isin(values, self.drop)
        if self.keep is not None:
            return ~np.isin(values, self.keep)
        if self.bits is not None:
            flags = np.bitwise_or.reduce([1 << b for b in self.bits])
            return (values.astype(np.int64) & int(flags)) != 0
        assert self.where is not None
        out = np.asarray(self.where(values), dtype=bool)
        if out.shape != values.shape:
            raise ValueError(
                f"mask 'where' returned shape {out.shape} for mask pixels of shape "
                f"{values.shape}: it must give one bool per pixel"
            )
        return out


def _numbers(value: Any, what: str) -> tuple[float, ...]:
    items = [value] if isinstance(value, int | float) else value
    if not isinstance(items, Sequence | set | frozenset | np.ndarray) or isinstance(items, str):
        raise TypeError(f"mask {what!r} must be a list of numbers, not {type(value).__name__}")
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, int | float | np.number):
            raise TypeError(f"mask {what!r} must be a list of numbers; it holds {v!r}")
        out.append(float(v))
    return tuple(out)


def checked_mask(mask: Any) -> MaskRule | None:
    """``mask=`` as a :class:`MaskRule`; a clear error naming the forms there are."""
    if mask is None or isinstance(mask, MaskRule):
        return mask
    if not isinstance(mask, Mapping) or not isinstance(mask.get("band"), str):
        raise TypeError(f"mask={mask!r}: expected a dict {_FORMS}")
    given = [k for k in ("drop", "keep", "bits", "where") if k in mask]
    unknown = set(mask) - {"band", "drop", "keep", "bits", "where"}
    if len(given) != 1 or unknown:
        raise ValueError(f"mask={mask!r}: expected {_FORMS}; give exactly one rule")
    kind = given[0]
    if kind == "where":
        if not callable(mask["where"]):
            raise TypeError("mask 'where' must be a callable values -> bool array")
        return MaskRule(mask["band"], where=mask["where"])
    values = _numbers(mask[kind], kind)
    if kind == "bits":
        if not all(v.is_integer() and 0 <= v < 63 for v in values):
            raise ValueError(f"mask 'bits' must be bit positions 0..62, not {list(values)}")
        return MaskRule(mask["band"], bits=tuple(int(v) for v in values))
    if kind == "drop":
        return MaskRule(mask["band"], drop=values)
    return MaskRule(mask["band"], keep=values)
