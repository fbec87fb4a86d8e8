"""Small readers shared by the GeoKey modules: codes, units and angles.

GeoKeys give units as EPSG unit codes (or 32767 plus a size key); angles of
projection parameters are in ``GeogAngularUnits`` and lengths in
``ProjLinearUnits``, so every reader of the keys needs these conversions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, TypeGuard

from pyproj.database import get_units_map

__all__ = ["USER_DEFINED", "as_int", "is_code", "to_degrees", "unit", "unit_json"]

#: GeoTIFF value for "user-defined" (the definition follows in other keys).
USER_DEFINED = 32767


def as_int(value: Any) -> int | None:
    """``value`` as an int, or None."""
    return None if value is None else int(value)


def is_code(value: int | None) -> TypeGuard[int]:
    """Whether ``value`` is a code (not absent, 0 or user-defined)."""
    return value is not None and 0 < value < USER_DEFINED


@lru_cache(maxsize=1)
def _epsg_units() -> dict[int, tuple[str, str, float]]:
    units = get_units_map(auth_name="EPSG")
    return {
        int(u.code): (u.name, u.category, float(u.conv_factor))
        for u in units.values()
        if u.code.isdigit()
    }


def unit(
    keys: Mapping[str, Any], code_key: str, size_key: str, category: str, default: int
) -> tuple[str, float] | None:
    """(name, factor to SI) of a linear/angular unit key; ``None`` when unknown."""
    code = as_int(keys.get(code_key))
    if code is None:
        code = default
    if code == USER_DEFINED:
        size = keys.get(size_key)
        return None if size is None or float(size) <= 0 else ("unknown", float(size))
    entry = _epsg_units().get(code)
    if entry is None or entry[1] != category:
        return None
    return entry[0], entry[2]


def unit_json(name: str, factor: float, kind: str) -> dict[str, Any] | str:
    """PROJJSON of a unit (``"metre"`` for the metre)."""
    if kind == "LinearUnit" and factor == 1.0:
        return "metre"
    return {"type": kind, "name": name, "conversion_factor": factor}


def to_degrees(value: float, radians_per_unit: float) -> float:
    """An angle in a unit of ``radians_per_unit`` radians, in degrees."""
    if math.isclose(radians_per_unit, math.pi / 180.0, rel_tol=1e-12):
        return value
    return math.degrees(value * radians_per_unit)
