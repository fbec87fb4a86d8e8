"""GeoKeys that override what an EPSG code implies, applied the way libgeotiff and GDAL do.

A GeoTIFF may name an EPSG CRS and still give some of its parts explicitly:
``GeographicTypeGeoKey = 4326`` with ``GeogSemiMajorAxis`` / ``GeogInvFlattening``
of another ellipsoid, or ``ProjectedCSTypeGeoKey`` with a ``ProjLinearUnitsGeoKey``
other than the CRS's own unit. libgeotiff's ``GTIFGetDefn`` reads the code first
and lets each explicit key win (GeogEllipsoid over the datum's ellipsoid, then
the semi-axes and inverse flattening over that; ProjLinearUnits over the
projected CRS's unit), and GDAL builds its CRS from that result. Taking the code
alone would be silently wrong, so these functions return the overridden
definition (PROJJSON), or ``None`` when the keys agree with the code.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pyproj import CRS
from pyproj.crs import BoundCRS, Datum, Ellipsoid
from pyproj.crs.coordinate_operation import ToWGS84Transformation
from pyproj.exceptions import CRSError

from ._geokey_units import USER_DEFINED, as_int, is_code, unit, unit_json

__all__ = ["ellipsoid_override", "is_dynamic", "linear_unit_override", "with_towgs84"]

# Relative difference below which an explicit value is the code's own (writers print
# 298.257222101004 for GRS 80's 298.257222101).
_SAME = 1e-9


def _differs(a: float, b: float) -> bool:
    return not math.isclose(a, b, rel_tol=_SAME, abs_tol=0.0)


def ellipsoid_override(
    keys: Mapping[str, Any], definition: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The geographic CRS ``definition`` with the ellipsoid the keys give, if it differs.

    Parameters
    ----------
    keys : mapping
        GeoKeys by async-tiff name.
    definition : mapping
        PROJJSON of the geographic CRS the EPSG code names.

    Returns
    -------
    dict or None
        A new PROJJSON definition (datum of the same name on the overriding
        ellipsoid, no EPSG id), or ``None`` when the keys give no other ellipsoid.
    """
    member = "datum" if "datum" in definition else "datum_ensemble"
    datum = definition.get(member)
    if not isinstance(datum, Mapping) or "ellipsoid" not in datum:
        return None
    ellipsoid = dict(datum["ellipsoid"])
    try:
        base = Ellipsoid.from_json_dict({"type": "Ellipsoid", **ellipsoid})
        code = as_int(keys.get("geog_ellipsoid"))
        if is_code(code) and ellipsoid.get("id", {}).get("code") != code:
            coded = Ellipsoid.from_epsg(code)
            ellipsoid = coded.to_json_dict()
            ellipsoid.pop("$schema", None)
        else:
            coded = base
    except CRSError:
        return None
    a, b = coded.semi_major_metre, coded.semi_minor_metre
    inverse_flattening: float | None = None
    linear = unit(keys, "geog_linear_units", "geog_linear_unit_size", "linear", 9001)
    to_metre = 1.0 if linear is None else linear[1]
    if keys.get("geog_semi_major_axis") is not None:
        a = float(keys["geog_semi_major_axis"]) * to_metre
    if keys.get("geog_semi_minor_axis") is not None:
        b = float(keys["geog_semi_minor_axis"]) * to_metre
    if keys.get("geog_inv_flattening") is not None:
        inverse_flattening = float(keys["geog_inv_flattening"])
        b = a if inverse_flattening == 0.0 else a * (1.0 - 1.0 / inverse_flattening)
    if a <= 0 or b <= 0:
        return None
    if not _differs(a, base.semi_major_metre) and not _differs(b, base.semi_minor_metre):
        return None
    if (
        coded is not base
        and not _differs(a, coded.semi_major_metre)
        and not _differs(b, coded.semi_minor_metre)
    ):
        new_ellipsoid = ellipsoid  # the GeogEllipsoid code, as it is
    else:
        name = ellipsoid.get("name", "unknown")
        if not _differs(a, b):
            new_ellipsoid = {"name": name, "radius": a}
        else:
            rf = inverse_flattening if inverse_flattening else a / (a - b)
            new_ellipsoid = {"name": name, "semi_major_axis": a, "inverse_flattening": rf}
    out = copy.deepcopy(dict(definition))
    out.pop(member, None)
    out.pop("id", None)
    name = str(datum.get("name", "unknown")).removesuffix(" ensemble")
    new_datum: dict[str, Any] = {
        "type": "GeodeticReferenceFrame",
        "name": name,
        "ellipsoid": new_ellipsoid,
    }
    if "prime_meridian" in datum:
        new_datum["prime_meridian"] = datum["prime_meridian"]
    out["datum"] = new_datum
    return out


def is_dynamic(definition: Mapping[str, Any]) -> bool:
    """Whether a geographic CRS's datum is dynamic, as GDAL's ``IsDynamic`` decides it.

    A datum ensemble counts as dynamic when its first member is (WGS 84's is
    "WGS 84 (Transit)"). GDAL reads a *geographic* model whose code names such a
    CRS from the EPSG registry, whatever ellipsoid keys say; a projected model
    on it takes the keys.
    """
    datum = definition.get("datum")
    if isinstance(datum, Mapping):
        return datum.get("type") == "DynamicGeodeticReferenceFrame"
    ensemble = definition.get("datum_ensemble")
    if not isinstance(ensemble, Mapping) or not ensemble.get("members"):
        return False
    code = ensemble["members"][0].get("id", {}).get("code")
    return code is not None and _dynamic_datum(int(code))


@lru_cache(maxsize=64)
def _dynamic_datum(code: int) -> bool:
    try:
        return Datum.from_epsg(code).to_json_dict().get("type") == "DynamicGeodeticReferenceFrame"
    except CRSError:
        return False


def linear_unit_override(
    keys: Mapping[str, Any], definition: Mapping[str, Any], metres_per_unit: float
) -> dict[str, Any] | None:
    """The projected CRS ``definition`` in the ``ProjLinearUnits`` the keys give, if other.

    Parameters
    ----------
    keys : mapping
        GeoKeys by async-tiff name.
    definition : mapping
        PROJJSON of the projected CRS the EPSG code names.
    metres_per_unit : float
        The unit of that CRS's axes, in metres.

    Returns
    -------
    dict or None
        A new definition whose axes are in the keys' unit (the conversion's
        parameters keep their values and units, as GDAL does), or ``None``.
    """
    if keys.get("proj_linear_units") is None:
        return None
    linear = unit(keys, "proj_linear_units", "proj_linear_unit_size", "linear", 9001)
    if linear is None or not _differs(linear[1], metres_per_unit):
        return None
    out = copy.deepcopy(dict(definition))
    out.pop("id", None)
    axes = out.get("coordinate_system", {}).get("axis", [])
    for axis in axes:
        axis["unit"] = unit_json(linear[0], linear[1], "LinearUnit")
    return out


# Keys whose presence makes GDAL build a projected CRS from the keys rather than
# import it from its ProjectedCSType code (and only then keep GeogTOWGS84).
_KEYS_BESIDE_PCS = (
    "projection",
    "proj_coord_trans",
    "geographic_type",
    "geog_geodetic_datum",
    "geog_ellipsoid",
)


def with_towgs84(crs: str, keys: Mapping[str, Any]) -> str:
    """``crs`` bound to WGS 84 by ``GeogTOWGS84GeoKey``, where GDAL keeps that key.

    As GDAL (3.x, default options) reports it: the key is dropped when GDAL
    imports a projected CRS from its EPSG code alone, and when the datum has an
    EPSG code (GDAL strips a TOWGS84 on a known datum) unless vertical keys are
    present (GDAL then goes through its compound-CRS path, which keeps it). A
    datum defined by its ellipsoid alone keeps it. The result is then a BoundCRS
    (position-vector Helmert, 3 or 7 parameters), zeros included.

    Parameters
    ----------
    crs : str
        The CRS built from the other keys.
    keys : mapping
        GeoKeys; ``"geog_towgs84"`` comes only from the raw directory (async-tiff
        drops it, see :mod:`._rawkeys`).

    Returns
    -------
    str
        ``crs`` itself, or the WKT of the BoundCRS.
    """
    values = keys.get("geog_towgs84")
    if not isinstance(values, (tuple, list)) or len(values) not in (3, 7):
        return crs
    from_epsg = is_code(as_int(keys.get("projected_type"))) and not any(
        keys.get(k) is not None for k in _KEYS_BESIDE_PCS
    )
    if as_int(keys.get("model_type")) == 1 and from_epsg:
        return crs
    known_datum = is_code(as_int(keys.get("geographic_type"))) or is_code(
        as_int(keys.get("geog_geodetic_datum"))
    )
    vertical = any(
        (v := as_int(keys.get(k))) is not None and 0 < v <= USER_DEFINED
        for k in ("vertical", "vertical_datum", "vertical_units")
    )
    if known_datum and not vertical:
        return crs
    try:
        source = CRS.from_user_input(crs)
        geodetic = source.geodetic_crs
        if geodetic is None:
            return crs
        shift = ToWGS84Transformation(geodetic, *(float(v) for v in values))
        return BoundCRS(source, CRS.from_epsg(4326), shift).to_wkt()
    except CRSError:
        return crs
